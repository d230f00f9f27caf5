# cython: language_level=3
"""The native training loop of the ``cython`` backend: one whole epoch per call, without the GIL.

See the "Training epoch" section of fastnn_core/BACKENDS.md for the contract and
``fastnn/_native_loop.py`` for the adapter that packs the arguments. Every batch runs

    gather rows -> forward GEMMs (+ bias, fused activation) -> fused loss + gradient rows
    -> backward GEMMs + fused activation backward -> fused optimizer update of every parameter

on the workspace arrays it is given (no allocation per batch). Matrix products go through
``scipy.linalg.cython_blas`` (column-major: row-major ``C = A @ B`` is
``gemm("N", "N", n_cols(B), n_rows(A), K, B, ldb, A, lda, C, ldc)``); at batch size 1 through
the hand-written vector kernels of ``_train_small.h``, which beat a BLAS call at these sizes.
The loss, activation and optimizer kernels are the per-row C functions of ``fastnn_simd.h``
that the ``cython`` backend's kernels use, so every step is the reference loop's arithmetic.

Threads, data-parallel batches: with ``nt >= 2`` OpenMP threads (``omp_get_max_threads()``,
capped by the gradient buffers ``grads_extra`` the adapter passed) a batch of at least
``parallel_min_rows()`` rows splits its rows over the threads in one ``parallel`` region: each
thread gathers, runs forward, loss rows and backward on its rows (own rows of the workspaces,
by chunks when its share exceeds ``CHUNK_ROWS``) with one-thread BLAS calls, into its own
gradient buffers (``_rows_thread``); after the loss check on the calling thread, a second region
reduces the partial sums (thread order) and runs the optimizer, each thread on its range of
every parameter (``_update_thread``). The adapter limits BLAS to one thread around such an
epoch, so the OpenMP team is the only pool (an OpenMP region between multi-threaded BLAS calls
was measured 10x slower: each pool's idle workers spin against the other's).

Batch size 1 with ``nt >= 2`` on a network of at least ``parallel_min_params()`` parameters:
the network split in two parts by rows of every weight matrix, each sample's forward product
and fused updates run by two threads (one part each, barriers between layers) or, when the
threads keep waiting for each other's turn on a busy machine, by the calling thread, with the
same results (``_parts_epoch``, ``_b1par_block``). Batches of 2 .. ``parallel_min_rows() - 1``
rows on a network of at least ``smallbatch_min_bytes()`` bytes of parameters: the same two
parts, blocks and back-off, with one-thread BLAS products on each part's rows (``_sbpar_block``).

Other batches (``m == 1`` otherwise, fewer rows, one thread): BLAS uses its own pool
(threadpoolctl limits it); the elementwise and row kernels run in an OpenMP ``prange`` only
when an array has ``PARALLEL_MIN`` elements or more (never around a BLAS call), with
``omp_get_max_threads()`` threads. See BACKENDS.md "Training epoch".
"""

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from fastnn_core._cython.fastnn_simd cimport *
from libc.math cimport isfinite, pow, sqrt
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

cnp.import_array()

cdef extern from "_train_par.h" nogil:
    int fnn_par_num_threads()
    void fnn_train_addto_f32(float *dst, const float *src, intp n)
    void fnn_train_addto_f64(double *dst, const double *src, intp n)

cdef extern from "_train_b1par.h" nogil:
    ctypedef struct fnn_b1par_bar:
        int n
        long long slept_ns
    int FNN_B1PAR_SPIN
    int FNN_SBPAR_SPIN
    void fnn_b1par_start(fnn_b1par_bar *b, int tid, int nth, int spin)
    void fnn_b1par_wait(fnn_b1par_bar *b)
    long long fnn_b1par_now_ns()
    void fnn_b1par_sum_f32(float *z, const float *part, intp stride, int nparts, const float *b,
                           intp m, intp ld, intp j0, intp j1)
    void fnn_b1par_sum_f64(double *z, const double *part, intp stride, int nparts,
                           const double *b, intp m, intp ld, intp j0, intp j1)

cdef extern from "_train_small.h" nogil:
    void fnn_train_vecmat_f32(const float *a, const float *W, const float *b, float *z,
                              intp K, intp N)
    void fnn_train_vecmat_f64(const double *a, const double *W, const double *b, double *z,
                              intp K, intp N)
    double fnn_train_sumsq_f32(const float *p, intp n)
    double fnn_train_sumsq_f64(const double *p, intp n)
    void fnn_train_colsum_f32(const float *D, intp ld, float *gb, intp m, intp N,
                              int accumulate)
    void fnn_train_colsum_f64(const double *D, intp ld, double *gb, intp m, intp N,
                              int accumulate)
    void fnn_train_addbias_f32(float *z, const float *b, intp m, intp N)
    void fnn_train_addbias_f64(double *z, const double *b, intp m, intp N)
    double fnn_train_r1_sgd_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr, float mom)
    double fnn_train_r1_nesterov_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr, float mom)
    double fnn_train_r1_adam_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr_t, double b1, double b2,
        float eps)
    double fnn_train_r1_adagrad_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr, float eps)
    double fnn_train_r1_rmsprop_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr, double rho, float eps)
    double fnn_train_r1_adadelta_f32(float *p, const float *a, const float *d, float *back,
        float *s0, float *s1, intp K, intp N, float l2, float lr, double rho, float eps)
    double fnn_train_r1_sgd_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr, double mom)
    double fnn_train_r1_nesterov_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr, double mom)
    double fnn_train_r1_adam_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr_t, double b1, double b2,
        double eps)
    double fnn_train_r1_adagrad_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr, double eps)
    double fnn_train_r1_rmsprop_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr, double rho, double eps)
    double fnn_train_r1_adadelta_f64(double *p, const double *a, const double *d, double *back,
        double *s0, double *s1, intp K, intp N, double l2, double lr, double rho, double eps)

# Codes shared with fastnn/_native_loop.py (and the numba loop).
# loss kinds: 0 softmax + cross-entropy on class indices (ce_hard), 1 logistic + binary
# cross-entropy (bce), 2 squared error on logistic outputs, 3 squared error on softmax outputs
# optimizers: 0 sgd, 1 adam, 2 adagrad, 3 rmsprop, 4 adadelta
# hyper: [lr (adam: learning_rate_init), momentum | beta_1 | rho, nesterov | beta_2, epsilon]

#: Arrays with fewer elements run their elementwise / row kernels on one thread.
cdef enum:
    PARALLEL_MIN = 131072
PARALLEL_MIN_ELEMENTS = PARALLEL_MIN

#: Batches of more rows than this run forward and backward by chunks of this many rows
#: (256-1024 measured alike on the 60000-row benchmark set).
cdef enum:
    CHUNK_ROWS = 512
BATCH_CHUNK_ROWS = CHUNK_ROWS


#: Batches of at least this many rows run data-parallel when the loop has 2 or more OpenMP
#: threads (and the adapter passed gradient buffers for them); each thread takes at least
#: half of this many rows. Settable for tests (set_parallel_min_rows). Measured on 2 cores
#: (60000 x 100, hidden 100 and 256,128, quiet machine): batches of 64 rows and more faster
#: than the one-thread loop, batch 32 slower at hidden 100 (2.5x in float32: two fork/join
#: points per batch of a few microseconds of work).
cdef intp _par_min_rows = 64
#: doubles between the per-thread partial sums (one 64-byte line each: no false sharing)
cdef enum:
    PAD = 8


def parallel_min_rows():
    """Batches of this many rows or more run data-parallel (2+ OpenMP threads)."""
    return _par_min_rows


def set_parallel_min_rows(Py_ssize_t rows):
    """Set the data-parallel threshold (tests use a small one on tiny problems); returns the
    previous value."""
    global _par_min_rows
    cdef intp old = _par_min_rows
    if rows < 2:
        raise ValueError("the data-parallel threshold must be at least 2 rows")
    _par_min_rows = rows
    return old


#: Batch size 1 runs each sample on 2 OpenMP threads (each thread the same half of the rows
#: of every weight matrix, see _b1par_block) when the network has at least this many
#: parameters and the loop has 2 or more threads. Settable for tests (set_parallel_min_params).
#: Measured on 2 cores (60000 x 100, 10 classes, load 1.2-1.7): hidden 100 (11110 parameters)
#: epochs 1.36-2.0x faster with Adam, 1.04-1.08x with sgd; (256, 128) 1.27-1.76x.
cdef intp _b1par_min_params = 10000
#: B1PAR_PARTS: parts of a network at batch size 1, run by 2 threads or 1 (the same results):
#: measured on 2 cores only; a sample is a few to some tens of microseconds of work, more
#: threads would mostly add barrier time. B1PAR_BLOCK: samples per block; a block on 2 threads
#: whose threads slept in the barrier more than 1 / B1PAR_SLEEPY of its time sends the next 2,
#: 4, ... B1PAR_BACKOFF blocks to 1 thread (see _parts_epoch)
cdef enum:
    B1PAR_PARTS = 2
    B1PAR_BLOCK = 256
    B1PAR_SLEEPY = 8
    B1PAR_BACKOFF = 256
