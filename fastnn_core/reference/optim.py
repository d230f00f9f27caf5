"""Optimizer steps, in place, with L2 weight decay folded into the gradient."""

import numpy as np


def _effective(p, g, l2):
    return g + l2 * p if l2 else g


def sgd(p, g, v, lr, momentum, nesterov, l2):
    g = _effective(p, g, l2)
    v *= momentum
    v -= lr * g
    if nesterov:
        p += momentum * v - lr * g
    else:
        p += v


def adam(p, g, m, v, lr_t, beta1, beta2, eps, l2):
    g = _effective(p, g, l2)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= lr_t * m / (np.sqrt(v) + eps)


def adagrad(p, g, acc, lr, eps, l2):
    g = _effective(p, g, l2)
    acc += g * g
    p -= lr * g / (np.sqrt(acc) + eps)


def rmsprop(p, g, sq, lr, rho, eps, l2):
    g = _effective(p, g, l2)
    sq *= rho
    sq += (1 - rho) * g * g
    p -= lr * g / (np.sqrt(sq) + eps)


def adadelta(p, g, acc_g, acc_dx, lr, rho, eps, l2):
    g = _effective(p, g, l2)
    acc_g *= rho
    acc_g += (1 - rho) * g * g
    dx = np.sqrt(acc_dx + eps) / np.sqrt(acc_g + eps) * g
    acc_dx *= rho
    acc_dx += (1 - rho) * dx * dx
    p -= lr * dx
