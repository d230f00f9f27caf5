# cython: language_level=3
"""The ``cython`` backend kernels (see fastnn_core/BACKENDS.md for the contract).

Inputs are already validated by fastnn_core/_validate.py: C-contiguous arrays of one floating
dtype (float32 or float64), labels np.intp in range, optional arguments None.  Nothing is
re-validated here.

Each kernel is a thin ``def`` wrapper that dispatches on the dtype to a fused (float/double)
``cdef`` function; those run the rows without the GIL, serially for small inputs and with
``prange(schedule='static')`` over rows (over equal chunks for 1-D arrays) once the array has
``PARALLEL_MIN`` elements or more.  The per-row work is done by the C functions of
fastnn_simd.h, compiled for several ISAs and dispatched at load time.
"""

cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY
from cython.parallel cimport prange

from fastnn_core._cython.fastnn_simd cimport *

cnp.import_array()

#: Arrays with fewer elements than this run on one thread: below it, waking an OpenMP team costs
#: about as much as it saves on an idle machine, and far more on a busy one (same as Numba's).
cdef enum:
    PARALLEL_MIN = 131072
PARALLEL_MIN_ELEMENTS = PARALLEL_MIN

OPENMP = bool(FASTNN_OPENMP)
SIMD_INFO = fnn_simd_info().decode()


cdef inline int _threads(intp work) noexcept nogil:
    """Threads for a kernel over ``work`` elements: 1 below PARALLEL_MIN, else the OpenMP limit
    of the calling thread (omp_get_max_threads, which threadpoolctl and OMP_NUM_THREADS set)."""
    if work < PARALLEL_MIN:
        return 1
    return fnn_max_threads()


cdef inline bint _is_f32(object a):
    return cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT32


# --------------------------------------------------------------------------------------------
# softmax family (mode 0 softmax, 1 log_softmax, 2 logsumexp) and cross-entropy with hard
# labels: the C functions take a range of rows; threads get one contiguous range each.

cdef inline intp _rows_per_thread(intp n, int nt) noexcept nogil:
    return (n + nt - 1) // nt


cdef void _softmax_rows(const floating *z, floating *out, intp n, intp C, int mode) noexcept nogil:
    cdef int nt = _threads(n * C), k
    cdef intp step, lo, hi
    if nt > 1:
        step = _rows_per_thread(n, nt)
        for k in prange(nt, schedule='static', num_threads=nt):
            lo = k * step
            hi = lo + step
            if hi > n:
                hi = n
            if lo < hi:
                if floating is float:
                    fnn_softmax_rows_f32(z, out, lo, hi, C, mode)
                else:
                    fnn_softmax_rows_f64(z, out, lo, hi, C, mode)
    else:
        if floating is float:
            fnn_softmax_rows_f32(z, out, 0, n, C, mode)
        else:
            fnn_softmax_rows_f64(z, out, 0, n, C, mode)


cdef void _softmax_mv(const floating[:, ::1] z, floating[:, ::1] out, int mode) noexcept:
    cdef intp n = z.shape[0], C = z.shape[1]
    if n == 0 or C == 0:
        return
    with nogil:
        _softmax_rows(&z[0, 0], &out[0, 0], n, C, mode)


def softmax(z, out):
    """Row-wise softmax of ``z`` (n, C) into ``out`` (may be ``z``)."""
    if _is_f32(z):
        _softmax_mv[float](z, out, 0)
    else:
        _softmax_mv[double](z, out, 0)


def log_softmax(z, out):
    """Row-wise ``z - logsumexp(z)`` into ``out`` (may be ``z``)."""
    if _is_f32(z):
        _softmax_mv[float](z, out, 1)
    else:
        _softmax_mv[double](z, out, 1)


cdef void _lse_mv(const floating[:, ::1] z, floating[::1] out) noexcept:
    cdef intp n = z.shape[0], C = z.shape[1], i
    if n == 0:
        return
    if C == 0:
        for i in range(n):
            out[i] = -INFINITY
        return
    with nogil:
        _softmax_rows(&z[0, 0], &out[0], n, C, 2)


