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

/* rows of W taken in one sweep of z by the vector-matrix product */
#define FNN_VM_BLOCK 4
/* rows of W scanned for non-zero a_k at a time (the index buffer on the stack) */
#define FNN_VM_CHUNK 256

#define FNN_DEFINE_TRAIN_SMALL(T, S)                                                             \
    /* z = a @ W + b (z is (N,)).  Rows of W with a_k == 0 are skipped (ReLU zeros, sparse     \
     * inputs: they add exactly 0 for finite W), found without a branch per row (half the     \
     * ReLU zeros, in random places, mispredict).  The kept rows go FNN_VM_BLOCK at a time     \
     * into one load and store of z[j]; each z[j] still takes a_k * W[k, j] one k after the   \
     * other, in order, so the sums round as in the row-by-row loop. */                       \
    FNN_CLONES void fnn_train_vecmat_portable_##S(const T *restrict a, const T *restrict W,            \
                                         const T *restrict b, T *restrict z, ptrdiff_t K,     \
                                         ptrdiff_t N)                                          \
    {                                                                                          \
        ptrdiff_t rows[FNN_VM_CHUNK];                                                          \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            z[j] = 0;                                                                          \
        for (ptrdiff_t k0 = 0; k0 < K; k0 += FNN_VM_CHUNK) {                                   \
            const ptrdiff_t k1 = K - k0 > FNN_VM_CHUNK ? k0 + FNN_VM_CHUNK : K;                \
            ptrdiff_t n = 0;                                                                   \
            for (ptrdiff_t k = k0; k < k1; k++) {                                              \
                rows[n] = k;                                                                   \
                n += a[k] != 0;                                                                \
            }                                                                                  \
            ptrdiff_t i = 0;                                                                   \
            for (; i + FNN_VM_BLOCK <= n; i += FNN_VM_BLOCK) {                                 \
                const T a0 = a[rows[i]], a1 = a[rows[i + 1]];                                  \
                const T a2 = a[rows[i + 2]], a3 = a[rows[i + 3]];                              \
                const T *restrict w0 = W + rows[i] * N, *restrict w1 = W + rows[i + 1] * N;    \
                const T *restrict w2 = W + rows[i + 2] * N, *restrict w3 = W + rows[i + 3] * N;\
                FNN_SIMD                                                                       \
                for (ptrdiff_t j = 0; j < N; j++) {                                            \
                    T s = z[j];                                                                \
                    s += a0 * w0[j];                                                           \
                    s += a1 * w1[j];                                                           \
                    s += a2 * w2[j];                                                           \
                    s += a3 * w3[j];                                                           \
                    z[j] = s;                                                                  \
                }                                                                              \
            }                                                                                  \
            for (; i < n; i++) {                                                               \
                const T ak = a[rows[i]];                                                       \
                const T *restrict w = W + rows[i] * N;                                         \
                FNN_SIMD                                                                       \
                for (ptrdiff_t j = 0; j < N; j++)                                              \
                    z[j] += ak * w[j];                                                         \
            }                                                                                  \
        }                                                                                      \
        FNN_SIMD                                                                               \
        for (ptrdiff_t j = 0; j < N; j++)                                                      \
            z[j] += b[j];                                                                      \
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
    /* gb = column sums of D (m, N; rows ld elements apart), or gb += them when accumulate;   \
     * rows added in order */                                                                 \
    FNN_CLONES void fnn_train_colsum_##S(const T *restrict D, ptrdiff_t ld, T *restrict gb,   \
                                         ptrdiff_t m, ptrdiff_t N, int accumulate)            \
    {                                                                                         \
        ptrdiff_t i0 = 0;                                                                     \
        if (!accumulate) {                                                                    \
            for (ptrdiff_t j = 0; j < N; j++)                                                 \
                gb[j] = D[j];                                                                 \
            i0 = 1;                                                                           \
        }                                                                                     \
        for (ptrdiff_t i = i0; i < m; i++) {                                                  \
            const T *restrict r = D + i * ld;                                                 \
            FNN_SIMD                                                                          \
            for (ptrdiff_t j = 0; j < N; j++)                                                 \
                gb[j] += r[j];                                                                \
        }                                                                                     \
    }                                                                                         \
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

