"""``python -m fastnn demo``: the four training regimes on real data, next to scikit-learn.

Trains ``fastnn.MLPClassifier`` and ``sklearn.neural_network.MLPClassifier`` with identical
hyperparameters and ``random_state`` on scikit-learn's bundled ``load_digits`` (8x8 images of
handwritten digits, standardised, 75/25 stratified split) with each regime: batch gradient
descent, per-sample SGD, mini-batch SGD and Adam, and prints test accuracy and fit time of both.
"""

import argparse
import time
import warnings

import numpy as np

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


def run(quick=False, backend=None, hidden_layer_sizes=(64,), random_state=0, dtype=np.float64):
    """Fit every regime with fastnn and scikit-learn; returns a list of dicts (one per regime)
    with ``regime``, ``fastnn_accuracy``, ``fastnn_seconds``, ``sklearn_accuracy``,
    ``sklearn_seconds`` and ``speedup`` (scikit-learn's time over fastnn's)."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = _data()
    X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    rows = []
    for name, params in REGIMES:
        params = dict(params, hidden_layer_sizes=hidden_layer_sizes, random_state=random_state)
        if quick:
            params["max_iter"] = max(2, params["max_iter"] // 10)
        sk_params = dict(params)
        if sk_params.get("batch_size") == "full":
            sk_params["batch_size"] = X_train.shape[0]
        acc, sec = _fit_score(lambda **p: MLPClassifier(backend=backend, **p), params,
                              X_train, X_test, y_train, y_test)
        sk_acc, sk_sec = _fit_score(SkMLP, sk_params, X_train, X_test, y_train, y_test)
        rows.append(dict(regime=name, fastnn_accuracy=acc, fastnn_seconds=sec,
                         sklearn_accuracy=sk_acc, sklearn_seconds=sk_sec,
                         speedup=sk_sec / sec if sec > 0 else float("inf")))
    return rows


def format_table(rows):
    """The rows of :func:`run` as a Markdown table."""
    lines = [
        "| regime | fastnn accuracy | fastnn fit (s) | scikit-learn accuracy "
        "| scikit-learn fit (s) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['regime']} | {r['fastnn_accuracy']:.4f} | {r['fastnn_seconds']:.3f} "
            f"| {r['sklearn_accuracy']:.4f} | {r['sklearn_seconds']:.3f} | {r['speedup']:.1f}x |"
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
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            rows = run(quick=args.quick, backend=args.backend, dtype=dtype)
    else:
        rows = run(quick=args.quick, backend=args.backend, dtype=dtype)
    print(format_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
