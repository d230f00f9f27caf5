/*
 * fastnn_simd.h -- portable, vectorisable per-row kernels of the fastnn `cython` backend.
 *
 * Why this file exists: the speed of softmax / cross-entropy comes from a vectorised exp, and
 * gcc only vectorises libm's expf/exp under -ffast-math plus a native ISA, neither of which a
 * portable wheel may use (-inf logits are masked classes, so inf/NaN semantics must be kept).
 * So:
 *   - fnn_exp_f32 / fnn_exp_f64 are exp written as plain arithmetic (range reduction + polynomial
 *     + exponent bits) that gcc vectorises at -O3 without fast-math;
 *   - the per-row loops (row max, exp-and-sum into the output buffer, scale / subtract) are C
 *     functions whose reductions carry `#pragma omp simd reduction(...)` (enabled by
 *     -fopenmp-simd, no OpenMP runtime needed);
 *   - every row function is compiled for several ISAs (x86-64-v4 = AVX-512, x86-64-v3 =
 *     AVX2+FMA, default = SSE2): most with GCC function multiversioning (target_clones, picked
 *     at load time by an ifunc resolver), the softmax / hard-label cross-entropy row ranges as
 *     explicit per-ISA copies dispatched on fnn_isa() (forced by tests with fnn_set_isa), whose
 *     AVX-512 copy has an explicit register path for float rows of <= 128 classes.  Other
 *     compilers / platforms get plain functions.
 *
 * Threading is NOT done here: the Cython callers run rows in parallel with prange.
 *
 * Aliasing: the `out`/`g` buffer of a row function may be the very same memory as `z` (in-place
 * use).  Every loop reads z[c] before it writes out[c] at the same index, which `omp simd`
 * permits; the functions read whatever else they need (z[y]) before the first write.
 *
 * Sums are accumulated in double for both float and double data, with one exception: the row
 * sum of exps of the AVX-512 float short-row path (<= 128 classes) is added in float per lane
 * (<= 8 terms in [0, 1] a lane, a tree 3 roundings deep) and only its 16 lanes in double.
 */
#ifndef FASTNN_SIMD_H
#define FASTNN_SIMD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef FASTNN_OPENMP
#define FASTNN_OPENMP 0
#endif
#if FASTNN_OPENMP && defined(_OPENMP)
#include <omp.h>
#endif

/* ---- run-time ISA dispatch ------------------------------------------------------------- */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER) && \
    defined(__x86_64__) && defined(__linux__) && (__GNUC__ >= 12) && !defined(FASTNN_NO_CLONES)
#define FNN_HAVE_CLONES 1
#define FNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FNN_HAVE_CLONES 0
#define FNN_CLONES
#endif

#if defined(__GNUC__)
#define FNN_INLINE static inline __attribute__((always_inline))
#define FNN_PRAGMA(x) _Pragma(#x)
#else
#define FNN_INLINE static inline
#define FNN_PRAGMA(x)
#endif
#define FNN_SIMD FNN_PRAGMA(omp simd)
#define FNN_SIMD_SUM(v) FNN_PRAGMA(omp simd reduction(+ : v))
#define FNN_SIMD_SUM2(v, w) FNN_PRAGMA(omp simd reduction(+ : v, w))
#define FNN_SIMD_SUM3(v, w, x) FNN_PRAGMA(omp simd reduction(+ : v, w, x))
#define FNN_SIMD_MAX(v) FNN_PRAGMA(omp simd reduction(max : v))

/* OpenMP thread limit of the calling thread (threadpoolctl / OMP_NUM_THREADS change it). */
static inline int fnn_max_threads(void)
{
#if FASTNN_OPENMP && defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- ISA levels: 0 default (SSE2), 1 x86-64-v3 (AVX2+FMA), 2 x86-64-v4 (AVX-512) ---------
 * Most functions are target_clones picked by the loader.  The softmax / hard-label
 * cross-entropy row ranges are instead built once per level with explicit target attributes
 * and dispatched on fnn_isa(), so that tests can force a level (fnn_set_isa) and the AVX-512
 * copy can take an explicit short-row path. */
#define FNN_UNUSED __attribute__((unused))
#if FNN_HAVE_CLONES
#define FNN_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define FNN_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#endif

/* the best level this CPU (and this build) runs */
static FNN_UNUSED int fnn_isa_supported(void)
{
#if FNN_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return 2;
    if (__builtin_cpu_supports("x86-64-v3"))
        return 1;
#endif
    return 0;
}

static int fnn_isa_level = -1; /* per extension module; -1 until first use */
static inline int fnn_isa(void)
{
    if (fnn_isa_level < 0)
        fnn_isa_level = fnn_isa_supported();
    return fnn_isa_level;
}

/* Run this module's softmax / cross-entropy row ranges at `level` from now on: returns the
 * previous level, or -1 (and changes nothing) when this CPU or build cannot run it. */
static FNN_UNUSED int fnn_set_isa(int level)
{
    const int previous = fnn_isa();
    if (level < 0 || level > fnn_isa_supported())
        return -1;
    fnn_isa_level = level;
    return previous;
}

static FNN_UNUSED const char *fnn_simd_info(void)
{
#if FNN_HAVE_CLONES
    /* the row kernels are per-ISA copies chosen at run time; the rest are target_clones */
    static const char *running[] = {
        "run-time ISA selection {x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA), default (SSE2)}; "
        "running default",
        "run-time ISA selection {x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA), default (SSE2)}; "
        "running x86-64-v3",
        "run-time ISA selection {x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA), default (SSE2)}; "
        "running x86-64-v4",
    };
    return running[fnn_isa_supported()];
#else
    return "no run-time dispatch (single build for the compiler's baseline ISA)";
#endif
}

/* ---- exp ----------------------------------------------------------------------------------
 * exp(x) = 2^n * p(r), n = round(x / ln2), r = x - n ln2 (Cody-Waite hi/lo split), |r| <= ln2/2.
 * n is rounded with the 1.5 * 2^(mantissa bits) trick, so it needs no rint instruction (SSE2
 * has none) and its integer value is read straight from the bits.  2^n is built from the
 * exponent bits.
 *
 * Domain and accuracy (tests/test_kernels_isa.py: 2 million points against a long double exp):
 *   - x <= 0 (what softmax needs: z - max(z)), x = -inf, NaN.  Also right for 0 < x <= 88
 *     (float) / 0 < x <= 709 (double), but no kernel relies on that.
 *   - results that would be subnormal are flushed to +0: x < ln(FLT_MIN) = -87.3365 (float),
 *     x < ln(DBL_MIN) = -708.396 (double); -inf gives exactly 0 (branch-free select);
 *   - NaN in gives NaN out (the polynomial carries it), so a NaN logit reaches the row sum;
 *   - float: degree-6 near-minimax polynomial, max error 1.05 ulp; double: degree-13 Taylor
 *     (Horner), 0.86 ulp (the x86-64-v4 row ranges and float short rows use fnn_v4_exp_f32 /
 *     fnn_v4_exp_f64 instead, below: 0.55 / 0.66 ulp).  Those are the FMA builds
 *     (x86-64-v3/v4); the default SSE2 build has no FMA and rounds every Horner step twice:
 *     1.33 ulp (float), 1.14 ulp (double).
 */
/* Branch-free selects on the bit patterns.  A plain `c ? a : b` whose arms are floating-point
 * expressions is not if-converted under gcc's default -ftrapping-math (it will not execute a
 * possibly-trapping operation speculatively), and that keeps the loop from vectorising. */
FNN_INLINE float fnn_sel_f32(int c, float a, float b)
{
    uint32_t ua, ub, m = 0u - (uint32_t)(c != 0), r;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    r = (ua & m) | (ub & ~m);
    float f;
    memcpy(&f, &r, 4);
    return f;
}
FNN_INLINE double fnn_sel_f64(int c, double a, double b)
{
    uint64_t ua, ub, m = (uint64_t)0 - (uint64_t)(c != 0), r;
    memcpy(&ua, &a, 8);
    memcpy(&ub, &b, 8);
    r = (ua & m) | (ub & ~m);
    double f;
    memcpy(&f, &r, 8);
    return f;
}
#define FNN_ABS(x) ((x) < 0 ? -(x) : (x))
#define FNN_TAIL 16
#define FNN_LOG2E 1.44269504088896340736
FNN_INLINE float fnn_exp_f32(float x)
{
    const float magic = 12582912.0f; /* 0x1.8p23 */
    float t = x * (float)FNN_LOG2E + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;  /* ln2 hi (exact in n * hi) */
    r = r - n * -2.12194440e-4f;     /* ln2 lo */
    /* e^r ~ 1 + r (1 + r (c2 + r (c3 + r (c4 + r (c5 + r c6))))): a degree-6 near-minimax fit
     * of the relative error on |r| <= 1.02 ln2/2 (Lawson's algorithm; 2.3e-9 = 0.04 ulp), so
     * the result is within the rounding of the 6 FMAs (~1 ulp). */
    float p = 1.3841759646311402e-3f;
    p = p * r + 8.375782519578934e-3f;
    p = p * r + 4.16681133210659e-2f;
    p = p * r + 1.6666412353515625e-1f;
    p = p * r + 4.999999403953552e-1f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t tb, mb;
    memcpy(&tb, &t, 4);
    memcpy(&mb, &magic, 4);
    uint32_t eb = (tb - mb + 127u) << 23; /* = (n + 127) << 23 */
    float scale;
    memcpy(&scale, &eb, 4);
    float res = p * scale;
    /* res, or +0 below the cutoff (and for -inf); a NaN x fails the test and stays NaN */
    return fnn_sel_f32(x < -87.33654475f, 0.0f, res);
}

FNN_INLINE double fnn_exp_f64(double x)
{
    const double magic = 6755399441055744.0; /* 0x1.8p52 */
    double t = x * FNN_LOG2E + magic;
    double n = t - magic;
    double r = x - n * 6.93147180369123816490e-01; /* ln2 hi, fdlibm */
    r = r - n * 1.90821492927058770002e-10;        /* ln2 lo */
    double p = 1.0 / 6227020800.0;                 /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t tb, mb;
    memcpy(&tb, &t, 8);
    memcpy(&mb, &magic, 8);
    uint64_t eb = (tb - mb + 1023u) << 52;
    double scale;
    memcpy(&scale, &eb, 8);
    double res = p * scale;
    return fnn_sel_f64(x < -708.39641853226408, 0.0, res);
}

/* ---- log for the row sums (double, x >= 1 in use; right for any x > 0, NaN, +inf, 0) ------
 * fdlibm's e_log.c: x = 2^k (1 + f), sqrt(2)/2 <= 1 + f < sqrt(2), log(1 + f) from
 * s = f / (2 + f) and a degree-14 polynomial in s (error < 1 ulp), + k ln2 (hi/lo). Written
 * with bit operations and selects so that a loop over the logs of a block of rows vectorises. */
FNN_INLINE double fnn_log_f64(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, 8);
    /* scale the mantissa into [sqrt(2)/2, sqrt(2)): add 0x3ff0000000000000 - 0x3fe6a09e667f3bcd
     * trick: k = exponent of (x * sqrt(2)/2 ...) done as in musl's log */
    uint64_t ix = bits - 0x3fe6a09e667f3bcdULL;
    int64_t k = (int64_t)ix >> 52;                      /* signed exponent of x / (sqrt2/2) */
    uint64_t mb = (ix & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL;
    double m;
    memcpy(&m, &mb, 8);                                 /* m in [sqrt(2)/2, sqrt(2)) */
    double f = m - 1.0;
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 +
                     w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    double Rr = t2 + t1;
    double dk = (double)k;
    double res = s * (hfsq + Rr) + dk * 1.90821492927058770002e-10 - hfsq + f + dk * 6.93147180369123816490e-01;
    res = fnn_sel_f64(x == 0.0, -INFINITY, res);
    res = fnn_sel_f64(!(x < INFINITY), x + x, res); /* +inf -> inf, NaN -> NaN */
    res = fnn_sel_f64(x < 0.0, NAN, res);
    return res;
}

/* a[0] + ... + a[15] as a tree of vector adds (fixed loops that gcc unrolls and vectorises;
 * a loop over the halving width was compiled to scalar stack traffic) */
typedef double fnn_v8d __attribute__((vector_size(64)));
typedef double fnn_v4d __attribute__((vector_size(32)));
typedef double fnn_v2d __attribute__((vector_size(16)));
FNN_INLINE double fnn_hsum16(const double *a)
{
    /* gcc vector extensions: lowered to the clone's ISA (one zmm add, one ymm add, ...) */
    fnn_v8d x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, a + 8, sizeof y);
    x += y;
    fnn_v4d l = __builtin_shufflevector(x, x, 0, 1, 2, 3);
    l += __builtin_shufflevector(x, x, 4, 5, 6, 7);
    fnn_v2d q = __builtin_shufflevector(l, l, 0, 1);
    q += __builtin_shufflevector(l, l, 2, 3);
    return q[0] + q[1];
}

#define FNN_BLOCK 64
#define FNN_GROUP 2048 /* elements of a group of short rows */
#ifndef FNN_GROUP_MAX_C
#define FNN_GROUP_MAX_C 64 /* rows shorter than this take the group path */
#endif
/* Softmax and hard-label cross-entropy rows of FNN_GROUP_MAX_C classes or more whose exps do not
 * overwrite z first take the maximum of their first FNN_TAIL logits as the shift m of exp(z - m)
 * instead of the row's maximum (softmax is shift-invariant; one pass over the row less: about
 * 10% faster at 4096 x 1000 float32 and 10-25% at 512 x 32000, benchmarks/README.md).  m is
 * then at most the row's maximum, so the sum s of the exps is at least 1 (the term of m itself);
 * the result is kept when s is also at most FNN_GUESS_MAX_SUM (every exp is then finite and
 * 1 / s a normal number in float), else (a larger logit further on, or a NaN / infinite one) the
 * row is redone from its maximum. */
#define FNN_GUESS_MAX_SUM 18446744073709551616.0 /* 2^64 */
/* after a miss, the next FNN_GUESS_PAUSE rows take their maximum first (rows of confident logits
 * that always miss then pay one wasted exp pass in 17 rows, not in every row) */
#define FNN_GUESS_PAUSE 16
/* whether this row takes the first-vector shift: not while *pause counts down the rows after a
 * miss (fnn_guess_check sets it to FNN_GUESS_PAUSE then) */
FNN_INLINE int fnn_guess_turn(ptrdiff_t *pause)
{
    if (*pause == 0)
        return 1;
    (*pause)--;
    return 0;
}
/* whether the row whose first-vector shift gave the exp sum s can be kept; a miss sets *pause */
FNN_INLINE int fnn_guess_check(double s, ptrdiff_t *pause)
{
    if (s >= 1.0 && s <= FNN_GUESS_MAX_SUM)
        return 1;
    *pause = FNN_GUESS_PAUSE;
    return 0;
}
/* The shift x = z - m of a first-vector guess may be positive and beyond the exps' domain (they
 * are right up to 88 in float, 709 in double): the exp-sum passes of a guess take
 * min(x, FNN_GUESS_XMAX_*) (NaN stays NaN), whose exp is still far above FNN_GUESS_MAX_SUM. */
#define FNN_GUESS_XMAX_F32 80.0f
#define FNN_GUESS_XMAX_F64 700.0
FNN_INLINE float fnn_xclamp_f32(float x, int clamp)
{
    return clamp ? fnn_sel_f32(x > FNN_GUESS_XMAX_F32, FNN_GUESS_XMAX_F32, x) : x;
}
FNN_INLINE double fnn_xclamp_f64(double x, int clamp)
{
    return clamp ? fnn_sel_f64(x > FNN_GUESS_XMAX_F64, FNN_GUESS_XMAX_F64, x) : x;
}
/* rows per block: the block's rows stay in L1 (<= 2048 elements) between the passes */
#define FNN_BLOCK_ROWS(C) ((C) >= FNN_GROUP ? 1 : ((FNN_GROUP / ((C) > 0 ? (C) : 1)) > FNN_BLOCK ? FNN_BLOCK : (FNN_GROUP / ((C) > 0 ? (C) : 1))))

/* L_i of a hard-label cross-entropy row: a = label coefficient, b = smoothing weight per w_c,
 * s and ls = the sum of exp(z - m) and its log, dy = z_y - m, sd = the smoothing term, si = the
 * sample weight (0 gives 0, even on a masked class); NaN when s is (a NaN / +inf logit, or an
 * all -inf row) */
FNN_INLINE double fnn_ce_row_loss(double a, double b, double W, double s, double ls, double dy,
                                  double sd, double si)
{
    double L = 0.0;
    if (a != 0.0)
        L += a * (ls - dy);
    if (b != 0.0)
        L += b * (W * ls - sd);
    L = si != 0.0 ? si * L : 0.0;
    return s != s ? NAN : L;
}