def logsumexp(z, out):
    """``log(sum(exp(z), axis=1))`` into ``out`` (n,)."""
    if _is_f32(z):
        _lse_mv[float](z, out)
    else:
        _lse_mv[double](z, out)


cdef double _ce_hard_rows(const floating *z, const intp *labels, const floating *sw,
                          const floating *cw, double W,
                          double eps, double scale, floating *g, floating *rl, intp n,
                          intp C) noexcept nogil:
    cdef int nt = _threads(n * C), k
    cdef intp step, lo, hi
    cdef double total = 0.0
    if nt > 1:
        step = _rows_per_thread(n, nt)
        for k in prange(nt, schedule='static', num_threads=nt):
            lo = k * step
            hi = lo + step
            if hi > n:
                hi = n
            if lo < hi:
                if floating is float:
                    total += fnn_ce_hard_rows_f32(z, g, lo, hi, C, labels, sw, cw, W, eps,
                                                  scale, rl)
                else:
                    total += fnn_ce_hard_rows_f64(z, g, lo, hi, C, labels, sw, cw, W, eps,
                                                  scale, rl)
        return total
    if floating is float:
        return fnn_ce_hard_rows_f32(z, g, 0, n, C, labels, sw, cw, W, eps, scale, rl)
    else:
        return fnn_ce_hard_rows_f64(z, g, 0, n, C, labels, sw, cw, W, eps, scale, rl)


cdef double _ce_hard_mv(const floating[:, ::1] z, const intp[::1] labels,
                        const floating[::1] sw, const floating[::1] cw, double eps, double scale, floating[:, ::1] grad,
                        floating[::1] row_loss):
    cdef intp n = z.shape[0], C = z.shape[1], c
    cdef const floating *swp = NULL
    cdef const floating *cwp = NULL
    cdef floating *gp = NULL
    cdef floating *rlp = NULL
    cdef double W = <double>C, total
    if n == 0 or C == 0:
        return 0.0
    if sw is not None:
        swp = &sw[0]
    if cw is not None:
        cwp = &cw[0]
        W = 0.0
        for c in range(C):
            W += cwp[c]
    if grad is not None:
        gp = &grad[0, 0]
    if row_loss is not None:
        rlp = &row_loss[0]
    with nogil:
        total = _ce_hard_rows(&z[0, 0], &labels[0], swp, cwp, W, eps, scale, gp, rlp, n, C)
    return total


def ce_hard(z, labels, sw, cw, double smoothing, double scale, grad, row_loss):
    """Softmax cross-entropy with class indices; returns the unscaled total (BACKENDS.md)."""
    if _is_f32(z):
        return _ce_hard_mv[float](z, labels, sw, cw, smoothing, scale, grad, row_loss)
    return _ce_hard_mv[double](z, labels, sw, cw, smoothing, scale, grad, row_loss)


# --------------------------------------------------------------------------------------------
# row losses over a second (n, C) array: 0 ce_soft, 1 bce, 2.. sqerr (act = kind - 2)

cdef double _pair_rows(const floating *z, const floating *t, const floating *sw,
                       const floating *cw, double eps,
                       double scale, floating *g, floating *rl, intp n, intp C,
                       int kind) noexcept nogil:
    cdef intp i
    cdef double total = 0.0, L, si
    cdef int nt = _threads(n * C)
    if nt > 1:
        for i in prange(n, schedule='static', num_threads=nt):
            si = 1.0 if sw == NULL else <double>sw[i]
            L = _pair_row(z + i * C, t + i * C, NULL if g == NULL else g + i * C, C, cw, eps,
                          si, scale, kind)
            if rl != NULL:
                rl[i] = <floating>L
            total += L
    else:
        for i in range(n):
            si = 1.0 if sw == NULL else <double>sw[i]
            L = _pair_row(z + i * C, t + i * C, NULL if g == NULL else g + i * C, C, cw, eps,
                          si, scale, kind)
            if rl != NULL:
                rl[i] = <floating>L
            total += L
    return total


