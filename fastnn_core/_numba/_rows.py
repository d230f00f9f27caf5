"""Row kernels: softmax, log-softmax, log-sum-exp and the fused cross-entropy (hard and soft).

Every kernel is a ``*_rows(..., lo, hi)`` function doing rows ``lo:hi`` and returning the float64
sum of its row losses, plus two drivers: a serial one and a ``parallel=True`` one with ``prange``
over fixed blocks of ``BLOCK`` rows. Both drivers add the per-block partial sums in block order,
so the total is bit-for-bit the same whatever the number of threads.

A row takes three passes over data that is in L1/L2: the maximum (``llvm.maxnum``, vectorised),
``exp(z - m)`` stored and summed in float64 (vectorised ``vexp``; ``reassoc`` on that sum only),
and the final scaling. NaN and ``+inf`` logits reach the row sum through ``vexp`` (``maxnum``
ignores NaN), so the whole row comes out NaN.
"""

import math

import numpy as np
from numba import njit, prange

from ._vmath import cast_like, cast_to, fmaxnum, vexp

BLOCK = 16  # rows per parallel work item (and per partial sum)
# Rows shorter than this take the block path: shift each row, then one exp over the whole block
# (a vectorised loop over 10 elements would run its scalar remainder only).
FUSED_MIN_C = 128
_OPTS = dict(cache=True, nogil=True)
_SUM_OPTS = dict(cache=True, nogil=True, fastmath={"reassoc"})


# ----------------------------------------------------------------------------------------------
# one-row helpers
@njit(**_OPTS)
def row_max(zi):
    """max of a non-empty row, NaNs ignored (``maxnum``); vectorises."""
    m = zi[0]
    for j in range(1, zi.shape[0]):
        m = fmaxnum(m, zi[j])
    return m


# Loops that read one array and write another at the same index (``out`` may be ``z``) come in
# two calls of one inlined body: LLVM's run-time overlap check would send ``out is z`` to the
# scalar loop, but with the very same pointer passed twice it knows the accesses coincide.
@njit(inline="always")
def _exp_store(zi, m, ei):
    for j in range(zi.shape[0]):
        ei[j] = vexp(zi[j] - m)


@njit(**_OPTS)
def exp_store_sum(zi, m, ei):
    """``ei[j] = exp(zi[j] - m)``; returns the float64 sum. ``ei`` may be ``zi``.

    Two passes (the row is in L1 by then): with the float64 sum in the same loop LLVM picks
    8 lanes for float32 (the width of the float64 accumulator); alone, the exp loop runs 16.
    """
    if zi.ctypes.data == ei.ctypes.data:
        _exp_store(ei, m, ei)
    else:
        _exp_store(zi, m, ei)
    return row_sum(ei)


@njit(**_SUM_OPTS)
def exp_sum(zi, m):
    """float64 ``sum_j exp(zi[j] - m)``."""
    s = 0.0
    for j in range(zi.shape[0]):
        s += vexp(zi[j] - m)
    return s


@njit(inline="always")
def _exp_store_sum_w(zi, m, ei, w, has_w):
    s = 0.0
    t = 0.0
    if has_w:
        for j in range(zi.shape[0]):
            d = zi[j] - m
            wj = w[j]
            t += wj * d if wj != 0 else 0.0
            e = vexp(d)
            ei[j] = e
            s += e
    else:
        for j in range(zi.shape[0]):
            d = zi[j] - m
            t += d
            e = vexp(d)
            ei[j] = e
            s += e
    return s, t


@njit(**_SUM_OPTS)
def exp_store_sum_w(zi, m, ei, w, has_w):
    """As ``exp_store_sum``, also returning ``t = sum_{c: w_c != 0} w_c (z_c - m)`` (the weights
    are all ones without ``has_w``), read before ``ei`` (maybe ``zi``) is written."""
    if zi.ctypes.data == ei.ctypes.data:
        return _exp_store_sum_w(ei, m, ei, w, has_w)
    return _exp_store_sum_w(zi, m, ei, w, has_w)


@njit(**_SUM_OPTS)
def exp_sum_w(zi, m, w, has_w):
    s = 0.0
    t = 0.0
    if has_w:
        for j in range(zi.shape[0]):
            d = zi[j] - m
            wj = w[j]
            t += wj * d if wj != 0 else 0.0
            s += vexp(d)
    else:
        for j in range(zi.shape[0]):
            d = zi[j] - m
            t += d
            s += vexp(d)
    return s, t