/* The gradient of a hard-label cross-entropy row is A e - B w (e = exp(z - m)) with the label
 * column replaced by the value returned: kk (Q p_y - a - b w_y), with Q p_y - a written as
 * (a (e_y - s) + b W e_y) / s so that p_y ~ 1 does not cancel; *A = kk (a + b W) / s */
FNN_INLINE double fnn_ce_label_grad(double kk, double a, double b, double W, double s, double ey,
                                    double wy, double *A)
{
    const double inv_s = 1.0 / s;
    *A = kk * (a + b * W) * inv_s;
    return kk * ((a * (ey - s) + b * W * ey) * inv_s - b * wy);
}

/* Prefetch the `bytes` (a multiple of 64) at p + row_bytes, the same columns of the next row
 * (rows are contiguous), into L1 while this row computes its exps, so that the next row's max
 * pass reads it from cache instead of waiting on memory (x86-64-v4: 512 x 32000 about 19%
 * faster, 4096 x 1000 double 14%).  A prefetch never faults, past the last row included;
 * integer arithmetic, because a pointer past the end of the array would be undefined. */
FNN_INLINE void fnn_prefetch_next_row(const void *p, size_t row_bytes, const int bytes)
{
#if defined(__GNUC__)
    const uintptr_t a = (uintptr_t)p + row_bytes;
    for (int b = 0; b < bytes; b += 64)
        __builtin_prefetch((const void *)(a + (uintptr_t)b), 0, 3);
#else
    (void)p, (void)row_bytes, (void)bytes;
#endif
}

