"""The same fitted model on every backend, bitwise reproducibility on one backend, dtypes."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import fastnn_core
from fastnn import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ALL = ("numpy", "numba", "cython")


def _require(name):
    if name not in fastnn_core.available_backends():
        pytest.skip(f"backend {name!r} not available here: {fastnn_core.backend_error(name)}")
    try:
        fastnn_core.get_kernels(name)
    except fastnn_core.BackendUnavailableError as exc:
        pytest.skip(f"backend {name!r} not available here: {exc}")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:600]
    return X, y[:600]


CONFIGS = {
    "adam-relu": dict(solver="adam", learning_rate_init=0.01),
    # one epoch: 600 sequential per-sample updates; over more epochs this net's trajectory is
    # chaotic (float32 and float64 runs on ONE backend drift apart by 0.25 by epoch 2)
    "sgd-tanh-perSample": dict(solver="sgd", activation="tanh", batch_size=1, max_iter=1,
                               learning_rate_init=0.01),
    "rmsprop-logistic-sqerr": dict(solver="rmsprop", activation="logistic",
                                   loss="squared_error", learning_rate_init=0.01),
    "adagrad-elu-classweight": dict(solver="adagrad", activation="elu", learning_rate_init=0.05,
                                    class_weight="balanced"),
    "adadelta-softplus": dict(solver="adadelta", activation="softplus", learning_rate_init=1.0),
    "lbfgs-relu": dict(solver="lbfgs", max_iter=15),
    "sgd-full-earlystop": dict(solver="sgd", batch_size="full", early_stopping=True,
                               learning_rate_init=0.1),
}


def _fit(backend, X, y, dtype=np.float64, **params):
    params = {**dict(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0, batch_size=32),
              **params}
    return MLPClassifier(backend=backend, **params).fit(X.astype(dtype), y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_backends_agree(digits, backend, config, dtype):
    _require(backend)
    X, y = digits
    ref = _fit("numpy", X, y, dtype, **CONFIGS[config])
    other = _fit(backend, X, y, dtype, **CONFIGS[config])
    rtol, atol = (1e-7, 1e-9) if dtype == np.float64 else (2e-3, 1e-4)
    if CONFIGS[config]["solver"] == "lbfgs":
        rtol, atol = rtol * 100, atol * 100  # line searches amplify rounding differences
    for a, b in zip(ref.coefs_ + ref.intercepts_, other.coefs_ + other.intercepts_):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    np.testing.assert_allclose(other.predict_proba(X.astype(dtype)),
                               ref.predict_proba(X.astype(dtype)), rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("backend", ALL)
def test_multilabel_backends_agree(backend):
    _require(backend)
    X, Y = make_multilabel_classification(n_samples=120, n_classes=3, random_state=0)
    ref = _fit("numpy", X, Y, max_iter=3)
    other = _fit(backend, X, Y, max_iter=3)
    for a, b in zip(ref.coefs_, other.coefs_):
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("config", ["adam-relu", "sgd-tanh-perSample", "lbfgs-relu",
                                    "sgd-full-earlystop"])
@pytest.mark.parametrize("backend", ALL)
def test_same_seed_is_bitwise_identical(digits, backend, config):
    _require(backend)
    X, y = digits
    a = _fit(backend, X, y, **CONFIGS[config])
    b = _fit(backend, X, y, **CONFIGS[config])
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_ if hasattr(a, "loss_curve_") else a.loss_ == b.loss_
    c = _fit(backend, X, y, **{**CONFIGS[config], "random_state": 1})
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "adagrad", "adadelta", "rmsprop"])
def test_float32_in_float32_everywhere(digits, backend, solver):
    _require(backend)
    X, y = digits
    est = _fit(backend, X, y, np.float32, solver=solver, max_iter=2)
    arrays = est.coefs_ + est.intercepts_
    if solver != "lbfgs":
        arrays += [a for state in est._optimizer.state.values() for a in state]
    assert all(a.dtype == np.float32 for a in arrays)
    assert est.predict_proba(X).dtype == np.float32
    assert est.predict_log_proba(X).dtype == np.float32
    assert isinstance(est.loss_, float)


def test_default_backend_is_the_active_one(digits):
    X, y = digits
    with fastnn_core.use_backend("numpy"):
        a = _fit(None, X, y, max_iter=2)
    b = _fit("numpy", X, y, max_iter=2)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("config", ["adam-relu", "rmsprop-logistic-sqerr", "sgd-full-earlystop"])
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_python_reference_loop_on_compiled_backends(digits, backend, config):
    """The readable reference loop (loop='python') runs on every backend's kernels and agrees
    with the default loop."""
    _require(backend)
    X, y = digits
    ref = _fit("numpy", X, y, **CONFIGS[config])
    python_loop = _fit(backend, X, y, loop="python", **CONFIGS[config])
    default_loop = _fit(backend, X, y, **CONFIGS[config])
    for a, b, c in zip(ref.coefs_, python_loop.coefs_, default_loop.coefs_):
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(c, b, rtol=1e-7, atol=1e-9)