@njit(**_SUM_OPTS)
def row_sum(ei):
    """float64 sum of a row."""
    s = 0.0
    for j in range(ei.shape[0]):
        s += ei[j]
    return s


@njit(**_SUM_OPTS)
def weighted_sum(di, w, has_w):
    """float64 ``sum_{w_j != 0} w_j d_j`` (``sum_j d_j`` without ``has_w``)."""
    t = 0.0
    if has_w:
        for j in range(di.shape[0]):
            wj = w[j]
            t += wj * di[j] if wj != 0 else 0.0
    else:
        for j in range(di.shape[0]):
            t += di[j]
    return t


@njit(**_OPTS)
def exp_inplace(x):
    """``x = exp(x)`` over a 1-D array."""
    for j in range(x.shape[0]):
        x[j] = vexp(x[j])


@njit(**_OPTS)
def block_shift_exp(z, e, lo, hi, elo):
    """``e[elo + k] = exp(z[lo + k] - max(z[lo + k]))`` for ``k < hi - lo``: the shift row by
    row, then one flat (vectorised) exp over the whole block. ``e`` may be ``z``."""
    C = z.shape[1]
    zero = cast_to(0.0, z)
    for i in range(lo, hi):
        zi = z[i]
        shift_row(zi, row_max(zi), zero, e[i - lo + elo])
    exp_inplace(e.reshape(e.shape[0] * C)[elo * C:(elo + hi - lo) * C])


@njit(**_OPTS)
def scale_row(ei, r):
    """``ei *= r`` with ``r`` in the row's dtype."""
    for j in range(ei.shape[0]):
        ei[j] = ei[j] * r


# ----------------------------------------------------------------------------------------------
# softmax family
@njit(**_OPTS)
def softmax_rows(z, out, lo, hi):
    C = z.shape[1]
    if C == 0:
        return 0.0
    if C < FUSED_MIN_C:
        block_shift_exp(z, out, lo, hi, lo)
        for i in range(lo, hi):
            oi = out[i]
            scale_row(oi, cast_to(1.0 / row_sum(oi), z))
        return 0.0
    for i in range(lo, hi):
        zi = z[i]
        oi = out[i]
        m = row_max(zi)
        s = exp_store_sum(zi, m, oi)
        scale_row(oi, cast_to(1.0 / s, zi))
    return 0.0


@njit(**_OPTS)
def log_softmax_rows(z, out, lo, hi):
    C = z.shape[1]
    if C == 0:
        return 0.0
    for i in range(lo, hi):
        zi = z[i]
        oi = out[i]
        m = row_max(zi)
        ls = cast_like(math.log(exp_sum(zi, m)), m)
        shift_row(zi, m, ls, oi)
    return 0.0


@njit(inline="always")
def _shift_row(zi, m, ls, oi):
    for j in range(zi.shape[0]):
        oi[j] = (zi[j] - m) - ls


@njit(**_OPTS)
def shift_row(zi, m, ls, oi):
    """``oi = (zi - m) - ls``; ``oi`` may be ``zi``."""
    if zi.ctypes.data == oi.ctypes.data:
        _shift_row(oi, m, ls, oi)
    else:
        _shift_row(zi, m, ls, oi)


@njit(**_OPTS)
def logsumexp_rows(z, out, lo, hi):
    C = z.shape[1]
    for i in range(lo, hi):
        if C == 0:
            out[i] = -np.inf
            continue
        zi = z[i]
        m = row_max(zi)
        out[i] = m + math.log(exp_sum(zi, m))
    return 0.0


