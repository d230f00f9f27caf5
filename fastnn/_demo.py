"""``python -m fastnn demo``: the training regimes and optimizers on real data, next to
scikit-learn, then the lessons (figures).

Trains ``fastnn.MLPClassifier`` and ``sklearn.neural_network.MLPClassifier`` with identical
hyperparameters and ``random_state`` on scikit-learn's bundled ``load_digits`` (8x8 images of
handwritten digits, standardised, 75/25 stratified split) with each regime (batch gradient
descent, per-sample SGD, mini-batch SGD, Adam) and each optimizer, and prints test accuracy and
fit time of both (scikit-learn has no AdaGrad, AdaDelta or RMSProp: "-" there).
"""

import argparse
import contextlib
import time
import warnings

import numpy as np

from . import _lessons

# One obvious call per regime (fastnn's spelling); scikit-learn gets the same values, except
# that it spells the full batch as the number of training rows.
REGIMES = [
    ("BGD (full batch)",
     dict(solver="sgd", batch_size="full", learning_rate_init=0.1, max_iter=300)),
    ("per-sample SGD",
     dict(solver="sgd", batch_size=1, learning_rate_init=0.01, momentum=0.0, max_iter=10)),
    ("mini-batch SGD (32)",
     dict(solver="sgd", batch_size=32, learning_rate_init=0.01, max_iter=100)),
    ("Adam", dict(solver="adam", max_iter=100)),
]

# Mini-batch (32) training with every optimizer, 30 epochs each.
OPTIMIZERS = [
    ("SGD", dict(solver="sgd", momentum=0.0, learning_rate_init=0.05)),
    ("momentum", dict(solver="sgd", momentum=0.9, nesterovs_momentum=False,
                      learning_rate_init=0.01)),
    ("Nesterov", dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                      learning_rate_init=0.01)),
    ("AdaGrad", dict(solver="adagrad", learning_rate_init=0.05)),
    ("AdaDelta", dict(solver="adadelta", learning_rate_init=1.0, epsilon=1e-6)),
    ("RMSProp", dict(solver="rmsprop", learning_rate_init=0.001)),
    ("Adam", dict(solver="adam", learning_rate_init=0.001)),
]
SKLEARN_SOLVERS = ("sgd", "adam", "lbfgs")


def _data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _fit_score(cls, params, X_train, X_test, y_train, y_test):
    from sklearn.exceptions import ConvergenceWarning

    est = cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return est.score(X_test, y_test), seconds


def _compare(configs, data, quick, backend, hidden_layer_sizes, random_state, defaults=None):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = data
    rows = []
    for name, params in configs:
        params = dict(defaults or {}, **params, hidden_layer_sizes=hidden_layer_sizes,
                      random_state=random_state)
        if quick:
            params["max_iter"] = max(2, params["max_iter"] // 10)
        acc, sec = _fit_score(lambda **p: MLPClassifier(backend=backend, **p), params,
                              X_train, X_test, y_train, y_test)
        row = dict(regime=name, fastnn_accuracy=acc, fastnn_seconds=sec,
                   sklearn_accuracy=None, sklearn_seconds=None, speedup=None)
        if params["solver"] in SKLEARN_SOLVERS:
            sk_params = dict(params)
            if sk_params.get("batch_size") == "full":
                sk_params["batch_size"] = X_train.shape[0]
            sk_acc, sk_sec = _fit_score(SkMLP, sk_params, X_train, X_test, y_train, y_test)
            row.update(sklearn_accuracy=sk_acc, sklearn_seconds=sk_sec,
                       speedup=sk_sec / sec if sec > 0 else float("inf"))
        rows.append(row)
    return rows


def run(quick=False, backend=None, hidden_layer_sizes=(64,), random_state=0, dtype=np.float64):
    """Fit every regime with fastnn and scikit-learn; returns a list of dicts (one per regime)
    with ``regime``, ``fastnn_accuracy``, ``fastnn_seconds``, ``sklearn_accuracy``,
    ``sklearn_seconds`` and ``speedup`` (scikit-learn's time over fastnn's)."""
    data = [a.astype(dtype) if a.dtype.kind == "f" else a for a in _data()]
    return _compare(REGIMES, data, quick, backend, hidden_layer_sizes, random_state)


def run_optimizers(quick=False, backend=None, hidden_layer_sizes=(64,), random_state=0,
                   dtype=np.float64):
    """Mini-batch training with every optimizer; rows as in :func:`run` (the scikit-learn
    entries are None for the optimizers scikit-learn does not have)."""
    data = [a.astype(dtype) if a.dtype.kind == "f" else a for a in _data()]
    return _compare(OPTIMIZERS, data, quick, backend, hidden_layer_sizes, random_state,
                    defaults=dict(batch_size=32, max_iter=30))


def format_table(rows, first="regime"):
    """The rows of :func:`run` as a Markdown table."""
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [
        f"| {first} | fastnn accuracy | fastnn fit (s) | scikit-learn accuracy "
        "| scikit-learn fit (s) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        speedup = "-" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        lines.append(
            f"| {r['regime']} | {r['fastnn_accuracy']:.4f} | {r['fastnn_seconds']:.3f} "
            f"| {cell(r['sklearn_accuracy'], '.4f')} | {cell(r['sklearn_seconds'], '.3f')} "
            f"| {speedup} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastnn demo",
        description="Train on scikit-learn's load_digits with each regime (BGD, per-sample SGD, "
        "mini-batch SGD, Adam) and compare accuracy and fit time with scikit-learn.",
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the epochs (smoke test)")
    parser.add_argument("--backend", choices=["cython", "numba", "numpy"], default=None,
                        help="fastnn_core backend (default: the active one)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for both libraries (default 1; 0 = no limit)")
    parser.add_argument("--float32", action="store_true", help="train on float32 data")
    _lessons.add_arguments(parser, include_quick=False)
    args = parser.parse_args(argv)

    import fastnn_core

    backend = args.backend or fastnn_core.get_backend()
    # Load the kernels first: threadpool_limits only caps thread pools already loaded (the
    # Cython backend brings its own OpenMP runtime).
    fastnn_core.get_kernels(backend)
    print(f"fastnn demo: load_digits (1347 train / 450 test rows, 64 features, 10 classes), "
          f"hidden_layer_sizes=(64,), backend={backend}, "
          f"{'float32' if args.float32 else 'float64'}, threads={args.threads or 'all'}")
    dtype = np.float32 if args.float32 else np.float64
    with contextlib.ExitStack() as stack:
        if args.threads:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(args.threads))
        rows = run(quick=args.quick, backend=args.backend, dtype=dtype)
        print(format_table(rows), end="\n\n", flush=True)
        rows = run_optimizers(quick=args.quick, backend=args.backend, dtype=dtype)
        print(format_table(rows, first="optimizer (batch 32)"), end="\n\n", flush=True)
    _lessons.run_args(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