#: blocks still to run on 1 thread, and the length of the last such run: carried from epoch to
#: epoch (a busy machine stays busy for a while; the results do not depend on them)
cdef int _b1par_skip = 0
cdef int _b1par_backoff = 1
#: 0: blocks on 2 threads or 1 by the time slept in the barrier; 1: always 2 threads; 2: always 1
#: (tests, benchmarks)
cdef int _b1par_mode = 0
#: batch-1 epochs run by _parts_epoch in this process (a diagnostic for tests and benchmarks)
cdef long long _b1par_epochs = 0


def set_b1par_mode(int mode):
    """How the blocks of a two-part batch-1 epoch run: 0 on 2 threads or 1, by how long the
    threads slept waiting for each other (default); 1 always on 2 threads; 2 always on the
    calling thread. Returns the previous mode (for tests and benchmarks)."""
    global _b1par_mode
    cdef int old = _b1par_mode
    if mode not in (0, 1, 2):
        raise ValueError("the batch-1 mode is 0 (automatic), 1 (2 threads) or 2 (1 thread)")
    _b1par_mode = mode
    return old


def b1par_epochs():
    """How many batch-size-1 epochs this process ran split in two parts (two threads per
    sample, or one, see set_b1par_mode)."""
    return _b1par_epochs


#: Batches of 2 .. parallel_min_rows() - 1 rows run split in two parts, like batch size 1
#: (_sbpar_block; two threads or one by the same blocks and back-off), when the network's
#: parameters take at least this many bytes (and the loop has 2+ threads). Settable for tests
#: (set_smallbatch_min_bytes). Measured on 2 cores (60000 x 100, 10 classes, batches of 8-48,
#: Adam and sgd, native_parallel_ab.py): hidden (256, 128) (60042 parameters) 1.3-1.8x faster
#: than the one-thread loop in both dtypes; hidden 100 (11110) 1.15-1.25x faster in float64
#: (89 KB) up to batch 32, but 0-20% slower in float32 (44 KB): splitting each product in two
#: costs 10-25% on one thread and the barriers some microseconds per batch, which a batch of
#: 10-30 us does not repay. The time of a batch grows with the parameters and the item size
#: alike, hence a threshold in bytes.
cdef intp _sbpar_min_bytes = 65536
#: small-batch epochs run by _parts_epoch in this process (a diagnostic for tests, benchmarks)
cdef long long _sbpar_epochs = 0


def smallbatch_par_epochs():
    """How many epochs of 2 .. parallel_min_rows() - 1 rows per batch this process ran split in
    two parts (two threads per batch, or one, see set_b1par_mode)."""
    return _sbpar_epochs


def smallbatch_min_bytes():
    """Batches of 2 .. parallel_min_rows() - 1 rows run split in two parts (2+ OpenMP threads)
    when the network's parameters take at least this many bytes."""
    return _sbpar_min_bytes


def set_smallbatch_min_bytes(Py_ssize_t nbytes):
    """Set the small-batch two-part threshold (bytes of parameters; tests use 0 on tiny
    networks); returns the previous value."""
    global _sbpar_min_bytes
    cdef intp old = _sbpar_min_bytes
    if nbytes < 0:
        raise ValueError("the small-batch parallel threshold must be at least 0 bytes")
    _sbpar_min_bytes = nbytes
    return old


def two_part_epoch(Py_ssize_t batch_size, Py_ssize_t n_samples, units, Py_ssize_t itemsize):
    """True when an epoch of ``n_samples`` rows in batches of ``batch_size`` on a network of
    layer widths ``units`` and parameters of ``itemsize`` bytes runs split in two parts (batch
    size 1 or small batches) with the calling thread's OpenMP limit: its BLAS calls must then
    run on one thread."""
    cdef intp params = 0
    cdef Py_ssize_t l
    for l in range(len(units) - 1):
        params += (units[l] + 1) * units[l + 1]
    return bool(_two_parts(batch_size, n_samples, <int>(len(units) - 1), params, itemsize,
                           fnn_max_threads()))


def parallel_min_params():
    """Batch size 1 runs two threads per sample for networks of this many parameters or more
    (2+ OpenMP threads)."""
    return _b1par_min_params


def set_parallel_min_params(Py_ssize_t params):
    """Set the batch-1 two-thread threshold (tests use a small one on tiny networks); returns
    the previous value."""
    global _b1par_min_params
    cdef intp old = _b1par_min_params
    if params < 0:
        raise ValueError("the batch-1 parallel threshold must be at least 0 parameters")
    _b1par_min_params = params
    return old


cdef struct Layout:
    int L               # weight layers
    intp *units         # L + 1
    void **P            # 2L parameters: coefs then intercepts
    void **G            # their gradients
    void **S0           # optimizer state 0 (or NULL)
    void **S1           # optimizer state 1 (or NULL)
    intp *size          # 2L element counts
    void **A            # L activations (max_rows, units[l+1])
    void **D            # L deltas


cdef enum:
    CN = 78  # 'N'
    CT = 84  # 'T'


cdef inline void _mm(char ta, char tb, int m, int n, int k, floating *A, int lda,
                     floating *B, int ldb, floating *C, int ldc, floating beta) noexcept nogil:
    """Row-major ``C (m, n) = op(A) @ op(B) + beta C`` through column-major BLAS."""
    cdef floating one = 1.0
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &one, B, &ldb, A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &one, B, &ldb, A, &lda, &beta, C, &ldc)


