"""Bad input raises ValueError naming the problem (scikit-learn's wording where it has one), and
a diverging fit stops with a warning and a model that still predicts finite values."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from fastnn import DivergenceWarning, MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def small(**kw):
    return MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **kw)


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
@pytest.mark.parametrize("where", ["fit", "predict"])
def test_non_finite_X(data, bad, match, where):
    X, y = data
    X_bad = X.copy()
    X_bad[3, 1] = bad
    est = small()
    if where == "fit":
        with pytest.raises(ValueError, match=match):
            est.fit(X_bad, y)
    else:
        est.fit(X, y)
        with pytest.raises(ValueError, match=match):
            est.predict(X_bad)


def test_empty_X(data):
    with pytest.raises(ValueError, match="0 sample"):
        small().fit(np.empty((0, 4)), np.empty(0))
    with pytest.raises(ValueError, match="0 feature"):
        small().fit(np.empty((5, 0)), np.arange(5) % 2)


def test_length_mismatch(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small().fit(X, y[:-1])


def test_single_class(data):
    X, _ = data
    with pytest.raises(ValueError, match="got 1 class"):
        small().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="got 1 class"):
        small().partial_fit(X, np.zeros(len(X)), classes=[0])


def test_wrong_n_features_at_predict(data):
    X, y = data
    est = small().fit(X, y)
    for method in (est.predict, est.predict_proba, est.predict_log_proba, est.score):
        args = (X[:, :3],) if method != est.score else (X[:, :3], y)
        with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
            method(*args)


def test_partial_fit_labels(data):
    X, y = data
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        small().partial_fit(X, y)
    est = small().partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match="classes not in `self.classes_`"):
        est.partial_fit(X, y)
    with pytest.raises(ValueError, match="is not the same as on last call"):
        est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])  # identical classes again: fine


@pytest.mark.parametrize("sw, match", [
    (-1.0, "Negative values in data passed to `sample_weight`"),
    (np.nan, "NaN"),
    (np.inf, "infinity"),
])
def test_bad_sample_weight(data, sw, match):
    X, y = data
    weights = np.ones(len(y))
    weights[5] = sw
    with pytest.raises(ValueError, match=match):
        small().fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match=match):
        small().partial_fit(X, y, sample_weight=weights, classes=[0, 1, 2])


def test_sample_weight_wrong_length(data):
    X, y = data
    with pytest.raises(ValueError, match="sample_weight.shape"):
        small().fit(X, y, sample_weight=np.ones(3))


def test_strings_in_X(data):
    X, y = data
    X_str = X.astype(object)
    X_str[0, 0] = "abc"
    with pytest.raises(ValueError, match="could not convert string to float"):
        small().fit(X_str, y)


def test_continuous_y(data):
    X, _ = data
    with pytest.raises(ValueError, match="Unknown label type"):
        small().fit(X, np.linspace(0, 1, len(X)))


def test_invalid_parameters(data):
    X, y = data
    for params, match in [
        (dict(solver="newton"), "solver"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size="half"), "batch_size"),
        (dict(init="orthogonal"), "init"),
        (dict(loss="hinge"), "loss"),
        (dict(activation="gelu"), "activation"),
        (dict(learning_rate_init=-1.0), "learning_rate_init"),
        (dict(class_weight="auto"), "class_weight"),
    ]:
        with pytest.raises(ValueError, match=match):
            MLPClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)


def test_class_weight_unknown_class(data):
    X, y = data
    with pytest.raises(ValueError, match="not in class_weight"):
        small(class_weight={7: 1.0}).fit(X, y)


def test_not_fitted(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)


def test_early_stopping_partial_fit(data):
    X, y = data
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        small(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("sparse", [False, True])
def test_divergence_warns_and_keeps_finite_model(data, solver, sparse):
    X, y = data
    X = X * 1e3
    if sparse:
        X = sp.csr_matrix(X)
    est = MLPClassifier(hidden_layer_sizes=(20,), solver=solver, learning_rate_init=1e200,
                        activation="identity", max_iter=50, random_state=0)
    with pytest.warns(DivergenceWarning, match="diverged.*learning_rate_init"):
        est.fit(X, y)
    assert all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict_proba(X)).all()
    assert np.isfinite(est.predict_log_proba(X)).all()
    assert set(est.predict(X)) <= set(est.classes_)
    assert all(np.isfinite(est.loss_curve_))


def test_divergence_lbfgs_keeps_finite_model(data):
    X, y = data
    est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X * 1e150, y)
    assert all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict_proba(X)).all()
