"""Adam's kernels alone, in TSC cycles per parameter, for tuning the divider / FMA-unit mixes.

Builds a small C driver (below) against ``fastnn_core/_cython`` once per mix with gcc and runs
the builds interleaved, pinned to one CPU: the general path (``fnn_adam_clones_*``, the
vectorised kernel of CPUs without AVX-512, and ``fnn_adam_v4_*``) and the batch-1 rank-1
update (``fnn_train_r1_adam_v4_*``) over the layers of a network.  Median (min) of the
per-round medians.  The arrays stay in cache between steps, unlike in training.

    python benchmarks/adam_kernel_cycles.py [--layers 100 256 128 10] [--rounds 3]
        [--mix GROUP:DIV:SQRT ...]

A mix sets the group size, the Newton-Raphson division bit mask and the FMA-unit square root
bit mask of both the general and the batch-1 kernels (the built-in mix when omitted: "-").
"""

import argparse
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = {0: "general, vectorised clones", 1: "general, AVX-512", 2: "batch 1, AVX-512"}

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

#include "_train_small.h"

#ifndef T
#define T double
#define S f64
#endif
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static T uniform(void) { return (T)(rand() / (double)RAND_MAX); }

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 10) {
        fprintf(stderr, "usage: %s KERNEL WIDTH WIDTH [WIDTH ...]\n", argv[0]);
        return 2;
    }
    const int kernel = atoi(argv[1]), layers = argc - 3;
    ptrdiff_t K[8], N[8], P = 0, widest = 0;
    for (int l = 0; l < layers; l++) {
        K[l] = atoi(argv[2 + l]);
        N[l] = atoi(argv[3 + l]);
        P += K[l] * N[l] + N[l];
        widest = K[l] > widest ? K[l] : widest;
        widest = N[l] > widest ? N[l] : widest;
    }
    T *p = malloc(P * sizeof(T)), *g = malloc(P * sizeof(T)), *m = malloc(P * sizeof(T));
    T *v = malloc(P * sizeof(T)), *a = malloc(widest * sizeof(T)), *d = malloc(widest * sizeof(T));
    T *back = malloc(widest * sizeof(T));
    srand(1);
    for (ptrdiff_t i = 0; i < P; i++) {
        p[i] = uniform() - (T)0.5;
        g[i] = (uniform() - (T)0.5) * (T)1e-2;
        m[i] = g[i] * (T)0.1;
        v[i] = g[i] * g[i] * (T)0.01 + (T)1e-9;
    }
    for (ptrdiff_t i = 0; i < widest; i++) {
        a[i] = uniform();
        d[i] = (uniform() - (T)0.5) * (T)1e-2;
    }
    enum { REPS = 40, STEPS = 20 };
    double cycles[REPS];
    for (int r = 0; r < REPS; r++) {
        const unsigned long long t0 = __rdtsc();
        for (int it = 0; it < STEPS; it++) {
            if (kernel == 0)
                CAT(fnn_adam_clones, S)(p, g, m, v, P, (T)1e-3, 0.9, 0.999, (T)1e-8, (T)1e-4);
            else if (kernel == 1)
                CAT(fnn_adam_v4, S)(p, g, m, v, P, (T)1e-3, 0.9, 0.999, (T)1e-8, (T)1e-4);
            else
                for (ptrdiff_t l = 0, off = 0; l < layers; off += K[l] * N[l] + N[l], l++) {
                    CAT(fnn_train_r1_adam_v4, S)(p + off, a, d, l ? back : NULL, m + off, v + off,
                                                 K[l], N[l], (T)1e-4, (T)1e-3, 0.9, 0.999,
                                                 (T)1e-8);
                    const ptrdiff_t b = off + K[l] * N[l];
                    CAT(fnn_train_r1_adam_v4, S)(p + b, NULL, d, NULL, m + b, v + b, 1, N[l],
                                                 (T)1e-4, (T)1e-3, 0.9, 0.999, (T)1e-8);
                }
        }
        cycles[r] = (double)(__rdtsc() - t0) / STEPS / (double)P;
    }
    qsort(cycles, REPS, sizeof(double), cmp);
    printf("%.3f %.3f\n", cycles[REPS / 2], cycles[0]);
    return 0;
}
"""


def _build(tmp, dtype, mix):
    T, S = ("double", "f64") if dtype == "float64" else ("float", "f32")
    U = S.upper()
    flags = []
    if mix != "-":
        group, div, sqrt = mix.split(":")
        flags = [f"-DFNN_ADAM_V4_GROUP_{U}={group}", f"-DFNN_ADAM_V4_DIV_{U}={div}",
                 f"-DFNN_ADAM_V4_SQRT_{U}={sqrt}", f"-DFNN_V4_GROUP_{U}={group}",
                 f"-DFNN_V4_NRMASK_{U}={div}", f"-DFNN_V4_SQRTMASK_{U}={sqrt}"]
    exe = os.path.join(tmp, f"adam_{S}_{mix.replace(':', '_').replace('-', 'default')}")
    subprocess.run(["gcc", "-O3", "-fno-math-errno", "-fopenmp-simd",
                    "-I" + os.path.join(ROOT, "fastnn_core", "_cython"), f"-DT={T}", f"-DS={S}",
                    *flags, os.path.join(tmp, "driver.c"), "-o", exe, "-lm"], check=True,
                   stderr=subprocess.DEVNULL)
    return exe


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", nargs="+", default=["100", "256", "128", "10"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--mix", nargs="+", default=["-"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "driver.c"), "w") as f:
            f.write(DRIVER)
        exes = {(dt, mix): _build(tmp, dt, mix) for dt in args.dtypes for mix in args.mix}
        runs = {}
        for _ in range(args.rounds):
            for (dt, mix), exe in exes.items():
                for kernel in KERNELS:
                    if kernel == 0 and mix != args.mix[0]:
                        continue  # the clones do not depend on the mix
                    out = subprocess.run(["taskset", "-c", "1", exe, str(kernel), *args.layers],
                                         capture_output=True, text=True, check=True).stdout
                    runs.setdefault((dt, mix, kernel), []).append(float(out.split()[0]))
    print(f"layers {' '.join(args.layers)}, {args.rounds} rounds, load "
          f"{os.getloadavg()[0]:.2f}; TSC cycles per parameter, median (min)")
    for (dt, mix, kernel), c in runs.items():
        print(f"{dt:8s} mix {mix:10s} {KERNELS[kernel]:28s} {statistics.median(c):.3f} "
              f"({min(c):.3f})")


if __name__ == "__main__":
    main()