/* ---- the per-row kernels, written once for float and double ---------------------------- */
#define FNN_DEFINE_ROWS(T, S, EXP, SEL, LOG1P, EXPM1, TANH, SQRT)                                      \
                                                                                                  \
    /* The loops below run a vector main loop over the first C - C % FNN_TAIL entries and one  \
     * fixed-length block of FNN_TAIL lanes for the rest, with the lanes past the end masked    \
     * (masked loads/stores on AVX2/AVX-512; padding -inf is neutral for max and exp-sum).      \
     * A scalar remainder loop would run up to 15 scalar exps per row: for short rows          \
     * (C = 10, 100) that was most of the time. */                                            \
    FNN_INLINE T fnn_rowmax_##S(const T *z, ptrdiff_t C)                                         \
    {                                                                                             \
        const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv;                                        \
        T m = -INFINITY;                                                                          \
        FNN_SIMD_MAX(m)                                                                           \
        for (ptrdiff_t c = 0; c < Cv; c++)                                                        \
            m = z[c] > m ? z[c] : m;                                                              \
        if (r) {                                                                                  \
            const T *zt = z + Cv;                                                                 \
            T mt = -INFINITY;                                                                     \
            FNN_SIMD_MAX(mt)                                                                      \
            for (ptrdiff_t j = 0; j < FNN_TAIL; j++) {                                            \
                T x = j < r ? zt[j] : (T)-INFINITY;                                               \
                mt = x > mt ? x : mt;                                                             \
            }                                                                                     \
            m = mt > m ? mt : m;                                                                  \
        }                                                                                         \
        return m;                                                                                 \
    }                                                                                             \
                                                                                                  \
    /* sum_c exp(z_c - m), writing the exps to e (which may be z) when e is not NULL.          \
     * The last C % FNN_TAIL exps go to tail[0 .. FNN_TAIL) (64-byte aligned, unused lanes 0)    \
     * instead of e when tail is not NULL: the caller scales them from there and writes them     \
     * once (reading back a masked store stalls store-to-load forwarding).                       \
     * The sum is accumulated in FNN_TAIL double lanes and added up as a tree at the end: an    \
     * `omp simd reduction(+)` over doubles ends in a serial chain of lane adds, which is most  \
     * of the cost of a short row. */                                                            \
    FNN_INLINE double fnn_expsum_##S(const T *z, T *e, ptrdiff_t C, T m, T *tail, int clamp)  \
    {                                                                                             \
        const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv;                                        \
        double acc[FNN_TAIL] __attribute__((aligned(64)));                                        \
        for (int j = 0; j < FNN_TAIL; j++)                                                        \
            acc[j] = 0.0;                                                                         \
        /* two chunks per step: their exps are added in T (one rounding, like the exp's own   \
         * error) before the double accumulation, which halves the float->double work */         \
        const ptrdiff_t C2 = Cv - Cv % (2 * FNN_TAIL);                                            \
        if (e) {                                                                                  \
            for (ptrdiff_t c = 0; c < C2; c += 2 * FNN_TAIL) {                                    \
                fnn_prefetch_next_row(z + c, C * sizeof(T), 2 * FNN_TAIL * sizeof(T));            \
                FNN_SIMD                                                                          \
                for (int j = 0; j < FNN_TAIL; j++) {                                              \
                    T v = EXP(fnn_xclamp_##S(z[c + j] - m, clamp));                               \
                    T u = EXP(fnn_xclamp_##S(z[c + FNN_TAIL + j] - m, clamp));                    \
                    e[c + j] = v;                                                                 \
                    e[c + FNN_TAIL + j] = u;                                                      \
                    acc[j] += (double)(v + u);                                                    \
                }                                                                                 \
            }                                                                                     \
            if (C2 < Cv) {                                                                        \
                FNN_SIMD                                                                          \
                for (int j = 0; j < FNN_TAIL; j++) {                                              \
                    T v = EXP(fnn_xclamp_##S(z[C2 + j] - m, clamp));                              \
                    e[C2 + j] = v;                                                                \
                    acc[j] += v;                                                                  \
                }                                                                                 \
            }                                                                                     \
        } else {                                                                                  \
            for (ptrdiff_t c = 0; c < C2; c += 2 * FNN_TAIL) {                                    \
                fnn_prefetch_next_row(z + c, C * sizeof(T), 2 * FNN_TAIL * sizeof(T));            \
                FNN_SIMD                                                                          \
                for (int j = 0; j < FNN_TAIL; j++)                                                \
                    acc[j] += (double)(EXP(fnn_xclamp_##S(z[c + j] - m, clamp))                   \
                                       + EXP(fnn_xclamp_##S(z[c + FNN_TAIL + j] - m, clamp)));    \
            }                                                                                     \
            if (C2 < Cv) {                                                                        \
                FNN_SIMD                                                                          \
                for (int j = 0; j < FNN_TAIL; j++)                                                \
                    acc[j] += EXP(fnn_xclamp_##S(z[C2 + j] - m, clamp));                          \
            }                                                                                     \
        }                                                                                         \
        if (r) {                                                                                  \
            const T *zt = z + Cv;                                                                 \
            T tb[FNN_TAIL] __attribute__((aligned(64)));                                          \
            FNN_SIMD                                                                              \
            for (int j = 0; j < FNN_TAIL; j++) {                                                  \
                T x = j < r ? zt[j] : (T)-INFINITY;                                               \
                T v = EXP(fnn_xclamp_##S(x - m, clamp));                                          \
                v = fnn_sel_##S(j < r, v, (T)0); /* 0 also when m = -inf (NaN row anyway) */      \
                tb[j] = v;                                                                        \
                acc[j] += v;                                                                      \
            }                                                                                     \
            if (tail) {                                                                           \
                for (int j = 0; j < FNN_TAIL; j++)                                                \
                    tail[j] = tb[j];                                                              \
            } else if (e) {                                                                       \
                T *et = e + Cv;                                                                   \
                FNN_SIMD                                                                          \
                for (int j = 0; j < FNN_TAIL; j++)                                                \
                    if (j < r)                                                                    \
                        et[j] = tb[j];                                                            \
            }                                                                                     \
        }                                                                                         \
        return fnn_hsum16(acc);                                                                   \
    }                                                                                             \
                                                                                                  \
    /* x[0 .. C) *= a, the last C % FNN_TAIL entries taken from tail (see fnn_expsum) when     \
     * tail is not NULL */                                                                        \
    FNN_INLINE void fnn_scale_tail_##S(T *x, ptrdiff_t C, T a, const T *tail)                   \
    {                                                                                             \
        const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv;                                        \
        for (ptrdiff_t c = 0; c < Cv; c += FNN_TAIL) {                                            \
            FNN_SIMD                                                                              \
            for (int j = 0; j < FNN_TAIL; j++)                                                    \
                x[c + j] *= a;                                                                    \
        }                                                                                         \
        if (r) {                                                                                  \
            T *xt = x + Cv;                                                                       \
            FNN_SIMD                                                                              \
            for (int j = 0; j < FNN_TAIL; j++) {                                                  \
                T v = (tail ? tail[j] : (j < r ? xt[j] : (T)0)) * a;                              \
                if (j < r)                                                                        \
                    xt[j] = v;                                                                    \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* ---- short rows (C < FNN_GROUP_MAX_C): a group of rows at a time -------------------      \
     * (helpers here; the group loops fnn_*_group are per ISA, in FNN_DEFINE_ROW_RANGES)         \
     * 1. per row: max (the masked vector of fnn_rowmax: a scalar loop's serial max chain cost   \
     *    ~10% at 10 double classes), then d = z - m written to e (output / gradient / scratch); \
     * 2. one flat exp loop over the whole group in place, the ISA's exp (full vectors: a        \
     *    per-row loop of 10 classes would be 10/16 of a vector plus per-row setup);             \
     * 3. per row: the double sum, then the scaling.  Same numbers as the long-row path:         \
     *    exp is computed from the same T value z - m. */                                        \
    FNN_INLINE double fnn_rowsum_short_##S(const T *e, ptrdiff_t C)                              \
    {                                                                                             \
        double s = 0.0;                                                                           \
        FNN_SIMD_SUM(s)                                                                           \
        for (ptrdiff_t c = 0; c < C; c++)                                                         \
            s += e[c];                                                                            \
        return s;                                                                                 \
    }                                                                                             \
    FNN_INLINE void fnn_exp_inplace_##S(T *e, ptrdiff_t n)                                       \
    {                                                                                             \
        FNN_SIMD                                                                                  \
        for (ptrdiff_t j = 0; j < n; j++)                                                         \
            e[j] = EXP(e[j]);                                                                     \
    }                                                                                             \
                                                                                                  \
    /* log_softmax (mode 1) or logsumexp (mode 2) of the nb rows from b0, from their maxima mb  \
     * and sums of exponentials sb */                                                           \
    FNN_INLINE void fnn_logsm_block_##S(const T *z, T *out, ptrdiff_t b0, ptrdiff_t nb,         \
                                        ptrdiff_t C, const T *mb, const double *sb, int mode)   \
    {                                                                                           \
        double lb[FNN_BLOCK];                                                                   \
        FNN_SIMD                                                                                \
        for (ptrdiff_t k = 0; k < nb; k++)                                                      \
            lb[k] = fnn_log_f64(sb[k]);                                                         \
        if (mode == 2) {                                                                        \
            for (ptrdiff_t k = 0; k < nb; k++)                                                  \
                out[b0 + k] = (T)((double)mb[k] + lb[k]);                                       \
            return;                                                                             \
        }                                                                                       \
        for (ptrdiff_t k = 0; k < nb; k++) {                                                    \
            const T *zi = z + (b0 + k) * C;                                                     \
            T *oi = out + (b0 + k) * C;                                                         \
            const T m = mb[k], ls = (T)lb[k];                                                   \
            FNN_SIMD                                                                            \
            for (ptrdiff_t c = 0; c < C; c++)                                                   \
                oi[c] = (zi[c] - m) - ls;                                                       \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    /* the smoothing term sum_c w_c (z_c - m) over the classes with w_c != 0 (w NULL: ones) */  \
    FNN_INLINE double fnn_ce_smooth_sum_##S(const T *zi, ptrdiff_t C, T m, const T *w)          \
    {                                                                                           \
        double sd = 0.0;                                                                        \
        if (w) {                                                                                \
            FNN_SIMD_SUM(sd)                                                                    \
            for (ptrdiff_t c = 0; c < C; c++)                                                   \
                sd += fnn_sel_f64(w[c] != 0, (double)w[c] * (double)(zi[c] - m), 0.0);          \
        } else {                                                                                \
            FNN_SIMD_SUM(sd)                                                                    \
            for (ptrdiff_t c = 0; c < C; c++)                                                   \
                sd += (double)(zi[c] - m);                                                      \
        }                                                                                       \
        return sd;                                                                              \
    }                                                                                           \
                                                                                                \
    /* ---- cross-entropy, soft targets: q_c = si * w_c ((1-eps) t_c + eps/C) */                 \
    FNN_CLONES double fnn_ce_soft_row_##S(const T *z, const T *t, T *g, ptrdiff_t C,             \
                                          const T *w, double eps, double si, double scale)       \
    {                                                                                             \
        const double b = eps / (double)C, a = 1.0 - eps;                                          \
        const T m = fnn_rowmax_##S(z, C);                                                         \
        double s = 0.0, U = 0.0, ud = 0.0; /* U = sum u_c, ud = sum_{u_c != 0} u_c (z_c - m) */  \
        FNN_SIMD_SUM3(s, U, ud)                                                                   \
        for (ptrdiff_t c = 0; c < C; c++) {                                                       \
            T d = z[c] - m;                                                                       \
            T e = EXP(d);                                                                         \
            double u = (a * (double)t[c] + b) * (w ? (double)w[c] : 1.0);                         \
            if (g)                                                                                \
                g[c] = e;                                                                         \
            s += e;                                                                               \
            U += u;                                                                               \
            ud += fnn_sel_f64(u != 0.0, u * (double)d, 0.0);                                      \
        }                                                                                         \
        double L = U * log(s) - ud;                                                               \
        L = si != 0.0 ? si * L : 0.0;                                                             \
        if (s != s)                                                                               \
            L = NAN;                                                                              \
        if (g) {                                                                                  \
            const double k = scale * si, A = k * U / s;                                           \
            FNN_SIMD                                                                              \
            for (ptrdiff_t c = 0; c < C; c++) {                                                   \
                double u = (a * (double)t[c] + b) * (w ? (double)w[c] : 1.0);                     \
                g[c] = (T)(A * (double)g[c] - k * u);                                             \
            }                                                                                     \
        }                                                                                         \
        return L;                                                                                 \
    }                                                                                             \
                                                                                                  \
    /* ---- binary cross-entropy on logits, one row of k outputs ---- */                         \
    FNN_CLONES double fnn_bce_row_##S(const T *z, const T *y, T *g, ptrdiff_t k, double si,      \
                                      double scale)                                              \
    {                                                                                             \
        double L = 0.0;                                                                           \
        const T ks = (T)(scale * si);                                                             \
        for (ptrdiff_t j = 0; j < k; j++) {                                                       \
            const T zj = z[j], yj = y[j];                                                         \
            const T e = EXP(-FNN_ABS(zj));                                                           \
            L += (double)((zj > 0 ? zj : (T)0) - yj * zj) + (double)LOG1P(e);                     \
            if (g) {                                                                              \
                const T d1 = (T)1 / ((T)1 + e);                                                   \
                const T sig = SEL(zj >= 0, d1, e * d1);                                           \
                g[j] = ks * (sig - yj);                                                           \
            }                                                                                     \
        }                                                                                         \
        return si * L;                                                                            \
    }                                                                                             \
                                                                                                  \
    /* ---- quadratic cost; act 0 identity, 1 logistic, 2 softmax ---- */                        \
    FNN_CLONES double fnn_sqerr_row_##S(const T *z, const T *y, T *g, ptrdiff_t k, int act,      \
                                        double si, double scale)                                 \
    {                                                                                             \
        double L = 0.0;                                                                           \
        const T ks = (T)(scale * si);                                                             \
        if (act == 0) {                                                                           \
            if (g) {                                                                              \
                FNN_SIMD_SUM(L)                                                                   \
                for (ptrdiff_t j = 0; j < k; j++) {                                               \
                    T d = z[j] - y[j];                                                            \
                    L += (double)d * (double)d;                                                   \
                    g[j] = ks * d;                                                                \
                }                                                                                 \
            } else {                                                                              \
                FNN_SIMD_SUM(L)                                                                   \
                for (ptrdiff_t j = 0; j < k; j++) {                                               \
                    T d = z[j] - y[j];                                                            \
                    L += (double)d * (double)d;                                                   \
                }                                                                                 \
            }                                                                                     \
        } else if (act == 1) {                                                                    \
            FNN_SIMD_SUM(L)                                                                       \
            for (ptrdiff_t j = 0; j < k; j++) {                                                   \
                T zj = z[j];                                                                      \
                T e = EXP(-FNN_ABS(zj));                                                             \
                T d1 = (T)1 / ((T)1 + e);                                                         \
                T a = SEL(zj >= 0, d1, e * d1);                                                   \
                T d = a - y[j];                                                                   \
                L += (double)d * (double)d;                                                       \
                if (g)                                                                            \
                    g[j] = ks * d * a * ((T)1 - a);                                               \
            }                                                                                     \
        } else {                                                                                  \
            const T m = fnn_rowmax_##S(z, k);                                                     \
            if (g) {                                                                              \
                const T inv = (T)(1.0 / fnn_expsum_##S(z, g, k, m, NULL, 0));                              \
                double S = 0.0;                                                                   \
                FNN_SIMD_SUM2(L, S)                                                               \
                for (ptrdiff_t j = 0; j < k; j++) {                                               \
                    T a = g[j] * inv;                                                             \
                    T d = a - y[j];                                                               \
                    g[j] = a;                                                                     \
                    L += (double)d * (double)d;                                                   \
                    S += (double)a * (double)d;                                                   \
                }                                                                                 \
                const T Sf = (T)S;                                                                \
                FNN_SIMD                                                                          \
                for (ptrdiff_t j = 0; j < k; j++) {                                               \
                    T a = g[j];                                                                   \
                    g[j] = ks * a * ((a - y[j]) - Sf);                                            \
                }                                                                                 \
            } else {                                                                              \
                const T inv = (T)(1.0 / fnn_expsum_##S(z, NULL, k, m, NULL, 0));                           \
                FNN_SIMD_SUM(L)                                                                   \
                for (ptrdiff_t j = 0; j < k; j++) {                                               \
                    T d = EXP(z[j] - m) * inv - y[j];                                             \
                    L += (double)d * (double)d;                                                   \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        return 0.5 * si * L;                                                                      \
    }                                                                                             \
                                                                                                  \
    /* ---- activations on [0, n): 0 identity 1 logistic 2 tanh 3 relu 4 leaky_relu 5 softplus   \
     * 6 elu.  out may be z. */                                                                   \
    FNN_CLONES void fnn_activation_##S(int act, const T *z, T *out, ptrdiff_t n)                 \
    {                                                                                             \
        switch (act) {                                                                            \
        case 0:                                                                                   \
            if (out != z)                                                                         \
                memmove(out, z, (size_t)n * sizeof(T));                                           \
            break;                                                                                \
        case 1:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T x = z[i], e = EXP(-FNN_ABS(x));                                                 \
                T d1 = (T)1 / ((T)1 + e);                                                         \
                out[i] = SEL(x >= 0, d1, e * d1);                                                 \
            }                                                                                     \
            break;                                                                                \
        case 2:                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = TANH(z[i]);                                                              \
            break;                                                                                \
        case 3:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T x = z[i];                                                                       \
                out[i] = x > 0 ? x : (x != x ? x : (T)0);                                         \
            }                                                                                     \
            break;                                                                                \
        case 4:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T x = z[i];                                                                       \
                out[i] = SEL(x > 0, x, (T)0.01 * x);                                              \
            }                                                                                     \
            break;                                                                                \
        case 5:                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T x = z[i];                                                                       \
                out[i] = LOG1P(EXP(-FNN_ABS(x))) + (x > 0 ? x : (T)0);                               \
            }                                                                                     \
            break;                                                                                \
        default:                                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T x = z[i];                                                                       \
                out[i] = x > 0 ? x : EXPM1(x);                                                    \
            }                                                                                     \
            break;                                                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* out = upstream * f'(z), f' from the output a = f(z); out may be upstream */               \
    FNN_CLONES void fnn_activation_grad_##S(int act, const T *a, const T *u, T *out,             \
                                            ptrdiff_t n)                                         \
    {                                                                                             \
        switch (act) {                                                                            \
        case 0:                                                                                   \
            if (out != u)                                                                         \
                memmove(out, u, (size_t)n * sizeof(T));                                           \
            break;                                                                                \
        case 1:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * (a[i] * ((T)1 - a[i]));                                           \
            break;                                                                                \
        case 2:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * ((T)1 - a[i] * a[i]);                                             \
            break;                                                                                \
        case 3:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * (a[i] > 0 ? (T)1 : (T)0);                                         \
            break;                                                                                \
        case 4:                                                                                   \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * (a[i] > 0 ? (T)1 : (T)0.01);                                      \
            break;                                                                                \
        case 5:                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * -EXPM1(-a[i]);                                                    \
            break;                                                                                \
        default:                                                                                  \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++)                                                     \
                out[i] = u[i] * SEL(a[i] > 0, (T)1, a[i] + (T)1);                                 \
            break;                                                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* ---- optimizer steps on [0, n), in place; g_eff = g + l2 p on the fly ---- */             \
    FNN_CLONES void fnn_sgd_##S(T *p, const T *g, T *v, ptrdiff_t n, T lr, T mom, int nesterov,  \
                                T l2)                                                            \
    {                                                                                             \
        if (nesterov) {                                                                           \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T ge = g[i] + l2 * p[i];                                                          \
                T vi = mom * v[i] - lr * ge;                                                      \
                v[i] = vi;                                                                        \
                p[i] += mom * vi - lr * ge;                                                       \
            }                                                                                     \
        } else {                                                                                  \
            FNN_SIMD                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) {                                                   \
                T ge = g[i] + l2 * p[i];                                                          \
                T vi = mom * v[i] - lr * ge;                                                      \
                v[i] = vi;                                                                        \
                p[i] += vi;                                                                       \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    FNN_CLONES void fnn_adam_clones_##S(T *p, const T *g, T *m, T *v, ptrdiff_t n, T lr_t,      \
                                        double b1_, double b2_, T eps, T l2)                     \
    {                                                                                             \
        /* 1 - beta in double, then rounded: what NumPy does with (1 - beta1) * g */              \
        const T b1 = (T)b1_, b2 = (T)b2_, c1 = (T)(1.0 - b1_), c2 = (T)(1.0 - b2_);               \
        FNN_SIMD                                                                                  \
        for (ptrdiff_t i = 0; i < n; i++) {                                                       \
            T ge = g[i] + l2 * p[i];                                                              \
            T mi = b1 * m[i] + c1 * ge;                                                           \
            T vi = b2 * v[i] + c2 * (ge * ge);                                                    \
            m[i] = mi;                                                                            \
            v[i] = vi;                                                                            \
            p[i] -= lr_t * mi / (SQRT(vi) + eps);                                                 \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    FNN_CLONES void fnn_adagrad_##S(T *p, const T *g, T *acc, ptrdiff_t n, T lr, T eps, T l2)    \
    {                                                                                             \
        FNN_SIMD                                                                                  \
        for (ptrdiff_t i = 0; i < n; i++) {                                                       \
            T ge = g[i] + l2 * p[i];                                                              \
            T ai = acc[i] + ge * ge;                                                              \
            acc[i] = ai;                                                                          \
            p[i] -= lr * ge / (SQRT(ai) + eps);                                                   \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    FNN_CLONES void fnn_rmsprop_##S(T *p, const T *g, T *sq, ptrdiff_t n, T lr, double rho_,     \
                                    T eps, T l2)                                                 \
    {                                                                                             \
        const T rho = (T)rho_, c = (T)(1.0 - rho_);                                               \
        FNN_SIMD                                                                                  \
        for (ptrdiff_t i = 0; i < n; i++) {                                                       \
            T ge = g[i] + l2 * p[i];                                                              \
            T si = rho * sq[i] + c * (ge * ge);                                                   \
            sq[i] = si;                                                                           \
            p[i] -= lr * ge / (SQRT(si) + eps);                                                   \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    FNN_CLONES void fnn_adadelta_##S(T *p, const T *g, T *acc_g, T *acc_dx, ptrdiff_t n, T lr,   \
                                     double rho_, T eps, T l2)                                   \
    {                                                                                             \
        const T rho = (T)rho_, c = (T)(1.0 - rho_);                                               \
        FNN_SIMD                                                                                  \
        for (ptrdiff_t i = 0; i < n; i++) {                                                       \
            T ge = g[i] + l2 * p[i];                                                              \
            T ag = rho * acc_g[i] + c * (ge * ge);                                                \
            T dx = SQRT(acc_dx[i] + eps) / SQRT(ag + eps) * ge;                                   \
            acc_g[i] = ag;                                                                        \
            acc_dx[i] = rho * acc_dx[i] + c * (dx * dx);                                          \
            p[i] -= lr * dx;                                                                      \
        }                                                                                         \
    }

FNN_DEFINE_ROWS(float, f32, fnn_exp_f32, fnn_sel_f32, log1pf, expm1f, tanhf, sqrtf)
FNN_DEFINE_ROWS(double, f64, fnn_exp_f64, fnn_sel_f64, log1p, expm1, tanh, sqrt)

/* ---- AVX-512 Adam: exact division and square root partly on the FMA units --------------
 * Zen 4 runs vsqrtpd zmm in ~11.4 and vdivpd zmm in ~6.3 cycles per 8 doubles (float: ~7 and
 * ~4.5 per 16) on one divider, which bounds Adam's element update; the FMA units compute the
 * same IEEE results (fnn_v4_div_nr_*, fnn_v4_sqrt_nr_*), so a share of the vectors takes them
 * while the others use the divider.  Used by the batch-1 kernels (_train_small_v4.h, whose
 * FNN_V4 is FNN_TARGET_AVX512: gcc does not inline across different arch= targets) and by
 * fnn_adam_f32 / fnn_adam_f64 below on CPUs with AVX-512 (fnn_adam_clones_* elsewhere). */
#if FNN_HAVE_CLONES
#include <immintrin.h>
#define FNN_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,fma")))

/* vfpclass categories */
#define FNN_FPC_DENORMAL 0x20
#define FNN_FPC_ZERO 0x06
#define FNN_FPC_NOT_NORMAL 0xBF /* NaN, +-0, +-inf, denormal: all but finite normal numbers */

/* Element type T (suffix S), vector VT, lane mask MT, intrinsic suffix P (ps / pd), integer
 * lane width W; NR Newton-Raphson steps take a 14-bit reciprocal to full precision (float 1,
 * double 2); EXP the exponent field and MANT the mantissa bits; square roots of inputs in
 * [SQRT_LO, max] (bit pattern SQRT_LO_BITS, INF_BITS that of +inf) are computed on the FMA
 * units with the bias SQRT_BIAS (see fnn_v4_sqrt_nr_*). */
#define FNN_DEFINE_V4_NR(T, S, VT, MT, P, W, NR, EXP, MANT, SQRT_LO_BITS, INF_BITS, SQRT_BIAS)    \
    /* num / den on the FMA units: estimate of 1 / den (14 bits), NR Newton-Raphson steps to a    \
     * full reciprocal r, q = num r, then the residual step q += (num - den q) r (Markstein),     \
     * which gives the division's result when num and q are normal numbers.  A vector with a      \
     * subnormal num is divided (the residual is then not exact); lanes whose q is not a          \
     * finite normal number (NaN from den = +inf or an infinite num, overflow, a subnormal        \
     * quotient) are divided again, except +-0 / den, whose sign the residual step can lose       \
     * and num den restores (the moments of a long-dead unit underflow to +-0: not worth a        \
     * division each time).  Lanes outside `live` are not looked at. */                           \
    FNN_TARGET_AVX512 FNN_INLINE VT fnn_v4_div_nr_##S(VT num, VT den, MT live)                    \
    {                                                                                             \
        if (__builtin_expect(_mm512_mask_fpclass_##P##_mask(live, num, FNN_FPC_DENORMAL) != 0,    \
                             0))                                                                  \
            return _mm512_div_##P(num, den);                                                      \
        const VT one = _mm512_set1_##P(1.0);                                                      \
        VT r = _mm512_rcp14_##P(den);                                                             \
        for (int k = 0; k < NR; k++)                                                              \
            r = _mm512_fmadd_##P(r, _mm512_fnmadd_##P(den, r, one), r);                           \
        VT q = _mm512_mul_##P(num, r);                                                            \
        q = _mm512_fmadd_##P(_mm512_fnmadd_##P(den, q, num), r, q);                               \
        MT bad = _mm512_mask_fpclass_##P##_mask(live, q, FNN_FPC_NOT_NORMAL);                     \
        if (__builtin_expect(bad != 0, 0)) {                                                      \
            const MT zero = _mm512_mask_fpclass_##P##_mask(bad, num, FNN_FPC_ZERO) &              \
                            _mm512_fpclass_##P##_mask(q, FNN_FPC_ZERO);                           \
            q = _mm512_mask_mul_##P(q, zero, num, den);                                           \
            bad &= ~zero;                                                                         \
            if (bad)                                                                              \
                q = _mm512_mask_div_##P(q, bad, num, den);                                        \
        }                                                                                         \
        return q;                                                                                 \
    }                                                                                             \
                                                                                                  \
    /* sqrt(a) on the FMA units, the IEEE result for a in [SQRT_LO, max]; the other lanes of      \
     * `live` (0, subnormal, tiny, inf, NaN, negative) take the divider's square root.            \
     * y = 1/sqrt(a) to 14 bits; NR coupled steps take g = a y to sqrt(a) and h = y / 2 to        \
     * 1 / (2 sqrt(a)), the last one leaving g low by a relative SQRT_BIAS (+- 2^-p); then        \
     * c = RZ(g + (a - g g) h) (Markstein, rounded toward zero).  For g = sqrt(a) (1 + e) the     \
     * exact value of g + (a - g g) h is sqrt(a) (1 - e^2 / 2 - e (f + d)), f the relative        \
     * error of h and d that of the rounding of a - g g (both < 2^(1-p)), so the bias makes it    \
     * fall below sqrt(a) by a relative SQRT_BIAS^2 / 2 (+- 30%): c is the truncation of sqrt(a)  \
     * or its predecessor, and the result is c or its successor, c + ulp(c) exactly when          \
     * sqrt(a) is above the midpoint c + ulp(c) / 2, that is when a - c c > c ulp(c).  Both       \
     * sides of that test are multiples of ulp(c)^2 and c ulp(c) < 2^p ulp(c)^2, so the FMA's     \
     * rounding of a - c c cannot move it across c ulp(c) (SQRT_LO keeps all of them normal). */  \
    FNN_TARGET_AVX512 FNN_INLINE VT fnn_v4_sqrt_nr_##S(VT a, MT live)                             \
    {                                                                                             \
        const __m512i ai = _mm512_cast##P##_si512(a);                                             \
        const MT outside = _mm512_mask_cmpge_epu##W##_mask(                                       \
            live, _mm512_sub_epi##W(ai, _mm512_set1_epi##W(SQRT_LO_BITS)),                        \
            _mm512_set1_epi##W((INF_BITS) - (SQRT_LO_BITS)));                                     \
        const VT half = _mm512_set1_##P(0.5);                                                     \
        const VT y = _mm512_rsqrt14_##P(a);                                                       \
        VT g = _mm512_mul_##P(a, y), h = _mm512_mul_##P(half, y);                                 \
        for (int k = 0; k < NR - 1; k++) {                                                        \
            const VT r = _mm512_fnmadd_##P(g, h, half);                                           \
            g = _mm512_fmadd_##P(g, r, g);                                                        \
            h = _mm512_fmadd_##P(h, r, h);                                                        \
        }                                                                                         \
        const VT r = _mm512_fnmadd_##P(g, h, half);                                               \
        h = _mm512_fmadd_##P(h, r, h);                                                            \
        g = _mm512_fmadd_##P(g, _mm512_sub_##P(r, _mm512_set1_##P(SQRT_BIAS)), g);                \
        VT c = _mm512_fmadd_round_##P(_mm512_fnmadd_##P(g, g, a), h, g,                           \
                                      _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);                    \
        /* ulp(c) = 2^(exponent of c - MANT), from c's bits (normal: c >= sqrt(SQRT_LO)) */       \
        const __m512i e = _mm512_and_si512(_mm512_cast##P##_si512(c), _mm512_set1_epi##W(EXP));   \
        const VT ulp = _mm512_castsi512_##P(                                                      \
            _mm512_sub_epi##W(e, _mm512_set1_epi##W((fnn_bits_##T)(MANT) << (MANT))));            \
        const MT up = _mm512_cmp_##P##_mask(_mm512_fnmadd_##P(c, c, a), _mm512_mul_##P(c, ulp),   \
                                            _CMP_GT_OQ);                                          \
        c = _mm512_mask_add_##P(c, up, c, ulp);                                                   \
        if (__builtin_expect(outside != 0, 0))                                                    \
            c = _mm512_mask_sqrt_##P(c, outside, a);                                              \
        return c;                                                                                 \
    }
typedef int32_t fnn_bits_float;
typedef int64_t fnn_bits_double;
/* float: sqrt on the FMA units for [2^-64, FLT_MAX], bias 2^-19; double: [2^-900, DBL_MAX],
 * bias 2^-48 */
FNN_DEFINE_V4_NR(float, f32, __m512, __mmask16, ps, 32, 1, 0x7F800000, 23, 63 << 23,
                 0xFF << 23, 0x1p-19f)
FNN_DEFINE_V4_NR(double, f64, __m512d, __mmask8, pd, 64, 2, 0x7FF0000000000000LL, 52,
                 123LL << 52, 0x7FFLL << 52, 0x1p-48)
#undef FNN_DEFINE_V4_NR

/* Which vectors of fnn_adam_v4_*: the array goes in groups of FNN_ADAM_V4_GROUP_* vectors,
 * vector u of a group dividing by Newton-Raphson when bit u of FNN_ADAM_V4_DIV_* is set and
 * taking its square root on the FMA units when bit u of FNN_ADAM_V4_SQRT_* is (the vectors
 * after the last whole group and the masked tail use the divider).  Per FMA operation the
 * square root frees more divider time than the division (double: 11.4 cycles for ~13
 * operations against 6.3 for ~9).  Zen 4, TSC cycles per parameter, 60042 parameters in cache:
 * double: 1 square root of 3 vectors 1.78 (also 2 of 5, 3 of 8), 1 of 2 1.91, 1 division of
 * 2 (the batch-1 mix) 1.90, a division and a root of 3 or 4 1.80-1.97, neither 2.26, the
 * vectorised fnn_adam_clones_f64 2.34; float: 1 root of 6 vectors 0.65 (1 of 5 0.66, 1 of 8
 * 0.66, 1 of 4 0.69, 1 of 2 0.84), neither 0.72, a division of 2 0.72, clones 0.75. */
#ifndef FNN_ADAM_V4_GROUP_F32
#define FNN_ADAM_V4_GROUP_F32 6
#endif
#ifndef FNN_ADAM_V4_DIV_F32
#define FNN_ADAM_V4_DIV_F32 0
#endif
#ifndef FNN_ADAM_V4_SQRT_F32
#define FNN_ADAM_V4_SQRT_F32 1
#endif
#ifndef FNN_ADAM_V4_GROUP_F64
#define FNN_ADAM_V4_GROUP_F64 3
#endif
#ifndef FNN_ADAM_V4_DIV_F64
#define FNN_ADAM_V4_DIV_F64 0
#endif
#ifndef FNN_ADAM_V4_SQRT_F64
#define FNN_ADAM_V4_SQRT_F64 1
#endif

/* fnn_adam_clones_* with explicit 512-bit vectors, the same element expressions and FMA
 * contractions as gcc gives that kernel (ge = fma(l2, p, g), m = fma(b1, m, c1 ge),
 * v = fma(b2, v, (ge ge) c2), p -= (lr m) / (sqrt(v) + eps)), so the same results */
#define FNN_DEFINE_V4_ADAM(T, S, VT, MT, P, LANES, GROUP, DIV, SQRT)                              \
    FNN_TARGET_AVX512 FNN_INLINE void fnn_v4_adam_elems_##S(T *p, const T *g, T *m, T *v,         \
                                                          const VT *c, MT msk, const int full,    \
                                                          const int nr_div, const int nr_sqrt)    \
    {                                                                                             \
        const VT pi = full ? _mm512_loadu_##P(p) : _mm512_maskz_loadu_##P(msk, p);                \
        const VT gi = full ? _mm512_loadu_##P(g) : _mm512_maskz_loadu_##P(msk, g);                \
        const VT mo = full ? _mm512_loadu_##P(m) : _mm512_maskz_loadu_##P(msk, m);                \
        const VT vo = full ? _mm512_loadu_##P(v) : _mm512_maskz_loadu_##P(msk, v);                \
        const VT ge = _mm512_fmadd_##P(c[6], pi, gi);                                             \
        const VT mi = _mm512_fmadd_##P(c[1], mo, _mm512_mul_##P(c[3], ge));                       \
        const VT vi = _mm512_fmadd_##P(c[2], vo, _mm512_mul_##P(_mm512_mul_##P(ge, ge), c[4]));   \
        VT den = _mm512_add_##P(nr_sqrt ? fnn_v4_sqrt_nr_##S(vi, msk) : _mm512_sqrt_##P(vi),      \
                                c[5]);                                                            \
        if (!full) /* lanes past the end: 0 / 1, nothing for the checks to catch */               \
            den = _mm512_mask_mov_##P(_mm512_set1_##P(1.0), msk, den);                            \
        const VT num = _mm512_mul_##P(c[0], mi);                                                  \
        const VT pn = _mm512_sub_##P(pi, nr_div ? fnn_v4_div_nr_##S(num, den, msk)                \
                                                : _mm512_div_##P(num, den));                      \
        if (full) {                                                                               \
            _mm512_storeu_##P(m, mi);                                                             \
            _mm512_storeu_##P(v, vi);                                                             \
            _mm512_storeu_##P(p, pn);                                                             \
        } else {                                                                                  \
            _mm512_mask_storeu_##P(m, msk, mi);                                                   \
            _mm512_mask_storeu_##P(v, msk, vi);                                                   \
            _mm512_mask_storeu_##P(p, msk, pn);                                                   \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    FNN_TARGET_AVX512 static void fnn_adam_v4_##S(T *p, const T *g, T *m, T *v, ptrdiff_t n,      \
                                                  T lr_t, double b1, double b2, T eps, T l2)      \
    {                                                                                             \
        const VT c[7] = {_mm512_set1_##P(lr_t),           _mm512_set1_##P((T)b1),                 \
                         _mm512_set1_##P((T)b2),          _mm512_set1_##P((T)(1.0 - b1)),         \
                         _mm512_set1_##P((T)(1.0 - b2)), _mm512_set1_##P(eps),                    \
                         _mm512_set1_##P(l2)};                                                    \
        const MT all = (MT)-1;                                                                    \
        ptrdiff_t i = 0;                                                                          \
        for (; i + GROUP * LANES <= n; i += GROUP * LANES)                                        \
            for (int u = 0; u < GROUP; u++)                                                       \
                fnn_v4_adam_elems_##S(p + i + u * LANES, g + i + u * LANES, m + i + u * LANES,    \
                                    v + i + u * LANES, c, all, 1, (DIV >> u) & 1,                 \
                                    (SQRT >> u) & 1);                                             \
        for (; i + LANES <= n; i += LANES)                                                        \
            fnn_v4_adam_elems_##S(p + i, g + i, m + i, v + i, c, all, 1, 0, 0);                   \
        if (i < n)                                                                                \
            fnn_v4_adam_elems_##S(p + i, g + i, m + i, v + i, c, (MT)((1u << (n - i)) - 1u), 0,   \
                                0, 0);                                                            \
    }
FNN_DEFINE_V4_ADAM(float, f32, __m512, __mmask16, ps, 16, FNN_ADAM_V4_GROUP_F32,
                   FNN_ADAM_V4_DIV_F32, FNN_ADAM_V4_SQRT_F32)
FNN_DEFINE_V4_ADAM(double, f64, __m512d, __mmask8, pd, 8, FNN_ADAM_V4_GROUP_F64,
                   FNN_ADAM_V4_DIV_F64, FNN_ADAM_V4_SQRT_F64)
#undef FNN_DEFINE_V4_ADAM

/* fnn_v4_sqrt_nr_* over an array (every vector on the FMA units), for tests */
#define FNN_DEFINE_V4_SQRT_ARRAY(T, S, VT, MT, P, LANES)                                          \
    FNN_TARGET_AVX512 static void fnn_sqrt_nr_array_v4_##S(const T *x, T *y, ptrdiff_t n)         \
    {                                                                                             \
        for (ptrdiff_t i = 0; i < n; i += LANES) {                                                \
            const MT k = n - i >= LANES ? (MT)-1 : (MT)((1u << (n - i)) - 1u);                    \
            _mm512_mask_storeu_##P(y + i, k,                                                      \
                                   fnn_v4_sqrt_nr_##S(_mm512_maskz_loadu_##P(k, x + i), k));      \
        }                                                                                         \
    }
FNN_DEFINE_V4_SQRT_ARRAY(float, f32, __m512, __mmask16, ps, 16)
FNN_DEFINE_V4_SQRT_ARRAY(double, f64, __m512d, __mmask8, pd, 8)
#undef FNN_DEFINE_V4_SQRT_ARRAY
#define FNN_SQRT_NR_V4(S, ARGS)                                                                   \
    if (fnn_isa_supported() == 2) {                                                               \
        fnn_sqrt_nr_array_v4_##S ARGS;                                                            \
        return 0;                                                                                 \
    }
#define FNN_ADAM_V4(S, ARGS)                                                                      \
    if (fnn_isa() == 2) {                                                                         \
        fnn_adam_v4_##S ARGS;                                                                     \
        return;                                                                                   \
    }
#else
#define FNN_ADAM_V4(S, ARGS)
#define FNN_SQRT_NR_V4(S, ARGS)
#endif

/* Adam's step (fnn_adam_clones_*), on CPUs with AVX-512 by fnn_adam_v4_* */
#define FNN_DEFINE_ADAM_DISPATCH(T, S)                                                            \
    static FNN_UNUSED void fnn_adam_##S(T *p, const T *g, T *m, T *v, ptrdiff_t n, T lr_t,        \
                                        double b1, double b2, T eps, T l2)                        \
    {                                                                                             \
        FNN_ADAM_V4(S, (p, g, m, v, n, lr_t, b1, b2, eps, l2))                                    \
        fnn_adam_clones_##S(p, g, m, v, n, lr_t, b1, b2, eps, l2);                                \
    }
FNN_DEFINE_ADAM_DISPATCH(float, f32)
FNN_DEFINE_ADAM_DISPATCH(double, f64)

/* square roots of x into y, each vector by fnn_v4_sqrt_nr_*, for tests: returns -1 (and
 * leaves y alone) when this build or CPU has no AVX-512, else 0 */
#define FNN_DEFINE_SQRT_NR_ARRAY(T, S)                                                            \
    static FNN_UNUSED int fnn_sqrt_nr_array_##S(const T *x, T *y, ptrdiff_t n)                    \
    {                                                                                             \
        FNN_SQRT_NR_V4(S, (x, y, n))                                                              \
        return -1;                                                                                \
    }
FNN_DEFINE_SQRT_NR_ARRAY(float, f32)
FNN_DEFINE_SQRT_NR_ARRAY(double, f64)

/* ---- AVX-512 exps and exp-sum passes (the x86-64-v4 row ranges and short rows) ----------
 * exp(x) = 2^(k/16) e^r, k = 16 n + j = round(16 x / ln2), r = x - k ln2/16 (Cody-Waite hi/lo),
 * |r| <= ln2/32: 2^(j/16) = hi (1 + lo) comes from a 16-entry table held in two registers per
 * part and indexed by a permute (vpermt2pd; a gather is slow on Zen 4), hi rounded to double and
 * lo the rest relative to it, so that the table adds no rounding; e^r (1 + lo) - 1 ~ r (1 + r P(r))
 * + lo, P of degree 4 fitted by Lawson's algorithm on |r| <= 1.01 ln2/32 to the absolute error
 * of e^r - 1: 1.3e-17 with the coefficients rounded to double (the degree-7 Taylor polynomial,
 * one FMA more, gave 0.56 ulp); hi 2^n from integer adds on the bits (t's low bits hold k, so
 * k << 48 = (n << 52) + (j << 48) and the table holds hi's bits minus j << 48); result =
 * s + s (r (1 + r P) + lo) with s = hi 2^n, one FMA that also zeroes below the cutoff.  That is
 * 10 multiply-class instructions a vector (12 with the former hi + (hi q + lo) and vscalefpd
 * by k/16; 17 in the degree-13 fnn_exp_f64), and 0.6x ulp at most (tests/test_kernels_isa.py).
 * Same special cases as fnn_exp_f64: +0 below ln(DBL_MIN) and for -inf, NaN stays NaN; right
 * for 0 < x <= 709 too (2^n stays normal). */
#if FNN_HAVE_CLONES
#include <immintrin.h>
/* 2^(j/16) = hi (1 + lo), j = 0 .. 15 (hi rounded to nearest, lo the rest relative to it) */
static const double fnn_v4_exp2_hi_f64[16] __attribute__((aligned(64))) = {
    1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721,
    1.241857812073484, 1.2968395546510096, 1.3542555469368927, 1.4142135623730951,
    1.4768261459394993, 1.5422108254079407, 1.6104903319492543, 1.681792830507429,
    1.7562521603732995, 1.8340080864093424, 1.9152065613971474};
static const double fnn_v4_exp2_lo_f64[16] __attribute__((aligned(64))) = {
    0.0, 8.189317638195515e-17, -2.7939114859515733e-17, 7.826573258636076e-17,
    3.3484623336251524e-17, 3.750854201303127e-17, 1.9572585293112036e-17,
    5.68648095791174e-17, -6.835808657661922e-17, -2.3591094770850053e-17,
    5.1548301170786783e-17, 1.5341410053603723e-17, 4.875160526227062e-17,
    1.685487290628973e-17, 1.790126907604513e-17, -5.545065618639427e-17};

/* What fnn_v4_exp_f64 and fnn_v4_exp_checked_f64 share: t = x log2e + 0x1.8p48 on a grid of 1/16
 * (*tb: its bits, whose low bits hold k; the permutes read j from the low 4), *kd = k / 16, and
 * the return value q = e^r (1 + lo_j) - 1 */
FNN_TARGET_V4 FNN_INLINE __m512d fnn_v4_exp_parts_f64(__m512d x, __m512i *tb, __m512d *kd)
{
    const __m512d magic = _mm512_set1_pd(422212465065984.0); /* 0x1.8p48 */
    const __m512d t = _mm512_fmadd_pd(x, _mm512_set1_pd(FNN_LOG2E), magic);
    *kd = _mm512_sub_pd(t, magic);
    __m512d r = _mm512_fnmadd_pd(*kd, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(*kd, _mm512_set1_pd(1.90821492927058770002e-10), r);
    __m512d p = _mm512_set1_pd(0.0013889133816163694);
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.008333474709909002));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.04166666665937188));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.16666666664326518));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5000000000000006));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    *tb = _mm512_castpd_si512(t);
    return _mm512_fmadd_pd(p, r,
                           _mm512_permutex2var_pd(_mm512_load_pd(fnn_v4_exp2_lo_f64), *tb,
                                                  _mm512_load_pd(fnn_v4_exp2_lo_f64 + 8)));
}

FNN_TARGET_V4 FNN_INLINE __m512d fnn_v4_exp_f64(__m512d x)
{
    /* hi's bits minus j << 48 (constant operands: folded by the compiler) */
    const __m512i j0 = _mm512_slli_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), 48);
    const __m512i a0 = _mm512_sub_epi64(_mm512_castpd_si512(_mm512_load_pd(fnn_v4_exp2_hi_f64)),
                                        j0);
    const __m512i a1 =
        _mm512_sub_epi64(_mm512_castpd_si512(_mm512_load_pd(fnn_v4_exp2_hi_f64 + 8)),
                         _mm512_add_epi64(j0, _mm512_set1_epi64(8LL << 48)));
    __m512i tb;
    __m512d kd;
    const __m512d q = fnn_v4_exp_parts_f64(x, &tb, &kd);
    const __m512d s = _mm512_castsi512_pd(
        _mm512_add_epi64(_mm512_permutex2var_epi64(a0, tb, a1), _mm512_slli_epi64(tb, 48)));
    const __mmask8 keep = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-708.39641853226408), _CMP_NLT_UQ);
    return _mm512_maskz_fmadd_pd(keep, s, q, s);
}