cdef inline void _act(int act, floating *z, intp n, int nt) noexcept nogil:
    cdef intp lo, hi, step
    cdef int c
    if nt > 1 and n >= PARALLEL_MIN:
        step = ((n + nt - 1) // nt + 15) // 16 * 16
        for c in prange(nt, schedule='static', num_threads=nt):
            lo = c * step
            hi = lo + step
            if hi > n:
                hi = n
            if hi > lo:
                if floating is float:
                    fnn_activation_f32(act, z + lo, z + lo, hi - lo)
                else:
                    fnn_activation_f64(act, z + lo, z + lo, hi - lo)
    else:
        if floating is float:
            fnn_activation_f32(act, z, z, n)
        else:
            fnn_activation_f64(act, z, z, n)


cdef inline void _act_grad(int act, floating *a, floating *d, intp n, int nt) noexcept nogil:
    cdef intp lo, hi, step
    cdef int c
    if nt > 1 and n >= PARALLEL_MIN:
        step = ((n + nt - 1) // nt + 15) // 16 * 16
        for c in prange(nt, schedule='static', num_threads=nt):
            lo = c * step
            hi = lo + step
            if hi > n:
                hi = n
            if hi > lo:
                if floating is float:
                    fnn_activation_grad_f32(act, a + lo, d + lo, d + lo, hi - lo)
                else:
                    fnn_activation_grad_f64(act, a + lo, d + lo, d + lo, hi - lo)
    else:
        if floating is float:
            fnn_activation_grad_f32(act, a, d, d, n)
        else:
            fnn_activation_grad_f64(act, a, d, d, n)


cdef inline double _loss_row(int kind, floating *z, void *tgt, intp i, floating *g, intp C,
                             double si, double scale) noexcept nogil:
    if floating is float:
        if kind == 1:
            return fnn_bce_row_f32(z, <float *>tgt + i * C, g, C, si, scale)
        return fnn_sqerr_row_f32(z, <float *>tgt + i * C, g, C, kind - 1, si, scale)
    else:
        if kind == 1:
            return fnn_bce_row_f64(z, <double *>tgt + i * C, g, C, si, scale)
        return fnn_sqerr_row_f64(z, <double *>tgt + i * C, g, C, kind - 1, si, scale)


cdef double _loss_rows(int kind, floating *z, void *tgt, floating *swb, floating *g, intp m,
                       intp C, double scale, int nt) noexcept nogil:
    """``sum_i s_i L_i`` of the batch; ``scale * dL_i/dz_i`` into ``g``."""
    cdef double total = 0.0, si
    cdef intp i, lo, hi, step
    cdef int c
    if kind == 0:  # softmax cross-entropy on class indices: the blocked row kernel
        if nt > 1 and m * C >= PARALLEL_MIN:
            step = (m + nt - 1) // nt
            for c in prange(nt, schedule='static', num_threads=nt):
                lo = c * step
                hi = lo + step
                if hi > m:
                    hi = m
                if lo < hi:
                    if floating is float:
                        total += fnn_ce_hard_rows_f32(z, g, lo, hi, C, <intp *>tgt, swb, NULL,
                                                      <double>C, 0.0, scale, NULL)
                    else:
                        total += fnn_ce_hard_rows_f64(z, g, lo, hi, C, <intp *>tgt, swb, NULL,
                                                      <double>C, 0.0, scale, NULL)
            return total
        if floating is float:
            return fnn_ce_hard_rows_f32(z, g, 0, m, C, <intp *>tgt, swb, NULL, <double>C, 0.0,
                                        scale, NULL)
        else:
            return fnn_ce_hard_rows_f64(z, g, 0, m, C, <intp *>tgt, swb, NULL, <double>C, 0.0,
                                        scale, NULL)
    if nt > 1 and m * C >= PARALLEL_MIN:
        for i in prange(m, schedule='static', num_threads=nt):
            si = 1.0 if swb == NULL else <double>swb[i]
            total += _loss_row(kind, z + i * C, tgt, i, g + i * C, C, si, scale)
    else:
        for i in range(m):
            si = 1.0 if swb == NULL else <double>swb[i]
            total += _loss_row(kind, z + i * C, tgt, i, g + i * C, C, si, scale)
    return total


cdef inline void _opt_range(int kind, floating *p, floating *g, floating *s0, floating *s1,
                            intp n, double *h, double lr, double l2) noexcept nogil:
    if n <= 0:
        return
    if floating is float:
        if kind == 0:
            fnn_sgd_f32(p, g, s0, n, <float>lr, <float>h[1], <int>h[2], <float>l2)
        elif kind == 1:
            fnn_adam_f32(p, g, s0, s1, n, <float>lr, h[1], h[2], <float>h[3], <float>l2)
        elif kind == 2:
            fnn_adagrad_f32(p, g, s0, n, <float>lr, <float>h[3], <float>l2)
        elif kind == 3:
            fnn_rmsprop_f32(p, g, s0, n, <float>lr, h[1], <float>h[3], <float>l2)
        else:
            fnn_adadelta_f32(p, g, s0, s1, n, <float>lr, h[1], <float>h[3], <float>l2)
    else:
        if kind == 0:
            fnn_sgd_f64(p, g, s0, n, lr, h[1], <int>h[2], l2)
        elif kind == 1:
            fnn_adam_f64(p, g, s0, s1, n, lr, h[1], h[2], h[3], l2)
        elif kind == 2:
            fnn_adagrad_f64(p, g, s0, n, lr, h[3], l2)
        elif kind == 3:
            fnn_rmsprop_f64(p, g, s0, n, lr, h[1], h[3], l2)
        else:
            fnn_adadelta_f64(p, g, s0, s1, n, lr, h[1], h[3], l2)


cdef void _opt_step(int kind, floating *p, floating *g, floating *s0, floating *s1, intp n,
                    double *h, double lr, double l2, int nt) noexcept nogil:
    cdef intp lo, hi, step
    cdef int c
    if nt > 1 and n >= PARALLEL_MIN:
        step = ((n + nt - 1) // nt + 15) // 16 * 16
        for c in prange(nt, schedule='static', num_threads=nt):
            lo = c * step
            hi = lo + step
            if hi > n:
                hi = n
            _opt_range(kind, p + lo, g + lo, NULL if s0 == NULL else s0 + lo,
                       NULL if s1 == NULL else s1 + lo, hi - lo, h, lr, l2)
    else:
        _opt_range(kind, p, g, s0, s1, n, h, lr, l2)


cdef inline double _rank1(int kind, floating *p, floating *a, floating *d, floating *back,
                          floating *s0, floating *s1, intp K, intp N, double *h, double lr,
                          double l2) noexcept nogil:
    """Batch size 1: the fused update of one parameter with the gradient ``outer(a, d)``
    (``a`` NULL: a bias, gradient ``d``), writing ``p_old @ d`` to ``back`` unless NULL;
    returns the sum of squares of the new values."""
    if floating is float:
        if kind == 0:
            if h[2] != 0.0:
                return fnn_train_r1_nesterov_f32(p, a, d, back, s0, s1, K, N, <float>l2,
                                                 <float>lr, <float>h[1])
            else:
                return fnn_train_r1_sgd_f32(p, a, d, back, s0, s1, K, N, <float>l2, <float>lr,
                                            <float>h[1])
        elif kind == 1:
            return fnn_train_r1_adam_f32(p, a, d, back, s0, s1, K, N, <float>l2, <float>lr,
                                         h[1], h[2], <float>h[3])
        elif kind == 2:
            return fnn_train_r1_adagrad_f32(p, a, d, back, s0, s1, K, N, <float>l2, <float>lr,
                                            <float>h[3])
        elif kind == 3:
            return fnn_train_r1_rmsprop_f32(p, a, d, back, s0, s1, K, N, <float>l2,
                                            <float>lr, h[1], <float>h[3])
        else:
            return fnn_train_r1_adadelta_f32(p, a, d, back, s0, s1, K, N, <float>l2,
                                             <float>lr, h[1], <float>h[3])
    else:
        if kind == 0:
            if h[2] != 0.0:
                return fnn_train_r1_nesterov_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[1])
            else:
                return fnn_train_r1_sgd_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[1])
        elif kind == 1:
            return fnn_train_r1_adam_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[1], h[2], h[3])
        elif kind == 2:
            return fnn_train_r1_adagrad_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[3])
        elif kind == 3:
            return fnn_train_r1_rmsprop_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[1], h[3])
        else:
            return fnn_train_r1_adadelta_f64(p, a, d, back, s0, s1, K, N, l2, lr, h[1], h[3])


cdef void _forward(Layout *net, floating *xin, intp m, int hidden_act, int nt) noexcept nogil:
    """Forward pass of ``m`` rows into the first ``m`` rows of ``net.A``."""
    cdef int L = net.L, l
    cdef intp K, N
    cdef floating *a_prev = xin
    cdef floating *Z
    for l in range(L):
        K = net.units[l]
        N = net.units[l + 1]
        Z = <floating *>net.A[l]
        if m == 1:
            if floating is float:
                fnn_train_vecmat_f32(a_prev, <float *>net.P[l], <float *>net.P[L + l], Z, K, N)
            else:
                fnn_train_vecmat_f64(a_prev, <double *>net.P[l], <double *>net.P[L + l], Z, K,
                                     N)
        else:
            _mm(CN, CN, <int>m, <int>N, <int>K, a_prev, <int>K, <floating *>net.P[l], <int>N,
                Z, <int>N, 0.0)
            if floating is float:
                fnn_train_addbias_f32(Z, <float *>net.P[L + l], m, N)
            else:
                fnn_train_addbias_f64(Z, <double *>net.P[L + l], m, N)
        if l != L - 1:
            _act(hidden_act, Z, m * N, nt)
        a_prev = Z


cdef void _backward(Layout *net, floating *xin, intp m, int hidden_act, int nt,
                    bint accumulate) noexcept nogil:
    """Backward pass of ``m > 1`` rows from the output deltas in ``net.D[L - 1]``: the
    gradients go to ``net.G`` (added to what is there when ``accumulate``)."""
    cdef int L = net.L, l
    cdef intp K, N
    cdef floating *a_prev
    cdef floating *Dl
    for l in range(L - 1, -1, -1):
        K = net.units[l]
        N = net.units[l + 1]
        Dl = <floating *>net.D[l]
        a_prev = xin if l == 0 else <floating *>net.A[l - 1]
        _mm(CT, CN, <int>K, <int>N, <int>m, a_prev, <int>K, Dl, <int>N, <floating *>net.G[l],
            <int>N, 1.0 if accumulate else 0.0)
        if floating is float:
            fnn_train_colsum_f32(Dl, N, <float *>net.G[L + l], m, N, accumulate)
        else:
            fnn_train_colsum_f64(Dl, N, <double *>net.G[L + l], m, N, accumulate)
        if l > 0:
            _mm(CN, CT, <int>m, <int>K, <int>N, Dl, <int>N, <floating *>net.P[l], <int>N,
                <floating *>net.D[l - 1], <int>K, 0.0)
            _act_grad(hidden_act, a_prev, <floating *>net.D[l - 1], m * K, nt)


cdef double _chunked_pass(Layout *net, floating *xin, intp d, void *tb, intp tsz,
                          floating *swb, intp m, int hidden_act, int loss_kind,
                          double scale) noexcept nogil:
    """Forward, loss and backward of a batch of ``m > CHUNK_ROWS`` rows, ``CHUNK_ROWS`` rows
    at a time through the first rows of the workspaces, so that the activations and deltas
    of a chunk are still in cache when the next step reads them (a full batch of 60000 rows
    would stream every hidden layer through memory several times). The weight gradients sum
    over the chunks (GEMM with beta = 1). Returns ``sum_i s_i L_i`` of the batch.

    Only BLAS uses threads here: the elementwise and row kernels of a chunk run on this
    thread, because OpenMP workers left spinning after a parallel region take the cores the
    BLAS threads of the next small product need (measured: 10x slower epochs on 2 threads)."""
    cdef intp c0 = 0, ch, N = net.units[net.L]
    cdef double total = 0.0
    while c0 < m:
        ch = CHUNK_ROWS if m - c0 > CHUNK_ROWS else m - c0
        _forward(net, xin + c0 * d, ch, hidden_act, 1)
        total += _loss_rows(loss_kind, <floating *>net.A[net.L - 1], <char *>tb + c0 * tsz,
                            NULL if swb == NULL else swb + c0, <floating *>net.D[net.L - 1],
                            ch, N, scale, 1)
        _backward(net, xin + c0 * d, ch, hidden_act, 1, c0 > 0)
        c0 += ch
    return total


