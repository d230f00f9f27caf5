/*
 * _train_small_v4.h -- the AVX-512 (x86-64-v4) batch-size-1 kernels of _train_small.h, written
 * once for both element types: _train_small.h includes this file twice, with FNN_V4_F32 set to
 * 1 (float) and 0 (double).  Not a header to include anywhere else.
 *
 * Whole rows go through 512-bit vectors, the last partial vector of a row under a lane mask
 * (masked loads read zeros there, masked stores leave memory alone), so a row of 100 or 10
 * takes no scalar tail; N % lanes == 0 is not needed by any path.
 *
 * Element expressions and their FMA contractions are those gcc gives fastnn_simd.h's fnn_sgd /
 * fnn_adam_clones (checked in the disassembly): ge = fma(l2, p, g) with g = a_k d rounded;
 * sgd: t = lr ge, v = fms(mom, v, t), p += v (Nesterov: p += fms(mom, v_new, t));
 * adam: m = fma(b1, m, c1 ge), v = fma(b2, v, (ge ge) c2), p -= (lr m) / (sqrt(v) + eps).
 *
 * Subnormals: Adam's moments and weights of a dead ReLU unit (gradient 0 apart from the L2
 * term) decay into subnormals after a few thousand samples, and the (256, 128) epoch then runs
 * up to ~40% slower (Zen 4: vdivpd with a subnormal operand or result ~10 instead of 6.3
 * cycles, and the rest of the element update slows too).  Scaling subnormal numerators by
 * 2^64 around the division (exact, with a midpoint check for subnormal quotients) was tried:
 * it made such late epochs slower still, so subnormal lanes simply take the IEEE division.
 */
#if FNN_V4_F32
#define FV_T float
#define FV_VT __m512
#define FV_MT __mmask16
#define FV_LANES 16
#define FV_OP(x) _mm512_##x##_ps
#define FV_S(name) name##_f32
#else
#define FV_T double
#define FV_VT __m512d
#define FV_MT __mmask8
#define FV_LANES 8
#define FV_OP(x) _mm512_##x##_pd
#define FV_S(name) name##_f64
#endif

#define FV_LD(ptr) (full ? FV_OP(loadu)(ptr) : FV_OP(maskz_loadu)(msk, ptr))
#define FV_ST(ptr, x)                                                                          \
    do {                                                                                       \
        if (full)                                                                              \
            FV_OP(storeu)(ptr, x);                                                             \
        else                                                                                   \
            FV_OP(mask_storeu)(ptr, msk, x);                                                   \
    } while (0)

/* the row's sum of squares into the double lanes of acc (float: summed in float over the row,
 * as the portable kernels do) */