/* fnn_v4_exp_f64 with 2^n applied by vscalefpd (by k / 16 = n + j / 16): the same result where
 * fnn_v4_exp_f64 gives a normal number, a subnormal (not +0) from -745 to ln(DBL_MIN), and +inf
 * (not a wrapped exponent) above ln(DBL_MAX), without fnn_v4_exp_f64's cutoff compare.  Only
 * for exp-sum passes whose sum is checked to lie in [1, FNN_GUESS_MAX_SUM] (see
 * fnn_v4_ce_nv_f64): NaN gives NaN, +inf +inf or NaN and -inf +0 or NaN (vscalefpd of r = NaN
 * by -inf: +0 on Zen 4, NaN by Intel's table), and below about -1e13 (off t's grid of 1/16, r
 * is no longer small) +0 or +-inf: never a wrong finite number (1 + r P(r) > 0 for every r, P
 * being close to the degree-6 Taylor polynomial). */
FNN_TARGET_V4 FNN_INLINE __m512d fnn_v4_exp_checked_f64(__m512d x)
{
    __m512i tb;
    __m512d kd;
    const __m512d q = fnn_v4_exp_parts_f64(x, &tb, &kd);
    const __m512d h = _mm512_permutex2var_pd(_mm512_load_pd(fnn_v4_exp2_hi_f64), tb,
                                             _mm512_load_pd(fnn_v4_exp2_hi_f64 + 8));
    return _mm512_scalef_pd(_mm512_fmadd_pd(h, q, h), kd);
}