cdef void _rows_thread(Layout *net, Layout *tl, floating *X, intp d, void *target,
                       floating *sw, intp *order, floating *xbuf, void *tbuf, floating *swbuf,
                       intp tsz, intp m, int hidden_act, int loss_kind, double scale,
                       double *part, int tid, int nth) noexcept nogil:
    """Data-parallel batch, thread ``tid`` of ``nth``: rows ``[lo, hi)`` of the batch (the batch
    starts at ``X``/``target``/``sw`` when ``order`` is NULL, else at ``order``, gathered into
    rows ``[lo, hi)`` of the gather buffers), forward, loss rows and backward on rows
    ``[lo, ...)`` of the workspaces with one-thread BLAS calls, the weight and bias gradient
    partial sums into ``tl.G`` (this thread's buffers), ``sum_i s_i L_i`` of the rows into
    ``part[tid * PAD]``."""
    cdef int L = net.L, l
    cdef intp lo = m * tid // nth, hi = m * (tid + 1) // nth, mt = hi - lo, r, idx
    cdef floating *xin
    cdef void *tb
    cdef floating *swb
    cdef double total
    for l in range(L):
        tl.A[l] = <floating *>net.A[l] + lo * net.units[l + 1]
        tl.D[l] = <floating *>net.D[l] + lo * net.units[l + 1]
    if order == NULL:
        xin = X + lo * d
        tb = <char *>target + lo * tsz
        swb = NULL if sw == NULL else sw + lo
    else:
        for r in range(lo, hi):
            idx = order[r]
            memcpy(xbuf + r * d, X + idx * d, d * sizeof(floating))
            memcpy(<char *>tbuf + r * tsz, <char *>target + idx * tsz, tsz)
            if sw != NULL:
                swbuf[r] = sw[idx]
        xin = xbuf + lo * d
        tb = <char *>tbuf + lo * tsz
        swb = NULL if sw == NULL else swbuf + lo
    if mt > CHUNK_ROWS:
        total = _chunked_pass(tl, xin, d, tb, tsz, swb, mt, hidden_act, loss_kind, scale)
    else:
        _forward(tl, xin, mt, hidden_act, 1)
        total = _loss_rows(loss_kind, <floating *>tl.A[L - 1], tb, swb,
                           <floating *>tl.D[L - 1], mt, net.units[L], scale, 1)
        _backward(tl, xin, mt, hidden_act, 1, False)
    part[tid * PAD] = total


