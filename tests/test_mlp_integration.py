"""fastnn.MLPClassifier inside the scikit-learn ecosystem: pipelines, model selection, cloning,
pickling, streaming with partial_fit, sparse input, multilabel targets, and fastnn's extras."""

import io
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_iris, make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastnn import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_import_is_drop_in():
    """Every constructor parameter of scikit-learn's, with the same defaults, in the same order
    (fastnn's additions come after)."""
    ours = MLPClassifier().get_params()
    theirs = SkMLP().get_params()
    for name, value in theirs.items():
        assert name in ours
        assert ours[name] == value, name
    names = list(MLPClassifier.__init__.__code__.co_varnames[1:len(theirs) + 1])
    assert names == list(SkMLP.__init__.__code__.co_varnames[1:len(theirs) + 1])
    extras = set(ours) - set(theirs)
    assert {"loss", "init", "class_weight", "rho", "backend"} <= extras


def test_fitted_attributes_match_sklearn(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(7,), max_iter=5, random_state=0)
    ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLP(**kw).fit(X, y)
    for attr in ["classes_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
                 "best_validation_score_", "t_", "coefs_", "intercepts_", "n_features_in_",
                 "n_iter_", "n_layers_", "n_outputs_", "out_activation_"]:
        assert hasattr(ours, attr), attr
    assert ours.out_activation_ == theirs.out_activation_ == "softmax"
    assert ours.n_layers_ == theirs.n_layers_ == 3


def test_pipeline_gridsearch_cross_val_score(iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(10,), max_iter=100,
                                           learning_rate_init=0.02, random_state=0))])
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-2], "mlp__solver": ["adam", "lbfgs"]},
                        cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.8
    assert isinstance(grid.best_estimator_[-1], MLPClassifier)


def test_clone_and_pickle_round_trip(iris):
    X, y = iris
    est = MLPClassifier(hidden_layer_sizes=(10,), max_iter=30, random_state=0).fit(X, y)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "coefs_")
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # and it can keep training
    loaded.partial_fit(X, y)


def test_partial_fit_streaming_with_repeated_classes():
    X, y = make_classification(n_samples=600, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)
    classes = np.unique(y)
    est = MLPClassifier(hidden_layer_sizes=(20,), learning_rate_init=0.01, random_state=0)
    for _ in range(10):
        for start in range(0, 600, 100):
            # dask-ml's Incremental passes the same classes= on every call
            est.partial_fit(X[start:start + 100], y[start:start + 100], classes=classes)
    assert est.score(X, y) > 0.8
    assert est.n_iter_ == 1
    assert est.t_ == 10 * 600
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X[:10], y[:10], classes=np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X[:10], np.full(10, 7))


def test_partial_fit_chunk_with_subset_of_classes():
    X, y = make_classification(n_samples=200, n_features=5, n_classes=3, n_informative=3,
                               random_state=1)
    est = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    order = np.argsort(y, kind="stable")
    est.partial_fit(X[order[:50]], y[order[:50]], classes=[0, 1, 2])  # only class 0 here
    assert est.predict_proba(X).shape == (200, 3)


def test_partial_fit_not_for_lbfgs():
    est = MLPClassifier(solver="lbfgs")
    assert not hasattr(est, "partial_fit")


def test_sparse_csr_input_equals_dense(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(6,), max_iter=10, random_state=0, solver="sgd")
    dense = MLPClassifier(**kw).fit(X, y)
    sparse = MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-9)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_multilabel(solver):
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    kw = dict(hidden_layer_sizes=(20,), max_iter=50, random_state=0, solver=solver)
    ours = MLPClassifier(**kw).fit(X, Y)
    theirs = SkMLP(**kw).fit(X, Y)
    assert ours.out_activation_ == "logistic"
    assert ours.predict(X).shape == Y.shape
    assert ours.predict_proba(X).shape == Y.shape
    assert abs(ours.score(X, Y) - theirs.score(X, Y)) < 0.05


def test_binary_proba_and_log_proba_are_stable(iris):
    X, y = iris
    yb = (y == 0).astype(int)
    est = MLPClassifier(solver="lbfgs", alpha=0.0, max_iter=500, random_state=0).fit(X, yb)
    proba = est.predict_proba(X)
    log_proba = est.predict_log_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.isfinite(log_proba).all()
    assert (proba > 0).all()
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-6, atol=1e-300)
    # extreme inputs: logits far beyond exp's range still give finite log-probabilities
    big = est.predict_log_proba(X * 1e4)
    assert np.isfinite(big).all()


def test_multiclass_log_proba_is_log_softmax(iris):
    X, y = iris
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    lp = est.predict_log_proba(X * 1e5)
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), est.predict_proba(X), rtol=1e-10)