/* exp(x) = 2^n 2^(j/16) e^r as in fnn_v4_exp_f64 (k = 16 n + j = round(16 x / ln2),
 * |r| <= ln2/32), in float: 2^(j/16) = hi (1 + lo), hi rounded to float and lo the rest
 * relative to it, one register each, indexed by vpermps; e^r (1 + lo) - 1 ~ r P(r) + lo with
 * P(r) = 1 + c2 r + c3 r^2 fitted by Lawson's algorithm on |r| <= 1.02 ln2/32 (relative error
 * 1.7e-9 = 0.03 ulp); hi 2^n from integer adds on the bits; result = s + s (r P + lo), one
 * FMA, zeroed (the same instruction) below the cutoff.  7 multiply-class instructions a vector
 * against the 10 of fnn_exp_f32's degree-6 polynomial on |r| <= ln2/2 with a vscalefps (the
 * exp-sum loop: 8.7 cycles a vector instead of 10.4), and 0.55 ulp at most instead of 1.05
 * (tests/test_kernels_isa.py): the last FMA is the only rounding that counts.  So the AVX-512
 * float paths no longer give fnn_exp_f32's results bit for bit (they are closer to exp).
 * Same special cases as fnn_exp_f32: +0 below ln(FLT_MIN) and for -inf, NaN stays NaN (it
 * reaches the last FMA through r); right for 0 < x <= 88 too (2^n stays normal). */
FNN_TARGET_V4 FNN_INLINE __m512 fnn_v4_exp_f32(__m512 x)
{
    const __m512 hi = _mm512_setr_ps(
        1.0f, 1.0442737340927124f, 1.0905077457427979f, 1.1387885808944702f, 1.1892070770263672f,
        1.2418577671051025f, 1.2968395948410034f, 1.3542555570602417f, 1.4142135381698608f,
        1.4768261909484863f, 1.5422108173370361f, 1.610490322113037f, 1.6817928552627563f,
        1.7562521696090698f, 1.8340080976486206f, 1.9152065515518188f);
    const __m512 lo = _mm512_setr_ps(
        0.0f, 4.6285471455576044e-08f, -1.199215748926008e-08f, 4.7297824323777604e-08f,
        3.1934181521364735e-08f, 3.621057231839586e-08f, -3.0990719324108795e-08f,
        -7.475213337215791e-09f, 1.7114270889351246e-08f, -3.047683350132502e-08f,
        5.233334210430485e-09f, 6.10759176566944e-09f, -1.4719605090363075e-08f,
        -5.258795177098818e-09f, -6.128259677495862e-09f, 5.140609271592211e-09f);
    /* t's low bits hold k (1.5 2^23 magic): k << 19 = (n << 23) + (j << 19), so hi's bits minus
     * (j << 19), plus k << 19, are those of hi 2^n (constant operands: folded by the compiler) */
    const __m512i hi_adj = _mm512_sub_epi32(
        _mm512_castps_si512(hi),
        _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                          19));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps((float)(16.0 * FNN_LOG2E)), magic);
    const __m512 k = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f / 16), x); /* exact k hi */
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f / 16), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.16666720807552338f), r,
                               _mm512_set1_ps(0.5000168085098267f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i tb = _mm512_castps_si512(t);
    const __m512 q = _mm512_fmadd_ps(p, r, _mm512_permutexvar_ps(tb, lo));
    const __m512 s = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_permutexvar_epi32(tb, hi_adj), _mm512_slli_epi32(tb, 19)));
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654475f), _CMP_NLT_UQ);
    return _mm512_maskz_fmadd_ps(keep, s, q, s);
}

/* The pending row of fnn_v4_ce_stream_* (below), written to g while the next row's exp pass
 * runs: see there */
#define FNN_V4_STREAM_HELPERS(T, S, W, SUF, MASK, VT)                                           \
    /* the pending row: g (its start in the output), s (its exps), A, the label column y and   \
     * its value, h the columns before g's first 64-byte boundary, nl the full lines after, ly  \
     * the line of y (-1 when y is in neither) */                                               \
    typedef struct {                                                                            \
        T *g;                                                                                   \
        const T *s;                                                                             \
        VT A, fix;                                                                              \
        ptrdiff_t y, h, nl, ly;                                                                 \
    } fnn_v4_pending_##S;                                                                       \
    /* columns [o, o + n), n <= W, scaled, the label column blended in: streamed when a full   \
     * line (o at a 64-byte boundary of g), else a masked store */                              \
    FNN_TARGET_V4 FNN_INLINE void fnn_v4_store_part_##S(const fnn_v4_pending_##S *p,           \
                                                         ptrdiff_t o, ptrdiff_t n)              \
    {                                                                                           \
        const ptrdiff_t d = p->y - o;                                                           \
        const MASK mn = (MASK)(n == W ? (MASK)~0u : (1u << n) - 1u);                            \
        const MASK my = (MASK)((size_t)d < (size_t)n ? 1u << d : 0u);                           \
        const VT v = _mm512_mask_mov_##SUF(                                                     \
            _mm512_mul_##SUF(_mm512_maskz_loadu_##SUF(mn, p->s + o), p->A), my, p->fix);        \
        if (n == W)                                                                             \
            _mm512_stream_##SUF(p->g + o, v);                                                   \
        else                                                                                    \
            _mm512_mask_storeu_##SUF(p->g + o, mn, v);                                          \
    }                                                                                           \
    /* line l (not ly) of the pending row: W columns from h + l W, scaled and streamed */      \
    FNN_TARGET_V4 FNN_INLINE void fnn_v4_stream_line_##S(const fnn_v4_pending_##S *p,          \
                                                          ptrdiff_t l)                          \
    {                                                                                           \
        const ptrdiff_t o = p->h + l * W;                                                       \
        _mm512_stream_##SUF(p->g + o, _mm512_mul_##SUF(_mm512_loadu_##SUF(p->s + o), p->A));    \
    }                                                                                           \
    /* one step of an exp pass: up to two lines of the pending row from line l on (the pending \
     * row is done before the current one); returns the next line */                          \
    FNN_TARGET_V4 FNN_INLINE ptrdiff_t fnn_v4_stream_step_##S(const fnn_v4_pending_##S *p,     \
                                                              ptrdiff_t l)                      \
    {                                                                                           \
        if (l < p->nl && l != p->ly)                                                            \
            fnn_v4_stream_line_##S(p, l);                                                       \
        l++;                                                                                    \
        if (l < p->nl && l != p->ly)                                                            \
            fnn_v4_stream_line_##S(p, l);                                                       \
        return l + 1;                                                                           \
    }                                                                                           \
    /* the lines from l on, line ly and the partial lines at both ends */                      \
    FNN_TARGET_V4 FNN_INLINE void fnn_v4_stream_rest_##S(const fnn_v4_pending_##S *p,          \
                                                         ptrdiff_t l, ptrdiff_t C)              \
    {                                                                                           \
        for (; l < p->nl; l++)                                                                  \
            if (l != p->ly)                                                                     \
                fnn_v4_stream_line_##S(p, l);                                                   \
        if (p->ly >= 0)                                                                         \
            fnn_v4_store_part_##S(p, p->h + p->ly * W, W);                                      \
        if (p->h)                                                                               \
            fnn_v4_store_part_##S(p, 0, p->h);                                                  \
        if (p->h + p->nl * W < C)                                                               \
            fnn_v4_store_part_##S(p, p->h + p->nl * W, C - p->h - p->nl * W);                   \
    }
FNN_V4_STREAM_HELPERS(float, f32, 16, ps, __mmask16, __m512)
FNN_V4_STREAM_HELPERS(double, f64, 8, pd, __mmask8, __m512d)

/* exp(z - m) of a vector of logits, z - m clamped as fnn_xclamp_* does when clamp is set (min
 * returns its second operand, x, when x is NaN) */
FNN_TARGET_V4 FNN_INLINE __m512d fnn_v4_exp_shifted_f64(__m512d zv, __m512d mv, int clamp)
{
    const __m512d x = _mm512_sub_pd(zv, mv);
    return fnn_v4_exp_f64(clamp ? _mm512_min_pd(_mm512_set1_pd(FNN_GUESS_XMAX_F64), x) : x);
}
FNN_TARGET_V4 FNN_INLINE __m512 fnn_v4_exp_shifted_f32(__m512 zv, __m512 mv, int clamp)
{
    const __m512 x = _mm512_sub_ps(zv, mv);
    return fnn_v4_exp_f32(clamp ? _mm512_min_ps(_mm512_set1_ps(FNN_GUESS_XMAX_F32), x) : x);
}

/* fnn_expsum_f64 (same contract) with fnn_v4_exp_f64, prefetching the next row */
FNN_TARGET_V4 FNN_INLINE double fnn_v4_expsum_f64(const double *z, double *e, ptrdiff_t C,
                                                  double m, double *tail,
                                                  const fnn_v4_pending_f64 *pend, int clamp)
{
    const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv;
    const __m512d mv = _mm512_set1_pd(m);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    /* a copy: the stores below may alias *pend as far as the compiler knows */
    const fnn_v4_pending_f64 pv = pend ? *pend : (fnn_v4_pending_f64){0};
    ptrdiff_t l = 0; /* lines of the pending row written */
    for (ptrdiff_t c = 0; c < Cv; c += 16) {
        fnn_prefetch_next_row(z + c, C * sizeof(double), 128);
        if (pend)
            l = fnn_v4_stream_step_f64(&pv, l);
        const __m512d v = fnn_v4_exp_shifted_f64(_mm512_loadu_pd(z + c), mv, clamp);
        const __m512d u = fnn_v4_exp_shifted_f64(_mm512_loadu_pd(z + c + 8), mv, clamp);
        if (e) {
            _mm512_storeu_pd(e + c, v);
            _mm512_storeu_pd(e + c + 8, u);
        }
        a0 = _mm512_add_pd(a0, v);
        a1 = _mm512_add_pd(a1, u);
    }
    if (r) {
        const __mmask8 m0 = (__mmask8)(r >= 8 ? 0xff : (1u << r) - 1u);
        const __mmask8 m1 = (__mmask8)(r > 8 ? (1u << (r - 8)) - 1u : 0u);
        /* lanes past the end are 0 (also when m = -inf: a NaN row anyway) */
        const __m512d v = _mm512_maskz_mov_pd(
            m0, fnn_v4_exp_shifted_f64(_mm512_maskz_loadu_pd(m0, z + Cv), mv, clamp));
        const __m512d u = _mm512_maskz_mov_pd(
            m1, fnn_v4_exp_shifted_f64(_mm512_maskz_loadu_pd(m1, z + Cv + 8), mv, clamp));
        if (tail) {
            _mm512_storeu_pd(tail, v);
            _mm512_storeu_pd(tail + 8, u);
        } else if (e) {
            _mm512_mask_storeu_pd(e + Cv, m0, v);
            _mm512_mask_storeu_pd(e + Cv + 8, m1, u);
        }
        a0 = _mm512_add_pd(a0, v);
        a1 = _mm512_add_pd(a1, u);
    }
    if (pend)
        fnn_v4_stream_rest_f64(&pv, l, C);
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

/* fnn_expsum_f32 (same contract and summation: pairs of vectors added in float, then in
 * 16 double lanes), prefetching the next row, with fnn_v4_exp_f32 */
FNN_TARGET_V4 FNN_INLINE double fnn_v4_expsum_f32(const float *z, float *e, ptrdiff_t C, float m,
                                                  float *tail, const fnn_v4_pending_f32 *pend, int clamp)
{
    const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv, C2 = Cv - Cv % (2 * FNN_TAIL);
    const __m512 mv = _mm512_set1_ps(m);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(); /* lanes 0-7, 8-15 */
#define FNN_V4_ACC_F32(w)                                                                       \
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(w)));                         \
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(                                    \
                               _mm512_extractf64x4_pd(_mm512_castps_pd(w), 1))))
    const fnn_v4_pending_f32 pv = pend ? *pend : (fnn_v4_pending_f32){0}; /* as in _f64 */
    ptrdiff_t l = 0; /* lines of the pending row written */
    const ptrdiff_t C8 = Cv - Cv % (8 * FNN_TAIL);
    ptrdiff_t c = 0;
    for (; c < C8; c += 8 * FNN_TAIL) {
        __m512 v[8];
        for (int j = 0; j < 8; j += 2) {
            fnn_prefetch_next_row(z + c + j * 16, C * sizeof(float), 128);
            if (pend)
                l = fnn_v4_stream_step_f32(&pv, l);
            v[j] = fnn_v4_exp_shifted_f32(_mm512_loadu_ps(z + c + j * 16), mv, clamp);
            v[j + 1] = fnn_v4_exp_shifted_f32(_mm512_loadu_ps(z + c + j * 16 + 16), mv, clamp);
            if (e) {
                _mm512_storeu_ps(e + c + j * 16, v[j]);
                _mm512_storeu_ps(e + c + j * 16 + 16, v[j + 1]);
            }
        }
        FNN_V4_ACC_F32(_mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3])),
            _mm512_add_ps(_mm512_add_ps(v[4], v[5]), _mm512_add_ps(v[6], v[7]))));
    }
    for (; c < C2; c += 2 * FNN_TAIL) {
        fnn_prefetch_next_row(z + c, C * sizeof(float), 128);
        if (pend)
            l = fnn_v4_stream_step_f32(&pv, l);
        const __m512 v = fnn_v4_exp_shifted_f32(_mm512_loadu_ps(z + c), mv, clamp);
        const __m512 u = fnn_v4_exp_shifted_f32(_mm512_loadu_ps(z + c + 16), mv, clamp);
        if (e) {
            _mm512_storeu_ps(e + c, v);
            _mm512_storeu_ps(e + c + 16, u);
        }
        FNN_V4_ACC_F32(_mm512_add_ps(v, u));
    }
    if (C2 < Cv) {
        const __m512 v = fnn_v4_exp_shifted_f32(_mm512_loadu_ps(z + C2), mv, clamp);
        if (e)
            _mm512_storeu_ps(e + C2, v);
        FNN_V4_ACC_F32(v);
    }
    if (r) {
        const __mmask16 tm = (__mmask16)((1u << r) - 1u);
        /* lanes past the end are 0 (also when m = -inf: a NaN row anyway) */
        const __m512 v = _mm512_maskz_mov_ps(
            tm, fnn_v4_exp_shifted_f32(_mm512_maskz_loadu_ps(tm, z + Cv), mv, clamp));
        if (tail)
            _mm512_storeu_ps(tail, v);
        else if (e)
            _mm512_mask_storeu_ps(e + Cv, tm, v);
        FNN_V4_ACC_F32(v);
    }
#undef FNN_V4_ACC_F32
    if (pend)
        fnn_v4_stream_rest_f32(&pv, l, C);
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

/* fnn_exp_inplace (the short-row groups) with the AVX-512 exps */
#define FNN_V4_EXP_INPLACE(T, S, W, SUF, MASK)                                                  \
    FNN_TARGET_V4 FNN_INLINE void fnn_v4_exp_inplace_##S(T *e, ptrdiff_t n)                     \
    {                                                                                           \
        ptrdiff_t j = 0;                                                                        \
        for (; j + W <= n; j += W)                                                              \
            _mm512_storeu_##SUF(e + j, fnn_v4_exp_##S(_mm512_loadu_##SUF(e + j)));              \
        if (j < n) {                                                                            \
            const MASK tm = (MASK)((1u << (n - j)) - 1u);                                       \
            _mm512_mask_storeu_##SUF(e + j, tm,                                                 \
                                     fnn_v4_exp_##S(_mm512_maskz_loadu_##SUF(tm, e + j)));      \
        }                                                                                       \
    }
