"""Cross-entropy (hard and soft labels), binary cross-entropy on logits and the quadratic cost,
with their gradients; formulas as in BACKENDS.md."""

import numpy as np

from .activations import stable_sigmoid
from .softmax import shifted_exp


def _finish(L, scale, grad_value, grad, row_loss):
    if row_loss is not None:
        row_loss[...] = L
    if grad is not None:
        np.multiply(grad_value, scale, out=grad)
    return float(L.sum(dtype=np.float64))


def _cross_entropy(z, q, scale, grad, row_loss):
    """Loss and gradient for per-entry target weights ``q`` (n, C): ``L_i = sum_c q_ic (lse - z_ic)``."""
    shifted, e, s = shifted_exp(z)
    with np.errstate(invalid="ignore"):
        neg_logp = np.log(s) - shifted
        # 0 * inf for masked classes the row does not target is 0, not NaN.
        L = np.where(q != 0, q * neg_logp, 0).sum(axis=1)
    grad_value = None
    if grad is not None:
        grad_value = q.sum(axis=1, keepdims=True) * (e / s) - q
    return _finish(L, scale, grad_value, grad, row_loss)


def _row_weights(sw, n, dtype):
    return np.ones(n, dtype=dtype) if sw is None else sw


def ce_hard(z, labels, sw, cw, smoothing, scale, grad, row_loss):
    n, C = z.shape
    if n == 0:
        return 0.0
    if cw is None and smoothing == 0:
        return _ce_hard_plain(z, labels, sw, scale, grad, row_loss)
    w = np.ones(C, dtype=z.dtype) if cw is None else cw
    s_i = _row_weights(sw, n, z.dtype)
    q = np.empty_like(z)
    q[...] = (smoothing / C) * w
    q[np.arange(n), labels] += (1.0 - smoothing) * w[labels]
    q *= s_i[:, None]
    return _cross_entropy(z, q, scale, grad, row_loss)


def _ce_hard_plain(z, labels, sw, scale, grad, row_loss):
    """The common case, written as a NumPy user would: ``p - onehot(y)``."""
    shifted, e, s = shifted_exp(z)
    rows = np.arange(z.shape[0])
    L = np.log(s[:, 0]) - shifted[rows, labels]
    if sw is not None:
        # a zero-weight row adds 0 even when its label is a masked class (0 * inf is not NaN)
        with np.errstate(invalid="ignore"):
            L = np.where(sw != 0, L * sw, 0).astype(L.dtype, copy=False)
    if row_loss is not None:
        row_loss[...] = L
    if grad is not None:
        np.divide(e, s, out=grad)
        if sw is None:
            grad *= scale
            grad[rows, labels] -= scale
        else:
            r = (scale * sw).astype(z.dtype, copy=False)
            grad *= r[:, None]
            grad[rows, labels] -= r
    return float(L.sum(dtype=np.float64))


def ce_soft(z, target, sw, cw, smoothing, scale, grad, row_loss):
    n, C = z.shape
    if n == 0:
        return 0.0
    q = (1.0 - smoothing) * target + smoothing / C
    if cw is not None:
        q = q * cw
    q = q * _row_weights(sw, n, z.dtype)[:, None]
    return _cross_entropy(z, q.astype(z.dtype, copy=False), scale, grad, row_loss)


def bce(z, y, sw, scale, grad, row_loss):
    n = z.shape[0]
    if z.size == 0:
        if row_loss is not None:
            row_loss[...] = 0
        return 0.0
    s_i = _row_weights(sw, n, z.dtype)[:, None]
    elementwise = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
    L = (s_i * elementwise).sum(axis=1)
    grad_value = None if grad is None else s_i * (stable_sigmoid(z) - y)
    return _finish(L, scale, grad_value, grad, row_loss)


def sqerr(z, y, act, sw, scale, grad, row_loss):
    n = z.shape[0]
    if z.size == 0:
        if row_loss is not None:
            row_loss[...] = 0
        return 0.0
    s_i = _row_weights(sw, n, z.dtype)[:, None]
    if act == "identity":
        a = z
    elif act == "logistic":
        a = stable_sigmoid(z)
    else:
        _, e, s = shifted_exp(z)
        a = e / s
    d = a - y
    L = 0.5 * (s_i * d * d).sum(axis=1)
    grad_value = None
    if grad is not None:
        if act == "identity":
            grad_value = s_i * d
        elif act == "logistic":
            grad_value = s_i * d * a * (1 - a)
        else:
            grad_value = s_i * a * (d - (a * d).sum(axis=1, keepdims=True))
    return _finish(L, scale, grad_value, grad, row_loss)
