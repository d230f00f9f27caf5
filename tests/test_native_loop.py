"""The native training loop (issue 4) against the Python reference loop, step for step.

From the same initial state and seed, after 1 and after 5 epochs, the parameters of
``MLPClassifier(loop="native")`` equal those of ``loop="python"`` (float64 within 1e-10
relative, float32 within 1e-4) on both native backends, for every optimizer, activation, loss,
target type, dtype, batch regime (1, a ragged last batch, full) and with sample/class weights.
The native gradient itself is checked against finite differences of the network loss.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification

import fastnn_core
from fastnn import MLPClassifier
from fastnn._mlp import DivergenceWarning
from fastnn._native_loop import NativeEpoch, check_order
from fastnn._network import loss_and_gradients

NATIVE_BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(
        b not in fastnn_core.available_backends(), reason=f"{b} backend not available"))
    for b in ("cython", "numba")
]
SOLVERS = ("sgd", "adam", "adagrad", "rmsprop", "adadelta")
ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu")
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def _data(kind, n=45, d=6, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    if kind == "binary":
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    elif kind == "multiclass":
        y = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(n, 3)), axis=1)
    else:  # multilabel
        y = (X[:, :3] + 0.5 * rng.normal(size=(n, 3)) > 0).astype(int)
    return X, y


def _fit_pair(X, y, epochs, sample_weight=None, **params):
    """The same estimator fitted with both loops; returns (native, python)."""
    out = []
    for loop in ("native", "python"):
        est = MLPClassifier(max_iter=epochs, random_state=0, loop=loop, tol=0.0,
                            n_iter_no_change=1000, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_weight=sample_weight)
        out.append(est)
    return out


def _assert_same(a, b, rtol):
    assert a.n_iter_ == b.n_iter_
    for pa, pb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert pa.dtype == pb.dtype
        scale = max(float(np.max(np.abs(pb))), 1e-3)
        err = float(np.max(np.abs(pa.astype(np.float64) - pb))) / scale
        assert err <= rtol, f"max relative difference {err:.3e} > {rtol:.0e}"
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=max(rtol, 1e-12))
    if hasattr(b._optimizer, "t"):
        assert a._optimizer.t == b._optimizer.t


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("batch_size", [1, 13, "full"], ids=["bs1", "ragged", "full"])
@pytest.mark.parametrize("epochs", [1, 5])
def test_optimizers_match_reference(backend, dtype, solver, batch_size, epochs):
    X, y = _data("multiclass", n=40 if batch_size == 1 else 45, dtype=dtype)
    extra = {"nesterovs_momentum": False} if (solver == "sgd" and batch_size == 13) else {}
    a, b = _fit_pair(X, y, epochs, hidden_layer_sizes=(8, 5), solver=solver,
                     batch_size=batch_size, backend=backend, alpha=1e-3,
                     learning_rate_init=0.01, **extra)
    assert a.coefs_[0].dtype == dtype
    _assert_same(a, b, RTOL[dtype])


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_activations_losses_targets_match_reference(backend, dtype, activation, loss, target):
    X, y = _data(target, dtype=dtype, seed=1)
    for epochs in (1, 5):
        a, b = _fit_pair(X, y, epochs, hidden_layer_sizes=(7, 4), activation=activation,
                         loss=loss, solver="adam", batch_size=16, backend=backend,
                         learning_rate_init=0.01)
        _assert_same(a, b, RTOL[dtype])


def _chunk_rows():
    if "cython" not in fastnn_core.available_backends():
        return 1024
    from fastnn_core._cython._train import BATCH_CHUNK_ROWS

    return BATCH_CHUNK_ROWS


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    "target, params",
    [("multiclass", dict(solver="adam", activation="relu")),
     ("multilabel", dict(solver="sgd", activation="tanh", loss="squared_error")),
     ("binary", dict(solver="rmsprop", activation="logistic"))],
    ids=["adam-softmax", "sgd-multilabel-sqerr", "rmsprop-binary"],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_batches_larger_than_a_chunk_match_reference(backend, dtype, target, params, threads):
    """The cython loop runs batches of more than BATCH_CHUNK_ROWS rows chunk by chunk (weight
    gradients summed over the chunks, elementwise kernels on one thread): full batch and a
    batch size over the chunk, both with a ragged last chunk, and sample weights."""
    from threadpoolctl import threadpool_limits

    chunk = _chunk_rows()
    n = 2 * chunk + 37
    X, y = _data(target, n=n, d=5, seed=4, dtype=dtype)
    sw = np.random.RandomState(5).uniform(0.2, 2.0, size=n)
    for batch_size in ("full", chunk + 300):
        with threadpool_limits(threads):
            a, b = _fit_pair(X, y, 3, sample_weight=sw, hidden_layer_sizes=(9, 4),
                             batch_size=batch_size, backend=backend, alpha=1e-3,
                             learning_rate_init=0.01, **params)
        _assert_same(a, b, RTOL[dtype])


def _weighted_case(dtype, weights):
    """``X, y, sample_weight, params`` of the weights parity tests: random sample weights,
    class weights, or sample weights with every third row at zero (at batch size 1 whole
    zero-weight batches are skipped)."""
    X, y = _data("multiclass", n=40, dtype=dtype, seed=2)
    rng = np.random.RandomState(3)
    sw, params = None, {}
    if weights == "sample_weight":
        sw = rng.uniform(0.1, 3.0, size=X.shape[0])
    elif weights == "class_weight":
        params["class_weight"] = {0: 0.5, 1: 2.0, 2: 1.5}
    else:
        sw = rng.uniform(0.5, 2.0, size=X.shape[0])
        sw[::3] = 0.0
    return X, y, sw, params


def _assert_restored_alike(a, b):
    """Two diverged fits stopped at the same epoch and restored the same finite snapshot."""
    assert a.n_iter_ == b.n_iter_
    for pa, pb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.isfinite(pa).all()
        np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch_size", [1, 13, "full"], ids=["bs1", "ragged", "full"])
@pytest.mark.parametrize("weights", ["sample_weight", "class_weight", "zeros"])
def test_weights_match_reference(backend, dtype, batch_size, weights):
    X, y, sw, params = _weighted_case(dtype, weights)
    for epochs in (1, 5):
        a, b = _fit_pair(X, y, epochs, sample_weight=sw, hidden_layer_sizes=(6,),
                         solver="sgd", batch_size=batch_size, backend=backend,
                         learning_rate_init=0.02, alpha=1e-2, **params)
        _assert_same(a, b, RTOL[dtype])


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
def test_unshuffled_schedules_partial_fit_warm_start_early_stopping(backend):
    X, y = _data("multiclass", n=60, seed=4)
    common = dict(hidden_layer_sizes=(9,), backend=backend, random_state=0, tol=0.0)
    cases = [
        dict(solver="sgd", shuffle=False, batch_size=7, max_iter=4),
        dict(solver="sgd", learning_rate="invscaling", batch_size=5, max_iter=4,
             learning_rate_init=0.05),
        dict(solver="sgd", learning_rate="adaptive", batch_size=5, max_iter=8,
             n_iter_no_change=1, tol=10.0),
        dict(solver="adam", early_stopping=True, batch_size=5, max_iter=6,
             validation_fraction=0.2),
    ]
    for params in cases:
        ests = []
        for loop in ("native", "python"):
            est = MLPClassifier(loop=loop, **{**common, **params})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
                est.set_params(warm_start=True, max_iter=2)
                est.fit(X, y)
                for _ in range(2):
                    est.partial_fit(X, y) if not est.early_stopping else None
            ests.append(est)
        _assert_same(ests[0], ests[1], 1e-10)
    # partial_fit from scratch with classes=
    ests = []
    for loop in ("native", "python"):
        est = MLPClassifier(loop=loop, solver="adam", batch_size=4, **common)
        for _ in range(3):
            est.partial_fit(X, y, classes=np.arange(3))
        ests.append(est)
    _assert_same(ests[0], ests[1], 1e-10)


def _diverging_fits(batch_size, backend="cython"):
    """The native and the Python loop (``backend``'s kernels) on a problem whose sgd steps
    diverge in the first epoch; returns both estimators (each warned of the divergence)."""
    X, y = _data("multiclass", n=30, seed=5)
    X = X * 1e3
    ests = []
    for loop in ("native", "python"):
        est = MLPClassifier((6,), solver="sgd", learning_rate_init=1e6, momentum=0.0,
                            batch_size=batch_size, max_iter=5, random_state=0, loop=loop,
                            backend=backend, activation="identity")
        with pytest.warns(DivergenceWarning):
            est.fit(X, y)
        ests.append(est)
    return ests


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 8])
def test_divergence_restores_snapshot_like_reference(backend, batch_size):
    _assert_restored_alike(*_diverging_fits(batch_size, backend))


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("activation", ["tanh", "logistic", "softplus", "elu", "identity"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_native_gradient_finite_differences(backend, activation, target, loss):
    """One native full-batch SGD step with lr=1 and no momentum is ``p - grad``: the recovered
    gradient of the whole network (weights with the L2 term, biases) matches central finite
    differences of the network loss (fastnn._network, float64) to 1e-6 relative."""
    X, y = _data(target, n=25, d=4, seed=6)
    sw = np.random.RandomState(7).uniform(0.5, 1.5, size=X.shape[0])
    alpha = 0.1
    est = MLPClassifier((5, 3), activation=activation, loss=loss, solver="sgd",
                        learning_rate_init=1.0, momentum=0.0, batch_size="full",
                        alpha=alpha, shuffle=False, max_iter=1, random_state=0,
                        backend=backend, loop="native")
    # initial parameters: one python-loop estimator fitted for 0 steps is not possible, so
    # take the initial state from an identical estimator's first partial_fit snapshot
    captured = {}
    orig = NativeEpoch.run

    def run(self, order):
        captured["params"] = [p.copy() for p in self.est.coefs_ + self.est.intercepts_]
        return orig(self, order)

    NativeEpoch.run = run
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_weight=sw)
    finally:
        NativeEpoch.run = orig
    p0 = captured["params"]
    L = len(est.coefs_)
    coefs0, ints0 = p0[:L], p0[L:]
    g_native = [a - b for a, b in zip(p0, est.coefs_ + est.intercepts_)]
    Y = est._label_binarizer.transform(y).astype(np.float64)
    if est.out_activation_ == "softmax" and loss == "log_loss":
        Y = np.argmax(Y, axis=1)

    def f(coefs, ints):
        return loss_and_gradients(coefs, ints, X, Y, sw, activation, est.out_activation_, loss,
                                  alpha)[0]

    value, cg, ig = loss_and_gradients(coefs0, ints0, X, Y, sw, activation,
                                       est.out_activation_, loss, alpha)
    np.testing.assert_allclose(est.loss_curve_[0], value, rtol=1e-12)
    h = 1e-5
    num, ana = [], []
    for i, p in enumerate(p0):
        for j in range(p.size):
            plus = [q.copy() for q in p0]
            minus = [q.copy() for q in p0]
            plus[i].reshape(-1)[j] += h
            minus[i].reshape(-1)[j] -= h
            num.append((f(plus[:L], plus[L:]) - f(minus[:L], minus[L:])) / (2 * h))
            ana.append(g_native[i].reshape(-1)[j])
    num, ana = np.array(num), np.array(ana)
    err = np.linalg.norm(num - ana) / (np.linalg.norm(num) + np.linalg.norm(ana))
    assert err < 1e-6, err
    # and the native gradient is the reference loop's analytic gradient
    ref = np.concatenate([g.ravel() for g in cg + ig])
    np.testing.assert_allclose(ana, ref, rtol=1e-9, atol=1e-12)


def test_order_out_of_range_raises_before_the_loop():
    with pytest.raises(ValueError, match="outside"):
        check_order(np.array([0, 1, 5]), 3)
    with pytest.raises(ValueError, match="outside"):
        check_order(np.array([0, -1, 2]), 3)
    with pytest.raises(ValueError, match="entries"):
        check_order(np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="integer"):
        check_order(np.array([0.0, 1.0, 2.0]), 3)
    np.testing.assert_array_equal(check_order(np.array([2, 0, 1], dtype=np.int32), 3), [2, 0, 1])


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
def test_native_epoch_validates_order_and_leaves_params(backend):
    X, y = _data("multiclass", n=20)
    est = MLPClassifier((4,), solver="sgd", batch_size=3, max_iter=1, random_state=0,
                        backend=backend)
    captured = {}
    orig = NativeEpoch.run

    def run(self, order):
        captured["self"] = self
        return orig(self, order)

    NativeEpoch.run = run
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    finally:
        NativeEpoch.run = orig
    native = captured["self"]
    before = [p.copy() for p in est.coefs_ + est.intercepts_]
    bad = np.arange(20)
    bad[4] = 20
    with pytest.raises(ValueError, match="outside"):
        native.run(bad)
    for p, q in zip(before, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_sparse_and_numpy_backend_fall_back_to_python_loop():
    X, y = _data("multiclass", n=30)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    a, b = _fit_pair(Xs, y, 2, hidden_layer_sizes=(5,), solver="adam", batch_size=4)
    _assert_same(a, b, 0.0)
    a, b = _fit_pair(X, y, 2, hidden_layer_sizes=(5,), solver="adam", batch_size=4,
                     backend="numpy")
    _assert_same(a, b, 0.0)


def test_native_is_default_and_param_validated():
    assert MLPClassifier().loop == "native"
    X, y = _data("binary", n=10)
    with pytest.raises(ValueError):
        MLPClassifier(loop="fortran").fit(X, y)


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
def test_larger_problem_threads_match_reference(backend):
    """A batch big enough for the threaded elementwise paths (>= 131072 elements)."""
    X, y = make_classification(n_samples=2500, n_features=20, n_informative=10, n_classes=4,
                               random_state=0)
    a, b = _fit_pair(X, y, 2, hidden_layer_sizes=(64,), solver="adam", batch_size="full",
                     backend=backend)
    _assert_same(a, b, 1e-10)


@pytest.mark.parametrize("backend", NATIVE_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_batch1_wide_layers_match_reference(backend, dtype, solver):
    """Batch size 1 with layers wider than the row chunk (256) of the one-row vector-matrix
    kernel, zero inputs and ReLU zeros it skips, widths that leave partial row blocks and
    partial lanes, and the backward deltas formed inside the fused update."""
    rng = np.random.RandomState(4)
    X = rng.normal(size=(24, 301)).astype(dtype)
    X[rng.uniform(size=X.shape) < 0.3] = 0.0
    y = np.argmax(X[:, :3], axis=1)
    a, b = _fit_pair(X, y, 2, hidden_layer_sizes=(263, 37), solver=solver, batch_size=1,
                     backend=backend, alpha=1e-3, learning_rate_init=1e-3)
    _assert_same(a, b, RTOL[dtype])


@pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                    reason="cython backend not available")
@pytest.mark.parametrize("eps", [1e-8, 1e-310])
def test_batch1_adam_division_matches_exact_formula(eps):
    """The batch-1 float64 Adam kernel divides half of its vectors with a Newton-Raphson
    reciprocal (AVX-512): the new parameters equal ``p - lr_t * m / (sqrt(v) + eps)``
    computed with IEEE division from the kernel's own new ``m`` and ``v``, bit for bit, on
    80,000 values with adversarial second moments (0, subnormal, huge, infinite), huge first
    moments (quotients that overflow) and a subnormal eps (1 / eps overflows). (With one
    Newton step fewer, about 1 in 5,000 quotients is 1-2 ulp off: this test then fails.)"""
    from fastnn_core._cython._train import train_epoch

    rng = np.random.RandomState(0)
    d, C = 2000, 40  # pairs of exact and Newton-Raphson vectors, then one more vector
    x = rng.normal(size=(1, d))
    x[0, ::3] = 0.0  # rows with a zero gradient keep m and v as set below
    W = rng.normal(size=(d, C))
    b = rng.normal(size=C)
    special = np.array([0.0, 5e-324, 1e-310, 1e-300, 1e-16, 1.0, 1e200, 1e300, np.inf])
    v = np.where(rng.uniform(size=(d, C)) < 0.5, rng.choice(special, size=(d, C)),
                 10.0 ** rng.uniform(-60, 20, size=(d, C)))
    m = rng.normal(size=(d, C)) * 10.0 ** rng.randint(-20, 300, size=(d, C))
    m[0, 6:14], v[0, 6:14] = 1e307, 0.0  # quotients that overflow, both vector kinds
    params = (W.ravel().copy(), b.copy())
    state0 = (m.ravel().copy(), rng.normal(size=C))
    state1 = (v.ravel().copy(), np.abs(rng.normal(size=C)))
    grads = (np.empty(d * C), np.empty(C))
    lr, b1, b2 = 1e-3, 0.9, 0.999
    with np.errstate(over="ignore"):
        train_epoch(x, np.array([3], dtype=np.intp), None, None, 1,
                    np.array([d, C], dtype=np.intp), params, grads, state0, state1,
                    (np.empty(C),), (np.empty(C),), np.empty((1, d)),
                    np.empty(1, dtype=np.intp), None, 3, 0, 1, [lr, b1, b2, eps], 0.0, 0)
    lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
    overflowed = 0
    for p_old, p_new, m_new, v_new in zip((W.ravel(), b), params, state0, state1):
        with np.errstate(over="ignore"):
            expected = p_old - lr_t * m_new / (np.sqrt(v_new) + eps)
        overflowed += np.count_nonzero(~np.isfinite(expected))
        np.testing.assert_array_equal(p_new, expected)
    assert overflowed > 0


# ---- data-parallel batches (cython backend, 2+ OpenMP threads): the rows of a batch split over
# the OpenMP threads, per-thread gradient partial sums reduced before the optimizer update.
# A small threshold makes the tiny problems above take that path.

needs_cython = pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                                  reason="cython backend not available")


class _ParallelRows:
    """``with _ParallelRows(k):`` batches of >= k rows run data-parallel; records the native
    epochs built meanwhile (their ``grads_extra`` are thread 1's gradient buffers)."""

    def __init__(self, rows):
        self.rows = rows
        self.epochs = []

    def __enter__(self):
        from fastnn_core._cython import _train

        self._old = _train.set_parallel_min_rows(self.rows)
        self._init = NativeEpoch.__init__
        epochs = self.epochs
        init = self._init

        def __init__(native, est, ctx):
            init(native, est, ctx)
            epochs.append(native)

        NativeEpoch.__init__ = __init__
        return self

    def __exit__(self, *exc):
        from fastnn_core._cython import _train

        NativeEpoch.__init__ = self._init
        _train.set_parallel_min_rows(self._old)

    def assert_ran_parallel(self):
        """Thread 1 wrote gradients (its buffers start at zero)."""
        assert self.epochs and all(e.grads_extra for e in self.epochs)
        assert any(np.any(g != 0) for e in self.epochs for g in e.grads_extra[0])


def _two_threads():
    from fastnn_core._cython import _train

    if _train.max_threads() < 2:
        pytest.skip("one OpenMP thread only")
    from threadpoolctl import threadpool_limits

    return threadpool_limits(2)


@needs_cython
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("batch_size", [13, 20, "full"], ids=["uneven", "small-last", "full"])
def test_parallel_batches_match_reference(dtype, solver, batch_size):
    """Batches of 13 rows (6 + 7 per thread, last batch 8: 4 + 4), of 20 (last batch 7, under
    the threshold of 8: one thread) and one full batch of 47, after 1 and 5 epochs."""
    X, y = _data("multiclass", n=47, dtype=dtype, seed=8)
    extra = {"nesterovs_momentum": False} if (solver == "sgd" and batch_size == 13) else {}
    with _two_threads():
        for epochs in (1, 5):
            with _ParallelRows(8) as par:
                a, b = _fit_pair(X, y, epochs, hidden_layer_sizes=(8, 5), solver=solver,
                                 batch_size=batch_size, backend="cython", alpha=1e-3,
                                 learning_rate_init=0.01, **extra)
            par.assert_ran_parallel()
            _assert_same(a, b, RTOL[dtype])


@needs_cython
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("weights", ["sample_weight", "class_weight", "zeros"])
def test_parallel_batches_weights_match_reference(dtype, weights):
    X, y, sw, params = _weighted_case(dtype, weights)
    if weights == "zeros":  # and the first batch of the unshuffled epoch all zero (skipped)
        sw[:11] = 0.0
    with _two_threads():
        for shuffle in (True, False):
            for epochs in (1, 5):
                with _ParallelRows(4) as par:
                    a, b = _fit_pair(X, y, epochs, sample_weight=sw, hidden_layer_sizes=(6,),
                                     solver="sgd", batch_size=11, backend="cython",
                                     learning_rate_init=0.02, alpha=1e-2, shuffle=shuffle,
                                     **params)
                par.assert_ran_parallel()
                _assert_same(a, b, RTOL[dtype])


@needs_cython
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_parallel_batches_losses_targets_match_reference(dtype, activation, loss, target):
    X, y = _data(target, n=50, dtype=dtype, seed=1)
    with _two_threads():
        for epochs in (1, 5):
            with _ParallelRows(6) as par:
                a, b = _fit_pair(X, y, epochs, hidden_layer_sizes=(7, 4), activation=activation,
                                 loss=loss, solver="adam", batch_size=16, backend="cython",
                                 learning_rate_init=0.01, alpha=1e-3)
            par.assert_ran_parallel()
            _assert_same(a, b, RTOL[dtype])


@needs_cython
def test_parallel_batches_divergence_restores_snapshot_like_reference():
    with _two_threads(), _ParallelRows(4) as par:
        a, b = _diverging_fits(batch_size=8)
    par.assert_ran_parallel()
    assert a.n_iter_ == b.n_iter_
    # the same snapshot, to the rounding of the reduction of the per-thread partial sums
    for pa, pb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.isfinite(pa).all()
        np.testing.assert_allclose(pa, pb, rtol=1e-10)


@needs_cython
def test_parallel_batches_larger_than_a_chunk_per_thread():
    """Each thread's share of a batch is more than BATCH_CHUNK_ROWS rows: it runs its rows
    chunk by chunk (ragged last chunks), shuffled batches gathered by each thread."""
    chunk = _chunk_rows()
    n = 5 * chunk + 41
    X, y = _data("multiclass", n=n, d=5, seed=9)
    sw = np.random.RandomState(5).uniform(0.2, 2.0, size=n)
    with _two_threads():
        for batch_size in ("full", 2 * chunk + 301):
            with _ParallelRows(64) as par:
                a, b = _fit_pair(X, y, 2, sample_weight=sw, hidden_layer_sizes=(9, 4),
                                 batch_size=batch_size, backend="cython", alpha=1e-3,
                                 solver="adam", learning_rate_init=0.01)
            par.assert_ran_parallel()
            _assert_same(a, b, 1e-10)


@needs_cython
def test_parallel_epoch_limits_blas_to_one_thread_and_honours_user_limits():
    """During a data-parallel epoch every BLAS pool runs one thread (restored after it); under
    ``threadpool_limits(1)`` the epoch runs on one thread (no parallel batches)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    X, y = _data("multiclass", n=40)
    seen = []

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with _two_threads():
        before = blas_threads()
        with _ParallelRows(4) as par:
            est = MLPClassifier((5,), solver="sgd", batch_size=10, max_iter=1,
                                random_state=0, backend="cython")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            native = par.epochs[0]
            kernel = native.kernel

            def spy(*args, **kwargs):
                seen.append((blas_threads(), "grads_extra" in kwargs))
                return kernel(*args, **kwargs)

            native.kernel = spy
            native.run(None)
            assert seen[-1] == ([1] * len(before), True)
            assert blas_threads() == before
            with threadpool_limits(1):
                assert not native._parallel()
                native.run(None)
                assert seen[-1][1] is False
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X, y)
                assert not par.epochs[-1].grads_extra


@needs_cython
def test_early_stopping_validation_runs_one_thread_blas_when_parallel():
    """The validation score between data-parallel epochs is computed with BLAS on one thread
    (OpenBLAS's own pool would leave workers spinning into the next epoch); without the
    parallel path (one OpenMP thread) BLAS keeps its pool."""
    from threadpoolctl import threadpool_info, threadpool_limits

    X, y = _data("multiclass", n=80)

    def fit_recording_blas_threads():
        est = MLPClassifier((5,), solver="adam", batch_size=16, max_iter=3, tol=0.0,
                            n_iter_no_change=100, early_stopping=True, random_state=0,
                            backend="cython")
        seen = []
        validation = est._validation

        def spy(*args, **kwargs):
            seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
            return validation(*args, **kwargs)

        est._validation = spy
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return seen

    with _two_threads():
        with _ParallelRows(4) as par:
            seen = fit_recording_blas_threads()
            par.assert_ran_parallel()
        assert len(seen) == 3 and all(threads == [1] * len(threads) for threads in seen)
        with threadpool_limits(limits=2, user_api="blas"), threadpool_limits(1, "openmp"):
            with _ParallelRows(4) as par:
                seen = fit_recording_blas_threads()
                assert not any(e.grads_extra for e in par.epochs)
            assert len(seen) == 3 and all(2 in threads for threads in seen)


def test_parallel_min_rows_setting():
    if "cython" not in fastnn_core.available_backends():
        pytest.skip("cython backend not available")
    from fastnn_core._cython import _train

    old = _train.parallel_min_rows()
    with pytest.raises(ValueError):
        _train.set_parallel_min_rows(1)
    assert _train.set_parallel_min_rows(old) == old


@needs_cython
def test_omp_num_threads_1_gives_one_thread_epochs_in_a_fresh_process():
    """``OMP_NUM_THREADS=1``: no data-parallel batches (no thread buffers, BLAS not limited)."""
    import os
    import subprocess
    import sys

    code = (
        "import warnings, numpy as np\n"
        "from fastnn import MLPClassifier\n"
        "from fastnn._native_loop import NativeEpoch\n"
        "seen = []\n"
        "init = NativeEpoch.__init__\n"
        "def __init__(self, est, ctx):\n"
        "    init(self, est, ctx)\n"
        "    seen.append(self)\n"
        "NativeEpoch.__init__ = __init__\n"
        "rng = np.random.RandomState(0)\n"
        "X = rng.normal(size=(600, 5)); y = (X[:, 0] > 0).astype(int)\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        "    MLPClassifier((8,), batch_size=300, max_iter=2, backend='cython').fit(X, y)\n"
        "print(len(seen[0].grads_extra), seen[0]._parallel())\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split() == ["0", "False"]