FNN_V4_EXP_INPLACE(float, f32, 16, ps, __mmask16)
FNN_V4_EXP_INPLACE(double, f64, 8, pd, __mmask8)
#define FNN_EXP_INPLACE_f32_v4 fnn_v4_exp_inplace_f32
#define FNN_EXP_INPLACE_f64_v4 fnn_v4_exp_inplace_f64
#define FNN_EXP_INPLACE_f32_v3 fnn_exp_inplace_f32
#define FNN_EXP_INPLACE_f64_v3 fnn_exp_inplace_f64
#define FNN_EXPSUM_f64_v4(z, e, C, m, tail, clamp) fnn_v4_expsum_f64(z, e, C, m, tail, NULL, clamp)
#define FNN_EXPSUM_f64_v3 fnn_expsum_f64
#define FNN_EXPSUM_f32_v4(z, e, C, m, tail, clamp) fnn_v4_expsum_f32(z, e, C, m, tail, NULL, clamp)
#define FNN_EXPSUM_f32_v3 fnn_expsum_f32

/* fnn_rowmax's value (NaN ignored: max(load, m) keeps m; -0 and +0 may come out the other way
 * round, which changes nothing downstream) with four vector maxima in flight (one chain of
 * vmaxps waits on its latency every vector): gcc's code for fnn_rowmax kept its vector on the
 * stack and finished with scalar maxima */
