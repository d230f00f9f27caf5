"""Activation functions and their derivatives, the derivatives computed from the output."""

import numpy as np

LEAKY_SLOPE = 0.01


def stable_sigmoid(z):
    """``1 / (1 + exp(-z))`` without overflow for either sign of ``z``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _forward(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return stable_sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "softplus":
        return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    raise ValueError(f"unknown activation {name!r}")


def _derivative(name, a):
    if name == "identity":
        return np.ones_like(a)
    if name == "logistic":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "leaky_relu":
        return np.where(a > 0, 1, LEAKY_SLOPE).astype(a.dtype)
    if name == "softplus":
        return -np.expm1(-a)
    if name == "elu":
        return np.where(a > 0, 1, a + 1).astype(a.dtype)
    raise ValueError(f"unknown activation {name!r}")


def activation(name, z, out):
    out[...] = _forward(name, z)


def activation_grad(name, a, upstream, out):
    np.multiply(upstream, _derivative(name, a), out=out)
