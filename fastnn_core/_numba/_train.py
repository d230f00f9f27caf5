"""The native training loop of the ``numba`` backend: one whole epoch per call, ``nogil``.

The contract is the "Training epoch" section of fastnn_core/BACKENDS.md (the same as the
``cython`` backend's ``_train.pyx``). Every batch: gather rows into the preallocated buffers,
forward matrix products (``np.dot`` into ``out=``: Numba calls SciPy's BLAS) + bias + the fused
activation, the fused loss + gradient rows (this backend's own row kernels), backward products
+ fused activation backward, and the fused optimizer update of every parameter (this backend's
``sgd`` / ``adam`` / ... kernels, with ``l2 = alpha / S`` on the weights). At batch size 1 the
products are plain loops (a vector times a small matrix: cheaper than a BLAS call).

Per-layer arrays arrive as tuples of flat 1-D arrays (one Numba type for any depth); matrices
are ``reshape`` views of them. Everything runs serially in this thread, except what BLAS itself
threads (its pool honours threadpoolctl); nothing is allocated per batch here.
"""

import math

import numpy as np
from numba import njit
from numba.extending import overload

from . import _elementwise as _E
from . import _rows as _R
from ._vmath import cast_to

_OPTS = dict(cache=True, nogil=True)


def _loss(z, tb, swb, has_sw, scale, grad, kind):  # pragma: no cover - replaced by overload
    raise NotImplementedError


@overload(_loss, jit_options=dict(nogil=True))
def _loss_ol(z, tb, swb, has_sw, scale, grad, kind):
    """Batch loss ``sum_i s_i L_i`` and ``scale * dL/dz`` into ``grad``: ce_hard for class
    indices (1-D ``tb``), else bce (kind 1) or the squared error on logistic (2) / softmax (3)."""
    if tb.ndim == 1:
        def impl(z, tb, swb, has_sw, scale, grad, kind):
            C = z.shape[1]
            empty = swb[:0]
            return _R.ce_hard_serial(z, tb, swb, has_sw, empty, False, float(C), 0.0, scale,
                                     grad, True, empty, False)
    else:
        def impl(z, tb, swb, has_sw, scale, grad, kind):
            empty = swb[:0]
            if kind == 1:
                return _E.bce_serial(z, tb, swb, has_sw, scale, grad, True, empty, False)
            code = _E.LOGISTIC if kind == 2 else _E.SOFTMAX
            return _E.sqerr_serial(z, tb, code, swb, has_sw, scale, grad, True, empty, False)
    return impl


@njit(**_OPTS)
def _opt_step(kind, p, g, s0, s1, h, lr, l2):
    if kind == 0:
        _E.sgd(p, g, s0, lr, h[1], h[2] != 0.0, l2)
    elif kind == 1:
        _E.adam(p, g, s0, s1, lr, h[1], h[2], h[3], l2)
    elif kind == 2:
        _E.adagrad(p, g, s0, lr, h[3], l2)
    elif kind == 3:
        _E.rmsprop(p, g, s0, lr, h[1], h[3], l2)
    else:
        _E.adadelta(p, g, s0, s1, lr, h[1], h[3], l2)