# ----------------------------------------------------------------------------------------------
# cross-entropy
@njit(**_OPTS)
def ce_hard_rows(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad, row_loss,
                 has_rl, lo, hi):
    """Rows lo:hi of BACKENDS.md's ce_hard; ``W = sum_c w_c`` (``C`` without class weights).

    ``q_ic = s_i ((1 - eps) w_y [c == y] + eps / C w_c)`` is never formed:
    ``L_i = a_i (log s - (z_iy - m)) + b_i (W log s - sum_{w_c != 0} w_c (z_ic - m))`` with
    ``a_i = s_i (1 - eps) w_y``, ``b_i = s_i eps / C`` (each term only if its weight is nonzero),
    ``grad_ic = scale (Q_i e_ic / s - b_i w_c) - scale a_i [c == y]``.
    """
    C = z.shape[1]
    smooth = eps != 0.0
    total = 0.0
    if C < FUSED_MIN_C:
        # small rows: shift every row of the block, one flat exp over the block, then the rows
        if has_grad:
            e = grad
            elo = lo
        else:
            e = np.empty((hi - lo, C), dtype=z.dtype)
            elo = 0
        nr = hi - lo
        d_y = np.empty(nr)
        t = np.zeros(nr)
        for i in range(lo, hi):
            ei = e[i - lo + elo]
            shift_row(z[i], row_max(z[i]), cast_to(0.0, z), ei)
            d_y[i - lo] = ei[labels[i]]
            if smooth:
                t[i - lo] = weighted_sum(ei, cw, has_cw)
        exp_inplace(e.reshape(e.shape[0] * C)[elo * C:(elo + nr) * C])
        for i in range(lo, hi):
            ei = e[i - lo + elo]
            L = _ce_hard_finish(ei, labels[i], sw, has_sw, i, cw, has_cw, W, eps, scale,
                                has_grad, row_sum(ei), d_y[i - lo], t[i - lo])
            total += L
            if has_rl:
                row_loss[i] = L
        return total
    for i in range(lo, hi):
        zi = z[i]
        m = row_max(zi)
        d_y = zi[labels[i]] - m
        t = 0.0
        if has_grad:
            ei = grad[i]
            if smooth:
                s, t = exp_store_sum_w(zi, m, ei, cw, has_cw)
            else:
                s = exp_store_sum(zi, m, ei)
        else:
            ei = zi
            if smooth:
                s, t = exp_sum_w(zi, m, cw, has_cw)
            else:
                s = exp_sum(zi, m)
        L = _ce_hard_finish(ei, labels[i], sw, has_sw, i, cw, has_cw, W, eps, scale, has_grad, s,
                            d_y, t)
        total += L
        if has_rl:
            row_loss[i] = L
    return total


@njit(**_OPTS)
def _ce_hard_finish(ei, y, sw, has_sw, i, cw, has_cw, W, eps, scale, has_grad, s, d_y, t):
    """Row loss from ``s = sum exp(z - m)``, ``d_y = z_y - m`` and ``t``; the gradient row
    written over the exps in ``ei`` when ``has_grad``."""
    C = ei.shape[0]
    smooth = eps != 0.0
    si = sw[i] if has_sw else 1.0
    wy = cw[y] if has_cw else 1.0
    a = si * (1.0 - eps) * wy
    b = si * eps / C
    ls = math.log(s)
    L = 0.0
    if a != 0.0:
        L += a * (ls - d_y)
    if b != 0.0 and W != 0.0:
        L += b * (W * ls - t)
    if has_grad:
        e_y = ei[y]
        A = (a + b * W) * scale / s
        Af = cast_like(A, e_y)
        if smooth:
            Bf = cast_like(b * scale, e_y)
            if has_cw:
                for j in range(C):
                    ei[j] = ei[j] * Af - Bf * cw[j]
            else:
                for j in range(C):
                    ei[j] = ei[j] * Af - Bf
            wy_b = b * scale * wy
        else:
            scale_row(ei, Af)
            wy_b = 0.0
        # the label entry in float64: e_y A - (b w_y + a) scale
        ei[y] = e_y * A - wy_b - a * scale
    return L


@njit(**_OPTS)
def ce_soft_rows(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad, row_loss,
                 has_rl, lo, hi):
    """Rows lo:hi of ce_soft: ``q_ic = s_i w_c ((1 - eps) t_ic + eps / C)``,
    ``L_i = Q_i log s - sum_{q_ic != 0} q_ic (z_ic - m)`` (0 if every ``q_ic`` is 0),
    ``grad_ic = scale (Q_i e_ic / s - q_ic)``."""
    C = z.shape[1]
    scratch = np.empty(0 if has_grad else C, dtype=z.dtype)
    total = 0.0
    u = eps / C
    keep = 1.0 - eps
    for i in range(lo, hi):
        zi = z[i]
        ti = target[i]
        si = sw[i] if has_sw else 1.0
        m = row_max(zi)
        ei = grad[i] if has_grad else scratch
        Q, t, s = _soft_pass(zi, ti, m, ei, cw, has_cw, keep, u)
        Q *= si
        t *= si
        L = 0.0
        if Q != 0.0:
            L = Q * math.log(s) - t
        total += L
        if has_rl:
            row_loss[i] = L
        if has_grad:
            A = cast_to(Q * scale / s, zi)
            B = cast_to(si * scale, zi)
            K = cast_to(keep, zi)
            U = cast_to(u, zi)
            if has_cw:
                for j in range(C):
                    ei[j] = ei[j] * A - B * cw[j] * (K * ti[j] + U)
            else:
                for j in range(C):
                    ei[j] = ei[j] * A - B * (K * ti[j] + U)
    return total