/* ---- batch size 1: the gradient of a layer is the outer product g = a d^T (bias: g = d), so
 * the optimizer update computes it on the fly instead of writing and re-reading a gradient
 * array.  The element updates are those of fastnn_simd.h (same expressions), with
 * g_eff = g + l2 * p.  Each returns sum_i p_new_i^2 in double (the next batch's L2 term),
 * accumulated in FNN_R1_LANES partial sums across rows: a horizontal reduction per row (what
 * `omp simd reduction` gives) cost more than the update itself at N = 100.  In float32 the
 * partial sums of a row are in float (a few dozen terms each) and go into the double ones once
 * per row: converting every element to double took 30% of the float32 update (in float64 the
 * same staging made the (256, 128) Adam update 10% slower, so it adds directly).
 * back (K,), unless NULL, receives W_old @ d, the delta of the layer below: the same pass
 * reads each old row for the update anyway, so the backward product costs no extra sweep
 * over W (which for (256, 128) in float64 does not fit in L2).
 * p, s0, s1 are (K, N); a is (K,) (NULL: a bias, K = 1, g = d); d is (N,). */
#define FNN_R1_LANES 8
#define FNN_R1_ROWSUM (sizeof(*p) < sizeof(double)) /* p: the T * being updated */
#define FNN_R1_SUMSQ(l, x)                                                                      \
    do {                                                                                       \
        if (FNN_R1_ROWSUM)                                                                     \
            sq[l] += (x) * (x);                                                                \
        else                                                                                   \
            acc[l] += (double)(x) * (double)(x);                                               \
    } while (0)
#define FNN_R1_DOT(l, x, y) dot[l] += (x) * (y)
#define FNN_R1_NODOT(l, x, y) (void)0
/* the K rows; DOT is FNN_R1_DOT when back is set, else FNN_R1_NODOT (no dot products for
 * the first layer, which is most of the parameters of a one-hidden-layer network) */
#define FNN_R1_ROWS(T, BODY, DOT)                                                               \
    for (ptrdiff_t k = 0; k < K; k++) {                                                        \
        const T ak = a ? a[k] : (T)1;                                                          \
        T *restrict pk = p + k * N;                                                            \
        T *restrict s0k = s0 + k * N;                                                          \
        T *restrict s1k = s1 ? s1 + k * N : s0k;                                               \
        (void)s1k;                                                                             \
        T dot[FNN_R1_LANES] = {0}, sq[FNN_R1_LANES] = {0};                                     \
        for (ptrdiff_t j0 = 0; j0 < Nv; j0 += FNN_R1_LANES) {                                  \
            FNN_SIMD                                                                           \
            for (ptrdiff_t l = 0; l < FNN_R1_LANES; l++) {                                     \
                const ptrdiff_t j = j0 + l;                                                    \
                const T g = ak * d[j];                                                         \
                const T ge = g + l2 * pk[j];                                                   \
                DOT(l, pk[j], d[j]);                                                           \
                BODY                                                                           \
                FNN_R1_SUMSQ(l, pk[j]);                                                        \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t j = Nv; j < N; j++) {                                                   \
            const T g = ak * d[j];                                                             \
            const T ge = g + l2 * pk[j];                                                       \
            DOT(0, pk[j], d[j]);                                                               \
            BODY                                                                               \
            FNN_R1_SUMSQ(0, pk[j]);                                                            \
        }                                                                                      \
        if (FNN_R1_ROWSUM)                                                                     \
            for (int l = 0; l < FNN_R1_LANES; l++)                                             \
                acc[l] += sq[l];                                                               \
        if (back) {                                                                            \
            T s = 0;                                                                           \
            for (int l = 0; l < FNN_R1_LANES; l++)                                             \
                s += dot[l];                                                                   \
            back[k] = s;                                                                       \
        }                                                                                      \
    }

#define FNN_RANK1(T, S, NAME, ARGS, PRE, BODY)                                                  \
    FNN_CLONES double fnn_train_r1_##NAME##_##S(T *restrict p, const T *restrict a,            \
                                                const T *restrict d, T *restrict back,         \
                                                T *restrict s0, T *restrict s1, ptrdiff_t K,   \
                                                ptrdiff_t N, T l2 ARGS)                        \
    {                                                                                          \
        PRE                                                                                    \
        double acc[FNN_R1_LANES] = {0};                                                        \
        const ptrdiff_t Nv = N - N % FNN_R1_LANES;                                             \
        if (back)                                                                              \
            FNN_R1_ROWS(T, BODY, FNN_R1_DOT)                                                   \
        else                                                                                   \
            FNN_R1_ROWS(T, BODY, FNN_R1_NODOT)                                                 \
        double ss = 0.0;                                                                       \
        for (int l = 0; l < FNN_R1_LANES; l++)                                                 \
            ss += acc[l];                                                                      \
        return ss;                                                                             \
    }

