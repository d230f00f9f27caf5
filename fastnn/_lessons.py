"""The lessons, made runnable: each function here runs one experiment and returns its numbers;
the ``*_figure`` functions draw them; :func:`main` runs them all and writes the figures (it is
what ``python -m fastnn demo`` calls after the table of regimes, and what the scripts in
``examples/`` call).

1. :func:`single_neuron`: one sigmoid neuron, input 1.0, target 0.0. The quadratic cost's
   gradient carries the factor ``sigma'(z)``; from a saturated start ``(w, b) = (2, 2)`` it
   barely moves for many epochs. The cross-entropy's gradient is ``a - y``: it descends at once.
2. :func:`cost_at_scale`: the same lesson on a real network (``load_digits``, logistic hidden
   units): ``loss="squared_error"`` against ``loss="log_loss"``, epochs to reach 90% accuracy.
3. :func:`gd_regimes`: batch gradient descent, per-sample SGD and mini-batch: loss against epochs
   and against seconds.
4. :func:`optimizers`: sgd, momentum, Nesterov, AdaGrad, AdaDelta, RMSProp and Adam on one problem.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

import fastnn_core

# --------------------------------------------------------------------------------------------
# Lesson 1: one neuron, two costs
# --------------------------------------------------------------------------------------------

SINGLE_NEURON_STARTS = ((0.6, 0.9), (2.0, 2.0))


def single_neuron(w, b, cost, lr=0.15, epochs=300, x=1.0, y=0.0):
    """Train one sigmoid neuron ``a = sigma(w * x + b)`` on one example by gradient descent,
    through fastnn_core's kernels, and return its history.

    ``cost`` is ``"quadratic"`` (``0.5 * (a - y)**2``: ``squared_error_grad(...,
    activation="logistic")``, whose gradient is ``(a - y) * a * (1 - a)``) or ``"cross_entropy"``
    (``binary_cross_entropy_grad``, whose gradient is ``a - y``). The update is
    ``fastnn_core.sgd_step`` (plain gradient descent, no momentum).

    Returns a dict of arrays of length ``epochs + 1`` (epoch 0 is the start): ``"cost"``,
    ``"output"`` (the activation ``a``), ``"w"``, ``"b"`` and ``"dz"`` (``dC/dz``).
    """
    if cost not in ("quadratic", "cross_entropy"):
        raise ValueError(f"cost must be 'quadratic' or 'cross_entropy', got {cost!r}")
    params = np.array([w, b], dtype=np.float64)   # the neuron's weight and bias, updated in place
    velocity = np.zeros(2)                        # sgd_step's state (unused without momentum)
    xs = np.array([x], dtype=np.float64)
    ys = np.array([y], dtype=np.float64)
    hist = {k: np.empty(epochs + 1) for k in ("cost", "output", "w", "b", "dz")}
    for epoch in range(epochs + 1):
        z = params[0] * xs + params[1]
        if cost == "quadratic":
            c, dz = fastnn_core.squared_error_grad(z, ys, activation="logistic")
        else:
            c, dz = fastnn_core.binary_cross_entropy_grad(z, ys)
        a = fastnn_core.activation("logistic", z)
        hist["cost"][epoch] = c
        hist["output"][epoch] = a[0]
        hist["w"][epoch], hist["b"][epoch] = params
        hist["dz"][epoch] = dz[0]
        if epoch == epochs:
            break
        # dC/dw = dC/dz * x and dC/db = dC/dz (z = w * x + b)
        grad = np.array([dz[0] * xs[0], dz[0]])
        fastnn_core.sgd_step(params, grad, velocity, lr=lr)
    return hist


def single_neuron_lesson(lr=0.15, epochs=300):
    """Both starts, both costs: ``{(w, b): {"quadratic": hist, "cross_entropy": hist}}``."""
    return {
        start: {cost: single_neuron(*start, cost, lr=lr, epochs=epochs)
                for cost in ("quadratic", "cross_entropy")}
        for start in SINGLE_NEURON_STARTS
    }


def epochs_below(output, threshold=0.2):
    """First epoch at which the neuron's output is below ``threshold`` (None if never)."""
    idx = np.flatnonzero(np.asarray(output) < threshold)
    return int(idx[0]) if idx.size else None


def single_neuron_summary(results):
    lines = []
    for (w, b), runs in results.items():
        for cost, h in runs.items():
            e = epochs_below(h["output"])
            reach = f"output < 0.2 after {e} epochs" if e is not None else "output never < 0.2"
            lines.append(
                f"  start (w, b) = ({w}, {b}), {cost:13s}: output {h['output'][0]:.3f} -> "
                f"{h['output'][-1]:.3f}, first-step dC/dz = {h['dz'][0]:+.4f}, {reach}"
            )
    return "\n".join(lines)


def single_neuron_figure(results, lr=0.15):
    from .plot import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 6.0), sharex=True)
    for col, ((w, b), runs) in enumerate(results.items()):
        for cost, color, label in (("quadratic", "C3", "quadratic cost"),
                                   ("cross_entropy", "C0", "cross-entropy")):
            h = runs[cost]
            epochs = np.arange(len(h["cost"]))
            axes[0, col].plot(epochs, h["output"], color=color, label=label)
            axes[1, col].plot(epochs, h["cost"], color=color, label=label)
        axes[0, col].set_title(f"start w = {w}, b = {b}  (output {runs['quadratic']['output'][0]:.2f})")
        axes[0, col].set_ylim(0, 1)
        axes[1, col].set_xlabel("epoch")
        axes[0, col].legend(fontsize="small")
    axes[0, 0].set_ylabel("output a (target 0)")
    axes[1, 0].set_ylabel("cost")
    fig.suptitle(f"One sigmoid neuron, input 1, target 0, learning rate {lr}: "
                 "the quadratic cost stalls when the output saturates", fontsize="medium")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Helpers for the lessons on the estimator
# --------------------------------------------------------------------------------------------

def _digits(random_state=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _quiet_fit(est, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


def save_figure(fig, out_dir, name):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=80)
    from .plot import _pyplot

    _pyplot().close(fig)
    return path
