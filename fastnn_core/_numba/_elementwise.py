"""Binary cross-entropy, the quadratic cost, activations and optimizer steps.

Every transcendental function here is one of ``_vmath``'s vectorisable ones (``vexp``,
``vtanh``, ``vexpm1``, ``vlog1p_unit``), never a libm call, so every loop vectorises; all
functions use ``error_model="numpy"`` (a division by zero gives inf/NaN instead of a check that
would keep the loop scalar). Activation names arrive as the integer codes below.
"""

import numpy as np
from numba import njit, prange

from ._rows import exp_shift, group_rows, row_max, row_sum
from ._vmath import cast_like, cast_to, vexp, vexpm1, vlog1p_unit, vtanh

_OPTS = dict(cache=True, nogil=True, error_model="numpy")
_SUM_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})

# activation codes (the Python wrapper maps names to these)
IDENTITY, LOGISTIC, TANH, RELU, LEAKY_RELU, SOFTPLUS, ELU, SOFTMAX = range(8)
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softplus": SOFTPLUS,
    "elu": ELU,
    "softmax": SOFTMAX,
}


@njit(**_OPTS)
def sigmoid(x):
    """``1 / (1 + exp(-x))`` in x's dtype, without overflow for either sign."""
    one = cast_like(1.0, x)
    u = vexp(-abs(x))
    return one / (one + u) if x >= 0 else u / (one + u)


# ----------------------------------------------------------------------------------------------
# binary cross-entropy
@njit(**_SUM_OPTS)
def _bce_row(zi, yi, gi, has_grad, r):
    """float64 ``sum_j`` of the elementwise bce; ``gi = r (sigmoid(z) - y)``; ``gi`` may be ``zi``."""
    if zi.ctypes.data == gi.ctypes.data:
        return _bce_row_body(gi, yi, gi, has_grad, r)
    return _bce_row_body(zi, yi, gi, has_grad, r)


@njit(inline="always")
def _bce_row_body(zi, yi, gi, has_grad, r):
    L = 0.0
    for j in range(zi.shape[0]):
        x = zi[j]
        t = yi[j]
        u = vexp(-abs(x))
        pos = x if x > 0 else cast_like(0.0, x)
        L += (pos - t * x) + vlog1p_unit(u)
        if has_grad:
            one = cast_like(1.0, x)
            sig = one / (one + u) if x >= 0 else u / (one + u)
            gi[j] = r * (sig - t)
    return L


@njit(**_OPTS)
def bce_rows(z, y, sw, has_sw, scale, grad, has_grad, row_loss, has_rl, lo, hi):
    nowhere = np.empty(0, dtype=z.dtype)
    total = 0.0
    for i in range(lo, hi):
        si = sw[i] if has_sw else 1.0
        zi = z[i]
        gi = grad[i] if has_grad else nowhere  # (not ``zi``: it may be read-only)
        L = si * _bce_row(zi, y[i], gi, has_grad, cast_to(si * scale, zi))
        total += L
        if has_rl:
            row_loss[i] = L
    return total