#define FNN_V4_ROWMAX(T, S, W, SUF)                                                             \
    FNN_TARGET_V4 FNN_INLINE T fnn_v4_rowmax_##S(const T *z, ptrdiff_t C)                       \
    {                                                                                           \
        const ptrdiff_t Cv = C - C % W, C4 = Cv - Cv % (4 * W);                                 \
        const T ninf = -INFINITY;                                                               \
        __typeof__(_mm512_set1_##SUF(ninf)) m0 = _mm512_set1_##SUF(ninf), m1 = m0, m2 = m0,    \
                                               m3 = m0;                                         \
        ptrdiff_t c = 0;                                                                        \
        for (; c < C4; c += 4 * W) {                                                            \
            m0 = _mm512_max_##SUF(_mm512_loadu_##SUF(z + c), m0);                               \
            m1 = _mm512_max_##SUF(_mm512_loadu_##SUF(z + c + W), m1);                           \
            m2 = _mm512_max_##SUF(_mm512_loadu_##SUF(z + c + 2 * W), m2);                       \
            m3 = _mm512_max_##SUF(_mm512_loadu_##SUF(z + c + 3 * W), m3);                       \
        }                                                                                       \
        for (; c < Cv; c += W)                                                                  \
            m0 = _mm512_max_##SUF(_mm512_loadu_##SUF(z + c), m0);                               \
        if (Cv < C) {                                                                           \
            const unsigned tm = (1u << (C - Cv)) - 1u;                                          \
            m1 = _mm512_max_##SUF(_mm512_mask_loadu_##SUF(_mm512_set1_##SUF(ninf), tm, z + Cv), m1); \
        }                                                                                       \
        return _mm512_reduce_max_##SUF(_mm512_max_##SUF(_mm512_max_##SUF(m0, m1),             \
                                                         _mm512_max_##SUF(m2, m3)));            \
    }
FNN_V4_ROWMAX(float, f32, 16, ps)
FNN_V4_ROWMAX(double, f64, 8, pd)
#define FNN_ROWMAX_f32_v4 fnn_v4_rowmax_f32
#define FNN_ROWMAX_f64_v4 fnn_v4_rowmax_f64
#define FNN_ROWMAX_f32_v3 fnn_rowmax_f32
#define FNN_ROWMAX_f64_v3 fnn_rowmax_f64
#endif
#define FNN_EXPSUM_f64_base fnn_expsum_f64
#define FNN_EXP_INPLACE_f32_base fnn_exp_inplace_f32
#define FNN_EXP_INPLACE_f64_base fnn_exp_inplace_f64
#define FNN_EXPSUM_f32_base fnn_expsum_f32

#define FNN_ROWMAX_f32_base fnn_rowmax_f32
#define FNN_ROWMAX_f64_base fnn_rowmax_f64

/* ---- the softmax / hard-label cross-entropy row ranges, one copy per ISA -----------------
 * Built per ISA with explicit target attributes (not target_clones) so that the ISA can be
 * forced for tests (fnn_set_isa), the AVX-512 copy can take the explicit short-row path below,
 * and each copy (short-row groups included) runs its ISA's exp and exp-sum pass. */
#define FNN_DEFINE_ROW_RANGES(T, S, ISA, ATTR)                                                   \
    ATTR FNN_INLINE void fnn_softmax_group_##S##_##ISA(const T *z, T *out, ptrdiff_t i0,           \
                                                      ptrdiff_t i1, ptrdiff_t C, int mode)         \
    {                                                                                             \
        T mb[FNN_BLOCK];                                                                          \
        T buf[FNN_GROUP] __attribute__((aligned(64)));                                            \
        double sb[FNN_BLOCK];                                                                   \
        const ptrdiff_t R = FNN_BLOCK_ROWS(C);                                                    \
        for (ptrdiff_t b0 = i0; b0 < i1; b0 += R) {                                               \
            const ptrdiff_t nb = b0 + R < i1 ? R : i1 - b0;                                       \
            T *eg = mode == 0 ? out + b0 * C : buf;                                               \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const T *zi = z + (b0 + k) * C;                                                   \
                T *ei = eg + k * C;                                                               \
                const T m = FNN_ROWMAX_##S##_##ISA(zi, C);                                                \
                mb[k] = m;                                                                        \
                FNN_SIMD                                                                          \
                for (ptrdiff_t c = 0; c < C; c++)                                                 \
                    ei[c] = zi[c] - m;                                                            \
            }                                                                                     \
            FNN_EXP_INPLACE_##S##_##ISA(eg, nb * C);                                               \
            if (mode == 0) {                                                                      \
                for (ptrdiff_t k = 0; k < nb; k++) {                                              \
                    T *ei = eg + k * C;                                                           \
                    const T inv = (T)(1.0 / fnn_rowsum_short_##S(ei, C));                         \
                    FNN_SIMD                                                                      \
                    for (ptrdiff_t c = 0; c < C; c++)                                             \
                        ei[c] *= inv;                                                             \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            for (ptrdiff_t k = 0; k < nb; k++)                                                    \
                sb[k] = fnn_rowsum_short_##S(eg + k * C, C);                                      \
            fnn_logsm_block_##S(z, out, b0, nb, C, mb, sb, mode);                               \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    ATTR FNN_INLINE double fnn_ce_hard_group_##S##_##ISA(const T *z, T *g, ptrdiff_t i0,           \
                                                        ptrdiff_t i1, ptrdiff_t C,                 \
                                                        const intptr_t *labels, const T *sw,       \
                                                        const T *w, double W, double eps,          \
                                                        double scale, T *rl)                       \
    {                                                                                             \
        T mb[FNN_BLOCK];                                                                          \
        T buf[FNN_GROUP] __attribute__((aligned(64)));                                            \
        double sb[FNN_BLOCK], lb[FNN_BLOCK], zyb[FNN_BLOCK], sdb[FNN_BLOCK];                      \
        const ptrdiff_t R = FNN_BLOCK_ROWS(C);                                                    \
        const double b = eps / (double)C;                                                         \
        double total = 0.0;                                                                       \
        for (ptrdiff_t b0 = i0; b0 < i1; b0 += R) {                                               \
            const ptrdiff_t nb = b0 + R < i1 ? R : i1 - b0;                                       \
            T *eg = g ? g + b0 * C : buf;                                                         \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const T *zi = z + (b0 + k) * C;                                                   \
                T *ei = eg + k * C;                                                               \
                zyb[k] = (double)zi[labels[b0 + k]]; /* before ei (maybe zi) is written */        \
                const T m = FNN_ROWMAX_##S##_##ISA(zi, C);                                                \
                mb[k] = m;                                                                        \
                sdb[k] = b != 0.0 ? fnn_ce_smooth_sum_##S(zi, C, m, w) : 0.0;                   \
                FNN_SIMD                                                                          \
                for (ptrdiff_t c = 0; c < C; c++)                                                 \
                    ei[c] = zi[c] - m;                                                            \
            }                                                                                     \
            FNN_EXP_INPLACE_##S##_##ISA(eg, nb * C);                                               \
            for (ptrdiff_t k = 0; k < nb; k++)                                                    \
                sb[k] = fnn_rowsum_short_##S(eg + k * C, C);                                      \
            FNN_SIMD                                                                              \
            for (ptrdiff_t k = 0; k < nb; k++)                                                    \
                lb[k] = fnn_log_f64(sb[k]);                                                       \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const ptrdiff_t i = b0 + k, y = labels[i];                                        \
                const double si = sw ? (double)sw[i] : 1.0;                                       \
                const double wy = w ? (double)w[y] : 1.0;                                         \
                const double a = (1.0 - eps) * wy;                                                \
                const double s = sb[k], ls = lb[k];                                               \
                const double L = fnn_ce_row_loss(a, b, W, s, ls, zyb[k] - (double)mb[k], sdb[k], si); \
                if (rl)                                                                           \
                    rl[i] = (T)L;                                                                 \
                total += L;                                                                       \
                if (g) {                                                                          \
                    T *gi = eg + k * C;                                                           \
                    const double kk = scale * si, ey = (double)gi[y];                             \
                    const double inv_s = 1.0 / s;                                                 \
                    const T A = (T)(kk * (a + b * W) * inv_s);                                    \
                    const T B = (T)(kk * b);                                                      \
                    if (B == 0) {                                                                 \
                        FNN_SIMD                                                                  \
                        for (ptrdiff_t c = 0; c < C; c++)                                         \
                            gi[c] *= A;                                                           \
                    } else if (w) {                                                               \
                        FNN_SIMD                                                                  \
                        for (ptrdiff_t c = 0; c < C; c++)                                         \
                            gi[c] = A * gi[c] - B * w[c];                                         \
                    } else {                                                                      \
                        FNN_SIMD                                                                  \
                        for (ptrdiff_t c = 0; c < C; c++)                                         \
                            gi[c] = A * gi[c] - B;                                                \
                    }                                                                             \
                    gi[y] = (T)(kk * ((a * (ey - s) + b * W * ey) * inv_s - b * wy));                 \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        return total;                                                                             \
    }                                                                                             \
                                                                                                  \
    /* ---- softmax family over rows [i0, i1) of z (n, C) ----                                  \
     * mode 0 softmax into out (n, C), 1 log_softmax into out (n, C), 2 logsumexp into out (n,).  \
     * Rows go in blocks of FNN_BLOCK_ROWS(C) so that the logs of a block are one vector loop    \
     * (a libm log per row costs as much as the rest of a 10-class row). */                      \
    ATTR static void fnn_softmax_rows_##S##_##ISA(const T *z, T *out, ptrdiff_t i0,               \
                                                  ptrdiff_t i1, ptrdiff_t C, int mode)            \
    {                                                                                             \
        T mb[FNN_BLOCK];                                                                          \
        T tb[FNN_TAIL] __attribute__((aligned(64)));                                              \
        double sb[FNN_BLOCK];                                                                   \
        const ptrdiff_t R = FNN_BLOCK_ROWS(C);                                                    \
        if (C < FNN_GROUP_MAX_C) {                                                                \
            fnn_softmax_group_##S##_##ISA(z, out, i0, i1, C, mode);                                \
            return;                                                                               \
        }                                                                                         \
        if (mode == 0) {                                                                          \
            ptrdiff_t pause = 0;                                                                  \
            for (ptrdiff_t i = i0; i < i1; i++) {                                                 \
                const T *zi = z + i * C;                                                          \
                T *oi = out + i * C;                                                              \
                T m = 0;                                                                          \
                double s = 0.0;                                                                   \
                int kept = 0;                                                                     \
                if (oi != zi && fnn_guess_turn(&pause)) { /* see FNN_GUESS_MAX_SUM */             \
                    m = FNN_ROWMAX_##S##_##ISA(zi, FNN_TAIL);                                     \
                    s = FNN_EXPSUM_##S##_##ISA(zi, oi, C, m, tb, 1);                              \
                    kept = fnn_guess_check(s, &pause);                                            \
                }                                                                                 \
                if (!kept) {                                                                      \
                    m = FNN_ROWMAX_##S##_##ISA(zi, C);                                            \
                    s = FNN_EXPSUM_##S##_##ISA(zi, oi, C, m, tb, 0);                              \
                }                                                                                 \
                fnn_scale_tail_##S(oi, C, (T)(1.0 / s), tb);                                      \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        for (ptrdiff_t b0 = i0; b0 < i1; b0 += R) {                                               \
            const ptrdiff_t nb = b0 + R < i1 ? R : i1 - b0;                                       \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const T *zi = z + (b0 + k) * C;                                                   \
                mb[k] = FNN_ROWMAX_##S##_##ISA(zi, C);                                                    \
                sb[k] = FNN_EXPSUM_##S##_##ISA(zi, NULL, C, mb[k], NULL, 0);                         \
            }                                                                                     \
            fnn_logsm_block_##S(z, out, b0, nb, C, mb, sb, mode);                               \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* ---- cross-entropy with hard labels over rows [i0, i1); returns sum of the row losses.   \
     * q_c = s_i ((1-eps) w_y [c==y] + eps/C w_c); L_i = sum_c q_c (lse - z_c) (terms with       \
     * q_c = 0 add 0; a NaN / +inf logit or an all -inf row makes L_i NaN);                      \
     * g = scale (Q p - q) when g != NULL (g may be z); rl[i] = L_i when rl != NULL.             \
     * sw, w may be NULL (all ones); W = sum_c w_c (C when w is NULL).                           \
     * Per row: read z[y]; pass 1 max; (smoothing only: sum w_c (z_c - m)); pass 2 e = exp(z-m)  \
     * into g and its sum; then, for a block of rows, one vector log; pass 3 g = A e - B w and   \
     * the label column. No n x C temporary. */                                                  \
    ATTR static double fnn_ce_hard_rows_##S##_##ISA(const T *z, T *g, ptrdiff_t i0,               \
                                                    ptrdiff_t i1, ptrdiff_t C,                    \
                                                    const intptr_t *labels, const T *sw,          \
                                                    const T *w, double W, double eps,             \
                                                    double scale, T *rl)                          \
    {                                                                                             \
        T mb[FNN_BLOCK];                                                                          \
        double sb[FNN_BLOCK], lb[FNN_BLOCK], zyb[FNN_BLOCK], sdb[FNN_BLOCK], eyb[FNN_BLOCK];      \
        T tbb[FNN_BLOCK][FNN_TAIL] __attribute__((aligned(64)));                                  \
        const ptrdiff_t Cv = C - C % FNN_TAIL, r = C - Cv;                                        \
        const ptrdiff_t R = FNN_BLOCK_ROWS(C);                                                    \
        const double b = eps / (double)C; /* smoothing weight per w_c */                         \
        double total = 0.0;                                                                       \
        ptrdiff_t pause = 0; /* rows left before the next first-vector shift */                  \
        if (C < FNN_GROUP_MAX_C)                                                                  \
            return fnn_ce_hard_group_##S##_##ISA(z, g, i0, i1, C, labels, sw, w, W, eps,           \
                                                 scale, rl);                                       \
        for (ptrdiff_t b0 = i0; b0 < i1; b0 += R) {                                               \
            const ptrdiff_t nb = b0 + R < i1 ? R : i1 - b0;                                       \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const T *zi = z + (b0 + k) * C;                                                   \
                T *gi = g ? g + (b0 + k) * C : NULL;                                              \
                const ptrdiff_t y = labels[b0 + k];                                               \
                zyb[k] = (double)zi[y]; /* before g (maybe z) is written */                       \
                T m = 0;                                                                          \
                double s = 0.0;                                                                   \
                /* z must stay readable for a redo: not in place (see FNN_GUESS_MAX_SUM) */       \
                int kept = 0;                                                                     \
                if (gi != (T *)zi && fnn_guess_turn(&pause)) {                                    \
                    m = FNN_ROWMAX_##S##_##ISA(zi, FNN_TAIL);                                     \
                    s = FNN_EXPSUM_##S##_##ISA(zi, gi, C, m, tbb[k], 1);                          \
                    kept = fnn_guess_check(s, &pause);                                            \
                }                                                                                 \
                if (kept) {                                                                       \
                    sdb[k] = b != 0.0 ? fnn_ce_smooth_sum_##S(zi, C, m, w) : 0.0;                 \
                } else { /* the row's maximum, before g (maybe z) is written */                   \
                    m = FNN_ROWMAX_##S##_##ISA(zi, C);                                            \
                    sdb[k] = b != 0.0 ? fnn_ce_smooth_sum_##S(zi, C, m, w) : 0.0;                 \
                    s = FNN_EXPSUM_##S##_##ISA(zi, gi, C, m, tbb[k], 0);                          \
                }                                                                                 \
                mb[k] = m;                                                                        \
                sb[k] = s;                                                                        \
                if (gi) /* e_y from where pass 2 put it (full-width stores: forwarding works) */  \
                    eyb[k] = (double)(y < Cv ? gi[y] : tbb[k][y - Cv]);                           \
            }                                                                                     \
            FNN_SIMD                                                                              \
            for (ptrdiff_t k = 0; k < nb; k++)                                                    \
                lb[k] = fnn_log_f64(sb[k]);                                                       \
            for (ptrdiff_t k = 0; k < nb; k++) {                                                  \
                const ptrdiff_t i = b0 + k, y = labels[i];                                        \
                const double si = sw ? (double)sw[i] : 1.0;                                       \
                const double wy = w ? (double)w[y] : 1.0;                                         \
                const double a = (1.0 - eps) * wy; /* label coefficient */                       \
                const double s = sb[k], ls = lb[k];                                               \
                const double L = fnn_ce_row_loss(a, b, W, s, ls, zyb[k] - (double)mb[k], sdb[k], si); \
                if (rl)                                                                           \
                    rl[i] = (T)L;                                                                 \
                total += L;                                                                       \
                if (g) {                                                                          \
                    T *gi = g + i * C;                                                            \
                    const double kk = scale * si;                                                 \
                    double Ad;                                                                    \
                    const T fix = (T)fnn_ce_label_grad(kk, a, b, W, s, eyb[k], wy, &Ad);          \
                    const T A = (T)Ad;                                                            \
                    const T B = (T)(kk * b);                                                      \
                    const T *tk = tbb[k];                                                         \
                    if (B == 0) {                                                                 \
                        fnn_scale_tail_##S(gi, C, A, tk);                                         \
                    } else {                                                                      \
                        if (w) {                                                                  \
                            FNN_SIMD                                                              \
                            for (ptrdiff_t c = 0; c < Cv; c++)                                    \
                                gi[c] = A * gi[c] - B * w[c];                                     \
                        } else {                                                                  \
                            FNN_SIMD                                                              \
                            for (ptrdiff_t c = 0; c < Cv; c++)                                    \
                                gi[c] = A * gi[c] - B;                                            \
                        }                                                                         \
                        if (r) {                                                                  \
                            T *gt = gi + Cv;                                                      \
                            const T *wt = w ? w + Cv : NULL;                                      \
                            FNN_SIMD                                                              \
                            for (int j = 0; j < FNN_TAIL; j++) {                                  \
                                T wj = wt ? (j < r ? wt[j] : (T)0) : (T)1;                        \
                                T v = A * tk[j] - B * wj;                                         \
                                if (j < r)                                                        \
                                    gt[j] = v;                                                    \
                            }                                                                     \
                        }                                                                         \
                    }                                                                             \
                    gi[y] = fix;                                                                  \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        return total;                                                                             \
    }                                                                                             \

#if FNN_HAVE_CLONES
FNN_DEFINE_ROW_RANGES(float, f32, v4, FNN_TARGET_V4)
FNN_DEFINE_ROW_RANGES(float, f32, v3, FNN_TARGET_V3)
FNN_DEFINE_ROW_RANGES(double, f64, v4, FNN_TARGET_V4)
FNN_DEFINE_ROW_RANGES(double, f64, v3, FNN_TARGET_V3)
#endif
FNN_DEFINE_ROW_RANGES(float, f32, base, )
FNN_DEFINE_ROW_RANGES(double, f64, base, )

/* ---- AVX-512 short rows (C <= 128), softmax and plain hard-label cross-entropy ------------
 * The row is loaded once into registers (the last vector masked, padding -inf), and max, exp,
 * sum and scale all work on those registers: no pass re-reads the row and there is no tail
 * buffer.  The generic loops cost about as much again as the exp itself at C = 10..100: a row
 * is only a few vectors, so their per-pass setup, masked tails and reductions dominate. */
#if FNN_HAVE_CLONES
#define FNN_V4_MAX_C 128
#define FNN_V4_PAIR(nv) ((nv) < 8)

/* sum of e[0 .. nv): a float tree over the vectors (each lane adds at most 8 exps, all in
 * [0, 1]: at most 3 roundings deep), then the 16 lanes in double */
FNN_TARGET_V4 FNN_INLINE double fnn_v4_sum_f32(const __m512 *e, const int nv)
{
    __m512 t[FNN_V4_MAX_C / 16];
    for (int k = 0; k < nv; k++)
        t[k] = e[k];
    for (int w = nv; w > 1; w = (w + 1) / 2) {
        for (int k = 0; k < w / 2; k++)
            t[k] = _mm512_add_ps(t[2 * k], t[2 * k + 1]);
        if (w % 2)
            t[w / 2] = t[w - 1];
    }
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(t[0]));
    const __m512d hi = _mm512_cvtps_pd(
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t[0]), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
/* nv (vectors per row) is a constant at every call (fnn_v4_*_f32 switch on it), so the row
 * arrays live in registers.
 * Rows z + p C, p < P: e[p][0 .. nv) = exp(z - m[p]), m[p] = max, s[p] = the sum
 * (fnn_v4_sum_f32).
 * P = 2 rows at a time give the out-of-order core two independent chains (max, exp, sum,
 * reciprocal): one row alone is latency-bound.  Not at 8 vectors a row, where two rows no
 * longer fit in the 32 registers (128 classes: 0.24 ms paired, 0.21 ms not, 4096 rows). */
FNN_TARGET_V4 FNN_INLINE void fnn_v4_rows_f32(const float *z, ptrdiff_t C, const int P,
                                              __m512 e[][FNN_V4_MAX_C / 16], const int nv,
                                              __mmask16 tm, float *m, double *s)
{
    __m512 mv[2];
    for (int p = 0; p < P; p++) {
        const float *zp = z + p * C;
        for (int k = 0; k < nv - 1; k++)
            e[p][k] = _mm512_loadu_ps(zp + 16 * k);
        e[p][nv - 1] = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tm, zp + 16 * (nv - 1));
        __m512 mx = e[p][0];
        for (int k = 1; k < nv; k++)
            mx = _mm512_max_ps(mx, e[p][k]);
        m[p] = _mm512_reduce_max_ps(mx);
        mv[p] = _mm512_set1_ps(m[p]);
    }
    for (int k = 0; k < nv; k++)
        for (int p = 0; p < P; p++)
            e[p][k] = fnn_v4_exp_f32(_mm512_sub_ps(e[p][k], mv[p]));
    for (int p = 0; p < P; p++)
        s[p] = fnn_v4_sum_f32(e[p], nv);
}

/* out = e * a */
FNN_TARGET_V4 FNN_INLINE void fnn_v4_store_f32(float *out, const __m512 *e, const int nv,
                                               __mmask16 tm, float a)
{
    const __m512 av = _mm512_set1_ps(a);
    for (int k = 0; k < nv - 1; k++)
        _mm512_storeu_ps(out + 16 * k, _mm512_mul_ps(e[k], av));
    _mm512_mask_storeu_ps(out + 16 * (nv - 1), tm, _mm512_mul_ps(e[nv - 1], av));
}

/* e[y >> 4] lane y & 15 (e_y for the label column) without storing the row: a select of the
 * vector (blends on constant indices keep e in registers), then a lane permute */
FNN_TARGET_V4 FNN_INLINE float fnn_v4_lane_f32(const __m512 *e, const int nv, ptrdiff_t y)
{
    __m512 v = e[0];
    for (int k = 1; k < nv; k++)
        v = _mm512_mask_mov_ps(v, (__mmask16)(-(int)((y >> 4) == k)), e[k]);
    return _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32((int)(y & 15)), v));
}

/* softmax of the P rows at z into out */
FNN_TARGET_V4 FNN_INLINE void fnn_v4_softmax_some_f32(const float *z, float *out, ptrdiff_t C,
                                                      const int P, const int nv, __mmask16 tm)
{
    __m512 e[2][FNN_V4_MAX_C / 16];
    float m[2];
    double s[2];
    fnn_v4_rows_f32(z, C, P, e, nv, tm, m, s);
    for (int p = 0; p < P; p++)
        fnn_v4_store_f32(out + p * C, e[p], nv, tm, (float)(1.0 / s[p]));
}

FNN_TARGET_V4 FNN_INLINE void fnn_v4_softmax_nv_f32(const float *z, float *out, ptrdiff_t i0,
                                                    ptrdiff_t i1, ptrdiff_t C, const int nv)
{
    const __mmask16 tm = (__mmask16)((1u << (C - 16 * (nv - 1))) - 1u);
    ptrdiff_t i = i0;
    if (FNN_V4_PAIR(nv))
        for (; i + 1 < i1; i += 2)
            fnn_v4_softmax_some_f32(z + i * C, out + i * C, C, 2, nv, tm);
    for (; i < i1; i++)
        fnn_v4_softmax_some_f32(z + i * C, out + i * C, C, 1, nv, tm);
}

/* cross-entropy rows i .. i + P: m, s and z_y to mb, sb, zyb [k .. k + P), the gradient to g */
FNN_TARGET_V4 FNN_INLINE void fnn_v4_ce_some_f32(const float *z, float *g, ptrdiff_t i,
                                                 ptrdiff_t k, ptrdiff_t C, const int P,
                                                 const int nv, __mmask16 tm,
                                                 const intptr_t *labels, const float *sw,
                                                 double scale, float *mb, double *sb,
                                                 double *zyb)
{
    __m512 e[2][FNN_V4_MAX_C / 16];
    for (int p = 0; p < P; p++) /* before g (maybe z) is written */
        zyb[k + p] = (double)z[(i + p) * C + labels[i + p]];
    fnn_v4_rows_f32(z + i * C, C, P, e, nv, tm, mb + k, sb + k);
    for (int p = 0; g && p < P; p++) {
        const ptrdiff_t y = labels[i + p];
        const double s = sb[k + p], inv_s = 1.0 / s;
        const double kk = scale * (sw ? (double)sw[i + p] : 1.0);
        float *gi = g + (i + p) * C;
        const double ey = (double)fnn_v4_lane_f32(e[p], nv, y);
        fnn_v4_store_f32(gi, e[p], nv, tm, (float)(kk * inv_s));
        gi[y] = (float)(kk * ((ey - s) * inv_s));
    }
}

/* fnn_ce_hard_rows without class weights and smoothing (a = 1, b = 0): same formulas */
FNN_TARGET_V4 FNN_INLINE double fnn_v4_ce_nv_f32(const float *z, float *g, ptrdiff_t i0,
                                                 ptrdiff_t i1, ptrdiff_t C,
                                                 const intptr_t *labels, const float *sw,
                                                 double scale, float *rl, const int nv)
{
    const __mmask16 tm = (__mmask16)((1u << (C - 16 * (nv - 1))) - 1u);
    float mb[FNN_BLOCK];
    double sb[FNN_BLOCK], lb[FNN_BLOCK], zyb[FNN_BLOCK];
    double total = 0.0;
    for (ptrdiff_t b0 = i0; b0 < i1; b0 += FNN_BLOCK) {
        const ptrdiff_t nb = b0 + FNN_BLOCK < i1 ? FNN_BLOCK : i1 - b0;
        ptrdiff_t k = 0;
        if (FNN_V4_PAIR(nv))
            for (; k + 1 < nb; k += 2)
                fnn_v4_ce_some_f32(z, g, b0 + k, k, C, 2, nv, tm, labels, sw, scale, mb, sb, zyb);
        for (; k < nb; k++)
            fnn_v4_ce_some_f32(z, g, b0 + k, k, C, 1, nv, tm, labels, sw, scale, mb, sb, zyb);
        FNN_SIMD
        for (ptrdiff_t k = 0; k < nb; k++)
            lb[k] = fnn_log_f64(sb[k]);
        for (ptrdiff_t k = 0; k < nb; k++) {
            const ptrdiff_t i = b0 + k;
            const double si = sw ? (double)sw[i] : 1.0;
            double L = lb[k] - (zyb[k] - (double)mb[k]);
            L = si != 0.0 ? si * L : 0.0;
            if (sb[k] != sb[k])
                L = NAN;
            if (rl)
                rl[i] = (float)L;
            total += L;
        }
    }
    return total;
}

/* the switch that makes nv a constant */
#define FNN_NV_CASES(CALL)                                                                      \
    case 1: CALL(1);                                                                            \
    case 2: CALL(2);                                                                            \
    case 3: CALL(3);                                                                            \
    case 4: CALL(4);                                                                            \
    case 5: CALL(5);                                                                            \
    case 6: CALL(6);                                                                            \
    case 7: CALL(7);                                                                            \
    default: CALL(8);
#define FNN_V4_SOFTMAX_CALL(N) fnn_v4_softmax_nv_f32(z, out, i0, i1, C, N); return
#define FNN_V4_CE_CALL(N) return fnn_v4_ce_nv_f32(z, g, i0, i1, C, labels, sw, scale, rl, N)
FNN_TARGET_V4 static void fnn_v4_softmax_f32(const float *z, float *out, ptrdiff_t i0,
                                             ptrdiff_t i1, ptrdiff_t C)
{
    switch ((C + 15) / 16) {
        FNN_NV_CASES(FNN_V4_SOFTMAX_CALL)
    }
}
FNN_TARGET_V4 static double fnn_v4_ce_f32(const float *z, float *g, ptrdiff_t i0, ptrdiff_t i1,
                                          ptrdiff_t C, const intptr_t *labels, const float *sw,
                                          double scale, float *rl)
{
    switch ((C + 15) / 16) {
        FNN_NV_CASES(FNN_V4_CE_CALL)
    }
}

/* Double rows of 64 .. FNN_V4_MAX_C_F64 classes (8 .. 13 vectors), cross-entropy without class
 * weights or smoothing: the fnn_v4_ce_nv_f32 scheme one row at a time, with the exps summed in
 * two accumulators as in fnn_v4_expsum_f64 and no re-read of the row.  The shift is the first
 * vector's maximum (see FNN_GUESS_MAX_SUM) with fnn_v4_exp_checked_f64, whose sum in
 * [1, FNN_GUESS_MAX_SUM] proves every exp right: no pass for the row's maximum and no cutoff
 * compare, 4096 x 100 about 8% faster; otherwise (or for FNN_GUESS_PAUSE rows after such a
 * miss) the row is redone from its maximum with fnn_v4_exp_f64, before g is written.  Not
 * beyond 13 vectors: the row and the exp's constants no longer fit in the registers (4096
 * rows: 0.36 ms against 0.40 at 104 classes, 0.40 against 0.38 at 112, 0.46 against 0.43 at
 * 128). */
#define FNN_V4_MAX_C_F64 104
FNN_TARGET_V4 FNN_INLINE void fnn_v4_load_row_f64(const double *zi, __m512d *e, const int nv,
                                                  __mmask8 tm)
{
    for (int q = 0; q < nv - 1; q++)
        e[q] = _mm512_loadu_pd(zi + 8 * q);
    e[nv - 1] = _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), tm, zi + 8 * (nv - 1));
}
/* e <- exp(e - m), returns their sum (fnn_v4_exp_checked_f64 when checked, else fnn_v4_exp_f64) */
FNN_TARGET_V4 FNN_INLINE double fnn_v4_expsum_row_f64(__m512d *e, const int nv, double m,
                                                      const int checked)
{
    const __m512d mv = _mm512_set1_pd(m);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (int q = 0; q < nv; q++) {
        const __m512d x = _mm512_sub_pd(e[q], mv);
        e[q] = checked ? fnn_v4_exp_checked_f64(x) : fnn_v4_exp_f64(x);
        if (q % 2)
            a1 = _mm512_add_pd(a1, e[q]);
        else
            a0 = _mm512_add_pd(a0, e[q]);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}
/* g's row i from e = exp(z_i - m) and their sum s */
FNN_TARGET_V4 FNN_INLINE void fnn_v4_ce_grad_row_f64(double *gi, const __m512d *e, const int nv,
                                                     __mmask8 tm, ptrdiff_t y, double s,
                                                     double kk)
{
    const double inv_s = 1.0 / s;
    /* e_y: as fnn_v4_lane_f32 */
    __m512d v = e[0];
    for (int q = 1; q < nv; q++)
        v = _mm512_mask_mov_pd(v, (__mmask8)(-(int)((y >> 3) == q)), e[q]);
    const double ey = _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(y & 7), v));
    const __m512d av = _mm512_set1_pd(kk * inv_s);
    for (int q = 0; q < nv - 1; q++)
        _mm512_storeu_pd(gi + 8 * q, _mm512_mul_pd(e[q], av));
    _mm512_mask_storeu_pd(gi + 8 * (nv - 1), tm, _mm512_mul_pd(e[nv - 1], av));
    gi[y] = kk * ((ey - s) * inv_s);
}
FNN_TARGET_V4 FNN_INLINE double fnn_v4_ce_nv_f64(const double *z, double *g, ptrdiff_t i0,
                                                 ptrdiff_t i1, ptrdiff_t C,
                                                 const intptr_t *labels, const double *sw,
                                                 double scale, double *rl, const int nv)
{
    const __mmask8 tm = (__mmask8)((1u << (C - 8 * (nv - 1))) - 1u);
    double mb[FNN_BLOCK], sb[FNN_BLOCK], lb[FNN_BLOCK], zyb[FNN_BLOCK];
    int redo[FNN_BLOCK];
    double total = 0.0;
    ptrdiff_t pause = 0; /* rows left before the next first-vector shift */
    for (ptrdiff_t b0 = i0; b0 < i1; b0 += FNN_BLOCK) {
        const ptrdiff_t nb = b0 + FNN_BLOCK < i1 ? FNN_BLOCK : i1 - b0;
        int nr = 0;
        for (ptrdiff_t k = 0; k < nb; k++) {
            const ptrdiff_t i = b0 + k, y = labels[i];
            const double *zi = z + i * C;
            zyb[k] = zi[y]; /* before g (maybe z) is written */
            if (!fnn_guess_turn(&pause)) {
                redo[nr++] = (int)k;
                continue;
            }
            __m512d e[FNN_V4_MAX_C_F64 / 8];
            fnn_v4_load_row_f64(zi, e, nv, tm);
            const double m = _mm512_reduce_max_pd(e[0]);
            const double s = fnn_v4_expsum_row_f64(e, nv, m, 1);
            if (__builtin_expect(!fnn_guess_check(s, &pause), 0)) {
                redo[nr++] = (int)k;
                continue;
            }
            mb[k] = m;
            sb[k] = s;
            if (g)
                fnn_v4_ce_grad_row_f64(g + i * C, e, nv, tm, y, s, scale * (sw ? sw[i] : 1.0));
        }
        for (int r = 0; r < nr; r++) {
            const ptrdiff_t k = redo[r], i = b0 + k;
            __m512d e[FNN_V4_MAX_C_F64 / 8];
            fnn_v4_load_row_f64(z + i * C, e, nv, tm);
            __m512d mx = e[0];
            for (int q = 1; q < nv; q++)
                mx = _mm512_max_pd(mx, e[q]);
            mb[k] = _mm512_reduce_max_pd(mx);
            sb[k] = fnn_v4_expsum_row_f64(e, nv, mb[k], 0);
            if (g)
                fnn_v4_ce_grad_row_f64(g + i * C, e, nv, tm, labels[i], sb[k],
                                       scale * (sw ? sw[i] : 1.0));
        }
        FNN_SIMD
        for (ptrdiff_t k = 0; k < nb; k++)
            lb[k] = fnn_log_f64(sb[k]);
        for (ptrdiff_t k = 0; k < nb; k++) {
            const ptrdiff_t i = b0 + k;
            const double si = sw ? sw[i] : 1.0;
            double L = lb[k] - (zyb[k] - mb[k]);
            L = si != 0.0 ? si * L : 0.0;
            if (sb[k] != sb[k])
                L = NAN;
            if (rl)
                rl[i] = L;
            total += L;
        }
    }
    return total;
}
#define FNN_V4_CE_F64_CALL(N)                                                                   \
    case N:                                                                                     \
        return fnn_v4_ce_nv_f64(z, g, i0, i1, C, labels, sw, scale, rl, N)
