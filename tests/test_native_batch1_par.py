"""Batch size 1 on two threads per sample (cython native loop, ``_b1par_block`` in
``fastnn_core/_cython/_train.pyx``) against the Python reference loop.

Each thread owns the rows ``[K t / 2, K (t + 1) / 2)`` of every weight matrix: the partial
forward products are summed in thread order, so results differ from the one-thread loop by
rounding only (parity contract: float64 within 1e-10 relative, float32 within 1e-4, after 1
and 5 epochs); the same two parts run on one thread give the same bits. The threshold ``set_parallel_min_params(0)`` sends these tiny networks down the
two-thread path; ``b1par_epochs()`` counts the epochs that took it.
"""

import contextlib
import warnings

import numpy as np
import pytest

import fastnn_core
from fastnn import MLPClassifier
from test_native_batch1 import OPTIMIZERS
from test_native_loop import (_assert_restored_alike, _assert_same, _data, _diverging_fits,
                              _weighted_case)

pytestmark = pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                                reason="cython backend not available")

RTOL = {np.float64: 1e-10, np.float32: 1e-4}

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu"]
# (hidden layers, input features, target type) of networks whose two parts split oddly
ODD_NETWORKS = [
    ((1, 3), 4, "multiclass"),   # a layer of 1 row: part 0 owns none of it
    ((3, 1), 1, "binary"),       # 1 input feature, a 1-unit hidden layer, 1 output unit
    ((150, 24), 37, "multiclass"),  # rows in partial AVX-512 vectors, two column blocks
    ((2,), 3, "multilabel"),
]


@contextlib.contextmanager
def _b1par(threads=2, min_params=0):
    """Two (or ``threads``) OpenMP threads and the batch-1 threshold at ``min_params``; yields
    a list that receives the number of two-thread epochs run inside the block."""
    from threadpoolctl import threadpool_limits

    from fastnn_core._cython import _train

    if _train.max_threads() < 2:
        pytest.skip("one OpenMP thread only")
    ran = []
    before = _train.b1par_epochs()
    old = _train.set_parallel_min_params(min_params)
    try:
        with threadpool_limits(threads, user_api="openmp"):
            yield ran
    finally:
        _train.set_parallel_min_params(old)
        ran.append(_train.b1par_epochs() - before)


def _fit(X, y, epochs, loop, sample_weight=None, **params):
    params = dict(dict(hidden_layer_sizes=(7, 4), alpha=1e-3, learning_rate_init=1e-2),
                  **params)
    est = MLPClassifier(max_iter=epochs, random_state=0, loop=loop, tol=0.0,
                        n_iter_no_change=1000, batch_size=1, backend="cython", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=sample_weight)
    return est


def _assert_bits(a, b):
    """The same parameters and loss curve, bit for bit."""
    for pa, pb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(pa, pb)
    assert a.loss_curve_ == b.loss_curve_


def _assert_parity(X, y, dtype, sample_weight=None, **params):
    """Native two-thread fits match the reference loop after 1 and 5 epochs."""
    with _b1par() as ran:
        for epochs in (1, 5):
            a = _fit(X, y, epochs, "native", sample_weight, **params)
            b = _fit(X, y, epochs, "python", sample_weight, **params)
            assert a.coefs_[0].dtype == dtype
            _assert_same(a, b, RTOL[dtype])
    assert ran[0] == 6


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_optimizers_targets_losses_match_reference(dtype, opt, target, loss):
    """Odd layer widths (5 inputs, 7 and 4 units: 2 + 3, 3 + 4, 2 + 2 rows per thread)."""
    X, y = _data(target, n=40, d=5, seed=1, dtype=dtype)
    _assert_parity(X, y, dtype, loss=loss, **OPTIMIZERS[opt])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("weights", ["sample_weight", "class_weight", "zeros"])
def test_weights_match_reference(dtype, opt, weights):
    X, y, sw, params = _weighted_case(dtype, weights)
    _assert_parity(X, y, dtype, sample_weight=sw, **params, **OPTIMIZERS[opt])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_match_reference(dtype, activation):
    X, y = _data("multiclass", n=40, d=5, seed=3, dtype=dtype)
    _assert_parity(X, y, dtype, activation=activation, solver="adam")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hidden, d, target", ODD_NETWORKS)
@pytest.mark.parametrize("opt", ["nesterov", "adam", "adadelta"])
def test_odd_splits_match_reference(dtype, hidden, d, target, opt):
    X, y = _data(target, n=30, d=d, seed=4, dtype=dtype)
    X[::4, 0] = 0.0  # zero inputs: rows the forward product skips
    _assert_parity(X, y, dtype, hidden_layer_sizes=hidden, **OPTIMIZERS[opt])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", ["nesterov", "adam"])
