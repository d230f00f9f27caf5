"""fastnn.lr_find: the learning-rate range test."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

import fastnn
from fastnn import MLPClassifier


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(n_samples=600, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _final_loss(params, X, y, lr):
    est = MLPClassifier(**params).set_params(learning_rate_init=lr, max_iter=15)
    loss = _fit(est, X, y).loss_curve_[-1]
    return loss if np.isfinite(loss) else np.inf


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_suggestion_is_within_10x_of_a_rate_that_trains_well(problem, solver):
    X, y = problem
    params = dict(hidden_layer_sizes=(32,), solver=solver, batch_size=32, random_state=0)
    result = fastnn.lr_find(MLPClassifier(**params), X, y)
    assert 0 < result.suggested_lr < 1.0
    # the best of a grid of rates, by training loss after 15 epochs
    grid = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
    losses = [_final_loss(params, X, y, lr) for lr in grid]
    best = grid[int(np.argmin(losses))]
    assert best / 10 <= result.suggested_lr <= best * 10, (result, dict(zip(grid, losses)))
    # and the suggested rate itself trains well
    est = _fit(MLPClassifier(**params).set_params(learning_rate_init=result.suggested_lr,
                                                   max_iter=15), X, y)
    assert est.score(X, y) > 0.8


def test_result_shape_and_explosion(problem):
    X, y = problem
    est = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", batch_size=32, random_state=0)
    result = fastnn.lr_find(est, X, y, start=1e-5, stop=100.0, num=60)
    assert result.stopped_early  # a rate of 100 with momentum explodes
    assert 2 <= len(result.rates) < 60
    assert result.rates.shape == result.losses.shape == result.raw_losses.shape
    assert np.all(np.diff(result.rates) > 0)
    np.testing.assert_allclose(result.rates[1] / result.rates[0], (100.0 / 1e-5) ** (1 / 59))
    assert np.all(np.isfinite(result.losses))
    assert result.min_loss_lr == pytest.approx(10 * result.suggested_lr)
    rates, losses, suggested = result  # unpacks as a triple
    assert suggested == result.suggested_lr
    assert "suggested" in str(result)


def test_parameters_are_restored_exactly(problem):
    X, y = problem
    est = _fit(MLPClassifier(hidden_layer_sizes=(16,), solver="adam", random_state=0,
                             max_iter=5), X, y)
    coefs = [c.copy() for c in est.coefs_]
    intercepts = [b.copy() for b in est.intercepts_]
    curve = list(est.loss_curve_)
    state = {k: v for k, v in vars(est).items() if not k.startswith("_")}
    fastnn.lr_find(est, X, y, num=20)
    for a, b in zip(coefs + intercepts, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == curve
    assert set(state) == {k for k in vars(est) if not k.startswith("_")}
    assert est.predict(X).shape == (X.shape[0],)


def test_unfitted_estimator_stays_unfitted(problem):
    X, y = problem
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="rmsprop", random_state=0)
    result = fastnn.lr_find(est, X, y, num=10)
    assert len(result.rates) >= 2
    assert not hasattr(est, "coefs_")


def test_same_seed_same_curve(problem):
    X, y = problem
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", random_state=3)
    a = fastnn.lr_find(est, X, y, num=15)
    b = fastnn.lr_find(est, X, y, num=15)
    np.testing.assert_array_equal(a.losses, b.losses)


def test_bad_input(problem):
    X, y = problem
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    for kwargs, match in [
        (dict(start=1e-2, stop=1e-2), "stop"),
        (dict(start=1.0, stop=1e-3), "stop"),
        (dict(start=0.0), "start"),
        (dict(start=-1e-3), "start"),
        (dict(num=1), "num"),
        (dict(num=2.5), "num"),
        (dict(stop=float("inf")), "stop"),
    ]:
        with pytest.raises(ValueError, match=match):
            fastnn.lr_find(est, X, y, **kwargs)
    fitted = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match="features"):
        fastnn.lr_find(fitted, X[:, :5], y)
    with pytest.raises(ValueError, match="lbfgs"):
        fastnn.lr_find(MLPClassifier(solver="lbfgs"), X, y)