FNN_V4 FNN_INLINE __m512d FV_S(fnn_v4_acc)(__m512d acc, FV_VT sq)
{
#if FNN_V4_F32
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(
                                  _mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
#else
    return _mm512_add_pd(acc, sq);
#endif
}

/* Rows are updated in the order 0, s, 2s, ..., 1, 1 + s, ...: the masked store of a row's
 * last vector spans lanes past the row, into the next row, and a load that overlaps a pending
 * masked store waits for it to retire (no store forwarding): updating rows in order, that
 * stalled the first load of every row (the hidden-100 float update ran 15% slower than the
 * portable kernel's scalar tail).  With s rows between consecutive updates the store is long
 * gone when its neighbour is read.  (The sum of squares and back[] do not depend on the order
 * beyond the rounding of the loss's L2 term.) */
FNN_INLINE ptrdiff_t FV_S(fnn_v4_row_stride)(ptrdiff_t N)
{
    const ptrdiff_t Nv = N - N % FV_LANES;
    return N % FV_LANES ? (Nv + FV_LANES + N - 1) / N : 1;
}

/* ---- SGD with momentum (Nesterov or not): one vector at pk, s0k, d (all + j) */
FNN_V4 FNN_INLINE void FV_S(fnn_v4_sgd_vec)(FV_T *pk, FV_T *s0k, const FV_T *dj, FV_VT ak,
                                            FV_VT l2, FV_VT lr, FV_VT mom, FV_MT msk,
                                            const int full, const int nesterov,
                                            const int with_dot, FV_VT *dot, FV_VT *sq)
{
    const FV_VT d = FV_LD(dj), p = FV_LD(pk);
    const FV_VT ge = FV_OP(fmadd)(l2, p, FV_OP(mul)(ak, d));
    if (with_dot)
        *dot = FV_OP(fmadd)(p, d, *dot);
    const FV_VT t = FV_OP(mul)(lr, ge);
    const FV_VT vi = FV_OP(fmsub)(mom, FV_LD(s0k), t);
    FV_ST(s0k, vi);
    const FV_VT pn = FV_OP(add)(p, nesterov ? FV_OP(fmsub)(mom, vi, t) : vi);
    FV_ST(pk, pn);
    *sq = FV_OP(fmadd)(pn, pn, *sq);
}

FNN_V4 FNN_INLINE __m512d FV_S(fnn_v4_sgd_rows)(FV_T *p, const FV_T *a, const FV_T *d,
                                                FV_T *back, FV_T *s0, ptrdiff_t K,
                                                ptrdiff_t N, FV_VT l2, FV_VT lr, FV_VT mom,
                                                const int nesterov, const int with_dot)
{
    const ptrdiff_t Nv = N - N % FV_LANES;
    const FV_MT msk = (FV_MT)((1u << (N % FV_LANES)) - 1u), all = (FV_MT)-1;
    __m512d acc = _mm512_setzero_pd();
    const ptrdiff_t stride = FV_S(fnn_v4_row_stride)(N);
    for (ptrdiff_t r = 0; r < stride; r++)
    for (ptrdiff_t k = r; k < K; k += stride) {
        const FV_VT ak = FV_OP(set1)(a ? a[k] : (FV_T)1);
        FV_T *pk = p + k * N, *s0k = s0 + k * N;
        /* two accumulators each: an FMA chain through every vector of a row would wait on
         * the FMA latency at every step */
        FV_VT dot0 = FV_OP(setzero)(), dot1 = dot0, sq0 = dot0, sq1 = dot0;
        ptrdiff_t j = 0;
        for (; j + 2 * FV_LANES <= Nv; j += 2 * FV_LANES) {
            FV_S(fnn_v4_sgd_vec)(pk + j, s0k + j, d + j, ak, l2, lr, mom, all, 1, nesterov,
                                 with_dot, &dot0, &sq0);
            FV_S(fnn_v4_sgd_vec)(pk + j + FV_LANES, s0k + j + FV_LANES, d + j + FV_LANES, ak,
                                 l2, lr, mom, all, 1, nesterov, with_dot, &dot1, &sq1);
        }
        if (j < Nv)
            FV_S(fnn_v4_sgd_vec)(pk + j, s0k + j, d + j, ak, l2, lr, mom, all, 1, nesterov,
                                 with_dot, &dot0, &sq0);
        if (Nv < N)
            FV_S(fnn_v4_sgd_vec)(pk + Nv, s0k + Nv, d + Nv, ak, l2, lr, mom, msk, 0, nesterov,
                                 with_dot, &dot1, &sq1);
        acc = FV_S(fnn_v4_acc)(acc, FV_OP(add)(sq0, sq1));
        if (with_dot)
            back[k] = FV_OP(reduce_add)(FV_OP(add)(dot0, dot1));
    }
    return acc;
}

FNN_V4 static double FV_S(fnn_train_r1_sgd_v4)(FV_T *p, const FV_T *a, const FV_T *d,
                                               FV_T *back, FV_T *s0, ptrdiff_t K, ptrdiff_t N,
                                               FV_T l2_, FV_T lr_, FV_T mom_, int nesterov)
{
    const FV_VT l2 = FV_OP(set1)(l2_), lr = FV_OP(set1)(lr_), mom = FV_OP(set1)(mom_);
    __m512d acc;
    if (nesterov)
        acc = back ? FV_S(fnn_v4_sgd_rows)(p, a, d, back, s0, K, N, l2, lr, mom, 1, 1)
                   : FV_S(fnn_v4_sgd_rows)(p, a, d, back, s0, K, N, l2, lr, mom, 1, 0);
    else
        acc = back ? FV_S(fnn_v4_sgd_rows)(p, a, d, back, s0, K, N, l2, lr, mom, 0, 1)
                   : FV_S(fnn_v4_sgd_rows)(p, a, d, back, s0, K, N, l2, lr, mom, 0, 0);
    return _mm512_reduce_add_pd(acc);
}

/* ---- Adam: one vector; nr_div / nr_sqrt select the FMA-unit division / square root
 * (fnn_v4_div_nr_*, fnn_v4_sqrt_nr_* of fastnn_simd.h) */
struct FV_S(fnn_v4_adam_c) {
    FV_VT l2, lr, b1, b2, c1, c2, eps;
};

FNN_V4 FNN_INLINE void FV_S(fnn_v4_adam_vec)(FV_T *pk, FV_T *mk, FV_T *vk, const FV_T *dj,
                                             FV_VT ak, const struct FV_S(fnn_v4_adam_c) *c,
                                             FV_MT msk, const int full, const int nr_div,
                                             const int nr_sqrt, const int with_dot, FV_VT *dot,
                                             FV_VT *sq)
{
    const FV_VT d = FV_LD(dj), p = FV_LD(pk);
    const FV_VT ge = FV_OP(fmadd)(c->l2, p, FV_OP(mul)(ak, d));
    if (with_dot)
        *dot = FV_OP(fmadd)(p, d, *dot);
    const FV_VT mi = FV_OP(fmadd)(c->b1, FV_LD(mk), FV_OP(mul)(c->c1, ge));
    const FV_VT vi = FV_OP(fmadd)(c->b2, FV_LD(vk), FV_OP(mul)(FV_OP(mul)(ge, ge), c->c2));
    FV_ST(mk, mi);
    FV_ST(vk, vi);
    FV_VT den = FV_OP(add)(nr_sqrt ? FV_S(fnn_v4_sqrt_nr)(vi, msk) : FV_OP(sqrt)(vi), c->eps);
    if (!full) /* lanes past the row: 0 / 1, nothing special for the checks to catch */
        den = FV_OP(mask_mov)(FV_OP(set1)(1.0), msk, den);
    const FV_VT num = FV_OP(mul)(c->lr, mi);
    const FV_VT pn =
        FV_OP(sub)(p, nr_div ? FV_S(fnn_v4_div_nr)(num, den, msk) : FV_OP(div)(num, den));
    FV_ST(pk, pn);
    *sq = FV_OP(fmadd)(pn, pn, *sq);
}

/* Which vectors take the FMA units' division or square root (fnn_v4_div_nr_*,
 * fnn_v4_sqrt_nr_*): the divider does sqrt + div of an exact vector (double: 11.4 + 6.3 TSC
 * cycles, float: ~7 + ~4.5), the FMA units ~9 more operations for a Newton-Raphson division
 * and ~13 for a square root.  Rows go in groups of FNN_V4_GROUP_* vectors, vector u of a
 * group dividing by Newton-Raphson when bit u of FNN_V4_NRMASK_* is set (vectors after the
 * last whole group and the masked tail: when any bit is) and taking its square root on the
 * FMA units when bit u of FNN_V4_SQRTMASK_* is.  Measured on Zen 4, (256, 128) epochs:
 * double, division: 1 of 2 (3.2-3.35 s) beat 0 (3.5 s), all (3.8 s), 1 of 3 (3.3-3.5 s), 2 of
 * 3 (3.4 s) and 1 of 4 (3.3-3.8 s); float 0 of 2 beat 1 of 2 (1.5 vs 1.8 s) and all (1.95 s).
 * Then the square root, double (a kernel micro-benchmark, cycles per parameter, (256, 128) /
 * hidden 100): 1 root of 3 vectors 1.91 / 2.07 against 1.97 / 2.22 for 1 division of 2, 2 of
 * 5 roots 1.98 / 2.11, a root and a division of 3 2.19 / 2.41; epochs, interleaved: hidden 100
 * 0.69 against 0.72 s, (256, 128) 3.27 against 3.38 s.  Float loses with any square roots
 * there (1 of 6: 0.82 / 0.95 against 0.74 / 0.89; the update also carries the gradient's
 * product and both sums, so the FMA units are the busier). */
#ifndef FNN_V4_GROUP_F32
#define FNN_V4_GROUP_F32 2
#endif
#ifndef FNN_V4_NRMASK_F32
#define FNN_V4_NRMASK_F32 0
#endif
#ifndef FNN_V4_GROUP_F64
#define FNN_V4_GROUP_F64 3
#endif
#ifndef FNN_V4_NRMASK_F64
#define FNN_V4_NRMASK_F64 0
#endif
#ifndef FNN_V4_SQRTMASK_F32
#define FNN_V4_SQRTMASK_F32 0
#endif
#ifndef FNN_V4_SQRTMASK_F64
#define FNN_V4_SQRTMASK_F64 1
#endif
#if FNN_V4_F32
#define FV_GROUP FNN_V4_GROUP_F32
#define FV_NRMASK FNN_V4_NRMASK_F32
#define FV_SQRTMASK FNN_V4_SQRTMASK_F32
#else
#define FV_GROUP FNN_V4_GROUP_F64
#define FV_NRMASK FNN_V4_NRMASK_F64
#define FV_SQRTMASK FNN_V4_SQRTMASK_F64
#endif

FNN_V4 FNN_INLINE __m512d FV_S(fnn_v4_adam_rows)(FV_T *p, const FV_T *a, const FV_T *d,
                                                 FV_T *back, FV_T *m, FV_T *v, ptrdiff_t K,
                                                 ptrdiff_t N,
                                                 const struct FV_S(fnn_v4_adam_c) *c,
                                                 const int with_dot)
{
    const ptrdiff_t Nv = N - N % FV_LANES;
    const FV_MT msk = (FV_MT)((1u << (N % FV_LANES)) - 1u), all = (FV_MT)-1;
    __m512d acc = _mm512_setzero_pd();
    const ptrdiff_t stride = FV_S(fnn_v4_row_stride)(N);
    for (ptrdiff_t r = 0; r < stride; r++)
    for (ptrdiff_t k = r; k < K; k += stride) {
        const FV_VT ak = FV_OP(set1)(a ? a[k] : (FV_T)1);
        FV_T *pk = p + k * N, *mk = m + k * N, *vk = v + k * N;
        FV_VT dot0 = FV_OP(setzero)(), dot1 = dot0, sq0 = dot0, sq1 = dot0;
        ptrdiff_t j = 0;
        for (; j + FV_GROUP * FV_LANES <= Nv; j += FV_GROUP * FV_LANES)
            for (int u = 0; u < FV_GROUP; u++)
                FV_S(fnn_v4_adam_vec)(pk + j + u * FV_LANES, mk + j + u * FV_LANES,
                                      vk + j + u * FV_LANES, d + j + u * FV_LANES, ak, c, all, 1,
                                      (FV_NRMASK >> u) & 1, (FV_SQRTMASK >> u) & 1, with_dot,
                                      u & 1 ? &dot1 : &dot0, u & 1 ? &sq1 : &sq0);
        for (; j < Nv; j += FV_LANES)
            FV_S(fnn_v4_adam_vec)(pk + j, mk + j, vk + j, d + j, ak, c, all, 1, FV_NRMASK != 0,
                                  0, with_dot, &dot0, &sq0);
        if (Nv < N)
            FV_S(fnn_v4_adam_vec)(pk + Nv, mk + Nv, vk + Nv, d + Nv, ak, c, msk, 0,
                                  FV_NRMASK != 0, 0, with_dot, &dot1, &sq1);
        acc = FV_S(fnn_v4_acc)(acc, FV_OP(add)(sq0, sq1));
        if (with_dot)
            back[k] = FV_OP(reduce_add)(FV_OP(add)(dot0, dot1));
    }
    return acc;
}

FNN_V4 static double FV_S(fnn_train_r1_adam_v4)(FV_T *p, const FV_T *a, const FV_T *d,
                                                FV_T *back, FV_T *m, FV_T *v, ptrdiff_t K,
                                                ptrdiff_t N, FV_T l2, FV_T lr_t, double b1,
                                                double b2, FV_T eps)
{
    const struct FV_S(fnn_v4_adam_c) c = {
        FV_OP(set1)(l2),           FV_OP(set1)(lr_t),         FV_OP(set1)((FV_T)b1),
        FV_OP(set1)((FV_T)b2),     FV_OP(set1)((FV_T)(1.0 - b1)), FV_OP(set1)((FV_T)(1.0 - b2)),
        FV_OP(set1)(eps)};
    const __m512d acc = back ? FV_S(fnn_v4_adam_rows)(p, a, d, back, m, v, K, N, &c, 1)
                             : FV_S(fnn_v4_adam_rows)(p, a, d, back, m, v, K, N, &c, 0);
    return _mm512_reduce_add_pd(acc);
}

/* ---- z = a @ W + b.  Rows with a_k == 0 are skipped as in the portable kernel; z is held in
 * registers FV_VM_COLS vectors at a time while every kept row of W goes through it (the
 * portable kernel loads and stores z once per 4 rows), each z[j] still summing its rows in
 * order. */
#define FV_VM_COLS 8
FNN_V4 FNN_INLINE void FV_S(fnn_v4_vecmat_cols)(const FV_T *a, const FV_T *W,
                                                const ptrdiff_t *rows, ptrdiff_t n,
                                                FV_T *z, ptrdiff_t N, ptrdiff_t j0,
                                                const int nv, FV_MT msk)
{
    FV_VT acc[FV_VM_COLS];
    for (int u = 0; u < nv; u++)
        acc[u] = u == nv - 1 ? FV_OP(maskz_loadu)(msk, z + j0 + u * FV_LANES)
                             : FV_OP(loadu)(z + j0 + u * FV_LANES);
    for (ptrdiff_t i = 0; i < n; i++) {
        const FV_VT ak = FV_OP(set1)(a[rows[i]]);
        const FV_T *w = W + rows[i] * N + j0;
        for (int u = 0; u < nv; u++) {
            const FV_VT wv = u == nv - 1 ? FV_OP(maskz_loadu)(msk, w + u * FV_LANES)
                                         : FV_OP(loadu)(w + u * FV_LANES);
            acc[u] = FV_OP(fmadd)(ak, wv, acc[u]);
        }
    }
    for (int u = 0; u < nv; u++) {
        if (u == nv - 1)
            FV_OP(mask_storeu)(z + j0 + u * FV_LANES, msk, acc[u]);
        else
            FV_OP(storeu)(z + j0 + u * FV_LANES, acc[u]);
    }
}

FNN_V4 static void FV_S(fnn_train_vecmat_v4)(const FV_T *a, const FV_T *W, const FV_T *b,
                                             FV_T *z, ptrdiff_t K, ptrdiff_t N)
{
    ptrdiff_t rows[FNN_VM_CHUNK];
    for (ptrdiff_t j = 0; j < N; j++)
        z[j] = 0;
    for (ptrdiff_t k0 = 0; k0 < K; k0 += FNN_VM_CHUNK) {
        const ptrdiff_t k1 = K - k0 > FNN_VM_CHUNK ? k0 + FNN_VM_CHUNK : K;
        ptrdiff_t n = 0;
        for (ptrdiff_t k = k0; k < k1; k++) {
            rows[n] = k;
            n += a[k] != 0;
        }
        for (ptrdiff_t j0 = 0; j0 < N; j0 += FV_VM_COLS * FV_LANES) {
            const ptrdiff_t left = N - j0;
            const int nv = left >= FV_VM_COLS * FV_LANES
                               ? FV_VM_COLS
                               : (int)((left + FV_LANES - 1) / FV_LANES);
            const FV_MT msk = left >= nv * FV_LANES
                                  ? (FV_MT)-1
                                  : (FV_MT)((1u << (left - (nv - 1) * FV_LANES)) - 1u);
            /* one copy per block width, so that acc[] lives in registers */
            switch (nv) {
#define FV_VM_CASE(c)                                                                          \
    case c:                                                                                    \
        FV_S(fnn_v4_vecmat_cols)(a, W, rows, n, z, N, j0, c, msk);                             \
        break;
                FV_VM_CASE(1)
                FV_VM_CASE(2)
                FV_VM_CASE(3)
                FV_VM_CASE(4)
                FV_VM_CASE(5)
                FV_VM_CASE(6)
                FV_VM_CASE(7)
                FV_VM_CASE(8)
#undef FV_VM_CASE
            }
        }
    }
    for (ptrdiff_t j = 0; j < N; j++)
        z[j] += b[j];
}

#undef FV_T
#undef FV_VT
#undef FV_MT
#undef FV_LANES
#undef FV_OP
#undef FV_S
#undef FV_LD
#undef FV_ST
#undef FV_GROUP
#undef FV_NRMASK
#undef FV_SQRTMASK
#undef FV_VM_COLS
