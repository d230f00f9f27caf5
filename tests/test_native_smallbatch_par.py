"""Small batches (2 .. parallel_min_rows() - 1 rows) split in two parts (cython native loop,
``_sbpar_block`` in ``fastnn_core/_cython/_train.pyx``) against the Python reference loop.

Each part owns the rows ``[K v / 2, K (v + 1) / 2)`` of every weight matrix: the partial
forward products ``A[:, k0:k1] @ W[k0:k1, :]`` are summed in part order and the gradients,
deltas and updates of a part's rows are its own products, so results differ from the one-thread
loop by rounding only (parity contract: float64 within 1e-10 relative, float32 within 1e-4,
after 1 and 5 epochs); the same two parts run on one thread give the same bits. The threshold
``set_smallbatch_min_bytes(0)`` sends these tiny networks down the two-part path;
``smallbatch_par_epochs()`` counts the epochs that took it.
"""

import contextlib
import warnings

import numpy as np
import pytest

import fastnn_core
from fastnn import MLPClassifier
from fastnn._mlp import DivergenceWarning
from test_native_batch1 import OPTIMIZERS
from test_native_batch1_par import (ACTIVATIONS, ODD_NETWORKS, _assert_bits,
                                    _partial_and_warm_fits)
from test_native_loop import _assert_same, _data, _weighted_case

pytestmark = pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                                reason="cython backend not available")

RTOL = {np.float64: 1e-10, np.float32: 1e-4}


@contextlib.contextmanager
def _sbpar(threads=2, min_bytes=0, mode=None):
    """``threads`` OpenMP threads and the small-batch threshold at ``min_bytes`` (and the block
    mode ``mode`` when given); yields a list that receives the number of two-part small-batch
    epochs run inside the block."""
    from threadpoolctl import threadpool_limits

    from fastnn_core._cython import _train

    if _train.max_threads() < 2:
        pytest.skip("one OpenMP thread only")
    ran = []
    before = _train.smallbatch_par_epochs()
    old = _train.set_smallbatch_min_bytes(min_bytes)
    old_mode = _train.set_b1par_mode(mode) if mode is not None else None
    try:
        with threadpool_limits(threads, user_api="openmp"):
            yield ran
    finally:
        _train.set_smallbatch_min_bytes(old)
        if old_mode is not None:
            _train.set_b1par_mode(old_mode)
        ran.append(_train.smallbatch_par_epochs() - before)


def _fit(X, y, epochs, loop, sample_weight=None, batch_size=8, **params):
    params = dict(dict(hidden_layer_sizes=(7, 4), alpha=1e-3, learning_rate_init=1e-2),
                  **params)
    est = MLPClassifier(max_iter=epochs, random_state=0, loop=loop, tol=0.0,
                        n_iter_no_change=1000, batch_size=batch_size, backend="cython",
                        **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=sample_weight)
    return est


def _assert_parity(X, y, dtype, sample_weight=None, batch_size=8, **params):
    """Native two-part fits match the reference loop after 1 and 5 epochs."""
    with _sbpar() as ran:
        for epochs in (1, 5):
            a = _fit(X, y, epochs, "native", sample_weight, batch_size, **params)
            b = _fit(X, y, epochs, "python", sample_weight, batch_size, **params)
            assert a.coefs_[0].dtype == dtype
            _assert_same(a, b, RTOL[dtype])
    assert ran[0] == 6


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_optimizers_targets_losses_match_reference(dtype, opt, target, loss):
    """45 rows in batches of 8 (the last of 5); odd layer widths (5 inputs, 7 and 4 units:
    2 + 3, 3 + 4, 2 + 2 rows per part)."""
    X, y = _data(target, n=45, d=5, seed=1, dtype=dtype)
    _assert_parity(X, y, dtype, loss=loss, **OPTIMIZERS[opt])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("weights", ["sample_weight", "class_weight", "zeros"])
def test_weights_match_reference(dtype, opt, weights):
    X, y, sw, params = _weighted_case(dtype, weights)
    _assert_parity(X, y, dtype, sample_weight=sw, batch_size=7, **params, **OPTIMIZERS[opt])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_zero_weight_batch_is_skipped_like_reference(dtype):
    """A whole batch of zero-weight rows carries no step (Adam's t does not advance)."""
    X, y = _data("multiclass", n=40, d=5, seed=2, dtype=dtype)
    sw = np.random.RandomState(3).uniform(0.5, 2.0, size=X.shape[0])
    sw[7:14] = 0.0
    _assert_parity(X, y, dtype, sample_weight=sw, batch_size=7, shuffle=False,
                   solver="adam")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_match_reference(dtype, activation):
    X, y = _data("multiclass", n=45, d=5, seed=3, dtype=dtype)
    _assert_parity(X, y, dtype, activation=activation, solver="adam")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hidden, d, target", ODD_NETWORKS)
