"""Plots for the lessons: training curves, decision boundaries, the learning-rate finder.

matplotlib is an optional dependency (``pip install 'fastnn[plot]'``); it is imported only when a
function here is called. Every function returns the matplotlib ``Figure`` it drew on, so that
``fig.savefig("curves.png")`` works in a script and the figure shows inline in a notebook.

>>> from fastnn import MLPClassifier                                    # doctest: +SKIP
>>> from fastnn.plot import plot_training                               # doctest: +SKIP
>>> est = MLPClassifier(early_stopping=True).fit(X, y)                  # doctest: +SKIP
>>> plot_training(est).savefig("training.png")                         # doctest: +SKIP
"""

import numpy as np

__all__ = ["compare", "plot_decision_boundary", "plot_lr_find", "plot_training"]

_INSTALL_HINT = (
    "fastnn.plot needs matplotlib, an optional dependency: install it with "
    "pip install 'fastnn[plot]' (or pip install matplotlib)"
)


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(_INSTALL_HINT) from exc
    return plt


def _new_axes(ax, n_panels, width_per_panel=4.6, height=3.6):
    """Return ``(figure, [axes...])``: new axes when ``ax`` is None, else the given ones."""
    if ax is None:
        plt = _pyplot()
        fig, axes = plt.subplots(1, n_panels, figsize=(width_per_panel * n_panels, height),
                                 squeeze=False)
        return fig, list(axes[0])
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    return axes[0].figure, axes


def _history(est):
    """The per-epoch curves of a fitted estimator, as plain lists (missing ones empty)."""
    if not hasattr(est, "loss_curve_"):
        raise ValueError(
            f"{type(est).__name__} has no loss_curve_: fit it first with a stochastic solver "
            "(sgd, adam, adagrad, adadelta, rmsprop; lbfgs records no curve)"
        )
    def curve(name):
        value = getattr(est, name, None)
        return [] if value is None else [float(v) for v in value]
    return {
        "loss": curve("loss_curve_"),
        "val_loss": curve("validation_loss_curve_"),
        "val_score": curve("validation_scores_"),
        "train_score": curve("training_scores_"),
    }


def _as_list(estimators):
    if isinstance(estimators, (list, tuple)):
        return list(estimators)
    return [estimators]