#define FNN_DEFINE_RANK1(T, S, SQRT)                                                           \
    FNN_RANK1(T, S, sgd_portable, FNN_COMMA T lr FNN_COMMA T mom, , {                                   \
        T vi = mom * s0k[j] - lr * ge;                                                         \
        s0k[j] = vi;                                                                           \
        pk[j] += vi;                                                                           \
    })                                                                                         \
    FNN_RANK1(T, S, nesterov_portable, FNN_COMMA T lr FNN_COMMA T mom, , {                              \
        T vi = mom * s0k[j] - lr * ge;                                                         \
        s0k[j] = vi;                                                                           \
        pk[j] += mom * vi - lr * ge;                                                           \
    })                                                                                         \
    FNN_RANK1(T, S, adam_exact, FNN_COMMA T lr_t FNN_COMMA double b1_ FNN_COMMA double b2_     \
              FNN_COMMA T eps,                                                                 \
              const T b1 = (T)b1_; const T b2 = (T)b2_; const T c1 = (T)(1.0 - b1_);          \
              const T c2 = (T)(1.0 - b2_);, {                                                  \
        T mi = b1 * s0k[j] + c1 * ge;                                                          \
        T vi = b2 * s1k[j] + c2 * (ge * ge);                                                   \
        s0k[j] = mi;                                                                           \
        s1k[j] = vi;                                                                           \
        pk[j] -= lr_t * mi / (SQRT(vi) + eps);                                                 \
    })                                                                                         \
    FNN_RANK1(T, S, adagrad, FNN_COMMA T lr FNN_COMMA T eps, , {                               \
        T ai = s0k[j] + ge * ge;                                                               \
        s0k[j] = ai;                                                                           \
        pk[j] -= lr * ge / (SQRT(ai) + eps);                                                   \
    })                                                                                         \
    FNN_RANK1(T, S, rmsprop, FNN_COMMA T lr FNN_COMMA double rho_ FNN_COMMA T eps,             \
              const T rho = (T)rho_; const T c = (T)(1.0 - rho_);, {                          \
        T si = rho * s0k[j] + c * (ge * ge);                                                   \
        s0k[j] = si;                                                                           \
        pk[j] -= lr * ge / (SQRT(si) + eps);                                                   \
    })                                                                                         \
    FNN_RANK1(T, S, adadelta, FNN_COMMA T lr FNN_COMMA double rho_ FNN_COMMA T eps,            \
              const T rho = (T)rho_; const T c = (T)(1.0 - rho_);, {                          \
        T ag = rho * s0k[j] + c * (ge * ge);                                                   \
        T dx = SQRT(s1k[j] + eps) / SQRT(ag + eps) * ge;                                       \
        s0k[j] = ag;                                                                           \
        s1k[j] = rho * s1k[j] + c * (dx * dx);                                                 \
        pk[j] -= lr * dx;                                                                      \
    })

#define FNN_COMMA ,
FNN_DEFINE_RANK1(float, f32, sqrtf)
FNN_DEFINE_RANK1(double, f64, sqrt)

