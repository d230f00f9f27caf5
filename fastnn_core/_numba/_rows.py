"""Row kernels: softmax, log-softmax, log-sum-exp and the fused cross-entropy (hard and soft).

Rows are processed in groups of ``group_rows(C)`` consecutive rows (about ``GROUP_ELEMS``
elements, at least one row; a group is in L1/L2). For a group:

1. per row, the maximum ``m`` (``llvm.maxnum``, vectorised) and ``z - m`` written to the output
   (or gradient, or a scratch buffer), reading what the loss needs from the shifted row
   (``z_y - m``, weighted sums) before it is overwritten;
2. one flat ``vexp`` loop over the whole group in place (vectorised; for 10 classes a per-row
   exp loop would run its scalar remainder only). Rows of ``FUSED_MIN_C`` or more elements skip
   the separate shift instead: ``exp(z - m)`` is computed from ``z`` row by row (one pass less);
   both ways give the same numbers;
3. per row, the float64 sum ``s`` of the exps (``reassoc`` on that sum only), then the scaling
   and the loss (for ``ce_hard`` without smoothing and class weights, the common case, inline;
   otherwise in ``_ce_hard_finish``).

NaN and ``+inf`` logits reach ``s`` through ``vexp`` (``maxnum`` ignores NaN; ``inf - inf`` is
NaN), so the whole row comes out NaN; an all ``-inf`` row gives ``-inf - -inf = NaN`` too.

Every kernel is a ``*_rows(..., lo, hi)`` function for one group returning the float64 sum of its
row losses, and two drivers: serial, and ``parallel=True`` with ``prange`` over the groups. Both
add the per-group partial sums in group order, so the total is bit-for-bit the same whatever the
number of threads.

Few distinct compiled functions on purpose (first-call compile time): one ``vexp`` loop
(``exp_shift``, in its two aliasing variants) serves every kernel here.
"""

import math

import numpy as np
from llvmlite import binding as _llvm
from numba import njit, prange

from ._vmath import cast_to, fmaxnum, vexp

GROUP_ELEMS = 2048  # elements per group of rows (per parallel work item and partial sum)
# Rows at least this long skip the separate shift: exp(z - m) straight from ``z``, row by row.
FUSED_MIN_C = 256
_OPTS = dict(cache=True, nogil=True, error_model="numpy")
_SUM_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})


