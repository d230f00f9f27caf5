"""fastnn.plot: every function draws with the Agg backend and writes a non-empty PNG."""

import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import make_blobs, make_moons  # noqa: E402

import fastnn  # noqa: E402
from fastnn import MLPClassifier  # noqa: E402
from fastnn import plot as fplot  # noqa: E402


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=120, noise=0.2, random_state=0)
    est = _fit(MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", learning_rate_init=0.02,
                             max_iter=30, early_stopping=True, n_iter_no_change=30,
                             random_state=0), X, y)
    return est, X, y


def _png(fig, tmp_path, name):
    path = tmp_path / name
    fig.savefig(path)
    plt.close(fig)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return path


def test_plot_training_two_panels(moons, tmp_path):
    est, _, _ = moons
    assert len(est.validation_loss_curve_) == len(est.loss_curve_)
    fig = fplot.plot_training(est)
    assert isinstance(fig, matplotlib.figure.Figure)
    loss_ax, acc_ax = fig.axes[:2]

    def curves(ax):
        return [line for line in ax.lines if not line.get_label().startswith("best")]

    assert len(curves(loss_ax)) == 2  # training and validation loss
    assert len(curves(acc_ax)) == 1   # validation accuracy
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), est.loss_curve_)
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), est.validation_loss_curve_)
    best = [line for line in acc_ax.lines if line.get_label().startswith("best")]
    assert len(best) == 1  # the epoch whose weights early stopping kept
    assert best[0].get_xdata()[0] == np.argmax(est.validation_scores_) + 1
    _png(fig, tmp_path, "training.png")


def test_plot_training_without_validation_and_on_given_axes(moons, tmp_path):
    _, X, y = moons
    est = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X, y)
    fig = fplot.plot_training(est)
    assert len(fig.axes[0].lines) == 1
    _png(fig, tmp_path, "no_val.png")
    fig, axes = plt.subplots(1, 2)
    assert fplot.plot_training(est, ax=axes) is fig
    _png(fig, tmp_path, "given_axes.png")
    fig, ax = plt.subplots()
    assert fplot.plot_training(est, ax=ax) is fig  # a single Axes: the loss panel only
    _png(fig, tmp_path, "single_ax.png")


def test_plot_training_list_and_compare(moons, tmp_path):
    est, X, y = moons
    other = _fit(MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", max_iter=10,
                               random_state=0), X, y)
    fig = fplot.compare([est, other], ["adam", "sgd"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("adam" in t for t in labels) and any("sgd" in t for t in labels)
    _png(fig, tmp_path, "compare.png")
    _png(fplot.plot_training([est, other]), tmp_path, "list.png")
    with pytest.raises(ValueError, match="labels"):
        fplot.compare([est, other], ["only one"])


def test_plot_decision_boundary_binary_and_multiclass(moons, tmp_path):
    est, X, y = moons
    _png(fplot.plot_decision_boundary(est, X, y), tmp_path, "boundary2.png")
    Xb, yb = make_blobs(n_samples=90, centers=3, n_features=2, random_state=0)
    est3 = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0), Xb, yb)
    _png(fplot.plot_decision_boundary(est3, Xb, yb, resolution=50), tmp_path, "boundary3.png")
    with pytest.raises(ValueError, match="2-D"):
        fplot.plot_decision_boundary(est3, np.hstack([Xb, Xb]), yb)


def test_plot_lr_find(moons, tmp_path):
    est, X, y = moons
    result = fastnn.lr_find(est, X, y, num=20)
    fig = fplot.plot_lr_find(result)
    assert fig.axes[0].get_xscale() == "log"
    _png(fig, tmp_path, "lr_find.png")


def test_missing_matplotlib_names_the_extra(monkeypatch, moons):
    est, _, _ = moons
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"fastnn\[plot\]"):
        fplot.plot_training(est)


def test_unfitted_estimator_is_a_clear_error():
    with pytest.raises(ValueError, match="fit"):
        fplot.plot_training(MLPClassifier())


def test_import_fastnn_does_not_import_matplotlib():
    import subprocess

    code = "import sys, fastnn; fastnn.plot; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
