/*
 * _train_b1par.h -- helpers of the two-part epochs of the native training loop (_train.pyx,
 * _parts_epoch: batch size 1 and small batches, the network split in two parts by rows of every
 * weight matrix): the barrier of their team of threads and the sum of the per-part partial
 * products.
 */
#ifndef FASTNN_TRAIN_B1PAR_H
#define FASTNN_TRAIN_B1PAR_H

#include "fastnn_simd.h"

/* ---- the barrier of the team of a two-part epoch.
 * libgomp's `omp barrier` spins GOMP_SPINCOUNT (300000) rounds, milliseconds, before it
 * sleeps: when another process holds one of the two cores, the waiting thread spins while its
 * peer waits for that very core, and a 5-us step took 200-600 us (measured on 2 cores with 3
 * other busy processes).  So on Linux this barrier spins at most `spin` rounds (longer than the
 * usual wait for a running peer), then sleeps on a futex; the last thread to arrive wakes the
 * sleepers.  Elsewhere it is `omp barrier`.  Batch size 1 spins FNN_B1PAR_SPIN rounds; the
 * steps of a small batch take some tens of microseconds and the two parts drift apart by more
 * than 10 us without any other process running, so they spin FNN_SBPAR_SPIN rounds: with 400
 * the threads slept often enough that the back-off of _parts_epoch sent calm blocks to one
 * thread (measured at hidden (256, 128), batch 32, Adam float64: 0.53 s an epoch against 0.35
 * s with 4000, the same as always on two threads). */
#if FASTNN_OPENMP && defined(_OPENMP) && defined(__linux__)
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define FNN_B1PAR_FUTEX 1
#else
#define FNN_B1PAR_FUTEX 0
#endif
#if defined(__x86_64__) || defined(__i386__)
#define FNN_CPU_RELAX() __builtin_ia32_pause()
#else
#define FNN_CPU_RELAX() ((void)0)
#endif
#define FNN_B1PAR_SPIN 400  /* about 10 us of pause on Zen 4 */
#define FNN_SBPAR_SPIN 4000 /* about 100 us */

/* arrivals of the current round, the round number (the futex word), threads asleep, team size,
 * nanoseconds the threads slept in it (their peer was not running: the caller's cue to run on
 * one thread); one cache line (on the stack of the calling thread, which honours the
 * alignment) */
typedef struct {
    int count, gen, sleepers, n, spin;
    long long slept_ns;
} __attribute__((aligned(64))) fnn_b1par_bar;

/* a monotonic clock in nanoseconds (0 without the futex barrier, which then never sleeps) */
static inline long long fnn_b1par_now_ns(void)
{
#if FNN_B1PAR_FUTEX
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#else
    return 0;
#endif
}

/* Every thread of the team, once, before the first fnn_b1par_wait: thread 0 sets up the
 * barrier for the team of nth threads, spinning `spin` rounds before it sleeps. */
static inline void fnn_b1par_start(fnn_b1par_bar *b, int tid, int nth, int spin)
{
    if (tid == 0) {
        b->count = 0;
        b->gen = 0;
        b->sleepers = 0;
        b->n = nth;
        b->spin = spin;
        b->slept_ns = 0;
    }
#if FASTNN_OPENMP && defined(_OPENMP)
#pragma omp barrier
#endif
}

/* Wait until the nth threads of the team have all called it (this round). Every thread's
 * writes before the call are visible to every thread after it. */
static inline void fnn_b1par_wait(fnn_b1par_bar *b)
{
#if FNN_B1PAR_FUTEX
    const int gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        /* the last to arrive: reset the count (no thread arrives again before it sees the
         * new round), open the round, wake whoever went to sleep (seq_cst with the
         * sleepers' increment: either they see the new round or this sees them) */
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->gen, gen + 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&b->sleepers, __ATOMIC_SEQ_CST))
            syscall(SYS_futex, &b->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        return;
    }
    for (int i = 0; i < b->spin; i++) {
        if (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) != gen)
            return;
        FNN_CPU_RELAX();
    }
    const long long t0 = fnn_b1par_now_ns();
    __atomic_add_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
    /* the kernel sleeps only while gen is still the old round */
    while (__atomic_load_n(&b->gen, __ATOMIC_SEQ_CST) == gen)
        syscall(SYS_futex, &b->gen, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
    __atomic_sub_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&b->slept_ns, fnn_b1par_now_ns() - t0, __ATOMIC_RELAXED);
#else
    (void)b;
#if FASTNN_OPENMP && defined(_OPENMP)
#pragma omp barrier
#endif
#endif
}

#define FNN_DEFINE_B1PAR(T, S)                                                                 \
    /* z[i, j] = (parts[0][i, j] + parts[1][i, j] + ... + parts[nparts - 1][i, j]) + b[j] for  \
     * the m rows i and the columns j in [j0, j1), rows ld elements apart in z and in every    \
     * part, the partials added in part order; parts[t] = part + t * stride */                 \
    FNN_CLONES void fnn_b1par_sum_##S(T *restrict z, const T *restrict part, ptrdiff_t stride, \
                                      int nparts, const T *restrict b, ptrdiff_t m,            \
                                      ptrdiff_t ld, ptrdiff_t j0, ptrdiff_t j1)                \
    {                                                                                          \
        for (ptrdiff_t i = 0; i < m; i++) {                                                    \
            T *restrict zi = z + i * ld;                                                       \
            const T *restrict pi = part + i * ld;                                              \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = j0; j < j1; j++)                                                \
                zi[j] = pi[j];                                                                 \
            for (int t = 1; t < nparts; t++) {                                                 \
                const T *restrict pt = pi + t * stride;                                        \
                FNN_SIMD                                                                       \
                for (ptrdiff_t j = j0; j < j1; j++)                                            \
                    zi[j] += pt[j];                                                            \
            }                                                                                  \
            FNN_SIMD                                                                           \
            for (ptrdiff_t j = j0; j < j1; j++)                                                \
                zi[j] += b[j];                                                                 \
        }                                                                                      \
    }

FNN_DEFINE_B1PAR(float, f32)
FNN_DEFINE_B1PAR(double, f64)

#endif