def test_deterministic_run_to_run(dtype, opt):
    X, y = _data("multiclass", n=300, d=20, seed=5, dtype=dtype)
    with _b1par() as ran:
        a, b = (_fit(X, y, 3, "native", hidden_layer_sizes=(61, 33), **OPTIMIZERS[opt])
                for _ in range(2))
    assert ran[0] == 6
    _assert_bits(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_one_thread_or_two_per_block_give_the_same_bits(dtype):
    """The epoch runs by blocks of 256 samples, each on two threads or on one (by the clock,
    set_b1par_mode 0): the two parts of the network run the same operations either way."""
    from fastnn_core._cython import _train

    X, y = _data("multilabel", n=700, d=9, seed=9, dtype=dtype)
    sw = np.random.RandomState(9).uniform(0.0, 2.0, size=X.shape[0])
    sw[::5] = 0.0
    fits = []
    with _b1par() as ran:
        for mode in (1, 2, 0):
            old = _train.set_b1par_mode(mode)
            try:
                fits.append(_fit(X, y, 2, "native", sw, hidden_layer_sizes=(23, 9),
                                 solver="adam"))
            finally:
                _train.set_b1par_mode(old)
    assert ran[0] == 6
    for est in fits[1:]:
        _assert_bits(fits[0], est)
    ref = _fit(X, y, 2, "python", sw, hidden_layer_sizes=(23, 9), solver="adam")
    _assert_same(fits[0], ref, RTOL[dtype])


def test_three_threads_use_two_and_match_reference():
    X, y = _data("multiclass", n=40, d=5, seed=6)
    with _b1par(threads=3) as ran:
        for epochs in (1, 5):
            a = _fit(X, y, epochs, "native", solver="adam")
            b = _fit(X, y, epochs, "python", solver="adam")
            _assert_same(a, b, RTOL[np.float64])
    assert ran[0] == 6


def test_divergence_restores_snapshot_like_reference():
    with _b1par() as ran:
        ests = _diverging_fits(batch_size=1)
    assert ran[0] >= 1
    _assert_restored_alike(*ests)


def test_one_thread_limit_gives_the_serial_loop():
    """With one OpenMP thread the epoch is the one-thread loop, bit for bit."""
    X, y = _data("multiclass", n=40, d=5, seed=7)
    with _b1par(threads=1) as ran:
        a = _fit(X, y, 3, "native", solver="adam")
    with _b1par(threads=2, min_params=10**9) as ran_ser:
        b = _fit(X, y, 3, "native", solver="adam")
    assert ran == [0] and ran_ser == [0]
    for pa, pb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(pa, pb)


def test_below_the_threshold_runs_serial():
    X, y = _data("multiclass", n=40, d=5, seed=7)
    n_params = 5 * 7 + 7 + 7 * 4 + 4 + 4 * 3 + 3
    with _b1par(min_params=n_params + 1) as ran:
        _fit(X, y, 1, "native")
    with _b1par(min_params=n_params) as ran_at:
        _fit(X, y, 1, "native")
    assert ran == [0] and ran_at == [1]


def _partial_and_warm_fits(X, y, params, chunks):
    """For the native and the Python loop: an estimator after ``partial_fit`` on each slice of
    ``chunks``, and one after ``fit`` for 2 epochs then warm-started for 3 more."""
    ests = []
    for loop in ("native", "python"):
        pf = MLPClassifier(loop=loop, **params)
        for c in chunks:
            pf.partial_fit(X[c], y[c], classes=np.unique(y))
        ws = MLPClassifier(loop=loop, max_iter=2, warm_start=True, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ws.fit(X, y)
            ws.set_params(max_iter=3)
            ws.fit(X, y)
        ests.append((pf, ws))
    return ests


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_partial_fit_and_warm_start_continue_like_reference(dtype):
    X, y = _data("multiclass", n=40, d=5, seed=8, dtype=dtype)
    params = dict(hidden_layer_sizes=(7, 4), batch_size=1, backend="cython", random_state=0,
                  solver="adam", alpha=1e-3, tol=0.0, n_iter_no_change=1000)
    with _b1par() as ran:
        ests = _partial_and_warm_fits(X, y, params, [slice(i * 13, (i + 1) * 13 + 1)
                                                     for i in range(3)])
    assert ran[0] == 3 + 2 + 3
    for a, b in zip(*ests):
        _assert_same(a, b, RTOL[dtype])


def test_parallel_min_params_and_mode_settings():
    from fastnn_core._cython import _train

    old = _train.parallel_min_params()
    with pytest.raises(ValueError):
        _train.set_parallel_min_params(-1)
    assert _train.set_parallel_min_params(old) == old
    with pytest.raises(ValueError):
        _train.set_b1par_mode(3)
    assert _train.set_b1par_mode(0) == 0