@njit(**_SUM_OPTS)
def _soft_pass(zi, ti, m, ei, cw, has_cw, keep, u):
    """One pass: ``ei = exp(z - m)``; float64 sums of ``q/s_i``, ``q (z - m)/s_i`` (q != 0 only)
    and of the exps. ``ei`` may be ``zi``."""
    if zi.ctypes.data == ei.ctypes.data:
        return _soft_pass_body(ei, ti, m, ei, cw, has_cw, keep, u)
    return _soft_pass_body(zi, ti, m, ei, cw, has_cw, keep, u)


@njit(inline="always")
def _soft_pass_body(zi, ti, m, ei, cw, has_cw, keep, u):
    Q = 0.0
    t = 0.0
    s = 0.0
    for j in range(zi.shape[0]):
        d = zi[j] - m
        q = keep * ti[j] + u
        if has_cw:
            q = q * cw[j]
        Q += q
        t += q * d if q != 0 else 0.0
        e = vexp(d)
        ei[j] = e
        s += e
    return Q, t, s


# ----------------------------------------------------------------------------------------------
# drivers: serial and parallel with the same block structure (so the same partial sums).
# Written out per kernel: Numba cannot cache functions generated with exec.
@njit(**_OPTS)
def _nblocks(n):
    return (n + BLOCK - 1) // BLOCK


@njit(**_OPTS)
def softmax_serial(z, out):
    n = z.shape[0]
    for b in range(_nblocks(n)):
        softmax_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(parallel=True, **_OPTS)
def softmax_parallel(z, out):
    n = z.shape[0]
    for b in prange(_nblocks(n)):
        softmax_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(**_OPTS)
def log_softmax_serial(z, out):
    n = z.shape[0]
    for b in range(_nblocks(n)):
        log_softmax_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(parallel=True, **_OPTS)
def log_softmax_parallel(z, out):
    n = z.shape[0]
    for b in prange(_nblocks(n)):
        log_softmax_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(**_OPTS)
def logsumexp_serial(z, out):
    n = z.shape[0]
    for b in range(_nblocks(n)):
        logsumexp_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(parallel=True, **_OPTS)
def logsumexp_parallel(z, out):
    n = z.shape[0]
    for b in prange(_nblocks(n)):
        logsumexp_rows(z, out, b * BLOCK, min(n, (b + 1) * BLOCK))


@njit(**_OPTS)
def ce_hard_serial(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad, row_loss,
                   has_rl):
    n = z.shape[0]
    total = 0.0
    for b in range(_nblocks(n)):
        total += ce_hard_rows(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad,
                              row_loss, has_rl, b * BLOCK, min(n, (b + 1) * BLOCK))
    return total


@njit(parallel=True, **_OPTS)
def ce_hard_parallel(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad,
                     row_loss, has_rl):
    n = z.shape[0]
    nb = _nblocks(n)
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = ce_hard_rows(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad,
                                has_grad, row_loss, has_rl, b * BLOCK, min(n, (b + 1) * BLOCK))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total


@njit(**_OPTS)
def ce_soft_serial(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad, row_loss,
                   has_rl):
    n = z.shape[0]
    total = 0.0
    for b in range(_nblocks(n)):
        total += ce_soft_rows(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad,
                              row_loss, has_rl, b * BLOCK, min(n, (b + 1) * BLOCK))
    return total


@njit(parallel=True, **_OPTS)
def ce_soft_parallel(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad, row_loss,
                     has_rl):
    n = z.shape[0]
    nb = _nblocks(n)
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = ce_soft_rows(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad,
                                row_loss, has_rl, b * BLOCK, min(n, (b + 1) * BLOCK))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total