@pytest.mark.parametrize("batch_size", [2, 5, 16, 63])  # 31 rows: last batches 1, 1, 15, 31
@pytest.mark.parametrize("opt", ["nesterov", "adam", "adadelta"])
def test_odd_splits_and_batches_match_reference(dtype, hidden, d, target, batch_size, opt):
    X, y = _data(target, n=31, d=d, seed=4, dtype=dtype)
    X[::4, 0] = 0.0
    params = dict(batch_size=batch_size, hidden_layer_sizes=hidden, **OPTIMIZERS[opt])
    if not (dtype == np.float32 and opt == "adam" and hidden == (150, 24) and batch_size == 63):
        _assert_parity(X, y, dtype, **params)
        return
    # Five full-batch Adam steps in float32: gradient elements that nearly cancel carry
    # rounding errors of their own size, and Adam's step normalises them to about the learning
    # rate, so float32 results drift 1.2-1.5e-4 apart whatever the summation order. Measured
    # against the float64 reference instead: the two-part fit is as close as the Python loop's.
    ref = _fit(X.astype(np.float64), y, 5, "python", **params)
    with _sbpar() as ran:
        a = _fit(X, y, 5, "native", **params)
    b = _fit(X, y, 5, "python", **params)
    assert ran[0] == 5

    def err(est):
        return max(float(np.max(np.abs(p.astype(np.float64) - q))) / float(np.max(np.abs(q)))
                   for p, q in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_))

    assert err(a) <= max(2 * err(b), 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", ["nesterov", "adam"])
def test_deterministic_run_to_run(dtype, opt):
    X, y = _data("multiclass", n=300, d=20, seed=5, dtype=dtype)
    with _sbpar() as ran:
        a, b = (_fit(X, y, 3, "native", batch_size=16, hidden_layer_sizes=(61, 33),
                     **OPTIMIZERS[opt]) for _ in range(2))
    assert ran[0] == 6
    _assert_bits(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch_size", [7, 32])
def test_one_thread_or_two_per_block_give_the_same_bits(dtype, batch_size):
    """The epoch runs by blocks of about 256 samples (whole batches), each on two threads or on
    one (by the clock, set_b1par_mode 0): the two parts run the same operations either way."""
    X, y = _data("multilabel", n=700, d=9, seed=9, dtype=dtype)
    sw = np.random.RandomState(9).uniform(0.0, 2.0, size=X.shape[0])
    sw[::5] = 0.0
    fits = []
    for mode in (1, 2, 0):
        with _sbpar(mode=mode) as ran:
            fits.append(_fit(X, y, 2, "native", sw, batch_size, hidden_layer_sizes=(23, 9),
                             solver="adam"))
        assert ran[0] == 2
    for est in fits[1:]:
        _assert_bits(fits[0], est)
    ref = _fit(X, y, 2, "python", sw, batch_size, hidden_layer_sizes=(23, 9), solver="adam")
    _assert_same(fits[0], ref, RTOL[dtype])


def test_three_threads_use_two_and_match_reference():
    X, y = _data("multiclass", n=45, d=5, seed=6)
    with _sbpar(threads=3) as ran:
        for epochs in (1, 5):
            a = _fit(X, y, epochs, "native", solver="adam")
            b = _fit(X, y, epochs, "python", solver="adam")
            _assert_same(a, b, RTOL[np.float64])
    assert ran[0] == 6


def _diverging(loop, threads):
    """A fit whose sgd steps diverge (batches of 8), on ``threads`` OpenMP threads."""
    X, y = _data("multiclass", n=30, seed=5)
    X = X * 1e3
    est = MLPClassifier((6, 5), solver="sgd", learning_rate_init=1e6, momentum=0.0,
                        batch_size=8, max_iter=5, random_state=0, loop=loop, backend="cython",
                        activation="identity")
    with _sbpar(threads=threads) as ran:
        with pytest.warns(DivergenceWarning):
            est.fit(X, y)
    return est, ran[0]


def test_divergence_stops_and_restores_like_one_thread_loop():
    """The same epoch stops and the same snapshot comes back (to rounding) as in the one-thread
    native loop and the Python loop."""
    a, ran = _diverging("native", 2)
    b, ran_one = _diverging("native", 1)
    c, _ = _diverging("python", 2)
    assert ran >= 1 and ran_one == 0
    for other in (b, c):
        assert a.n_iter_ == other.n_iter_
        for pa, pb in zip(a.coefs_ + a.intercepts_, other.coefs_ + other.intercepts_):
            assert np.isfinite(pa).all()
            np.testing.assert_allclose(pa, pb, rtol=1e-10)


def test_one_thread_limit_gives_the_serial_loop():
    """With one OpenMP thread the epoch is the one-thread loop, bit for bit."""
    X, y = _data("multiclass", n=45, d=5, seed=7)
    with _sbpar(threads=1) as ran:
        a = _fit(X, y, 3, "native", solver="adam")
    with _sbpar(threads=2, min_bytes=10**15) as ran_ser:
        b = _fit(X, y, 3, "native", solver="adam")
    assert ran == [0] and ran_ser == [0]
    _assert_bits(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_threshold_is_bytes_of_parameters(dtype):
    from fastnn_core._cython import _train

    X, y = _data("multiclass", n=45, d=5, seed=7, dtype=dtype)
    nbytes = (5 * 7 + 7 + 7 * 4 + 4 + 4 * 3 + 3) * np.dtype(dtype).itemsize
    units = [5, 7, 4, 3]
    size = np.dtype(dtype).itemsize
    with _sbpar(min_bytes=nbytes + 1) as ran:
        assert not _train.two_part_epoch(8, 45, units, size)
        _fit(X, y, 1, "native")
    with _sbpar(min_bytes=nbytes) as ran_at:
        assert _train.two_part_epoch(8, 45, units, size)
        _fit(X, y, 1, "native")
    assert ran == [0] and ran_at == [1]
    with _sbpar():
        # data-parallel sizes and a network without a hidden layer stay off this path
        assert not _train.two_part_epoch(_train.parallel_min_rows(), 10**4, units, size)
        assert _train.two_part_epoch(_train.parallel_min_rows(), 45, units, size)  # capped
        assert not _train.two_part_epoch(8, 45, [5, 3], size)
    with _sbpar(threads=1):
        assert not _train.two_part_epoch(8, 45, units, size)


def test_default_threshold_takes_large_networks_only():
    """The default: hidden (256, 128) on 100 features in either dtype, hidden 100 in float64
    only (see smallbatch_min_bytes in _train.pyx for the measurements)."""
    from fastnn_core._cython import _train

    if _train.max_threads() < 2:
        pytest.skip("one OpenMP thread only")
    assert _train.two_part_epoch(32, 60000, [100, 256, 128, 10], 4)
    assert _train.two_part_epoch(32, 60000, [100, 100, 10], 8)
    assert not _train.two_part_epoch(32, 60000, [100, 100, 10], 4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_partial_fit_and_warm_start_continue_like_reference(dtype):
    X, y = _data("multiclass", n=45, d=5, seed=8, dtype=dtype)
    params = dict(hidden_layer_sizes=(7, 4), batch_size=6, backend="cython", random_state=0,
                  solver="adam", alpha=1e-3, tol=0.0, n_iter_no_change=1000)
    with _sbpar() as ran:
        ests = _partial_and_warm_fits(X, y, params, [slice(i * 15, (i + 1) * 15)
                                                     for i in range(3)])
    assert ran[0] == 3 + 2 + 3
    for a, b in zip(*ests):
        _assert_same(a, b, RTOL[dtype])


def test_adapter_limits_blas_around_two_part_epochs():
    """The adapter runs BLAS on one thread around a two-part epoch (as around data-parallel
    ones), so OpenBLAS's pool never spins against the OpenMP threads."""
    from fastnn._native_loop import NativeEpoch

    X, y = _data("multiclass", n=45, d=5, seed=8)
    seen = []
    orig = NativeEpoch.run

    def run(self, order):
        seen.append(self._parallel())
        return orig(self, order)

    NativeEpoch.run = run
    try:
        with _sbpar():
            _fit(X, y, 1, "native")
        with _sbpar(min_bytes=10**15):
            _fit(X, y, 1, "native")
    finally:
        NativeEpoch.run = orig
    assert seen == [True, False]


def test_smallbatch_min_bytes_setting():
    from fastnn_core._cython import _train

    old = _train.smallbatch_min_bytes()
    with pytest.raises(ValueError):
        _train.set_smallbatch_min_bytes(-1)
    assert _train.set_smallbatch_min_bytes(old) == old
