"""Row-wise softmax, log-softmax and log-sum-exp, shifted by the row maximum for stability."""

import numpy as np


def shifted_exp(z):
    """``(z - m, exp(z - m), sum of exp)`` per row, with ``m`` the row max (NaN propagates)."""
    with np.errstate(invalid="ignore"):
        shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=1, keepdims=True)


def softmax(z, out):
    if z.size == 0:
        return
    _, e, s = shifted_exp(z)
    np.divide(e, s, out=out)


def log_softmax(z, out):
    if z.size == 0:
        return
    shifted, _, s = shifted_exp(z)
    np.subtract(shifted, np.log(s), out=out)


def logsumexp(z, out):
    if z.size == 0:
        out[...] = -np.inf
        return
    m = z.max(axis=1)
    with np.errstate(invalid="ignore"):
        s = np.exp(z - m[:, None]).sum(axis=1)
    np.add(m, np.log(s), out=out)