cdef inline double _pair_row(const floating *z, const floating *t, floating *g, intp C,
                             const floating *cw,
                             double eps, double si, double scale, int kind) noexcept nogil:
    if floating is float:
        if kind == 0:
            return fnn_ce_soft_row_f32(z, t, g, C, cw, eps, si, scale)
        if kind == 1:
            return fnn_bce_row_f32(z, t, g, C, si, scale)
        return fnn_sqerr_row_f32(z, t, g, C, kind - 2, si, scale)
    else:
        if kind == 0:
            return fnn_ce_soft_row_f64(z, t, g, C, cw, eps, si, scale)
        if kind == 1:
            return fnn_bce_row_f64(z, t, g, C, si, scale)
        return fnn_sqerr_row_f64(z, t, g, C, kind - 2, si, scale)


cdef double _pair_mv(const floating[:, ::1] z, const floating[:, ::1] t,
                     const floating[::1] sw, const floating[::1] cw,
                     double eps, double scale, floating[:, ::1] grad, floating[::1] row_loss,
                     int kind):
    cdef intp n = z.shape[0], C = z.shape[1], i
    cdef const floating *swp = NULL
    cdef const floating *cwp = NULL
    cdef floating *gp = NULL
    cdef floating *rlp = NULL
    cdef double total
    if n == 0:
        return 0.0
    if C == 0:
        if row_loss is not None:
            for i in range(n):
                row_loss[i] = 0
        return 0.0
    if sw is not None:
        swp = &sw[0]
    if cw is not None:
        cwp = &cw[0]
    if grad is not None:
        gp = &grad[0, 0]
    if row_loss is not None:
        rlp = &row_loss[0]
    with nogil:
        total = _pair_rows(&z[0, 0], &t[0, 0], swp, cwp, eps, scale, gp, rlp, n, C, kind)
    return total


def ce_soft(z, target, sw, cw, double smoothing, double scale, grad, row_loss):
    """Softmax cross-entropy with target probabilities (n, C); returns the unscaled total."""
    if _is_f32(z):
        return _pair_mv[float](z, target, sw, cw, smoothing, scale, grad, row_loss, 0)
    return _pair_mv[double](z, target, sw, cw, smoothing, scale, grad, row_loss, 0)


def bce(z, y, sw, double scale, grad, row_loss):
    """Binary cross-entropy on logits (n, k); returns the unscaled total."""
    if _is_f32(z):
        return _pair_mv[float](z, y, sw, None, 0.0, scale, grad, row_loss, 1)
    return _pair_mv[double](z, y, sw, None, 0.0, scale, grad, row_loss, 1)


_SQERR_ACT = {"identity": 0, "logistic": 1, "softmax": 2}


def sqerr(z, y, act, sw, double scale, grad, row_loss):
    """Quadratic cost of act(z) against y (n, k); returns the unscaled total."""
    cdef int kind = 2 + _SQERR_ACT[act]
    if _is_f32(z):
        return _pair_mv[float](z, y, sw, None, 0.0, scale, grad, row_loss, kind)
    return _pair_mv[double](z, y, sw, None, 0.0, scale, grad, row_loss, kind)


# --------------------------------------------------------------------------------------------
# 1-D elementwise kernels, split into one contiguous chunk per thread when large

_ACT = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "softplus": 5,
        "elu": 6}


# op: 0 activation, 1 activation_grad, 2 sgd, 3 adam, 4 adagrad, 5 rmsprop, 6 adadelta
cdef void _elementwise(int op, int act, floating *a0, floating *a1, floating *a2,
                       floating *a3, floating *a4, intp n, double *h) noexcept nogil:
    cdef int nt = _threads(n), k
    cdef intp lo, hi, step
    if nt > 1:
        step = (n + nt - 1) // nt
        step = (step + 15) // 16 * 16   # whole vectors per chunk
        for k in prange(nt, schedule='static', num_threads=nt):
            lo = k * step
            hi = lo + step
            if hi > n:
                hi = n
            _elementwise_range(op, act, a0, a1, a2, a3, a4, lo, hi, h)
    else:
        _elementwise_range(op, act, a0, a1, a2, a3, a4, 0, n, h)


