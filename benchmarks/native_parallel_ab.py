"""In-process interleaved A/B of the cython native epoch on 2+ threads: the data-parallel
batches (``par``) against the one-thread loop with multi-threaded BLAS (``ser``: the same build
with the data-parallel threshold set out of reach) and the BLAS floor, one process, epochs
interleaved, medians and minima. Times ``NativeEpoch.run`` (kernel + adapter, BLAS limit
included) on a 60000 x 100 synthetic set, 10 classes. At batch size 1 ``par`` is the
two-part epoch (``--par-min-params``, default ``parallel_min_params()``) with each block of
samples on two threads or one by the clock, ``two`` / ``one`` the same always on two threads /
on one, and ``ser`` the one-thread loop; the BLAS floor does not apply there (``--modes par two
one ser``). At batch sizes 2 .. ``parallel_min_rows() - 1`` ``par`` is the automatic choice
(``--sb-min-bytes``, default ``smallbatch_min_bytes()``), ``two`` / ``one`` the two-part epoch
always on two threads / on one, ``ser`` the one-thread loop with BLAS on its 2-thread pool
(today's two-thread behaviour), ``t1`` everything on one thread (``threadpool_limits(1)``) and
``dp`` the data-parallel batches forced (``bs / 2`` rows per thread).

    PYTHONPATH=. python benchmarks/native_parallel_ab.py --solvers adam sgd
    PYTHONPATH=. python benchmarks/native_parallel_ab.py --bs 64 128 --hidden 100 --par-min 64
    PYTHONPATH=. python benchmarks/native_parallel_ab.py --bs 1 --solvers adam sgd \
        --modes par two ser --reps 5 --par-min-params 0
    PYTHONPATH=. python benchmarks/native_parallel_ab.py --bs 8 16 32 48 --solvers adam sgd \
        --modes two one ser t1 dp --reps 5
"""
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastnn import MLPClassifier
from fastnn._native_loop import NativeEpoch
import fastnn_core._cython._train as T
from _floor import BlasFloor

def data(dtype, n=60000, d=100, C=10):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = np.argmax(X @ rng.normal(size=(d, C)) + rng.normal(size=(n, C)), axis=1)
    return X, y

def native_for(X, y, hidden, solver, bs):
    # sgd: momentum 0.9 with Nesterov (the estimator's defaults)
    cap = {}
    orig = NativeEpoch.run
    def run(self, order):
        cap["n"] = self
        return orig(self, order)
    NativeEpoch.run = run
    try:
        est = MLPClassifier(hidden, solver=solver, batch_size=bs, max_iter=1, random_state=0,
                            learning_rate_init=1e-3, alpha=1e-4, tol=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    finally:
        NativeEpoch.run = orig
    return cap["n"]

def main(cases, reps, thr, par_min=None, modes=("par", "ser", "floor"), gap=0.3,
         par_min_params=None, sb_min_bytes=None):
    default = par_min or T.parallel_min_rows()
    default_params = T.parallel_min_params()
    default_bytes = T.smallbatch_min_bytes()
    pmin = default_params if par_min_params is None else par_min_params
    bmin = default_bytes if sb_min_bytes is None else sb_min_bytes
    print("threads", thr, "par_min_rows", default, "par_min_params", pmin, "sb_min_bytes", bmin)
    allmodes = ("par", "two", "one", "ser", "t1", "dp", "floor")
    for hidden, solver, bs, dtype in cases:
        X, y = data(dtype)
        with threadpool_limits(thr):
            T.set_parallel_min_rows(2)
            nat = native_for(X, y, hidden, solver, bs)
            T.set_parallel_min_rows(default)
            n = X.shape[0]
            rng = np.random.RandomState(1)
            fl = BlasFloor(X, [X.shape[1], *hidden, 10], bs)
            ts = {k: [] for k in allmodes}
            for r in range(reps):
                for mode in modes:
                    # idle OpenBLAS workers spin for ~0.1 s after a multi-threaded call (even
                    # once limited to one thread), on the cores the next epoch needs: let them
                    # go to sleep before each timed epoch
                    time.sleep(gap)
                    order = None if bs == "full" else rng.permutation(n)
                    if mode == "floor":
                        t0 = time.perf_counter(); fl.epoch(); ts[mode].append(time.perf_counter() - t0)
                        continue
                    serial = mode in ("ser", "t1", "dp")
                    T.set_parallel_min_rows(
                        bs if mode == "dp" else (default if mode != "ser" else 10**9))
                    T.set_parallel_min_params(pmin if not serial else 10**9)
                    T.set_smallbatch_min_bytes(
                        10**18 if serial else (0 if mode in ("two", "one") else bmin))
                    T.set_b1par_mode({"two": 1, "one": 2}.get(mode, 0))
                    with threadpool_limits(1 if mode == "t1" else thr):
                        t0 = time.perf_counter(); nat.run(order); ts[mode].append(time.perf_counter() - t0)
            T.set_parallel_min_rows(default)
            T.set_parallel_min_params(default_params)
            T.set_smallbatch_min_bytes(default_bytes)
            T.set_b1par_mode(0)
        for k in allmodes:
            if not ts[k]:
                ts[k] = [float("nan")]
        med = {k: float(np.median(v)) for k, v in ts.items()}
        mn = {k: float(np.min(v)) for k, v in ts.items()}
        print(f"{str(hidden):10s} {solver:5s} {str(bs):5s} {np.dtype(dtype).name:8s} "
              f"par {med['par']:.4f} two {med['two']:.4f} one {med['one']:.4f} "
              f"ser {med['ser']:.4f} t1 {med['t1']:.4f} dp {med['dp']:.4f} "
              f"floor {med['floor']:.4f} ser/par {med['ser']/med['par']:.2f} "
              f"par/floor {med['par']/med['floor']:.2f} ser/floor {med['ser']/med['floor']:.2f} "
              f"| min par {mn['par']:.4f} two {mn['two']:.4f} one {mn['one']:.4f} "
              f"ser {mn['ser']:.4f} t1 {mn['t1']:.4f} dp {mn['dp']:.4f} "
              f"floor {mn['floor']:.4f} "
              f"load {open('/proc/loadavg').read().split()[0]}",
              flush=True)

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--par-min", type=int, default=None)
    ap.add_argument("--modes", nargs="+", default=["par", "ser", "floor"])
    ap.add_argument("--gap", type=float, default=0.3,
                    help="seconds of sleep before each timed epoch (idle BLAS workers)")
    ap.add_argument("--par-min-params", type=int, default=None,
                    help="batch-1 two-thread threshold of the par runs (parameters)")
    ap.add_argument("--sb-min-bytes", type=int, default=None,
                    help="small-batch two-part threshold of the par runs (bytes of parameters)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bs", nargs="+", default=["256", "full"])
    ap.add_argument("--hidden", nargs="+", default=["100", "256,128"])
    ap.add_argument("--solvers", nargs="+", default=["adam"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    a = ap.parse_args()
    cases = [(tuple(int(h) for h in hid.split(",")), s, (b if b == "full" else int(b)), np.dtype(dt).type)
             for hid in a.hidden for s in a.solvers for b in a.bs for dt in a.dtypes]
    main(cases, a.reps, a.threads, a.par_min, a.modes, a.gap, a.par_min_params, a.sb_min_bytes)