def test_dtype_preserved_float32(iris):
    X, y = iris
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    est.fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert est._optimizer.state["m"][0].dtype == np.float32
    est64 = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    assert all(c.dtype == np.float64 for c in est64.coefs_)
    # same start, same steps: float32 follows float64 to float32 precision
    for a, b in zip(est.coefs_, est64.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_class_weight_is_folded_into_sample_weight(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    cw = {0: 2.0, 1: 0.5, 2: 1.0}
    sw = np.array([cw[c] for c in y]) * np.linspace(0.5, 1.5, len(y))
    a = MLPClassifier(class_weight=cw, **kw).fit(X, y, sample_weight=np.linspace(0.5, 1.5, len(y)))
    b = MLPClassifier(**kw).fit(X, y, sample_weight=sw)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    balanced = MLPClassifier(class_weight="balanced", **kw).fit(X[:120], y[:120])
    assert balanced.n_iter_ == 5
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_class_weight_shifts_decisions():
    X, y = make_classification(n_samples=400, weights=[0.9, 0.1], random_state=0, flip_y=0.1)
    kw = dict(hidden_layer_sizes=(10,), max_iter=100, random_state=0)
    plain = MLPClassifier(**kw).fit(X, y)
    weighted = MLPClassifier(class_weight={0: 1.0, 1: 10.0}, **kw).fit(X, y)
    assert weighted.predict(X).sum() > plain.predict(X).sum()


@pytest.mark.parametrize("init", ["glorot", "he", "normal", "zeros"])
def test_inits(iris, init):
    X, y = iris
    est = MLPClassifier(init=init, hidden_layer_sizes=(10,), max_iter=200,
                        learning_rate_init=0.01, random_state=0).fit(X, y)
    if init == "zeros":
        # symmetric start: every hidden unit stays identical
        w = est.coefs_[0]
        np.testing.assert_allclose(w, np.repeat(w[:, :1], w.shape[1], axis=1), atol=1e-12)
    else:
        assert est.score(X, y) > 0.9


def test_glorot_is_sklearns_init(iris):
    X, y = iris
    for act in ["relu", "logistic"]:
        kw = dict(hidden_layer_sizes=(4,), activation=act, max_iter=1, random_state=0,
                  learning_rate_init=1e-300, alpha=0.0, momentum=0.0, solver="sgd")
        ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLP(**kw).fit(X, y)
        for a, b in zip(ours.coefs_, theirs.coefs_):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adagrad", "adadelta", "rmsprop", "lbfgs"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu", "leaky_relu",
                                        "softplus", "elu"])
def test_every_solver_and_activation_learns(iris, solver, activation):
    X, y = iris
    lr = {"adadelta": 1.0, "sgd": 0.05, "adam": 0.01, "adagrad": 0.05, "rmsprop": 0.01}
    est = MLPClassifier(hidden_layer_sizes=(10,), activation=activation, solver=solver,
                        learning_rate_init=lr.get(solver, 0.001), max_iter=100, batch_size=16,
                        epsilon=1e-6 if solver == "adadelta" else 1e-8, random_state=0)
    est.fit(X, y)
    assert est.score(X, y) > 0.85


def test_squared_error_loss_learns_and_differs(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(10,), max_iter=100, random_state=0, learning_rate_init=0.01)
    sq = MLPClassifier(loss="squared_error", **kw).fit(X, y)
    ce = MLPClassifier(**kw).fit(X, y)
    assert sq.score(X, y) > 0.8
    assert sq.loss_ != ce.loss_


def test_batch_size_full_is_one_update_per_epoch(iris):
    X, y = iris
    est = MLPClassifier(solver="adam", batch_size="full", max_iter=3, random_state=0).fit(X, y)
    assert est._optimizer.t == 3
    est = MLPClassifier(solver="adam", batch_size=1, max_iter=2, random_state=0).fit(X, y)
    assert est._optimizer.t == 2 * len(X)


def test_early_stopping_records_validation_loss(iris):
    X, y = iris
    est = MLPClassifier(early_stopping=True, max_iter=30, random_state=0,
                        learning_rate_init=0.01).fit(X, y)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == est.n_iter_
    assert all(np.isfinite(est.validation_loss_curve_))
    assert est.validation_loss_curve_[-1] < est.validation_loss_curve_[0]
    assert MLPClassifier(max_iter=2).fit(X, y).validation_loss_curve_ is None


def test_warm_start_continues(iris):
    X, y = iris
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, warm_start=True, random_state=0)
    est.fit(X, y)
    first = [c.copy() for c in est.coefs_]
    est.fit(X, y)
    assert len(est.loss_curve_) == 10
    assert not np.allclose(first[0], est.coefs_[0])
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X[y < 2], y[y < 2])


def test_verbose_progress_bar(iris, capsys):
    X, y = iris
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, verbose=True, early_stopping=True,
                  random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "loss" in err and "val_score" in err and "3/3" in err


def test_verbose_without_tqdm_prints(iris, capsys, monkeypatch):
    from fastnn import _progress

    monkeypatch.setattr(_progress, "_tqdm", lambda: None)
    X, y = iris
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Iteration 2, loss = " in out


def test_backend_parameter(iris):
    X, y = iris
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, backend="numpy").fit(X, y)
    assert est.predict(X).shape == y.shape
    with pytest.raises(ValueError, match="backend"):
        MLPClassifier(backend="fortran").fit(X, y)