def plot_training(est, ax=None, labels=None):
    """Loss and accuracy against epochs, in two panels.

    Left: the training loss (``loss_curve_``, solid) and, if the estimator was fitted with
    ``early_stopping=True``, the validation loss (``validation_loss_curve_``, dashed). Right: the
    validation accuracy (``validation_scores_``), or a note saying how to record it. For one
    estimator fitted with early stopping, a dotted line marks the epoch of the best validation
    accuracy, whose weights the estimator keeps.

    Parameters
    ----------
    est : fitted MLPClassifier, or a list of them
        Several estimators are drawn on the same axes, one colour each (see :func:`compare`).
    ax : pair of matplotlib Axes, or a single Axes, optional
        Where to draw. A single Axes receives only the loss panel. New axes by default.
    labels : list of str, optional
        Legend labels, one per estimator.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ests = _as_list(est)
    if labels is None:
        labels = [None] * len(ests) if len(ests) == 1 else [f"model {i}" for i in range(len(ests))]
    if len(labels) != len(ests):
        raise ValueError(f"got {len(labels)} labels for {len(ests)} estimators")
    fig, axes = _new_axes(ax, 2)
    ax_loss = axes[0]
    ax_acc = axes[1] if len(axes) > 1 else None
    any_val_score = False
    for i, (e, label) in enumerate(zip(ests, labels)):
        h = _history(e)
        color = f"C{i}"
        epochs = np.arange(1, len(h["loss"]) + 1)
        prefix = "" if label is None else f"{label}: "
        ax_loss.plot(epochs, h["loss"], color=color, label=f"{prefix}training loss")
        if h["val_loss"]:
            ax_loss.plot(np.arange(1, len(h["val_loss"]) + 1), h["val_loss"], color=color,
                         linestyle="--", label=f"{prefix}validation loss")
        if ax_acc is not None:
            if h["train_score"]:
                ax_acc.plot(np.arange(1, len(h["train_score"]) + 1), h["train_score"],
                            color=color, label=f"{prefix}training accuracy")
            if h["val_score"]:
                any_val_score = True
                ax_acc.plot(np.arange(1, len(h["val_score"]) + 1), h["val_score"], color=color,
                            linestyle="--" if h["train_score"] else "-",
                            label=f"{prefix}validation accuracy")
    if len(ests) == 1:
        h = _history(ests[0])
        if h["val_score"] and getattr(ests[0], "early_stopping", False):
            best = int(np.nanargmax(h["val_score"])) + 1
            for a in [ax_loss] + ([ax_acc] if ax_acc is not None else []):
                a.axvline(best, color="gray", linestyle=":", linewidth=1,
                          label=f"best validation accuracy (epoch {best}, weights kept)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    positive = [v for e in ests for v in _history(e)["loss"] if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax_loss.set_yscale("log")
    ax_loss.legend(fontsize="small")
    if ax_acc is not None:
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy")
        ax_acc.set_title("accuracy")
        if any_val_score or ax_acc.lines:
            ax_acc.legend(fontsize="small")
        else:
            ax_acc.text(0.5, 0.5, "no validation history:\nfit with early_stopping=True",
                        ha="center", va="center", transform=ax_acc.transAxes)
    fig.tight_layout()
    return fig


def compare(estimators, labels, ax=None):
    """Several fitted estimators' loss and accuracy curves on one figure (two panels).

    ``labels`` names each estimator in the legend (e.g. the solver or the cost)."""
    ests = _as_list(estimators)
    labels = list(labels)
    if not ests:
        raise ValueError("compare needs at least one fitted estimator")
    return plot_training(ests, ax=ax, labels=labels)


def plot_decision_boundary(est, X, y, ax=None, resolution=200, margin=0.5):
    """The regions a fitted classifier assigns to each class, over 2-D data, with the points.

    For two classes the background shows ``predict_proba``'s probability of the second class
    (the 0.5 contour is the boundary); for more, the predicted class.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D data (n_samples, 2), got shape {X.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    fig, axes = _new_axes(ax, 1, width_per_panel=5.0, height=4.2)
    ax = axes[0]
    x0 = np.linspace(X[:, 0].min() - margin, X[:, 0].max() + margin, resolution)
    x1 = np.linspace(X[:, 1].min() - margin, X[:, 1].max() + margin, resolution)
    g0, g1 = np.meshgrid(x0, x1)
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    classes = np.asarray(est.classes_)
    if len(classes) == 2 and hasattr(est, "predict_proba"):
        p = est.predict_proba(grid)[:, 1].reshape(g0.shape)
        ax.contourf(g0, g1, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(g0, g1, p, levels=[0.5], colors="k", linewidths=1.0)
    else:
        pred = est.predict(grid)
        index = np.searchsorted(classes, pred).reshape(g0.shape)
        ax.contourf(g0, g1, index, levels=np.arange(len(classes) + 1) - 0.5, cmap="tab10",
                    vmin=0, vmax=9, alpha=0.4)
    colors = ["#2166ac", "#b2182b"] if len(classes) == 2 else [f"C{i % 10}" for i in
                                                                range(len(classes))]
    for i, c in enumerate(classes):
        mask = y == c
        if np.any(mask):
            ax.scatter(X[mask, 0], X[mask, 1], color=colors[i], edgecolors="white",
                       linewidths=0.6, s=20, label=str(c))
    ax.legend(title="class", fontsize="small", loc="best")
    ax.set_xlim(x0[0], x0[-1])
    ax.set_ylim(x1[0], x1[-1])
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    ax.set_title("decision boundary")
    fig.tight_layout()
    return fig


def plot_lr_find(result, ax=None):
    """The learning-rate range test: smoothed loss against learning rate (log scale), with the
    suggested rate marked. ``result`` is what :func:`fastnn.lr_find` returns (or anything with
    ``rates``, ``losses`` and ``suggested_lr``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rates = np.asarray(result.rates, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    if rates.shape != losses.shape or rates.size == 0:
        raise ValueError("result.rates and result.losses must be non-empty and of one length")
    fig, axes = _new_axes(ax, 1, width_per_panel=5.0, height=3.6)
    ax = axes[0]
    ax.plot(rates, losses, color="C0", label="smoothed loss")
    suggested = getattr(result, "suggested_lr", None)
    if suggested is not None and np.isfinite(suggested):
        ax.axvline(suggested, color="C3", linestyle="--", label=f"suggested {suggested:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    finite = losses[np.isfinite(losses)]
    if finite.size:
        lo, hi = finite.min(), min(finite.max(), 4 * finite[0] if finite[0] > 0 else finite.max())
        if hi > lo:
            pad = 0.05 * (hi - lo)
            ax.set_ylim(lo - pad, hi + pad)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
