/*
 * _train_b1par.h -- helpers of the two-thread batch-size-1 epoch of the native training loop
 * (_train.pyx, _b1par_thread): a barrier of the enclosing OpenMP team and the sum of the
 * per-thread partial vector-matrix products.
 */
#ifndef FASTNN_TRAIN_B1PAR_H
#define FASTNN_TRAIN_B1PAR_H

#include "fastnn_simd.h"

/* A barrier of the innermost enclosing parallel region (an orphaned `omp barrier`: libgomp
 * spins for a while, then sleeps on a futex, so a descheduled peer costs time, never a hang).
 * A no-op outside a region and without OpenMP. */
static inline void fnn_b1par_barrier(void)
{
#if FASTNN_OPENMP && defined(_OPENMP)
#pragma omp barrier
#endif
}

#define FNN_DEFINE_B1PAR(T, S)                                                                 \
    /* z[j] = (parts[0][j] + parts[1][j] + ... + parts[nparts - 1][j]) + b[j] for j in        \
     * [j0, j1), the partials added in thread order; parts[t] = part + t * stride */           \
    FNN_CLONES void fnn_b1par_sum_##S(T *restrict z, const T *restrict part, ptrdiff_t stride, \
                                      int nparts, const T *restrict b, ptrdiff_t j0,           \
                                      ptrdiff_t j1)                                            \
    {                                                                                          \
        FNN_SIMD                                                                               \
        for (ptrdiff_t j = j0; j < j1; j++)                                                    \
            z[j] = part[j];                                                                    \
        for (int t = 1; t < nparts; t++) {                                                     \
            const T *restrict pt = part + t * stride;                                          \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = j0; j < j1; j++)                                                \
                z[j] += pt[j];                                                                 \
        }                                                                                      \
        FNN_SIMD                                                                               \
        for (ptrdiff_t j = j0; j < j1; j++)                                                    \
            z[j] += b[j];                                                                      \
    }

FNN_DEFINE_B1PAR(float, f32)
FNN_DEFINE_B1PAR(double, f64)

#endif