@njit(**_OPTS)
def _vecmat(a, W, b, z):
    """``z = a @ W + b`` for one row (rows of W with a_k == 0 skipped)."""
    K, N = W.shape
    for j in range(N):
        z[j] = 0
    for k in range(K):
        ak = a[k]
        if ak == 0:
            continue
        for j in range(N):
            z[j] += ak * W[k, j]
    for j in range(N):
        z[j] += b[j]


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _matvec(W, dl, out):
    """``out = W @ dl`` for one row."""
    K, N = W.shape
    for k in range(K):
        s = cast_to(0.0, W)
        for j in range(N):
            s += W[k, j] * dl[j]
        out[k] = s


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sumsq(w):
    """``sum w_i^2`` in float64 (vectorised: reassociated sum)."""
    s = 0.0
    for i in range(w.shape[0]):
        x = float(w[i])
        s += x * x
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def _rank1(kind, p, a, has_a, d, s0, s1, K, N, h, lr, l2):
    """Batch size 1: the optimizer update of the flat ``p`` (K * N) with the gradient
    ``outer(a, d)`` formed on the fly (``has_a`` False: a bias, K = 1, gradient ``d``); the
    element updates are those of ``_elementwise`` (same expressions, scalars cast to the dtype
    first). Flat indexing: LLVM vectorises these loops, row views it did not."""
    lr_ = cast_to(lr, d)
    l2_ = cast_to(l2, d)
    eps_ = cast_to(h[3], d)
    c1 = cast_to(h[1], d)
    c2 = cast_to(h[2], d)
    r1 = cast_to(1.0 - h[1], d)
    r2 = cast_to(1.0 - h[2], d)
    for k in range(K):
        ak = a[k] if has_a else cast_to(1.0, d)
        o = k * N
        if kind == 0:
            if h[2] != 0.0:
                for j in range(N):
                    ge = ak * d[j] + l2_ * p[o + j]
                    vi = c1 * s0[o + j] - lr_ * ge
                    s0[o + j] = vi
                    p[o + j] += c1 * vi - lr_ * ge
            else:
                for j in range(N):
                    ge = ak * d[j] + l2_ * p[o + j]
                    vi = c1 * s0[o + j] - lr_ * ge
                    s0[o + j] = vi
                    p[o + j] += vi
        elif kind == 1:
            for j in range(N):
                ge = ak * d[j] + l2_ * p[o + j]
                mi = c1 * s0[o + j] + r1 * ge
                vi = c2 * s1[o + j] + r2 * (ge * ge)
                s0[o + j] = mi
                s1[o + j] = vi
                p[o + j] -= lr_ * mi / (np.sqrt(vi) + eps_)
        elif kind == 2:
            for j in range(N):
                ge = ak * d[j] + l2_ * p[o + j]
                ai = s0[o + j] + ge * ge
                s0[o + j] = ai
                p[o + j] -= lr_ * ge / (np.sqrt(ai) + eps_)
        elif kind == 3:
            for j in range(N):
                ge = ak * d[j] + l2_ * p[o + j]
                si = c1 * s0[o + j] + r1 * (ge * ge)
                s0[o + j] = si
                p[o + j] -= lr_ * ge / (np.sqrt(si) + eps_)
        else:
            for j in range(N):
                ge = ak * d[j] + l2_ * p[o + j]
                ag = c1 * s0[o + j] + r1 * (ge * ge)
                s0[o + j] = ag
                dx = np.sqrt(s1[o + j] + eps_) / np.sqrt(ag + eps_) * ge
                s1[o + j] = c1 * s1[o + j] + r1 * (dx * dx)
                p[o + j] -= lr_ * dx