@njit(**_OPTS)
def group_rows(C):
    """Rows per group for rows of ``C`` elements."""
    return max(1, GROUP_ELEMS // max(C, 1))


# ----------------------------------------------------------------------------------------------
# one-row helpers
@njit(**_OPTS)
def _row_max_reduce(zi):
    """max of a non-empty row, NaNs ignored (``maxnum``); LLVM >= 20 vectorises this reduction
    without fast-math flags."""
    m = zi[0]
    for j in range(1, zi.shape[0]):
        m = fmaxnum(m, zi[j])
    return m


@njit(**_OPTS)
def _row_max_lanes(zi):
    """The same maximum with 16 explicit partial maxima, for older LLVM (Numba < 0.62), which
    keeps the plain reduction scalar (4x faster there; 8x slower than the reduction on LLVM 22).
    ``maxnum`` is exact, so the result is the same number either way."""
    n = zi.shape[0]
    m = zi[0]
    if n < 64:
        for j in range(1, n):
            m = fmaxnum(m, zi[j])
        return m
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = m
    m8 = m9 = m10 = m11 = m12 = m13 = m14 = m15 = m
    j = 0
    while j + 16 <= n:
        m0 = fmaxnum(m0, zi[j])
        m1 = fmaxnum(m1, zi[j + 1])
        m2 = fmaxnum(m2, zi[j + 2])
        m3 = fmaxnum(m3, zi[j + 3])
        m4 = fmaxnum(m4, zi[j + 4])
        m5 = fmaxnum(m5, zi[j + 5])
        m6 = fmaxnum(m6, zi[j + 6])
        m7 = fmaxnum(m7, zi[j + 7])
        m8 = fmaxnum(m8, zi[j + 8])
        m9 = fmaxnum(m9, zi[j + 9])
        m10 = fmaxnum(m10, zi[j + 10])
        m11 = fmaxnum(m11, zi[j + 11])
        m12 = fmaxnum(m12, zi[j + 12])
        m13 = fmaxnum(m13, zi[j + 13])
        m14 = fmaxnum(m14, zi[j + 14])
        m15 = fmaxnum(m15, zi[j + 15])
        j += 16
    for k in range(j, n):
        m0 = fmaxnum(m0, zi[k])
    m0 = fmaxnum(fmaxnum(fmaxnum(m0, m1), fmaxnum(m2, m3)),
                 fmaxnum(fmaxnum(m4, m5), fmaxnum(m6, m7)))
    m8 = fmaxnum(fmaxnum(fmaxnum(m8, m9), fmaxnum(m10, m11)),
                 fmaxnum(fmaxnum(m12, m13), fmaxnum(m14, m15)))
    return fmaxnum(m0, m8)


# max of a non-empty row, NaNs ignored (``maxnum``), vectorised on either LLVM
row_max = _row_max_reduce if _llvm.llvm_version_info >= (20,) else _row_max_lanes


# Loops that read one array and write another at the same index (``out`` may be ``z``) come as
# two calls of one inlined body: LLVM's run-time overlap check would send ``out is z`` to the
# scalar loop, but with the very same pointer passed twice it knows the accesses coincide.
@njit(inline="always")
def _shift_row(zi, m, ls, oi):
    for j in range(zi.shape[0]):
        oi[j] = (zi[j] - m) - ls


@njit(**_OPTS)
def shift_row(zi, m, ls, oi):
    """``oi = (zi - m) - ls`` (all in the row's dtype); ``oi`` may be ``zi``."""
    if zi.ctypes.data == oi.ctypes.data:
        _shift_row(oi, m, ls, oi)
    else:
        _shift_row(zi, m, ls, oi)


@njit(inline="always")
def _exp_shift(zi, m, ei):
    for j in range(zi.shape[0]):
        ei[j] = vexp(zi[j] - m)


@njit(**_OPTS)
def exp_shift(zi, m, ei):
    """``ei = exp(zi - m)`` over 1-D arrays; ``ei`` may be ``zi``. With ``m = 0`` it is a plain
    exp (``x - 0 == x``). The only ``vexp`` loops of the row kernels."""
    if zi.ctypes.data == ei.ctypes.data:
        _exp_shift(ei, m, ei)
    else:
        _exp_shift(zi, m, ei)


@njit(**_SUM_OPTS)
def row_sum(ei):
    """float64 sum of a row."""
    s = 0.0
    for j in range(ei.shape[0]):
        s += ei[j]
    return s


@njit(**_SUM_OPTS)
def weighted_sum(zi, m, w, has_w):
    """float64 ``sum_{w_j != 0} w_j (z_j - m)`` (``sum_j (z_j - m)`` without ``has_w``)."""
    t = 0.0
    if has_w:
        for j in range(zi.shape[0]):
            wj = w[j]
            t += wj * (zi[j] - m) if wj != 0 else 0.0
    else:
        for j in range(zi.shape[0]):
            t += zi[j] - m
    return t


@njit(**_OPTS)
def scale_row(ei, r):
    """``ei *= r`` with ``r`` in the row's dtype."""
    for j in range(ei.shape[0]):
        ei[j] = ei[j] * r


@njit(**_OPTS)
def prepare_group(z, e, lo, hi, elo, m):
    """Step 1 for rows ``lo:hi``: ``m[k] = max(z[lo + k])``; for short rows (the group path)
    also ``e[elo + k] = z[lo + k] - m[k]``. ``e`` may be ``z`` (with ``elo == lo``).

    Returns ``fused``: the shifted row ``i`` is then ``z[i] - m[i - lo]`` (long rows, nothing
    written), else ``e[i - lo + elo] - 0``. Both give the same numbers: ``(z - m) - 0 == z - m``.
    """
    fused = z.shape[1] >= FUSED_MIN_C
    zero = cast_to(0.0, z)
    if z.shape[1] == 0:  # empty rows: nothing to read (m is never used)
        for i in range(lo, hi):
            m[i - lo] = zero
        return False
    for i in range(lo, hi):
        zi = z[i]
        mi = row_max(zi)
        m[i - lo] = mi
        if not fused:
            shift_row(zi, mi, zero, e[i - lo + elo])
    return fused


@njit(**_OPTS)
def exp_group(z, e, lo, hi, elo, m, fused):
    """Step 2: ``e[elo + k] = exp(z[lo + k] - m[k])``; after ``prepare_group``, so for short rows
    one flat in-place loop over the whole group of shifted rows."""
    C = z.shape[1]
    if fused:
        for i in range(lo, hi):
            exp_shift(z[i], m[i - lo], e[i - lo + elo])
    else:
        flat = e.reshape(e.shape[0] * C)[elo * C:(elo + hi - lo) * C]
        exp_shift(flat, cast_to(0.0, z), flat)


# ----------------------------------------------------------------------------------------------
# softmax family
@njit(**_OPTS)
def softmax_rows(z, out, lo, hi):
    C = z.shape[1]
    if C == 0:
        return 0.0
    m = np.empty(hi - lo, dtype=z.dtype)
    fused = prepare_group(z, out, lo, hi, lo, m)
    exp_group(z, out, lo, hi, lo, m, fused)
    for i in range(lo, hi):
        oi = out[i]
        scale_row(oi, cast_to(1.0 / row_sum(oi), z))
    return 0.0


@njit(**_OPTS)
def log_softmax_rows(z, out, lo, hi):
    C = z.shape[1]
    if C == 0:
        return 0.0
    e = np.empty((hi - lo, C), dtype=z.dtype)
    m = np.empty(hi - lo, dtype=z.dtype)
    fused = prepare_group(z, e, lo, hi, 0, m)
    exp_group(z, e, lo, hi, 0, m, fused)
    for i in range(lo, hi):
        ls = cast_to(math.log(row_sum(e[i - lo])), z)
        shift_row(z[i], m[i - lo], ls, out[i])
    return 0.0


@njit(**_OPTS)
def logsumexp_rows(z, out, lo, hi):
    C = z.shape[1]
    if C == 0:
        for i in range(lo, hi):
            out[i] = -np.inf
        return 0.0
    e = np.empty((hi - lo, C), dtype=z.dtype)
    m = np.empty(hi - lo, dtype=z.dtype)
    fused = prepare_group(z, e, lo, hi, 0, m)
    exp_group(z, e, lo, hi, 0, m, fused)
    for i in range(lo, hi):
        out[i] = m[i - lo] + math.log(row_sum(e[i - lo]))
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
    nr = hi - lo
    smooth = eps != 0.0
    if has_grad:
        e = grad
        elo = lo
    else:
        e = np.empty((nr, C), dtype=z.dtype)
        elo = 0
    m = np.empty(nr, dtype=z.dtype)
    fused = prepare_group(z, e, lo, hi, elo, m)
    zero = cast_to(0.0, z)
    d_y = np.empty(nr)
    t = np.zeros(nr)
    # (two branches rather than ``src = z[i] if fused else e[...]``: a read-only ``z`` does not
    # unify with the writeable ``e``)
    for i in range(lo, hi):
        y = labels[i]
        if fused:
            d_y[i - lo] = z[i, y] - m[i - lo]
            if smooth:
                t[i - lo] = weighted_sum(z[i], m[i - lo], cw, has_cw)
        else:
            ei = e[i - lo + elo]
            d_y[i - lo] = ei[y]
            if smooth:
                t[i - lo] = weighted_sum(ei, zero, cw, has_cw)
    exp_group(z, e, lo, hi, elo, m, fused)
    total = 0.0
    if not smooth and not has_cw:
        # the common case inline (no call per row): L = s_i (log s - d_y),
        # grad = scale s_i (e / s - onehot(y))
        for i in range(lo, hi):
            ei = e[i - lo + elo]
            y = labels[i]
            si = sw[i] if has_sw else 1.0
            s = row_sum(ei)
            L = si * (math.log(s) - d_y[i - lo]) if si != 0.0 else 0.0
            total += L
            if has_rl:
                row_loss[i] = L
            if has_grad:
                A = si * scale / s
                e_y = ei[y]
                scale_row(ei, cast_to(A, ei))
                ei[y] = e_y * A - si * scale
        return total
    for i in range(lo, hi):
        ei = e[i - lo + elo]
        L = _ce_hard_finish(ei, labels[i], sw, has_sw, i, cw, has_cw, W, eps, scale, has_grad,
                            row_sum(ei), d_y[i - lo], t[i - lo])
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
        Af = cast_to(A, ei)
        if smooth:
            Bf = cast_to(b * scale, ei)
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
    nr = hi - lo
    u = eps / C
    keep = 1.0 - eps
    if has_grad:
        e = grad
        elo = lo
    else:
        e = np.empty((nr, C), dtype=z.dtype)
        elo = 0
    m = np.empty(nr, dtype=z.dtype)
    fused = prepare_group(z, e, lo, hi, elo, m)
    zero = cast_to(0.0, z)
    Qs = np.empty(nr)
    ts = np.empty(nr)
    for i in range(lo, hi):
        if fused:
            Qs[i - lo], ts[i - lo] = _soft_sums(z[i], m[i - lo], target[i], cw, has_cw, keep, u)
        else:
            Qs[i - lo], ts[i - lo] = _soft_sums(e[i - lo + elo], zero, target[i], cw, has_cw,
                                                keep, u)
    exp_group(z, e, lo, hi, elo, m, fused)
    total = 0.0
    for i in range(lo, hi):
        ei = e[i - lo + elo]
        ti = target[i]
        si = sw[i] if has_sw else 1.0
        Q = si * Qs[i - lo]
        s = row_sum(ei)
        L = 0.0
        if Q != 0.0:
            L = Q * math.log(s) - si * ts[i - lo]
        total += L
        if has_rl:
            row_loss[i] = L
        if has_grad:
            A = cast_to(Q * scale / s, ei)
            B = cast_to(si * scale, ei)
            K = cast_to(keep, ei)
            U = cast_to(u, ei)
            if has_cw:
                for j in range(C):
                    ei[j] = ei[j] * A - B * cw[j] * (K * ti[j] + U)
            else:
                for j in range(C):
                    ei[j] = ei[j] * A - B * (K * ti[j] + U)
    return total


@njit(**_SUM_OPTS)
def _soft_sums(zi, m, ti, cw, has_cw, keep, u):
    """float64 ``sum_j q_j`` and ``sum_{q_j != 0} q_j (z_j - m)`` for
    ``q_j = w_j (keep t_j + u)`` (per unit sample weight)."""
    Q = 0.0
    t = 0.0
    for j in range(zi.shape[0]):
        q = keep * ti[j] + u
        if has_cw:
            q = q * cw[j]
        Q += q
        t += q * (zi[j] - m) if q != 0 else 0.0
    return Q, t


# ----------------------------------------------------------------------------------------------
# drivers: serial and parallel with the same block structure (so the same partial sums).
# Written out per kernel: Numba cannot cache functions generated with exec.
@njit(**_OPTS)
def softmax_serial(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in range((n + g - 1) // g):
        softmax_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(parallel=True, **_OPTS)
def softmax_parallel(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in prange((n + g - 1) // g):
        softmax_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(**_OPTS)
def log_softmax_serial(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in range((n + g - 1) // g):
        log_softmax_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(parallel=True, **_OPTS)
def log_softmax_parallel(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in prange((n + g - 1) // g):
        log_softmax_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(**_OPTS)
def logsumexp_serial(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in range((n + g - 1) // g):
        logsumexp_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(parallel=True, **_OPTS)
def logsumexp_parallel(z, out):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    for b in prange((n + g - 1) // g):
        logsumexp_rows(z, out, b * g, min(n, (b + 1) * g))


@njit(**_OPTS)
def ce_hard_serial(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad, row_loss,
                   has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    total = 0.0
    for b in range((n + g - 1) // g):
        total += ce_hard_rows(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad,
                              row_loss, has_rl, b * g, min(n, (b + 1) * g))
    return total


@njit(parallel=True, **_OPTS)
def ce_hard_parallel(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad, has_grad,
                     row_loss, has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    nb = (n + g - 1) // g
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = ce_hard_rows(z, labels, sw, has_sw, cw, has_cw, W, eps, scale, grad,
                                has_grad, row_loss, has_rl, b * g, min(n, (b + 1) * g))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total


@njit(**_OPTS)
def ce_soft_serial(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad, row_loss,
                   has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    total = 0.0
    for b in range((n + g - 1) // g):
        total += ce_soft_rows(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad,
                              row_loss, has_rl, b * g, min(n, (b + 1) * g))
    return total


@njit(parallel=True, **_OPTS)
def ce_soft_parallel(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad, row_loss,
                     has_rl):
    n = z.shape[0]
    g = group_rows(z.shape[1])
    nb = (n + g - 1) // g
    parts = np.empty(nb)
    for b in prange(nb):
        parts[b] = ce_soft_rows(z, target, sw, has_sw, cw, has_cw, eps, scale, grad, has_grad,
                                row_loss, has_rl, b * g, min(n, (b + 1) * g))
    total = 0.0
    for b in range(nb):
        total += parts[b]
    return total