cdef inline void _elementwise_range(int op, int act, floating *a0, floating *a1, floating *a2,
                                    floating *a3, floating *a4, intp lo, intp hi,
                                    double *h) noexcept nogil:
    cdef intp m = hi - lo
    if m <= 0:
        return
    if floating is float:
        if op == 0:
            fnn_activation_f32(act, a0 + lo, a1 + lo, m)
        elif op == 1:
            fnn_activation_grad_f32(act, a0 + lo, a1 + lo, a2 + lo, m)
        elif op == 2:
            fnn_sgd_f32(a0 + lo, a1 + lo, a2 + lo, m, <float>h[0], <float>h[1], <int>h[2],
                        <float>h[3])
        elif op == 3:
            fnn_adam_f32(a0 + lo, a1 + lo, a2 + lo, a3 + lo, m, <float>h[0], h[1], h[2],
                         <float>h[3], <float>h[4])
        elif op == 4:
            fnn_adagrad_f32(a0 + lo, a1 + lo, a2 + lo, m, <float>h[0], <float>h[1], <float>h[2])
        elif op == 5:
            fnn_rmsprop_f32(a0 + lo, a1 + lo, a2 + lo, m, <float>h[0], h[1], <float>h[2],
                            <float>h[3])
        else:
            fnn_adadelta_f32(a0 + lo, a1 + lo, a2 + lo, a3 + lo, m, <float>h[0], h[1],
                             <float>h[2], <float>h[3])
    else:
        if op == 0:
            fnn_activation_f64(act, a0 + lo, a1 + lo, m)
        elif op == 1:
            fnn_activation_grad_f64(act, a0 + lo, a1 + lo, a2 + lo, m)
        elif op == 2:
            fnn_sgd_f64(a0 + lo, a1 + lo, a2 + lo, m, h[0], h[1], <int>h[2], h[3])
        elif op == 3:
            fnn_adam_f64(a0 + lo, a1 + lo, a2 + lo, a3 + lo, m, h[0], h[1], h[2], h[3], h[4])
        elif op == 4:
            fnn_adagrad_f64(a0 + lo, a1 + lo, a2 + lo, m, h[0], h[1], h[2])
        elif op == 5:
            fnn_rmsprop_f64(a0 + lo, a1 + lo, a2 + lo, m, h[0], h[1], h[2], h[3])
        else:
            fnn_adadelta_f64(a0 + lo, a1 + lo, a2 + lo, a3 + lo, m, h[0], h[1], h[2], h[3])


cdef void _elementwise_mv(int op, int act, const floating[::1] a0, const floating[::1] a1,
                          const floating[::1] a2, const floating[::1] a3,
                          const floating[::1] a4, double *h) noexcept:
    # const views so that read-only inputs are accepted; the arrays written (out, parameters,
    # state) were checked writeable by the caller, so casting the const away is sound
    cdef intp n = a0.shape[0]
    cdef floating *p1 = NULL
    cdef floating *p2 = NULL
    cdef floating *p3 = NULL
    cdef floating *p4 = NULL
    if n == 0:
        return
    if a1 is not None:
        p1 = <floating *>&a1[0]
    if a2 is not None:
        p2 = <floating *>&a2[0]
    if a3 is not None:
        p3 = <floating *>&a3[0]
    if a4 is not None:
        p4 = <floating *>&a4[0]
    with nogil:
        _elementwise(op, act, <floating *>&a0[0], p1, p2, p3, p4, n, h)


cdef void _dispatch(int op, int act, a0, a1, a2, a3, a4, double *h):
    if _is_f32(a0):
        _elementwise_mv[float](op, act, a0, a1, a2, a3, a4, h)
    else:
        _elementwise_mv[double](op, act, a0, a1, a2, a3, a4, h)


def activation(name, z, out):
    """``out = f(z)`` for 1-D ``z`` (``out`` may be ``z``)."""
    cdef double h[1]
    _dispatch(0, _ACT[name], z, out, None, None, None, h)