/* ---- AVX-512 (x86-64-v4) copies of the hot batch-1 kernels: vecmat and the sgd / Nesterov /
 * Adam rank-1 updates (_train_small_v4.h, once per element type), picked at run time when the
 * CPU has AVX-512F and DQ; the portable kernels above serve every other CPU and optimizer. */
#if FNN_HAVE_CLONES
#include <float.h>
#include <immintrin.h>
#include <stdlib.h>
#define FNN_V4 FNN_TARGET_AVX512 /* fastnn_simd.h: so that the Adam helpers there inline */

/* 1 when this CPU runs the AVX-512 copies; FASTNN_BATCH1_PORTABLE=1 in the environment (read
 * once, at the first batch-1 step) keeps the portable kernels, so that tests can run them on
 * an AVX-512 machine too */
static int fnn_train_v4_level = -1; /* per module; -1 until first use */
static inline int fnn_train_v4(void)
{
    if (fnn_train_v4_level < 0) {
        const char *portable = getenv("FASTNN_BATCH1_PORTABLE");
        __builtin_cpu_init();
        fnn_train_v4_level = !(portable && *portable && *portable != '0') &&
                             __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512dq");
    }
    return fnn_train_v4_level;
}

#define FNN_V4_F32 1
#include "_train_small_v4.h"
#undef FNN_V4_F32
#define FNN_V4_F32 0
#include "_train_small_v4.h"
#undef FNN_V4_F32

/* V4 on CPUs that run the AVX-512 copies, else PORTABLE */
#define FNN_TRAIN_PICK(V4, PORTABLE) (fnn_train_v4() ? (V4) : (PORTABLE))
#else
#define FNN_TRAIN_PICK(V4, PORTABLE) (PORTABLE)
#endif

#define FNN_TRAIN_DISPATCH(T, S)                                                                \
    static void fnn_train_vecmat_##S(const T *a, const T *W, const T *b, T *z, ptrdiff_t K,    \
                                     ptrdiff_t N)                                              \
    {                                                                                          \
        FNN_TRAIN_PICK(fnn_train_vecmat_v4_##S(a, W, b, z, K, N),                              \
                       fnn_train_vecmat_portable_##S(a, W, b, z, K, N));                       \
    }                                                                                          \
    static double fnn_train_r1_sgd_##S(T *p, const T *a, const T *d, T *back, T *s0, T *s1,   \
                                       ptrdiff_t K, ptrdiff_t N, T l2, T lr, T mom)            \
    {                                                                                          \
        return FNN_TRAIN_PICK(                                                                 \
            fnn_train_r1_sgd_v4_##S(p, a, d, back, s0, K, N, l2, lr, mom, 0),                  \
            fnn_train_r1_sgd_portable_##S(p, a, d, back, s0, s1, K, N, l2, lr, mom));          \
    }                                                                                          \
    static double fnn_train_r1_nesterov_##S(T *p, const T *a, const T *d, T *back, T *s0,      \
                                            T *s1, ptrdiff_t K, ptrdiff_t N, T l2, T lr,       \
                                            T mom)                                             \
    {                                                                                          \
        return FNN_TRAIN_PICK(                                                                 \
            fnn_train_r1_sgd_v4_##S(p, a, d, back, s0, K, N, l2, lr, mom, 1),                  \
            fnn_train_r1_nesterov_portable_##S(p, a, d, back, s0, s1, K, N, l2, lr, mom));     \
    }                                                                                          \
    static double fnn_train_r1_adam_##S(T *p, const T *a, const T *d, T *back, T *m, T *v,     \
                                        ptrdiff_t K, ptrdiff_t N, T l2, T lr_t, double b1,     \
                                        double b2, T eps)                                      \
    {                                                                                          \
        return FNN_TRAIN_PICK(                                                                 \
            fnn_train_r1_adam_v4_##S(p, a, d, back, m, v, K, N, l2, lr_t, b1, b2, eps),        \
            fnn_train_r1_adam_exact_##S(p, a, d, back, m, v, K, N, l2, lr_t, b1, b2, eps));    \
    }
FNN_TRAIN_DISPATCH(float, f32)
FNN_TRAIN_DISPATCH(double, f64)

#endif /* FASTNN_TRAIN_SMALL_H */
