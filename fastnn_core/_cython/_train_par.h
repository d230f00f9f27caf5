/*
 * _train_par.h -- helpers of the data-parallel batches of the native training loop
 * (_train.pyx): the team size of the enclosing OpenMP region and the reduction of the
 * per-thread gradient partial sums.
 */
#ifndef FASTNN_TRAIN_PAR_H
#define FASTNN_TRAIN_PAR_H

#include "fastnn_simd.h"

/* threads of the innermost enclosing parallel region (1 outside one / without OpenMP) */
static inline int fnn_par_num_threads(void)
{
#if FASTNN_OPENMP && defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

#define FNN_DEFINE_TRAIN_PAR(T, S)                                                            \
    /* dst += src, element by element */                                                      \
    FNN_CLONES void fnn_train_addto_##S(T *restrict dst, const T *restrict src, ptrdiff_t n)  \
    {                                                                                         \
        FNN_SIMD                                                                              \
        for (ptrdiff_t i = 0; i < n; i++)                                                     \
            dst[i] += src[i];                                                                 \
    }

FNN_DEFINE_TRAIN_PAR(float, f32)
FNN_DEFINE_TRAIN_PAR(double, f64)

#endif
