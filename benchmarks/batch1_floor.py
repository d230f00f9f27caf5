"""The memory-traffic floor of per-sample (batch size 1) training, against the speed targets.

At batch size 1 every sample updates every parameter, and each optimizer must read and write its
state arrays in full: Adam the parameters ``p`` and both moments ``m`` and ``v`` (three arrays),
SGD with momentum ``p`` and the velocity (two). No implementation can update them faster than
that traffic moves through the cache hierarchy, so this script times exactly that traffic (an
in-place scale of an array of ``n_arrays * P`` elements, which NumPy runs at cache bandwidth)
and prints it next to fastnn's native epoch and the per-sample time of scikit-learn and PyTorch,
all in thread CPU time on the same rows, per 60000-row epoch, with the budget each target
("30x scikit-learn", "10x PyTorch") leaves.

    python benchmarks/batch1_floor.py [--rows 1000] [--hidden 100 256,128]

Run it on a quiet machine; it pins every thread pool to one thread.
"""

import argparse
import statistics
import sys
import time
import warnings

import numpy as np

#: arrays an update reads and writes in full (the gradient itself is formed on the fly)
STATE_ARRAYS = {"adam": 3, "sgd": 2}
EPOCH_ROWS = 60000


def _data(rows, dtype):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=100, n_informative=50, n_classes=10,
                               random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X, dtype=dtype), y


def n_params(d, hidden, k):
    sizes = [d, *hidden, k]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _median_thread_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times)


def traffic_floor_us(P, arrays, dtype, repeats=2000):
    """Microseconds to read and write ``arrays`` arrays of ``P`` elements once."""
    a = np.random.default_rng(0).random(arrays * P).astype(dtype)
    one = np.asarray(0.999, dtype=dtype)

    def sweep():
        for _ in range(repeats):
            np.multiply(a, one, out=a)

    return _median_thread_time(sweep, 7) / repeats * 1e6


def _params(solver, hidden):
    kw = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=1, alpha=1e-4,
              learning_rate_init=1e-3, random_state=0, tol=0.0, n_iter_no_change=10**6)
    if solver == "sgd":
        kw["momentum"] = 0.9
    return kw


class _Stamped(list):
    """``loss_curve_`` noting the thread CPU time at every ``append`` (the end of an epoch)."""

    def __init__(self, items, stamps):
        super().__init__(items)
        self.stamps = stamps

    def append(self, value):
        self.stamps.append(time.thread_time())
        super().append(value)


def per_sample_us(est, X, y, repeats):
    """Thread CPU time per sample of an epoch inside ``fit``: the second epoch of
    ``fit(max_iter=2, warm_start=True)``, after the first has touched the workspaces."""
    est.set_params(warm_start=True, max_iter=1)
    est.fit(X, y)
    est.set_params(max_iter=2)
    times = []
    for _ in range(repeats):
        stamps = []
        est.loss_curve_ = _Stamped(est.loss_curve_, stamps)
        est.fit(X, y)
        times.append(stamps[1] - stamps[0])
    return statistics.median(times) / len(X) * 1e6


def torch_per_sample_us(X, y, hidden, solver, repeats):
    try:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from _torch_mlp import torch_epoch_fn
    except ImportError:
        return float("nan")
    epoch = torch_epoch_fn(X, y, hidden, 10, 1, solver=solver)
    epoch()
    return _median_thread_time(epoch, repeats) / len(X) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000, help="rows per timed epoch (default 1000)")
    ap.add_argument("--hidden", nargs="+", default=["100", "256,128"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from sklearn.neural_network import MLPClassifier as SkMLP
    from threadpoolctl import threadpool_limits

    import fastnn
    from fastnn import MLPClassifier

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    scale = EPOCH_ROWS / 1e6
    print(f"<!-- python benchmarks/batch1_floor.py {' '.join(argv or sys.argv[1:])}; fastnn "
          f"{fastnn.__version__}; {args.rows} rows per timed epoch, median of {args.repeats}, "
          f"thread CPU time; seconds per {EPOCH_ROWS}-row epoch -->\n")
    print("| hidden | solver | dtype | params | state traffic floor | fastnn native | sklearn "
          "| torch | native/floor | budget 30x sklearn | budget 10x torch | floor over budget |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    with threadpool_limits(1):
        for hidden_s in args.hidden:
            hidden = tuple(int(h) for h in hidden_s.split(","))
            for solver in ("adam", "sgd"):
                for dtype in (np.float32, np.float64):
                    X, y = _data(args.rows, dtype)
                    P = n_params(X.shape[1], hidden, 10)
                    floor = traffic_floor_us(P, STATE_ARRAYS[solver], dtype) * scale
                    kw = _params(solver, hidden)
                    nat = per_sample_us(MLPClassifier(**kw), X, y,
                                        args.repeats) * scale
                    skl = per_sample_us(SkMLP(**kw), X, y,
                                        args.repeats) * scale
                    tor = torch_per_sample_us(X, y, hidden, solver, args.repeats) * scale
                    b_skl, b_tor = skl / 30, tor / 10
                    over = [name for name, b in (("30x sklearn", b_skl), ("10x torch", b_tor))
                            if floor > b]
                    print(f"| {hidden_s} | {solver} | {np.dtype(dtype).name} | {P} "
                          f"| {floor:.3f} | {nat:.3f} | {skl:.2f} | {tor:.2f} "
                          f"| {nat / floor:.2f} | {b_skl:.3f} | {b_tor:.3f} "
                          f"| {', '.join(over) or '-'} |", flush=True)


if __name__ == "__main__":
    main()