cdef void _update_thread(floating *dtype_tag, Layout *net, Layout *TL, int nparts, int opt_kind, double *h,
                         double lr, double l2, bint want_l2, double *part, int tid,
                         int nth) noexcept nogil:
    """Data-parallel batch, thread ``tid`` of ``nth``: its range of every parameter (ranges of
    16-element multiples): the gradient partial sums of the ``nparts`` row threads added in
    thread order into ``net.G`` (thread 0's buffers), then the optimizer update; the sum of
    squares of its new weights into ``part[tid * PAD]`` when ``want_l2``. (``dtype_tag``
    only picks the dtype.)"""
    cdef int L = net.L, i, t
    cdef intp n, lo, hi, step
    cdef double l2s = 0.0
    cdef floating *g
    for i in range(2 * L):
        n = net.size[i]
        step = ((n + nth - 1) // nth + 15) // 16 * 16
        lo = tid * step
        hi = lo + step
        if hi > n:
            hi = n
        if hi <= lo:
            continue
        g = <floating *>net.G[i] + lo
        for t in range(1, nparts):
            if floating is float:
                fnn_train_addto_f32(g, <float *>TL[t].G[i] + lo, hi - lo)
            else:
                fnn_train_addto_f64(g, <double *>TL[t].G[i] + lo, hi - lo)
        _opt_range(opt_kind, <floating *>net.P[i] + lo, g,
                   NULL if net.S0[i] == NULL else <floating *>net.S0[i] + lo,
                   NULL if net.S1[i] == NULL else <floating *>net.S1[i] + lo, hi - lo, h, lr,
                   l2 if i < L else 0.0)
        if want_l2 and i < L:
            if floating is float:
                l2s += fnn_train_sumsq_f32(<float *>net.P[i] + lo, hi - lo)
            else:
                l2s += fnn_train_sumsq_f64(<double *>net.P[i] + lo, hi - lo)
    part[tid * PAD] = l2s


cdef inline double _l2_term(floating *dtype_tag, Layout *net, double alpha, int have_next,
                           double l2_next) noexcept nogil:
    """``0.5 alpha sum_l ||W_l||^2`` of the weights before this batch's update, in double: the
    previous batch's fused update already summed them when ``have_next``."""
    cdef double l2sum = 0.0
    cdef int l
    if alpha == 0.0:
        return 0.0
    if have_next:
        l2sum = l2_next
    else:
        for l in range(net.L):
            if floating is float:
                l2sum += fnn_train_sumsq_f32(<float *>net.P[l], net.size[l])
            else:
                l2sum += fnn_train_sumsq_f64(<double *>net.P[l], net.size[l])
    return 0.5 * alpha * l2sum


cdef inline intp _params(Layout *net) noexcept nogil:
    """Parameters of the network (weights and biases)."""
    cdef intp total = 0
    cdef int i
    for i in range(2 * net.L):
        total += net.size[i]
    return total


cdef inline bint _two_parts(intp bs, intp n, int L, intp params, intp itemsize,
                           int nt) noexcept nogil:
    """True when an epoch of ``n`` rows in batches of ``bs`` runs split in two parts
    (``_parts_epoch``): 2+ OpenMP threads, 2+ weight layers, and at batch size 1 at least
    ``parallel_min_params()`` parameters, at 2 .. ``parallel_min_rows() - 1`` rows (``bs``
    capped at ``n``) parameters of at least ``smallbatch_min_bytes()`` bytes."""
    if nt < 2 or L < 2 or n < 2:
        return False
    if bs == 1:
        return params >= _b1par_min_params
    if bs > n:
        bs = n
    return bs < _par_min_rows and params * itemsize >= _sbpar_min_bytes


cdef inline double _adam_rate(double *h, long long t) noexcept nogil:
    """Adam's bias-corrected rate at step ``t`` (C ``pow``, as Python's ``**``)."""
    return h[0] * sqrt(1.0 - pow(h[2], <double>t)) / (1.0 - pow(h[1], <double>t))


cdef inline bint _batch_loss(double *acc, double term, int opt_kind, double *h, long long *t,
                             double *lr) noexcept nogil:
    """Adds a batch's loss term (data loss * S_b + L2 term) to the epoch's ``acc``; False when
    that is no longer finite (training diverged: no update), else the step is taken: Adam
    advances ``t`` and its rate ``lr``."""
    acc[0] += term
    if not isfinite(acc[0]):
        return False
    if opt_kind == 1:
        t[0] += 1
        lr[0] = _adam_rate(h, t[0])
    return True


cdef inline void _b1par_sum(floating *z, floating *part, intp stride, int nparts, floating *b,
                            intp m, intp ld, intp j0, intp j1) noexcept nogil:
    if floating is float:
        fnn_b1par_sum_f32(z, part, stride, nparts, b, m, ld, j0, j1)
    else:
        fnn_b1par_sum_f64(z, part, stride, nparts, b, m, ld, j0, j1)


cdef inline floating *_at(floating *dtype_tag, void *p, intp i) noexcept nogil:
    """``p + i`` as a ``floating *``, NULL when ``p`` is (an optimizer state may be).
    (``dtype_tag`` only picks the dtype.)"""
    return NULL if p == NULL else <floating *>p + i


cdef struct B1Run:
    # the state of a two-part batch-1 epoch carried from one block of samples to the next
    double acc
    double lr
    long long t
    int status
    int have_next


cdef inline void _run_save(B1Run *run, double acc, double lr, long long t, int status,
                           int have_next) noexcept nogil:
    run.acc = acc
    run.lr = lr
    run.t = t
    run.status = status
    run.have_next = have_next


cdef inline bint _parts_loss(int loss_kind, floating *buf, intp pstride, intp *off, int L,
                             int v0, int v1, void *tb, floating *swb, intp m, intp C,
                             double scale, double S, double alpha, int have_next, double *part,
                             double l2_first, int opt_kind, double *h, double *acc,
                             long long *t, double *lr) noexcept nogil:
    """The loss rows and output delta of a two-part batch (every part alike, into its own
    slots of ``buf``), then ``_batch_loss`` with the L2 term of the parameters before this
    batch's update (the parts' sums of squares added in part order, or ``l2_first`` for the
    first batch of the epoch). False when the loss is not finite."""
    cdef double total = 0.0, l2sum = 0.0
    cdef int v, u
    for v in range(v0, v1):
        total = _loss_rows(loss_kind, buf + v * pstride + off[L], tb, swb,
                           buf + v * pstride + off[L + 1], m, C, scale, 1)
    if alpha != 0.0:
        if have_next:
            for u in range(B1PAR_PARTS):
                l2sum = l2sum + part[u * PAD]
        else:
            l2sum = l2_first
    return _batch_loss(acc, total * scale * S + 0.5 * alpha * l2sum, opt_kind, h, t, lr)


cdef inline void _act_cols(int act, floating *z, intp m, intp ld, intp j0,
                          intp j1) noexcept nogil:
    """The activation, in place, on the columns ``[j0, j1)`` of ``m`` rows ``ld`` apart."""
    cdef intp i
    for i in range(m):
        _act(act, z + i * ld + j0, j1 - j0, 1)


cdef void _parts_forward(Layout *net, floating *xin, intp m, bint vec, floating *buf,
                         intp pstride, intp *off, floating *zeros, int hidden_act,
                         fnn_b1par_bar *bar, int v0, int v1, int nth) noexcept nogil:
    """The forward pass of ``m`` rows of a two-part epoch for the parts ``[v0, v1)``: each
    layer's partial product over a part's rows of ``W`` into its slot of ``buf`` (``vec``, batch
    size 1: the vector kernel with the bias ``zeros``, else a one-thread GEMM), a barrier, then
    the partials summed in part order + bias + activation on the part's units (the columns its
    next partial product reads); the output layer summed in full into each part's own ``z``
    slot."""
    cdef int L = net.L, l, v
    cdef intp K, N, k0, k1, j0, j1
    cdef floating *a_prev = xin
    cdef floating *slot
    for l in range(L):
        K = net.units[l]
        N = net.units[l + 1]
        for v in range(v0, v1):
            k0 = K * v // B1PAR_PARTS
            k1 = K * (v + 1) // B1PAR_PARTS
            slot = buf + v * pstride + off[l]
            if vec:
                if floating is float:
                    fnn_train_vecmat_f32(a_prev + k0, <float *>net.P[l] + k0 * N, zeros, slot,
                                         k1 - k0, N)
                else:
                    fnn_train_vecmat_f64(a_prev + k0, <double *>net.P[l] + k0 * N, zeros, slot,
                                         k1 - k0, N)
            elif k1 > k0:
                _mm(CN, CN, <int>m, <int>N, <int>(k1 - k0), a_prev + k0, <int>K,
                    <floating *>net.P[l] + k0 * N, <int>N, slot, <int>N, 0.0)
            else:
                memset(slot, 0, m * N * sizeof(floating))
        if nth > 1:
            fnn_b1par_wait(bar)
        for v in range(v0, v1):
            if l < L - 1:
                j0 = N * v // B1PAR_PARTS
                j1 = N * (v + 1) // B1PAR_PARTS
                _b1par_sum(<floating *>net.A[l], buf + off[l], pstride, B1PAR_PARTS,
                           <floating *>net.P[L + l], m, N, j0, j1)
                _act_cols(hidden_act, <floating *>net.A[l], m, N, j0, j1)
            else:
                _b1par_sum(buf + v * pstride + off[L], buf + off[l], pstride, B1PAR_PARTS,
                           <floating *>net.P[L + l], m, N, 0, N)
        a_prev = <floating *>net.A[l]


cdef void _b1par_block(Layout *net, floating *X, intp d, void *target, intp tsz,
                       floating *sw, intp *order, intp s0, intp s1, int hidden_act,
                       int loss_kind, int opt_kind, double *h, double alpha, double l2_first,
                       floating *buf, intp pstride, intp *off, floating *zeros, double *part,
                       fnn_b1par_bar *bar, B1Run *run, int tid, int nth) noexcept nogil:
    """Batch size 1, samples ``[s0, s1)`` of the epoch (positions in ``order``), the network
    split in ``B1PAR_PARTS`` parts: part ``v`` owns the rows ``[K v / P, K (v + 1) / P)`` of
    every weight matrix (K = units[l]), for the forward product and the update, and the same
    units of each hidden layer's activations, deltas and bias. Thread ``tid`` of ``nth <= P``
    runs the parts ``[tid P / nth, (tid + 1) P / nth)`` (``nth == 1``: every part, one after
    the other, with the very same operations and so the same results as two threads).

    Per sample: forward, each layer's partial product over a part's rows into that part's
    slot of ``buf`` (offsets ``off``, ``pstride`` elements per part), a barrier, then the sum
    of the partials (part order) + bias + activation for the part's units of the next layer
    (the output layer: every unit, into the part's own ``z``); the loss row and the output
    delta, computed for every part alike (so every thread sees the same loss and stops at the
    same sample); backward, the fused rank-1 update of a part's rows of each layer, which
    writes its units of the delta below, and a barrier before the next layer reads the whole
    delta. The output bias is part 0's, updated after the first backward barrier (until then
    other threads may still read it). The sums of squares of a part's new weights go to
    ``part[v * PAD]`` at the end of the sample; every thread adds them in part order for the
    next sample's L2 term. Needs ``L >= 2``: the hazards between samples are covered by the
    barriers of the layers in between. Thread 0 stores the carried state in ``run``."""
    cdef int L = net.L, l, v
    cdef int v0 = tid * B1PAR_PARTS // nth, v1 = (tid + 1) * B1PAR_PARTS // nth
    cdef intp C = net.units[L], s, idx, K, N, k0, k1, j0, j1
    cdef floating *outd
    cdef floating *xin
    cdef floating *a_prev
    cdef floating *Dl
    cdef floating *swb
    cdef void *tb
    cdef double S, scale, l2
    cdef double acc = run.acc, lr = run.lr
    cdef long long t = run.t
    cdef int status = 0, have_next = run.have_next
    for s in range(s0, s1):
        idx = s if order == NULL else order[s]
        xin = X + idx * d
        tb = <char *>target + idx * tsz
        swb = NULL if sw == NULL else sw + idx
        S = 1.0 if swb == NULL else <double>swb[0]
        if S <= 0.0:  # a zero-weight sample carries no gradient
            continue
        scale = 1.0 / S

        _parts_forward(net, xin, 1, True, buf, pstride, off, zeros, hidden_act, bar, v0, v1,
                       nth)
        if not _parts_loss(loss_kind, buf, pstride, off, L, v0, v1, tb, swb, 1, C, scale, S,
                           alpha, have_next, part, l2_first, opt_kind, h, &acc, &t, &lr):
            status = 1
            break
        l2 = alpha / S

        # ---- backward: the fused updates of each part's rows
        for v in range(v0, v1):
            part[v * PAD + 1] = 0.0  # this sample's sum of squares, added up below
        for l in range(L - 1, -1, -1):
            K = net.units[l]
            N = net.units[l + 1]
            a_prev = xin if l == 0 else <floating *>net.A[l - 1]
            for v in range(v0, v1):
                k0 = K * v // B1PAR_PARTS
                k1 = K * (v + 1) // B1PAR_PARTS
                outd = buf + v * pstride + off[L + 1]
                if l == L - 2 and v == 0:
                    _rank1(opt_kind, <floating *>net.P[2 * L - 1], NULL, outd, NULL,
                           _at(outd, net.S0[2 * L - 1], 0), _at(outd, net.S1[2 * L - 1], 0),
                           1, C, h, lr, 0.0)
                Dl = outd if l == L - 1 else <floating *>net.D[l]
                part[v * PAD + 1] += _rank1(
                    opt_kind, <floating *>net.P[l] + k0 * N, a_prev + k0, Dl,
                    <floating *>net.D[l - 1] + k0 if l > 0 else NULL,
                    _at(outd, net.S0[l], k0 * N), _at(outd, net.S1[l], k0 * N), k1 - k0, N, h,
                    lr, l2)
                if l < L - 1:
                    j0 = N * v // B1PAR_PARTS
                    j1 = N * (v + 1) // B1PAR_PARTS
                    _rank1(opt_kind, <floating *>net.P[L + l] + j0, NULL, Dl + j0, NULL,
                           _at(outd, net.S0[L + l], j0), _at(outd, net.S1[L + l], j0), 1,
                           j1 - j0, h, lr, 0.0)
                if l > 0:
                    _act_grad(hidden_act, a_prev + k0, <floating *>net.D[l - 1] + k0, k1 - k0,
                              1)
            if l > 0 and nth > 1:
                fnn_b1par_wait(bar)
        for v in range(v0, v1):
            part[v * PAD] = part[v * PAD + 1]
        have_next = 1
    if tid == 0:
        _run_save(run, acc, lr, t, status, have_next)


cdef inline void _act_grad_cols(int act, floating *a, floating *dl, intp m, intp ld, intp j0,
                                intp j1) noexcept nogil:
    """``dl *= f'(a)`` on the columns ``[j0, j1)`` of ``m`` rows ``ld`` apart."""
    cdef intp i
    for i in range(m):
        _act_grad(act, a + i * ld + j0, dl + i * ld + j0, j1 - j0, 1)


cdef inline void _colsum(floating *D, intp ld, floating *gb, intp m, intp N) noexcept nogil:
    """``gb`` = the column sums of ``D`` (``m`` rows of ``N``, ``ld`` apart), rows in order."""
    if floating is float:
        fnn_train_colsum_f32(D, ld, gb, m, N, 0)
    else:
        fnn_train_colsum_f64(D, ld, gb, m, N, 0)


cdef inline double _sumsq(floating *p, intp n) noexcept nogil:
    if floating is float:
        return fnn_train_sumsq_f32(p, n)
    else:
        return fnn_train_sumsq_f64(p, n)


cdef void _sbpar_block(Layout *net, floating *X, intp d, void *target, intp tsz,
                       floating *sw, intp *order, intp bs, intp s0, intp s1, floating *xbuf,
                       void *tbuf, floating *swbuf, int hidden_act, int loss_kind,
                       int opt_kind, double *h, double alpha, double l2_first, floating *buf,
                       intp pstride, intp *off, double *part, fnn_b1par_bar *bar, B1Run *run,
                       int tid, int nth) noexcept nogil:
    """Batches of ``bs`` rows (2 .. ``parallel_min_rows() - 1``) starting at the positions
    ``s0, s0 + bs, ... < s1`` of the epoch (the last one may be shorter), the network split in
    ``B1PAR_PARTS`` parts as in ``_b1par_block``: part ``v`` owns the rows ``[K v / P,
    K (v + 1) / P)`` of every weight matrix ``W_l`` (K x N), the same columns of the layer's
    input (a part reads and writes only its own columns of the activations) and the same units
    of each hidden layer's deltas and bias. Thread ``tid`` of ``nth`` runs the parts ``[tid P /
    nth, (tid + 1) P / nth)``, with the same results for any ``nth``.

    Per batch: part 0 gathers the targets and weights (read by every part after the first
    barrier), each part its columns of the input rows. Forward, layer by layer: the partial
    product ``A[:, k0:k1] @ W[k0:k1, :]`` (``m x N``, one-thread GEMM) into the part's slot of
    ``buf``, a barrier, then the partials summed (part order) + bias + activation on the part's
    units, which are the columns its next partial product reads; the output layer summed in
    full by every part into its own ``z``, the loss rows and output delta likewise (every part
    sees the same loss and stops at the same batch). Backward, from the top: the part's rows of
    the weight gradient ``A[:, k0:k1]^T @ D``, its units' bias gradient (column sums, rows in
    order), its columns of the delta below ``D @ W[k0:k1, :]^T`` times f' (before its rows are
    updated), then the optimizer on its rows and bias units; a barrier before the next layer
    reads the whole delta. Part 0 updates the output bias after the first backward barrier.
    The sums of squares of a part's new weights go to ``part[v * PAD]`` (the next batch's L2
    term adds them in part order). Needs ``L >= 2`` (see ``_b1par_block`` for the hazards
    between batches). Thread 0 stores the carried state in ``run``."""
    cdef int L = net.L, l, v
    cdef int v0 = tid * B1PAR_PARTS // nth, v1 = (tid + 1) * B1PAR_PARTS // nth
    cdef intp C = net.units[L], start, m, r, idx, K, N, k0, k1, j0, j1
    cdef floating *outd
    cdef floating *xin
    cdef floating *a_prev
    cdef floating *Dl
    cdef floating *swb
    cdef void *tb
    cdef double S, scale, l2
    cdef double acc = run.acc, lr = run.lr
    cdef long long t = run.t
    cdef int status = 0, have_next = run.have_next
    start = s0
    while start < s1:
        m = bs if s1 - start > bs else s1 - start
        if sw == NULL:
            S = <double>m
        else:
            S = 0.0
            for r in range(m):
                S += sw[start + r] if order == NULL else sw[order[start + r]]
        if S <= 0.0:  # a batch of zero-weight rows carries no gradient
            start += m
            continue
        scale = 1.0 / S
        if order == NULL:
            xin = X + start * d
            tb = <char *>target + start * tsz
            swb = NULL if sw == NULL else sw + start
        else:
            for v in range(v0, v1):
                k0 = d * v // B1PAR_PARTS
                k1 = d * (v + 1) // B1PAR_PARTS
                for r in range(m):
                    idx = order[start + r]
                    memcpy(xbuf + r * d + k0, X + idx * d + k0, (k1 - k0) * sizeof(floating))
                    if v == 0:
                        memcpy(<char *>tbuf + r * tsz, <char *>target + idx * tsz, tsz)
                        if sw != NULL:
                            swbuf[r] = sw[idx]
            xin = xbuf
            tb = tbuf
            swb = NULL if sw == NULL else swbuf

        _parts_forward(net, xin, m, False, buf, pstride, off, NULL, hidden_act, bar, v0, v1,
                       nth)
        if not _parts_loss(loss_kind, buf, pstride, off, L, v0, v1, tb, swb, m, C, scale, S,
                           alpha, have_next, part, l2_first, opt_kind, h, &acc, &t, &lr):
            status = 1
            break
        l2 = alpha / S

        # ---- backward and the optimizer on each part's rows
        for v in range(v0, v1):
            part[v * PAD + 1] = 0.0  # this batch's sum of squares, added up below
        for l in range(L - 1, -1, -1):
            K = net.units[l]
            N = net.units[l + 1]
            a_prev = xin if l == 0 else <floating *>net.A[l - 1]
            for v in range(v0, v1):
                k0 = K * v // B1PAR_PARTS
                k1 = K * (v + 1) // B1PAR_PARTS
                outd = buf + v * pstride + off[L + 1]
                if l == L - 2 and v == 0:
                    _colsum(outd, C, <floating *>net.G[2 * L - 1], m, C)
                    _opt_range(opt_kind, <floating *>net.P[2 * L - 1],
                               <floating *>net.G[2 * L - 1], _at(outd, net.S0[2 * L - 1], 0),
                               _at(outd, net.S1[2 * L - 1], 0), C, h, lr, 0.0)
                Dl = outd if l == L - 1 else <floating *>net.D[l]
                if k1 > k0:
                    _mm(CT, CN, <int>(k1 - k0), <int>N, <int>m, a_prev + k0, <int>K, Dl, <int>N,
                        <floating *>net.G[l] + k0 * N, <int>N, 0.0)
                if l < L - 1:
                    j0 = N * v // B1PAR_PARTS
                    j1 = N * (v + 1) // B1PAR_PARTS
                    _colsum(Dl + j0, N, <floating *>net.G[L + l] + j0, m, j1 - j0)
                    _opt_range(opt_kind, <floating *>net.P[L + l] + j0,
                               <floating *>net.G[L + l] + j0, _at(outd, net.S0[L + l], j0),
                               _at(outd, net.S1[L + l], j0), j1 - j0, h, lr, 0.0)
                if l > 0 and k1 > k0:
                    _mm(CN, CT, <int>m, <int>(k1 - k0), <int>N, Dl, <int>N,
                        <floating *>net.P[l] + k0 * N, <int>N, <floating *>net.D[l - 1] + k0,
                        <int>K, 0.0)
                    _act_grad_cols(hidden_act, a_prev, <floating *>net.D[l - 1], m, K, k0, k1)
                _opt_range(opt_kind, <floating *>net.P[l] + k0 * N,
                           <floating *>net.G[l] + k0 * N, _at(outd, net.S0[l], k0 * N),
                           _at(outd, net.S1[l], k0 * N), (k1 - k0) * N, h, lr, l2)
                if alpha != 0.0:
                    part[v * PAD + 1] += _sumsq(<floating *>net.P[l] + k0 * N, (k1 - k0) * N)
            if l > 0 and nth > 1:
                fnn_b1par_wait(bar)
        for v in range(v0, v1):
            part[v * PAD] = part[v * PAD + 1]
        have_next = 1
        start += m
    if tid == 0:
        _run_save(run, acc, lr, t, status, have_next)


cdef inline void _parts_block(Layout *net, floating *X, intp d, void *target, intp tsz,
                              floating *sw, intp *order, intp bs, intp s0, intp s1,
                              floating *xbuf, void *tbuf, floating *swbuf, int hidden_act,
                              int loss_kind, int opt_kind, double *h, double alpha,
                              double l2_first, floating *buf, intp pstride, intp *off,
                              floating *zeros, double *part, fnn_b1par_bar *bar, B1Run *run,
                              int tid, int nth) noexcept nogil:
    if bs == 1:
        _b1par_block(net, X, d, target, tsz, sw, order, s0, s1, hidden_act, loss_kind,
                     opt_kind, h, alpha, l2_first, buf, pstride, off, zeros, part, bar, run,
                     tid, nth)
    else:
        _sbpar_block(net, X, d, target, tsz, sw, order, bs, s0, s1, xbuf, tbuf, swbuf,
                     hidden_act, loss_kind, opt_kind, h, alpha, l2_first, buf, pstride, off,
                     part, bar, run, tid, nth)


cdef int _parts_epoch(Layout *net, floating *X, intp d, void *target, intp tsz, floating *sw,
                      intp *order, intp n, intp bs, floating *xbuf, void *tbuf,
                      floating *swbuf, int hidden_act, int loss_kind, int opt_kind,
                      double *h, double alpha, long long *t_io, double *acc_out) noexcept nogil:
    """An epoch of batches of ``bs < parallel_min_rows()`` rows split in ``B1PAR_PARTS`` parts
    (``_b1par_block`` at batch size 1, ``_sbpar_block`` above), by blocks of about
    ``B1PAR_BLOCK`` samples (whole batches), each block on two threads or on the calling thread:
    the results are the same either way. On a busy machine two threads in lock step wait for
    each other's turn on a core, so (``_b1par_mode`` 0) a block on two threads whose threads
    slept in the barrier (the peer was not running) more than ``1 / B1PAR_SLEEPY`` of the
    block's time sends the next 2 blocks to one thread, then 4, 8, ... ``B1PAR_BACKOFF`` while
    that repeats (from one epoch to the next, whatever the batch size); a calm block resets it.
    The same return values as ``_epoch``, or -1 (nothing done) when its buffers cannot be
    allocated."""
    global _b1par_epochs, _sbpar_epochs, _b1par_skip, _b1par_backoff
    cdef int L = net.L, l, tid = 0, nth = 1, two
    cdef intp pstride, wmax = 0, s0, s1
    cdef intp blk = B1PAR_BLOCK // bs * bs if bs <= B1PAR_BLOCK else bs
    cdef long long t0
    cdef intp *off = <intp *>malloc((L + 3) * sizeof(intp))
    cdef floating *buf = NULL
    cdef floating *zeros = NULL
    cdef double *part = <double *>malloc(B1PAR_PARTS * PAD * sizeof(double))
    cdef double l2_first = 0.0
    cdef B1Run run
    cdef fnn_b1par_bar bar
    if off != NULL and part != NULL:
        # per part: the partial product of each layer, then the output rows z and their delta
        # (bs rows each), each rounded up to 16 elements, then 16 more: no two threads write
        # one cache line
        off[0] = 0
        for l in range(L + 2):
            wmax = net.units[l + 1] if l < L else net.units[L]
            off[l + 1] = off[l] + (wmax * bs + 15) // 16 * 16
        pstride = off[L + 2] + 16
        buf = <floating *>malloc(B1PAR_PARTS * pstride * sizeof(floating))
        if bs == 1:  # the zero bias of the batch-1 partial products
            wmax = 0
            for l in range(1, L + 1):
                if net.units[l] > wmax:
                    wmax = net.units[l]
            zeros = <floating *>calloc(wmax, sizeof(floating))
    if buf == NULL or (bs == 1 and zeros == NULL):
        free(off)
        free(part)
        free(buf)
        free(zeros)
        return -1
    if bs == 1:
        _b1par_epochs += 1
    else:
        _sbpar_epochs += 1
    if alpha != 0.0:
        for l in range(L):
            l2_first += _sumsq(<floating *>net.P[l], net.size[l])
    run.acc = 0.0
    run.lr = h[0]
    run.t = t_io[0]
    run.status = 0
    run.have_next = 0
    s0 = 0
    while s0 < n and run.status == 0:
        s1 = s0 + blk if n - s0 > blk else n
        if _b1par_mode != 0:
            two = _b1par_mode == 1
        else:
            two = _b1par_skip <= 0
            if not two:
                _b1par_skip -= 1
        t0 = fnn_b1par_now_ns()
        if two:
            with parallel(num_threads=B1PAR_PARTS):
                tid = threadid()
                nth = fnn_par_num_threads()
                fnn_b1par_start(&bar, tid, nth, FNN_B1PAR_SPIN if bs == 1 else FNN_SBPAR_SPIN)
                _parts_block(net, X, d, target, tsz, sw, order, bs, s0, s1, xbuf, tbuf, swbuf,
                             hidden_act, loss_kind, opt_kind, h, alpha, l2_first, buf, pstride,
                             off, zeros, part, &bar, &run, tid, nth)
        else:
            _parts_block(net, X, d, target, tsz, sw, order, bs, s0, s1, xbuf, tbuf, swbuf,
                         hidden_act, loss_kind, opt_kind, h, alpha, l2_first, buf, pstride,
                         off, zeros, part, &bar, &run, 0, 1)
        if two and _b1par_mode == 0:
            if bar.slept_ns * B1PAR_SLEEPY > fnn_b1par_now_ns() - t0:
                if _b1par_backoff < B1PAR_BACKOFF:
                    _b1par_backoff *= 2
                _b1par_skip = _b1par_backoff
            else:
                _b1par_backoff = 1
        s0 = s1
    t_io[0] = run.t
    acc_out[0] = run.acc
    free(off)
    free(part)
    free(buf)
    free(zeros)
    return run.status


cdef int _epoch(Layout *net, floating *X, intp d, void *target, int tgt_int, intp k,
                floating *sw, intp *order, intp n, intp bs, floating *xbuf, void *tbuf,
                floating *swbuf, int hidden_act, int loss_kind, int opt_kind, double *h,
                double alpha, long long *t_io, double *acc_out, Layout *TL, int npar,
                double *part) noexcept nogil:
    """Returns 0 when the epoch ran to its end, 1 when the loss became non-finite (stopped at
    that batch: the caller restores its snapshot). ``TL[0..npar)``: the per-thread views of
    the data-parallel batches (``TL[0].G`` is ``net.G``), ``part`` ``npar * PAD`` doubles."""
    cdef int L = net.L, l, nt = fnn_max_threads(), nuse, tid, nth, t_
    cdef int nth_out[2]
    cdef intp rpt = _par_min_rows // 2
    cdef intp start, stop, m, r, idx, i, K, N
    cdef intp tsz = sizeof(intp) if tgt_int else k * sizeof(floating)
    cdef floating *xin
    cdef floating *swb
    cdef floating *a_prev
    cdef floating *Dl
    cdef void *tb
    cdef double S, scale, total, acc = 0.0, l2, lr = h[0]
    cdef long long t = t_io[0]
    cdef int status = 0, have_next = 0
    cdef bint chunked
    cdef double l2_next = 0.0
    cdef intp b, nb = (n + bs - 1) // bs
    if nb == 1:
        # one batch of every row (full batch): the order only permutes the terms of the sums,
        # so use the rows in place instead of gathering a shuffled copy of X
        order = NULL
    if _two_parts(bs, n, L, _params(net), sizeof(floating), nt):
        status = _parts_epoch(net, X, d, target, tsz, sw, order, n, bs if bs < n else n, xbuf,
                              tbuf, swbuf, hidden_act, loss_kind, opt_kind, h, alpha, t_io,
                              acc_out)
        if status >= 0:
            return status
    for b in range(nb):
        start = b * bs
        stop = start + bs
        if stop > n:
            stop = n
        m = stop - start
        nuse = 1
        if npar >= 2 and nt >= 2 and m >= _par_min_rows:
            nuse = npar if npar < nt else nt
            if m // rpt < nuse:
                nuse = <int>(m // rpt)
        if nuse >= 2:
            # ---- data-parallel batch: the rows split over nuse threads, each gathering,
            # running forward, loss and backward on its rows with one-thread BLAS calls into
            # its own gradient buffers; then the partial sums reduced and the optimizer run,
            # split over parameter ranges. S_b and the loss are summed in a fixed order.
            if sw == NULL:
                S = <double>m
            else:
                S = 0.0
                if order == NULL:
                    for r in range(m):
                        S += sw[start + r]
                else:
                    for r in range(m):
                        S += sw[order[start + r]]
            if S <= 0.0:
                continue
            scale = 1.0 / S
            tid = 0
            nth = 1
            with parallel(num_threads=nuse):
                tid = threadid()
                nth = fnn_par_num_threads()
                if order == NULL:
                    _rows_thread(net, &TL[tid], X + start * d, d, <char *>target + start * tsz,
                                 NULL if sw == NULL else sw + start, NULL, xbuf, tbuf, swbuf,
                                 tsz, m, hidden_act, loss_kind, scale, part, tid, nth)
                else:
                    _rows_thread(net, &TL[tid], X, d, target, sw, order + start, xbuf, tbuf,
                                 swbuf, tsz, m, hidden_act, loss_kind, scale, part, tid, nth)
                if tid == 0:
                    nth_out[0] = nth
            total = 0.0
            for t_ in range(nth_out[0]):
                total = total + part[t_ * PAD]
            if not _batch_loss(&acc, total * scale * S + _l2_term(X, net, alpha, have_next,
                                                                  l2_next), opt_kind, h, &t, &lr):
                status = 1
                break
            l2 = alpha / S
            with parallel(num_threads=nuse):
                tid = threadid()
                nth = fnn_par_num_threads()
                _update_thread(<floating *>net.G[0], net, TL, nth_out[0], opt_kind, h, lr, l2, alpha != 0.0, part,
                               tid, nth)
                if tid == 0:
                    nth_out[1] = nth
            l2_next = 0.0
            for t_ in range(nth_out[1]):
                l2_next = l2_next + part[t_ * PAD]
            have_next = alpha != 0.0
            continue

        # ---- the batch's rows: a view when they are consecutive, else gathered
        if order == NULL:
            xin = X + start * d
            tb = <char *>target + start * tsz
            swb = NULL if sw == NULL else sw + start
        elif m == 1:
            idx = order[start]
            xin = X + idx * d
            tb = <char *>target + idx * tsz
            swb = NULL if sw == NULL else sw + idx
        else:
            for r in range(m):
                idx = order[start + r]
                memcpy(xbuf + r * d, X + idx * d, d * sizeof(floating))
                memcpy(<char *>tbuf + r * tsz, <char *>target + idx * tsz, tsz)
                if sw != NULL:
                    swbuf[r] = sw[idx]
            xin = xbuf
            tb = tbuf
            swb = NULL if sw == NULL else swbuf
        if swb == NULL:
            S = <double>m
        else:
            S = 0.0
            for r in range(m):
                S += swb[r]
        if S <= 0.0:  # a batch of zero-weight rows carries no gradient
            continue

        # ---- forward, loss and output delta (large batches: forward and backward by chunks)
        scale = 1.0 / S
        chunked = m > CHUNK_ROWS
        if chunked:
            total = _chunked_pass(net, xin, d, tb, tsz, swb, m, hidden_act, loss_kind, scale)
        else:
            _forward(net, xin, m, hidden_act, nt)
            total = _loss_rows(loss_kind, <floating *>net.A[L - 1], tb, swb,
                               <floating *>net.D[L - 1], m, net.units[L], scale, nt)
        if not _batch_loss(&acc, total * scale * S + _l2_term(X, net, alpha, have_next, l2_next),
                           opt_kind, h, &t, &lr):
            status = 1
            break

        l2 = alpha / S
        l2_next = 0.0

        # ---- backward
        if m == 1:
            for l in range(L - 1, -1, -1):
                K = net.units[l]
                N = net.units[l + 1]
                Dl = <floating *>net.D[l]
                a_prev = xin if l == 0 else <floating *>net.A[l - 1]
                # the gradient is outer(a_prev, Dl), formed on the fly by the fused update,
                # whose pass over the old W_l also writes the delta of layer l-1
                l2_next += _rank1(opt_kind, <floating *>net.P[l], a_prev, Dl,
                                  <floating *>net.D[l - 1] if l > 0 else NULL,
                                  <floating *>net.S0[l], <floating *>net.S1[l], K, N, h, lr, l2)
                _rank1(opt_kind, <floating *>net.P[L + l], NULL, Dl, NULL,
                       <floating *>net.S0[L + l], <floating *>net.S1[L + l], 1, N, h, lr, 0.0)
                if l > 0:
                    _act_grad(hidden_act, a_prev, <floating *>net.D[l - 1], K, nt)
            have_next = 1
            continue
        have_next = 0
        if not chunked:
            _backward(net, xin, m, hidden_act, nt, False)

        # ---- optimizer: l2 = alpha / S on weights, 0 on biases
        for i in range(2 * L):
            _opt_step(opt_kind, <floating *>net.P[i], <floating *>net.G[i],
                      <floating *>net.S0[i], <floating *>net.S1[i], net.size[i], h, lr,
                      l2 if i < L else 0.0, nt)
    t_io[0] = t
    acc_out[0] = acc
    return status


cdef inline void *_ptr(object a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def train_epoch(X, target, sw, order, Py_ssize_t batch_size, units, tuple params,
                tuple grads, tuple state0, tuple state1, tuple acts, tuple deltas, xbuf, tbuf,
                swbuf, int hidden_act, int loss_kind, int opt_kind, hyper, double alpha,
                long long t, tuple grads_extra=()):
    """One epoch of mini-batch training, in place on ``params`` and the optimizer state.

    Returns ``(accumulated, t, diverged)``: ``accumulated = sum_b (data_loss_b * S_b +
    0.5 * alpha * ||W||^2)`` over the batches run (divide by the total weight for ``loss_``),
    Adam's new step count, and True if the loss became non-finite (the epoch stopped there).
    ``grads_extra``: gradient buffers (tuples like ``grads``) of the threads 1, 2, ... of the
    data-parallel batches; with none, every batch runs on the calling thread (BLAS threads
    aside).
    Arguments are NOT validated: fastnn/_native_loop.py does that (BACKENDS.md).
    """
    cdef Layout net
    cdef int L = len(params) // 2, l, status
    cdef double h[4]
    cdef double acc = 0.0
    cdef long long t_io = t
    cdef intp n = (<cnp.ndarray>X).shape[0], d = (<cnp.ndarray>X).shape[1]
    cdef intp k = 1 if (<cnp.ndarray>target).ndim == 1 else (<cnp.ndarray>target).shape[1]
    cdef int tgt_int = (<cnp.ndarray>target).ndim == 1 and loss_kind == 0
    cdef bint f32 = cnp.PyArray_TYPE(<cnp.ndarray>X) == cnp.NPY_FLOAT32
    cdef void *swp = NULL if sw is None else _ptr(sw)
    cdef void *ordp = NULL if order is None else _ptr(order)
    cdef void *swbp = NULL if swbuf is None else _ptr(swbuf)
    cdef void *Xp = _ptr(X)
    cdef void *tp = _ptr(target)
    cdef void *xbp = _ptr(xbuf)
    cdef void *tbp = _ptr(tbuf)
    cdef int npar = 1 + len(grads_extra), j
    cdef Layout *TL = NULL
    cdef double *part = NULL
    for l in range(4):
        h[l] = float(hyper[l])
    if n == 0:
        return 0.0, t, False
    net.L = L
    net.units = <intp *>malloc((L + 1) * sizeof(intp))
    net.size = <intp *>malloc(2 * L * sizeof(intp))
    net.P = <void **>malloc(2 * L * sizeof(void *))
    net.G = <void **>malloc(2 * L * sizeof(void *))
    net.S0 = <void **>malloc(2 * L * sizeof(void *))
    net.S1 = <void **>malloc(2 * L * sizeof(void *))
    net.A = <void **>malloc(L * sizeof(void *))
    net.D = <void **>malloc(L * sizeof(void *))
    TL = <Layout *>malloc(npar * sizeof(Layout))
    part = <double *>malloc(npar * PAD * sizeof(double))
    for j in range(npar):
        TL[j] = net
        TL[j].A = <void **>malloc(L * sizeof(void *))
        TL[j].D = <void **>malloc(L * sizeof(void *))
        TL[j].G = net.G if j == 0 else <void **>malloc(2 * L * sizeof(void *))
    try:
        for l in range(L + 1):
            net.units[l] = units[l]
        for l in range(L):
            net.A[l] = _ptr(acts[l])
            net.D[l] = _ptr(deltas[l])
        for l in range(2 * L):
            net.P[l] = _ptr(params[l])
            net.G[l] = _ptr(grads[l])
            net.size[l] = cnp.PyArray_SIZE(<cnp.ndarray>params[l])
            net.S0[l] = _ptr(state0[l])
            net.S1[l] = _ptr(state1[l])
        for j in range(1, npar):
            for l in range(2 * L):
                TL[j].G[l] = _ptr(grads_extra[j - 1][l])
        with nogil:
            if f32:
                status = _epoch[float](&net, <float *>Xp, d, tp, tgt_int, k, <float *>swp,
                                       <intp *>ordp, n, batch_size, <float *>xbp, tbp,
                                       <float *>swbp, hidden_act, loss_kind, opt_kind, h, alpha,
                                       &t_io, &acc, TL, npar, part)
            else:
                status = _epoch[double](&net, <double *>Xp, d, tp, tgt_int, k, <double *>swp,
                                        <intp *>ordp, n, batch_size, <double *>xbp, tbp,
                                        <double *>swbp, hidden_act, loss_kind, opt_kind, h,
                                        alpha, &t_io, &acc, TL, npar, part)
    finally:
        for j in range(npar):
            free(TL[j].A)
            free(TL[j].D)
            if j > 0:
                free(TL[j].G)
        free(TL)
        free(part)
        free(net.units)
        free(net.size)
        free(net.P)
        free(net.G)
        free(net.S0)
        free(net.S1)
        free(net.A)
        free(net.D)
    return acc, t_io, status != 0


def max_threads():
    """``omp_get_max_threads()`` as the loop sees it (the OpenMP limit of the calling thread)."""
    return fnn_max_threads()