@njit(**_OPTS)
def bce_serial(z, y, sw, has_sw, scale, grad, has_grad, row_loss, has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    total = 0.0
    for b in range((n + g - 1) // g):
        total += bce_rows(z, y, sw, has_sw, scale, grad, has_grad, row_loss, has_rl,
                          b * g, min(n, (b + 1) * g))
    return total


@njit(parallel=True, **_OPTS)
def bce_parallel(z, y, sw, has_sw, scale, grad, has_grad, row_loss, has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    nb = (n + g - 1) // g
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = bce_rows(z, y, sw, has_sw, scale, grad, has_grad, row_loss, has_rl,
                            b * g, min(n, (b + 1) * g))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total


# ----------------------------------------------------------------------------------------------
# quadratic cost
@njit(**_SUM_OPTS)
def _sq_identity(zi, yi, gi, has_grad, r):
    if zi.ctypes.data == gi.ctypes.data:
        return _sq_identity_body(gi, yi, gi, has_grad, r)
    return _sq_identity_body(zi, yi, gi, has_grad, r)


@njit(inline="always")
def _sq_identity_body(zi, yi, gi, has_grad, r):
    L = 0.0
    for j in range(zi.shape[0]):
        d = zi[j] - yi[j]
        L += d * d
        if has_grad:
            gi[j] = r * d
    return L


@njit(**_SUM_OPTS)
def _sq_logistic(zi, yi, gi, has_grad, r):
    if zi.ctypes.data == gi.ctypes.data:
        return _sq_logistic_body(gi, yi, gi, has_grad, r)
    return _sq_logistic_body(zi, yi, gi, has_grad, r)


@njit(inline="always")
def _sq_logistic_body(zi, yi, gi, has_grad, r):
    L = 0.0
    one = cast_like(1.0, r)
    for j in range(zi.shape[0]):
        a = sigmoid(zi[j])
        d = a - yi[j]
        L += d * d
        if has_grad:
            gi[j] = r * d * a * (one - a)
    return L


@njit(**_SUM_OPTS)
def _sq_softmax_sums(ei, yi, rs):
    """``a = e * rs`` stored in ``ei``; returns float64 ``sum d^2`` and ``sum a d`` (d = a - y)."""
    L = 0.0
    ad = 0.0
    for j in range(ei.shape[0]):
        a = ei[j] * rs
        ei[j] = a
        d = a - yi[j]
        L += d * d
        ad += a * d
    return L, ad


@njit(**_OPTS)
def sqerr_rows(z, y, act, sw, has_sw, scale, grad, has_grad, row_loss, has_rl, lo, hi):
    k = z.shape[1]
    scratch = np.empty(k if (act == SOFTMAX and not has_grad) else 0, dtype=z.dtype)
    nowhere = np.empty(0, dtype=z.dtype)
    total = 0.0
    for i in range(lo, hi):
        si = sw[i] if has_sw else 1.0
        zi = z[i]
        yi = y[i]
        gi = grad[i] if has_grad else nowhere  # (not ``zi``: it may be read-only)
        if k == 0:
            L = 0.0
        elif act == IDENTITY:
            L = _sq_identity(zi, yi, gi, has_grad, cast_to(si * scale, zi))
        elif act == LOGISTIC:
            L = _sq_logistic(zi, yi, gi, has_grad, cast_to(si * scale, zi))
        else:
            ei = gi if has_grad else scratch
            m = row_max(zi)
            exp_shift(zi, m, ei)
            s = row_sum(ei)
            L, ad = _sq_softmax_sums(ei, yi, cast_to(1.0 / s, zi))
            if has_grad:
                r = cast_to(si * scale, zi)
                adf = cast_to(ad, zi)
                for j in range(k):
                    a = ei[j]
                    ei[j] = r * a * ((a - yi[j]) - adf)
        L = 0.5 * si * L
        total += L
        if has_rl:
            row_loss[i] = L
    return total


@njit(**_OPTS)
def sqerr_serial(z, y, act, sw, has_sw, scale, grad, has_grad, row_loss, has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    total = 0.0
    for b in range((n + g - 1) // g):
        total += sqerr_rows(z, y, act, sw, has_sw, scale, grad, has_grad, row_loss, has_rl,
                            b * g, min(n, (b + 1) * g))
    return total


@njit(parallel=True, **_OPTS)
def sqerr_parallel(z, y, act, sw, has_sw, scale, grad, has_grad, row_loss, has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    nb = (n + g - 1) // g
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = sqerr_rows(z, y, act, sw, has_sw, scale, grad, has_grad, row_loss, has_rl,
                              b * g, min(n, (b + 1) * g))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total


# ----------------------------------------------------------------------------------------------
# activations (1-D)
@njit(**_OPTS)
def activation(code, z, out):
    """``out = f(z)``; ``out`` may be ``z`` (see ``_rows.shift_row`` for why two calls)."""
    if z.ctypes.data == out.ctypes.data:
        _activation(code, out, out)
    else:
        _activation(code, z, out)


@njit(inline="always")
def _activation(code, z, out):
    n = z.shape[0]
    if n == 0:
        return
    zero = cast_to(0.0, z)
    one = cast_to(1.0, z)
    if code == IDENTITY:
        for i in range(n):
            out[i] = z[i]
    elif code == LOGISTIC:
        for i in range(n):
            out[i] = sigmoid(z[i])
    elif code == TANH:
        for i in range(n):
            out[i] = vtanh(z[i])
    elif code == RELU:
        for i in range(n):
            x = z[i]
            out[i] = zero if x < zero else x  # NaN stays NaN
    elif code == LEAKY_RELU:
        slope = cast_to(0.01, z)
        for i in range(n):
            x = z[i]
            out[i] = x if x > zero else slope * x
    elif code == SOFTPLUS:
        for i in range(n):
            x = z[i]
            pos = zero if x < zero else x
            out[i] = vlog1p_unit(vexp(-abs(x))) + pos
    elif code == ELU:
        for i in range(n):
            x = z[i]
            out[i] = x if x > zero else vexpm1(x)


@njit(**_OPTS)
def activation_grad(code, a, upstream, out):
    """``out = upstream * f'(a)``; ``out`` may be ``upstream``."""
    if upstream.ctypes.data == out.ctypes.data:
        _activation_grad(code, a, out, out)
    else:
        _activation_grad(code, a, upstream, out)


@njit(inline="always")
def _activation_grad(code, a, upstream, out):
    n = a.shape[0]
    if n == 0:
        return
    zero = cast_to(0.0, a)
    one = cast_to(1.0, a)
    if code == IDENTITY:
        for i in range(n):
            out[i] = upstream[i]
    elif code == LOGISTIC:
        for i in range(n):
            x = a[i]
            out[i] = upstream[i] * (x * (one - x))
    elif code == TANH:
        for i in range(n):
            x = a[i]
            out[i] = upstream[i] * (one - x * x)
    elif code == RELU:
        for i in range(n):
            out[i] = upstream[i] * (one if a[i] > zero else zero)
    elif code == LEAKY_RELU:
        slope = cast_to(0.01, a)
        for i in range(n):
            out[i] = upstream[i] * (one if a[i] > zero else slope)
    elif code == SOFTPLUS:
        for i in range(n):
            out[i] = upstream[i] * -vexpm1(-a[i])
    elif code == ELU:
        for i in range(n):
            x = a[i]
            out[i] = upstream[i] * (one if x > zero else x + one)


# ----------------------------------------------------------------------------------------------
# optimizer steps (1-D, in place); scalars are converted to the arrays' dtype first, as NumPy
# does with Python floats (NEP 50)
@njit(**_OPTS)
def sgd(p, g, v, lr, momentum, nesterov, l2):
    if p.shape[0] == 0:
        return
    lr_ = cast_to(lr, p)
    mu = cast_to(momentum, p)
    l2_ = cast_to(l2, p)
    if nesterov:
        for i in range(p.shape[0]):
            ge = g[i] + l2_ * p[i]
            vi = mu * v[i] - lr_ * ge
            v[i] = vi
            p[i] += mu * vi - lr_ * ge
    else:
        for i in range(p.shape[0]):
            ge = g[i] + l2_ * p[i]
            vi = mu * v[i] - lr_ * ge
            v[i] = vi
            p[i] += vi


@njit(**_OPTS)
def adam(p, g, m, v, lr_t, beta1, beta2, eps, l2):
    if p.shape[0] == 0:
        return
    lr_ = cast_to(lr_t, p)
    b1 = cast_to(beta1, p)
    b2 = cast_to(beta2, p)
    c1 = cast_to(1.0 - beta1, p)
    c2 = cast_to(1.0 - beta2, p)
    eps_ = cast_to(eps, p)
    l2_ = cast_to(l2, p)
    for i in range(p.shape[0]):
        ge = g[i] + l2_ * p[i]
        mi = b1 * m[i] + c1 * ge
        vi = b2 * v[i] + c2 * (ge * ge)
        m[i] = mi
        v[i] = vi
        p[i] -= lr_ * mi / (np.sqrt(vi) + eps_)


@njit(**_OPTS)
def adagrad(p, g, acc, lr, eps, l2):
    if p.shape[0] == 0:
        return
    lr_ = cast_to(lr, p)
    eps_ = cast_to(eps, p)
    l2_ = cast_to(l2, p)
    for i in range(p.shape[0]):
        ge = g[i] + l2_ * p[i]
        ai = acc[i] + ge * ge
        acc[i] = ai
        p[i] -= lr_ * ge / (np.sqrt(ai) + eps_)


@njit(**_OPTS)
def rmsprop(p, g, sq, lr, rho, eps, l2):
    if p.shape[0] == 0:
        return
    lr_ = cast_to(lr, p)
    rho_ = cast_to(rho, p)
    c = cast_to(1.0 - rho, p)
    eps_ = cast_to(eps, p)
    l2_ = cast_to(l2, p)
    for i in range(p.shape[0]):
        ge = g[i] + l2_ * p[i]
        si = rho_ * sq[i] + c * (ge * ge)
        sq[i] = si
        p[i] -= lr_ * ge / (np.sqrt(si) + eps_)


@njit(**_OPTS)
def adadelta(p, g, acc_g, acc_dx, lr, rho, eps, l2):
    if p.shape[0] == 0:
        return
    lr_ = cast_to(lr, p)
    rho_ = cast_to(rho, p)
    c = cast_to(1.0 - rho, p)
    eps_ = cast_to(eps, p)
    l2_ = cast_to(l2, p)
    for i in range(p.shape[0]):
        ge = g[i] + l2_ * p[i]
        ag = rho_ * acc_g[i] + c * (ge * ge)
        acc_g[i] = ag
        dx = np.sqrt(acc_dx[i] + eps_) / np.sqrt(ag + eps_) * ge
        acc_dx[i] = rho_ * acc_dx[i] + c * (dx * dx)
        p[i] -= lr_ * dx
