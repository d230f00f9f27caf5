"""Interleaved A/B of the kernels of two builds (two checkouts built in place), one thread.

Each round runs one process per build, alternating, and each process times every case (median
of 11 batches of calls into a preallocated ``out=``); the table shows the medians over rounds
and their ratio A/B (above 1: B is faster). Separate processes, because two builds of one
extension module cannot be loaded into one.

    python benchmarks/kernel_ab.py /path/to/checkout_A /path/to/checkout_B --rounds 6 \
        --cases 4096:1000:float32:ce 512:32000:float32:ce 4096:1000:float32:softmax
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

OPS = ("ce", "softmax")


def _time_cases(cases):
    """In the child process: seconds per call of each case, one thread."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    import fastnn_core as F

    rng = np.random.default_rng(0)
    res = []
    for n, C, dtype, op in cases:
        z = rng.normal(size=(n, C)).astype(dtype)
        y = rng.integers(0, C, n)
        out = np.empty_like(z)
        if op == "ce":
            def call():
                F.cross_entropy_grad(z, y, out=out)
        else:
            def call():
                F.softmax(z, out=out)
        with threadpool_limits(1):
            call()
            reps = max(3, int(1e7 // (n * C)))
            ts = []
            for _ in range(11):
                t0 = time.perf_counter()
                for _ in range(reps):
                    call()
                ts.append((time.perf_counter() - t0) / reps)
        res.append(statistics.median(ts))
    return res


def _parse(case):
    n, C, dtype, op = case.split(":")
    if op not in OPS:
        raise SystemExit(f"unknown op {op!r} in {case!r} (choose from {OPS})")
    return int(n), int(C), dtype, op


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=["4096:1000:float32:ce", "512:1000:float32:ce",
                                                   "512:32000:float32:ce", "4096:1000:float64:ce"])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = [_parse(c) for c in args.cases]
    if args.child:
        print(" ".join(repr(t) for t in _time_cases(cases)))
        return
    times = {"A": [], "B": []}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for _ in range(args.rounds):
        for key, path in (("A", args.a), ("B", args.b)):
            env["PYTHONPATH"] = os.path.abspath(path)
            out = subprocess.run([sys.executable, "-P", os.path.abspath(__file__), args.a, args.b,
                                  "--child", "--cases", *args.cases], env=env, cwd="/",
                                 capture_output=True, text=True, check=True)
            times[key].append([float(t) for t in out.stdout.split()])
    print(f"A = {args.a}, B = {args.b}, {args.rounds} rounds, load average "
          f"{os.getloadavg()[0]:.2f}")
    print("| case | A ms | B ms | A/B |")
    print("|---|---:|---:|---:|")
    for i, case in enumerate(args.cases):
        a = statistics.median(r[i] for r in times["A"]) * 1e3
        b = statistics.median(r[i] for r in times["B"]) * 1e3
        print(f"| {case} | {a:.3f} | {b:.3f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