def activation_grad(name, a, upstream, out):
    """``out = upstream * f'`` with ``f'`` from the output ``a`` (``out`` may be ``upstream``)."""
    cdef double h[1]
    _dispatch(1, _ACT[name], a, upstream, out, None, None, h)


def sgd(p, g, v, double lr, double momentum, nesterov, double l2):
    """SGD with (Nesterov) momentum, in place (scikit-learn's SGDOptimizer)."""
    cdef double h[4]
    h[0] = lr
    h[1] = momentum
    h[2] = 1.0 if nesterov else 0.0
    h[3] = l2
    _dispatch(2, 0, p, g, v, None, None, h)


def adam(p, g, m, v, double lr_t, double beta1, double beta2, double eps, double l2):
    """Adam step with the bias-corrected rate ``lr_t``, in place."""
    cdef double h[5]
    h[0] = lr_t
    h[1] = beta1
    h[2] = beta2
    h[3] = eps
    h[4] = l2
    _dispatch(3, 0, p, g, m, v, None, h)


def adagrad(p, g, acc, double lr, double eps, double l2):
    """AdaGrad step, in place."""
    cdef double h[3]
    h[0] = lr
    h[1] = eps
    h[2] = l2
    _dispatch(4, 0, p, g, acc, None, None, h)


def rmsprop(p, g, sq, double lr, double rho, double eps, double l2):
    """RMSProp step, in place."""
    cdef double h[4]
    h[0] = lr
    h[1] = rho
    h[2] = eps
    h[3] = l2
    _dispatch(5, 0, p, g, sq, None, None, h)


def adadelta(p, g, acc_g, acc_dx, double lr, double rho, double eps, double l2):
    """AdaDelta step, in place."""
    cdef double h[4]
    h[0] = lr
    h[1] = rho
    h[2] = eps
    h[3] = l2
    _dispatch(6, 0, p, g, acc_g, acc_dx, None, h)


# --------------------------------------------------------------------------------------------
# test hooks: force an ISA, and the vectorised exp compiled for one named ISA

def _set_isa(int level):
    """Run this module's softmax family and hard-label cross-entropy with the code built for
    ``level`` (0 default/SSE2, 1 x86-64-v3, 2 x86-64-v4) from now on, for tests. Returns the
    previous level, or -1 (nothing changed) when this CPU or build cannot run ``level``."""
    return fnn_set_isa(level)


cdef int _unary_array(x, out, bint sqrt_nr, int isa):
    """``out = f(x)`` for the test hooks below: fastnn's exp built for ``isa``, or the AVX-512
    Adam's FMA-unit square root; the C function's return code (0: done)."""
    cdef const float[::1] xf
    cdef const double[::1] xd
    cdef float[::1] of
    cdef double[::1] od
    if x.shape[0] == 0:
        return 0
    if _is_f32(x):
        xf = x
        of = out
        if sqrt_nr:
            return fnn_sqrt_nr_array_f32(&xf[0], &of[0], xf.shape[0])
        return fnn_exp_array_f32(&xf[0], &of[0], xf.shape[0], isa)
    xd = x
    od = out
    if sqrt_nr:
        return fnn_sqrt_nr_array_f64(&xd[0], &od[0], xd.shape[0])
    return fnn_exp_array_f64(&xd[0], &od[0], xd.shape[0], isa)


def _exp(x, out, int isa=0):
    """``out = exp(x)`` with fastnn's polynomial exp built for ``isa`` (0 default/SSE2,
    1 x86-64-v3, 2 x86-64-v4, 3 the explicit AVX-512 exp of the x86-64-v4 row ranges and of
    float's short rows, 4 (double only) the checked AVX-512 exp of the double register rows).
    Returns False when that variant is unavailable here."""
    return _unary_array(x, out, False, isa) == 0


def _sqrt_nr(x, out):
    """``out = sqrt(x)`` with the square root that fastnn's AVX-512 Adam computes on the FMA
    units (every vector), for tests. Returns False (``out`` untouched) without AVX-512."""
    return _unary_array(x, out, True, 0) == 0
