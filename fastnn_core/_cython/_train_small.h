/*
 * _train_small.h -- hand-written one-row kernels of the native training loop (_train.pyx).
 *
 * At batch size 1 every matrix product of the epoch is a vector-matrix product of a few
 * thousand multiply-adds.  A BLAS call costs about as much again in argument checks and
 * dispatch, so the loop uses these instead (measured faster on 64x100x10 .. 100x256x128x10).
 * They are compiled for x86-64-v4 / v3 / default like fastnn_simd.h (target_clones).
 *
 * Row-major shapes: W is (K, N), a is (K,), d is (N,).
 */
#ifndef FASTNN_TRAIN_SMALL_H
#define FASTNN_TRAIN_SMALL_H

#include "fastnn_simd.h"

#define FNN_DEFINE_TRAIN_SMALL(T, S)                                                             \
    /* z = a @ W + b (z is (N,)); rows of W with a_k == 0 are skipped (ReLU zeros, sparse    \
     * inputs): they add exactly 0 for finite W. */                                            \
    FNN_CLONES void fnn_train_vecmat_##S(const T *restrict a, const T *restrict W,            \
                                         const T *restrict b, T *restrict z, ptrdiff_t K,     \
                                         ptrdiff_t N)                                          \
    {                                                                                          \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            z[j] = 0;                                                                          \
        for (ptrdiff_t k = 0; k < K; k++) {                                                    \
            const T ak = a[k];                                                                 \
            if (ak == 0)                                                                       \
                continue;                                                                      \
            const T *restrict w = W + k * N;                                                   \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = 0; j < N; j++)                                                  \
                z[j] += ak * w[j];                                                             \
        }                                                                                      \
        FNN_SIMD                                                                               \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            z[j] += b[j];                                                                      \
    }                                                                                          \
                                                                                               \
    /* g = outer(a, d) (K, N); gb = d */                                                       \
    FNN_CLONES void fnn_train_outer_##S(const T *restrict a, const T *restrict d,             \
                                        T *restrict g, T *restrict gb, ptrdiff_t K,           \
                                        ptrdiff_t N)                                           \
    {                                                                                          \
        for (ptrdiff_t k = 0; k < K; k++) {                                                    \
            const T ak = a[k];                                                                 \
            T *restrict gk = g + k * N;                                                        \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = 0; j < N; j++)                                                  \
                gk[j] = ak * d[j];                                                             \
        }                                                                                      \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            gb[j] = d[j];                                                                      \
    }                                                                                          \
                                                                                               \
    /* out = W @ d (out is (K,)) */                                                            \
    FNN_CLONES void fnn_train_matvec_##S(const T *restrict W, const T *restrict d,            \
                                         T *restrict out, ptrdiff_t K, ptrdiff_t N)            \
    {                                                                                          \
        for (ptrdiff_t k = 0; k < K; k++) {                                                    \
            const T *restrict w = W + k * N;                                                   \
            T s = 0;                                                                           \
            FNN_SIMD_SUM(s)                                                                    \
            for (ptrdiff_t j = 0; j < N; j++)                                                  \
                s += w[j] * d[j];                                                              \
            out[k] = s;                                                                        \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* sum of squares in double */                                                             \
    FNN_CLONES double fnn_train_sumsq_##S(const T *restrict p, ptrdiff_t n)                    \
    {                                                                                          \
        double s = 0.0;                                                                        \
        FNN_SIMD_SUM(s)                                                                        \
        for (ptrdiff_t i = 0; i < n; i++)                                                      \
            s += (double)p[i] * (double)p[i];                                                  \
        return s;                                                                              \
    }                                                                                          \
                                                                                               \
    /* gb = column sums of D (m, N), rows added in order (as NumPy's sum(axis=0)) */          \
    FNN_CLONES void fnn_train_colsum_##S(const T *restrict D, T *restrict gb, ptrdiff_t m,    \
                                         ptrdiff_t N)                                          \
    {                                                                                          \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            gb[j] = D[j];                                                                      \
        for (ptrdiff_t i = 1; i < m; i++) {                                                    \
            const T *restrict r = D + i * N;                                                   \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = 0; j < N; j++)                                                  \
                gb[j] += r[j];                                                                 \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* z[i, :] += b for each of m rows */                                                      \
    FNN_CLONES void fnn_train_addbias_##S(T *restrict z, const T *restrict b, ptrdiff_t m,    \
                                          ptrdiff_t N)                                         \
    {                                                                                          \
        for (ptrdiff_t i = 0; i < m; i++) {                                                    \
            T *restrict r = z + i * N;                                                         \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = 0; j < N; j++)                                                  \
                r[j] += b[j];                                                                  \
        }                                                                                      \
    }

FNN_DEFINE_TRAIN_SMALL(float, f32)
FNN_DEFINE_TRAIN_SMALL(double, f64)

#endif /* FASTNN_TRAIN_SMALL_H */