@njit(**_OPTS)
def _epoch(X, target, sw, has_sw, order, has_order, bs, units, P, G, S0, S1, A, D, xbuf, tbuf,
           swbuf, hidden, loss_kind, opt_kind, h, alpha, t):
    n = X.shape[0]
    L = units.shape[0] - 1
    nb = (n + bs - 1) // bs
    if nb == 1:
        # one batch of every row (full batch): the order only permutes the terms of the sums,
        # so use the rows in place instead of gathering a shuffled copy of X
        has_order = False
    acc = 0.0
    diverged = False
    lr = h[0]
    for b in range(nb):
        start = b * bs
        stop = min(start + bs, n)
        m = stop - start
        if has_order:
            for r in range(m):
                idx = order[start + r]
                xbuf[r] = X[idx]
                tbuf[r] = target[idx]
                if has_sw:
                    swbuf[r] = sw[idx]
            xin = xbuf[:m]
            tb = tbuf[:m]
            swb = swbuf[:m]
        else:
            xin = X[start:stop]
            tb = target[start:stop]
            swb = sw[start:stop] if has_sw else sw[:0]
        if has_sw:
            S = 0.0
            for r in range(m):
                S += swb[r]
        else:
            S = float(m)
        if S <= 0.0:  # a batch of zero-weight rows carries no gradient
            continue

        # ---- forward
        a_prev = xin
        for l in range(L):
            K = units[l]
            N = units[l + 1]
            W = P[l].reshape((K, N))
            bias = P[L + l]
            Z = A[l][:m * N].reshape((m, N))
            if m == 1:
                _vecmat(a_prev[0], W, bias, Z[0])
            else:
                np.dot(a_prev, W, Z)
                for r in range(m):
                    zr = Z[r]
                    for j in range(N):
                        zr[j] += bias[j]
            if l != L - 1:
                zf = A[l][:m * N]
                _E.activation(hidden, zf, zf)
            a_prev = Z

        # ---- loss and output delta
        scale = 1.0 / S
        N = units[L]
        z = A[L - 1][:m * N].reshape((m, N))
        dl = D[L - 1][:m * N].reshape((m, N))
        total = _loss(z, tb, swb, has_sw, scale, dl, loss_kind)
        reg = 0.0
        if alpha != 0.0:
            l2sum = 0.0
            for l in range(L):
                l2sum += _sumsq(P[l])
            reg = 0.5 * alpha * l2sum
        acc += total * scale * S + reg
        if not math.isfinite(acc):
            diverged = True
            break

        l2 = alpha / S
        if opt_kind == 1:
            t += 1
            lr = h[0] * math.sqrt(1.0 - h[2] ** float(t)) / (1.0 - h[1] ** float(t))

        # ---- backward
        for l in range(L - 1, -1, -1):
            K = units[l]
            N = units[l + 1]
            dl = D[l][:m * N].reshape((m, N))
            if l == 0:
                a_prev = xin
            else:
                a_prev = A[l - 1][:m * K].reshape((m, K))
            gW = G[l].reshape((K, N))
            gb = G[L + l]
            if m == 1:
                pass  # gradient formed on the fly by the fused update below
            else:
                np.dot(a_prev.T, dl, gW)
                for j in range(N):
                    gb[j] = dl[0, j]
                for r in range(1, m):
                    for j in range(N):
                        gb[j] += dl[r, j]
            if l > 0:
                W = P[l].reshape((K, N))
                dprev = D[l - 1][:m * K].reshape((m, K))
                if m == 1:
                    _matvec(W, dl[0], dprev[0])
                else:
                    np.dot(dl, W.T, dprev)
                df = D[l - 1][:m * K]
                _E.activation_grad(hidden, A[l - 1][:m * K], df, df)
            if m == 1:
                # layer l's gradients are complete (delta_{l-1} used the old W_l): update now
                _rank1(opt_kind, P[l], a_prev[0], True, dl[0], S0[l], S1[l], K, N, h, lr, l2)
                _rank1(opt_kind, P[L + l], a_prev[0], False, dl[0], S0[L + l], S1[L + l], 1, N,
                       h, lr, 0.0)
        if m == 1:
            continue

        # ---- optimizer: l2 = alpha / S on weights, 0 on biases
        for i in range(2 * L):
            _opt_step(opt_kind, P[i], G[i], S0[i], S1[i], h, lr, l2 if i < L else 0.0)
    return acc, t, diverged


_EMPTY_ORDER = np.empty(0, dtype=np.intp)


def train_epoch(X, target, sw, order, batch_size, units, params, grads, state0, state1, acts,
                deltas, xbuf, tbuf, swbuf, hidden_act, loss_kind, opt_kind, hyper, alpha, t):
    """One epoch of mini-batch training, in place (BACKENDS.md, "Training epoch"); returns
    ``(accumulated, t, diverged)``. Arguments are not validated (fastnn/_native_loop.py)."""
    has_sw = sw is not None
    if not has_sw:
        sw = np.empty(0, X.dtype)
        swbuf = sw
    elif swbuf is None:
        swbuf = sw[:0]
    has_order = order is not None
    if not has_order:
        order = _EMPTY_ORDER
    acc, t, diverged = _epoch(
        X, target, sw, has_sw, order, has_order, int(batch_size), units, params, grads, state0,
        state1, acts, deltas, xbuf, tbuf, swbuf, int(hidden_act), int(loss_kind), int(opt_kind),
        hyper, float(alpha), int(t),
    )
    return float(acc), int(t), bool(diverged)