FNN_TARGET_V4 static double fnn_v4_ce_f64(const double *z, double *g, ptrdiff_t i0, ptrdiff_t i1,
                                          ptrdiff_t C, const intptr_t *labels, const double *sw,
                                          double scale, double *rl)
{
    switch ((C + 7) / 8) {
        FNN_V4_CE_F64_CALL(8);
        FNN_V4_CE_F64_CALL(9);
        FNN_V4_CE_F64_CALL(10);
        FNN_V4_CE_F64_CALL(11);
        FNN_V4_CE_F64_CALL(12);
    default:
        return fnn_v4_ce_nv_f64(z, g, i0, i1, C, labels, sw, scale, rl, 13);
    }
}

/* ---- AVX-512 cross-entropy rows of 4 KB (exclusive) to 32 KB without smoothing -------------
 * The generic loop writes the exps into g (each line of g read for ownership from memory first)
 * and scales them in a third pass.  Here the exp pass of row i writes its exps to a scratch
 * row instead, and scales the previous row's scratch into g with streaming stores (full
 * aligned 64-byte lines; the partial lines at both ends of a row with masked stores), the label
 * column blended in: g is written once and never read, a third less memory traffic, and the
 * scaling rides on the exp pass's arithmetic.  Interleaved A/B against the generic loop (load
 * 2-3): 11-16% faster from 4.8 KB to 32 KB rows (1000 doubles: 9-11%), 6-11% slower at 2.4 and
 * 4 KB (600 and 1000 floats) and about 12% slower in L2 at 4 KB, hence the bounds; rows of
 * 128 KB lost 16% in a prototype (the scratch rows no longer stay in L1).  Same arithmetic as
 * fnn_ce_hard_rows (fnn_v4_expsum, fnn_ce_label_grad, fnn_ce_row_loss): the same results, bit
 * for bit. */
#define FNN_STREAM_MIN_BYTES 4096
#define FNN_STREAM_MAX_BYTES 32768
#define FNN_V4_CE_STREAM(T, S, W, SUF)                                                        \
    FNN_TARGET_V4 static double fnn_v4_ce_stream_##S(const T *z, T *g, ptrdiff_t i0,            \
                                                     ptrdiff_t i1, ptrdiff_t C,                 \
                                                     const intptr_t *labels, const T *sw,       \
                                                     const T *w, double W_, double scale, T *rl) \
    {                                                                                           \
        /* scratch rows: C rounded up to whole vectors (fnn_v4_expsum's tail lanes are 0) */    \
        T scr[2][FNN_STREAM_MAX_BYTES / sizeof(T) + 16] __attribute__((aligned(64)));           \
        const ptrdiff_t Cv = C - C % 16;                                                        \
        fnn_v4_pending_##S p = {NULL, NULL, _mm512_setzero_##SUF(), _mm512_setzero_##SUF(),     \
                                0, 0, 0, 0};                                                    \
        double total = 0.0;                                                                     \
        ptrdiff_t pause = 0; /* rows left before the next first-vector shift */                \
        for (ptrdiff_t i = i0; i < i1; i++) {                                                   \
            const T *zi = z + i * C;                                                            \
            T *si = scr[i & 1];                                                                 \
            const ptrdiff_t y = labels[i];                                                      \
            const double zy = (double)zi[y]; /* before g (maybe z) is written */                \
            /* the first vector's maximum as the shift (see FNN_GUESS_MAX_SUM); the exps go to  \
             * the scratch row, so z (even when it is g) can be read again */                   \
            T m = 0;                                                                            \
            double s = 0.0;                                                                     \
            int kept = 0;                                                                       \
            if (fnn_guess_turn(&pause)) {                                                       \
                m = fnn_v4_rowmax_##S(zi, FNN_TAIL);                                            \
                s = fnn_v4_expsum_##S(zi, si, C, m, si + Cv, p.g ? &p : NULL, 1);               \
                p.g = NULL; /* written */                                                       \
                kept = fnn_guess_check(s, &pause);                                              \
            }                                                                                   \
            if (!kept) {                                                                        \
                m = fnn_v4_rowmax_##S(zi, C);                                                   \
                s = fnn_v4_expsum_##S(zi, si, C, m, si + Cv, p.g ? &p : NULL, 0);               \
            }                                                                                   \
            const double si_w = sw ? (double)sw[i] : 1.0, wy = w ? (double)w[y] : 1.0;          \
            const double L = fnn_ce_row_loss(wy, 0.0, W_, s, fnn_log_f64(s), zy - (double)m,    \
                                             0.0, si_w);                                        \
            if (rl)                                                                             \
                rl[i] = (T)L;                                                                   \
            total += L;                                                                         \
            double A;                                                                           \
            const T fix =                                                                       \
                (T)fnn_ce_label_grad(scale * si_w, wy, 0.0, W_, s, (double)si[y], wy, &A);      \
            T *gi = g + i * C;                                                                  \
            const ptrdiff_t h = (ptrdiff_t)(((64 - ((uintptr_t)gi & 63)) & 63) / sizeof(T));    \
            p.g = gi, p.s = si, p.A = _mm512_set1_##SUF((T)A), p.fix = _mm512_set1_##SUF(fix);  \
            p.y = y, p.h = h < C ? h : C, p.nl = (C - p.h) / W;                                 \
            p.ly = y >= p.h && y < p.h + p.nl * W ? (y - p.h) / W : -1;                         \
        }                                                                                       \
        if (p.g)                                                                                \
            fnn_v4_stream_rest_##S(&p, 0, C);                                                   \
        _mm_sfence(); /* the streaming stores are seen by other threads before they read g */  \
        return total;                                                                           \
    }
FNN_V4_CE_STREAM(float, f32, 16, ps)
FNN_V4_CE_STREAM(double, f64, 8, pd)
#endif

#if FNN_HAVE_CLONES
#define FNN_ISA_SWITCH(CALL_V4, CALL_V3)                                                         \
    switch (fnn_isa()) {                                                                        \
    case 2:                                                                                     \
        CALL_V4;                                                                                \
    case 1:                                                                                     \
        CALL_V3;                                                                                \
    default:                                                                                    \
        break;                                                                                  \
    }
#else
#define FNN_ISA_SWITCH(CALL_V4, CALL_V3)
#endif
/* float rows of up to FNN_V4_MAX_C classes take the AVX-512 register path (plain softmax,
 * cross-entropy without class weights or smoothing); double rows only for cross-entropy of
 * 64 .. FNN_V4_MAX_C_F64 classes (below, 10 doubles fill 2 vectors where the group path packs
 * them) */
#define FNN_V4_SHORT_SOFTMAX_f32                                                                \
    if (mode == 0 && C <= FNN_V4_MAX_C) {                                                       \
        fnn_v4_softmax_f32(z, out, i0, i1, C);                                                  \
        return;                                                                                 \
    }
/* rows of more than FNN_STREAM_MIN_BYTES and up to FNN_STREAM_MAX_BYTES without smoothing:
 * fnn_v4_ce_stream_* (g aligned to its element, as the arrays this backend is given are) */
#define FNN_V4_STREAM_CE(T, S)                                                                  \
    if (g && eps == 0.0 && C * (ptrdiff_t)sizeof(T) > FNN_STREAM_MIN_BYTES                      \
        && C * (ptrdiff_t)sizeof(T) <= FNN_STREAM_MAX_BYTES && (uintptr_t)g % sizeof(T) == 0)   \
        return fnn_v4_ce_stream_##S(z, g, i0, i1, C, labels, sw, w, W, scale, rl);
#define FNN_V4_SHORT_CE_f32                                                                     \
    if (C <= FNN_V4_MAX_C && !w && eps == 0.0)                                                  \
        return fnn_v4_ce_f32(z, g, i0, i1, C, labels, sw, scale, rl);                           \
    FNN_V4_STREAM_CE(float, f32)
#define FNN_V4_SHORT_SOFTMAX_f64
#define FNN_V4_SHORT_CE_f64                                                                     \
    if (C >= FNN_GROUP_MAX_C && C <= FNN_V4_MAX_C_F64 && !w && eps == 0.0)                      \
        return fnn_v4_ce_f64(z, g, i0, i1, C, labels, sw, scale, rl);                           \
    FNN_V4_STREAM_CE(double, f64)
#define FNN_DEFINE_ROW_DISPATCH(T, S)                                                           \
    static FNN_UNUSED void fnn_softmax_rows_##S(const T *z, T *out, ptrdiff_t i0, ptrdiff_t i1, \
                                                ptrdiff_t C, int mode)                          \
    {                                                                                           \
        FNN_ISA_SWITCH(FNN_V4_SHORT_SOFTMAX_##S fnn_softmax_rows_##S##_v4(z, out, i0, i1, C, mode); \
                       return,                                                                  \
                       fnn_softmax_rows_##S##_v3(z, out, i0, i1, C, mode); return)              \
        fnn_softmax_rows_##S##_base(z, out, i0, i1, C, mode);                                   \
    }                                                                                           \
    static FNN_UNUSED double fnn_ce_hard_rows_##S(const T *z, T *g, ptrdiff_t i0, ptrdiff_t i1, \
                                                  ptrdiff_t C, const intptr_t *labels,          \
                                                  const T *sw, const T *w, double W,            \
                                                  double eps, double scale, T *rl)              \
    {                                                                                           \
        FNN_ISA_SWITCH(FNN_V4_SHORT_CE_##S return fnn_ce_hard_rows_##S##_v4(z, g, i0, i1, C, labels, sw, w, W, eps, \
                                                        scale, rl),                             \
                       return fnn_ce_hard_rows_##S##_v3(z, g, i0, i1, C, labels, sw, w, W, eps, \
                                                        scale, rl))                             \
        return fnn_ce_hard_rows_##S##_base(z, g, i0, i1, C, labels, sw, w, W, eps, scale, rl);  \
    }
FNN_DEFINE_ROW_DISPATCH(float, f32)
FNN_DEFINE_ROW_DISPATCH(double, f64)

/* ---- exp over an array for one named variant, so that tests can check each of them -------
 * isa: 0 default (SSE2), 1 x86-64-v3, 2 x86-64-v4 (fnn_exp_* vectorised by gcc), 3 the explicit
 * AVX-512 fnn_v4_exp_f32 / fnn_v4_exp_f64 of the x86-64-v4 row ranges (and float short rows),
 * 4 (double only) fnn_v4_exp_checked_f64 of the double register rows.
 * Returns -1 when that variant is not built here or this CPU cannot run it, else 0. */
#define FNN_EXP_VARIANT(T, S, ISA, ATTR)                                                        \
    ATTR static void fnn_exp_array_##S##_##ISA(const T *x, T *y, ptrdiff_t n)                   \
    {                                                                                           \
        FNN_SIMD                                                                                \
        for (ptrdiff_t i = 0; i < n; i++)                                                       \
            y[i] = fnn_exp_##S(x[i]);                                                           \
    }
FNN_EXP_VARIANT(float, f32, base, )
FNN_EXP_VARIANT(double, f64, base, )
#if FNN_HAVE_CLONES
FNN_EXP_VARIANT(float, f32, v4, FNN_TARGET_V4)
FNN_EXP_VARIANT(float, f32, v3, FNN_TARGET_V3)
FNN_EXP_VARIANT(double, f64, v4, FNN_TARGET_V4)
FNN_EXP_VARIANT(double, f64, v3, FNN_TARGET_V3)
FNN_TARGET_V4 static void fnn_exp_array_f32_v4x(const float *x, float *y, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, fnn_v4_exp_f32(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
FNN_TARGET_V4 static void fnn_exp_array_f64_v4x(const double *x, double *y, ptrdiff_t n,
                                                int checked)
{
    for (ptrdiff_t i = 0; i < n; i += 8) {
        const __mmask8 m = n - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - i)) - 1u);
        const __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        _mm512_mask_storeu_pd(y + i, m, checked ? fnn_v4_exp_checked_f64(v) : fnn_v4_exp_f64(v));
    }
}
#define FNN_EXP_CLONES(S, V4X)                                                                  \
    case 1:                                                                                     \
        fnn_exp_array_##S##_v3(x, y, n);                                                        \
        return 0;                                                                               \
    case 2:                                                                                     \
        fnn_exp_array_##S##_v4(x, y, n);                                                        \
        return 0;                                                                               \
        V4X
#else
#define FNN_EXP_CLONES(S, V4X)
#endif
#define FNN_EXP_DISPATCH(T, S, V4X)                                                             \
    static FNN_UNUSED int fnn_exp_array_##S(const T *x, T *y, ptrdiff_t n, int isa)             \
    {                                                                                           \
        const int level = isa >= 3 ? 2 : isa;                                                   \
        if (level < 0 || level > fnn_isa_supported())                                           \
            return -1;                                                                          \
        switch (isa) {                                                                          \
        case 0:                                                                                 \
            fnn_exp_array_##S##_base(x, y, n);                                                  \
            return 0;                                                                           \
            FNN_EXP_CLONES(S, V4X)                                                              \
        }                                                                                       \
        return -1;                                                                              \
    }
FNN_EXP_DISPATCH(float, f32, case 3 : fnn_exp_array_f32_v4x(x, y, n); return 0;)
FNN_EXP_DISPATCH(double, f64, case 3 : case 4 : fnn_exp_array_f64_v4x(x, y, n, isa == 4);
                 return 0;)

#endif /* FASTNN_SIMD_H */
