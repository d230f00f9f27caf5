"""fastnn.gradcheck: finite differences of the full network loss against backpropagation."""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import MLPClassifier, _network

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu"]
LOSSES = ["log_loss", "squared_error"]


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(0)
    X = rs.randn(24, 4)
    y_multi = rs.randint(0, 3, 24)
    y_binary = (X[:, 0] + 0.5 * rs.randn(24) > 0).astype(int)
    y_multilabel = (rs.rand(24, 3) > 0.5).astype(int)
    return X, y_multi, y_binary, y_multilabel


def _fitted(X, y, **params):
    est = MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=15, random_state=0, alpha=1e-2,
                        **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_correct_gradient_every_activation_and_loss(data, activation, loss):
    X, y_multi, y_binary, _ = data
    for y in (y_multi, y_binary):
        est = _fitted(X, y, activation=activation, loss=loss)
        coefs = [c.copy() for c in est.coefs_]
        result = fastnn.gradcheck(est, X, y)
        assert result.relative_error < 1e-7, str(result)
        assert result.ok
        assert result.verdict.startswith("correct")
        assert len(result.layer_errors) == 3
        assert all(e["relative_error"] < 1e-6 for e in result.layer_errors)
        n_params = sum(c.size for c in est.coefs_) + sum(b.size for b in est.intercepts_)
        assert result.n_params == n_params
        # the estimator is left as it was
        for before, after in zip(coefs, est.coefs_):
            np.testing.assert_array_equal(before, after)


def test_multilabel_and_sample_weight(data):
    X, _, _, Y = data
    est = _fitted(X, Y, activation="tanh")
    sw = np.linspace(0.5, 2.0, X.shape[0])
    assert fastnn.gradcheck(est, X, Y, sample_weight=sw).relative_error < 1e-7


def test_float32_estimator_is_checked_in_float64(data):
    X, y, _, _ = data
    est = _fitted(X.astype(np.float32), y, activation="tanh")
    assert est.coefs_[0].dtype == np.float32
    result = fastnn.gradcheck(est, X.astype(np.float32), y)
    assert result.relative_error < 1e-7
    assert est.coefs_[0].dtype == np.float32


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_unfitted_estimator_is_initialised_not_modified(data, solver):
    X, y, _, _ = data
    est = MLPClassifier(hidden_layer_sizes=(6,), activation="logistic", solver=solver,
                        random_state=0)
    result = fastnn.gradcheck(est, X, y)
    assert result.relative_error < 1e-7
    assert not hasattr(est, "coefs_")


def test_corrupted_gradient_is_caught(data, monkeypatch):
    X, y, _, _ = data
    est = _fitted(X, y, activation="tanh")
    real = _network.loss_and_gradients

    def corrupted(*args):
        loss, coef_grads, intercept_grads = real(*args)
        coef_grads = [g.copy() for g in coef_grads]
        coef_grads[1] *= 1.5  # a bug in one layer's backward pass
        return loss, coef_grads, intercept_grads

    monkeypatch.setattr(_network, "loss_and_gradients", corrupted)
    result = fastnn.gradcheck(est, X, y)
    assert result.relative_error > 1e-2, str(result)
    assert result.verdict.startswith("wrong")
    assert not result.ok
    errors = [e["coef"] for e in result.layer_errors]
    assert errors[1] > 1e-2 and errors[0] < 1e-6 and errors[2] < 1e-6  # points at the layer


def test_dropped_l2_term_is_caught(data, monkeypatch):
    X, y, _, _ = data
    est = _fitted(X, y, activation="relu")
    est.set_params(alpha=1.0)
    real = _network.loss_and_gradients

    def without_l2(coefs, intercepts, X_, Y, sw, act, out, loss, alpha):
        value = real(coefs, intercepts, X_, Y, sw, act, out, loss, alpha)[0]
        _, cg, ig = real(coefs, intercepts, X_, Y, sw, act, out, loss, 0.0)
        return value, cg, ig

    monkeypatch.setattr(_network, "loss_and_gradients", without_l2)
    assert fastnn.gradcheck(est, X, y).relative_error > 1e-2


def test_str_shows_the_reading(data):
    X, y, _, _ = data
    text = str(fastnn.gradcheck(_fitted(X, y), X, y))
    assert "relative error" in text and "correct" in text and "layer 2" in text


def test_bad_input(data):
    X, y, _, _ = data
    est = _fitted(X, y)
    with pytest.raises(ValueError, match="features"):
        fastnn.gradcheck(est, X[:, :3], y)
    with pytest.raises(ValueError, match="features"):
        fastnn.gradcheck(est, np.hstack([X, X]), y)
    for eps in (0.0, -1e-6, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps"):
            fastnn.gradcheck(est, X, y, eps=eps)
    with pytest.raises(ValueError):
        fastnn.gradcheck(est, X, y[:-1])


def test_class_weight_is_part_of_the_checked_loss(data):
    X, y, _, _ = data
    est = _fitted(X, y, activation="tanh", class_weight={0: 1.0, 1: 3.0, 2: 0.5})
    result = fastnn.gradcheck(est, X, y, sample_weight=np.full(X.shape[0], 2.0))
    assert result.relative_error < 1e-7
    # the loss checked is the weighted training loss
    from fastnn._gradcheck import effective_sample_weight
    sw = effective_sample_weight(est, X, y, None)
    np.testing.assert_allclose(sw, np.array([1.0, 3.0, 0.5])[y])
