"""Quality parity with scikit-learn's MLPClassifier on its bundled data sets, and the reason it
holds: from the same random_state both libraries start from the same weights, shuffle the same
way and take the same steps, so their trajectories coincide."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastnn import MLPClassifier

LOADERS = {
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
    "iris": load_iris,
    "wine": load_wine,
}
# Identical hyperparameters for both libraries.
SOLVERS = {
    "adam": dict(solver="adam", max_iter=150),
    "sgd": dict(solver="sgd", learning_rate_init=0.01, batch_size=32, max_iter=150),
    "lbfgs": dict(solver="lbfgs", max_iter=200),
}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


_CACHE = {}


def split(name):
    if name not in _CACHE:
        X, y = LOADERS[name](return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
        scaler = StandardScaler().fit(X_train)
        _CACHE[name] = (scaler.transform(X_train), scaler.transform(X_test), y_train, y_test)
    return _CACHE[name]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("dataset", sorted(LOADERS))
def test_accuracy_within_one_point_of_sklearn(dataset, solver):
    X_train, X_test, y_train, y_test = split(dataset)
    params = dict(hidden_layer_sizes=(50,), random_state=0, **SOLVERS[solver])
    ours = MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    theirs = SkMLP(**params).fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours - theirs) <= 0.01, (dataset, solver, ours, theirs)
    assert ours > 0.85  # and it did learn


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dataset", sorted(LOADERS))
@pytest.mark.parametrize(
    "regime",
    [
        dict(solver="sgd", batch_size=1, learning_rate_init=0.01, momentum=0.0, max_iter=10),
        dict(solver="sgd", batch_size="full", learning_rate_init=0.1, max_iter=300),
    ],
    ids=["per-sample-sgd", "bgd"],
)
def test_per_sample_sgd_and_bgd_reach_sensible_accuracy(dataset, regime):
    X_train, X_test, y_train, y_test = split(dataset)
    est = MLPClassifier(hidden_layer_sizes=(50,), random_state=0, **regime).fit(X_train, y_train)
    assert est.score(X_test, y_test) > 0.9


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", learning_rate_init=0.05, batch_size=16),
        dict(solver="sgd", learning_rate_init=0.05, batch_size=16, nesterovs_momentum=False),
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1, batch_size=16),
        dict(solver="adam", learning_rate_init=0.01, batch_size=16),
        dict(solver="adam", batch_size=16, early_stopping=True, activation="logistic"),
        dict(solver="adam", batch_size=1, activation="tanh", alpha=0.1),
        dict(solver="sgd", batch_size=16, shuffle=False, activation="identity"),
        dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, n_iter_no_change=1,
             tol=10.0, max_iter=6),
    ],
    ids=["sgd-nesterov", "sgd-momentum", "sgd-invscaling", "adam", "adam-early-stopping",
         "adam-per-sample", "sgd-unshuffled", "sgd-adaptive"],
)
@pytest.mark.parametrize("dataset", ["iris", "breast_cancer"])  # multiclass, binary
def test_trajectory_matches_sklearn(dataset, params):
    """Same init, same shuffles, same updates: the parameters after a few epochs agree with
    scikit-learn's to rounding error (float64)."""
    X_train, _, y_train, _ = split(dataset)
    y_train = y_train.copy()
    params = {**dict(hidden_layer_sizes=(8, 5), random_state=3, max_iter=3), **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X_train, y_train)
        theirs = SkMLP(**params).fit(X_train, y_train)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert len(ours.validation_loss_curve_) == len(ours.validation_scores_)


@pytest.mark.parametrize("sample_weight", [False, True])
def test_lbfgs_and_sample_weight_match_sklearn(sample_weight):
    X_train, _, y_train, _ = split("wine")
    sw = np.random.RandomState(0).uniform(0.5, 2.0, X_train.shape[0]) if sample_weight else None
    params = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=20, solver="lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X_train, y_train, sample_weight=sw)
        theirs = SkMLP(**params).fit(X_train, y_train, sample_weight=sw)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-7)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
