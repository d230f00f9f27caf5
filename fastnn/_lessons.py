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

def _one_thread(fn):
    """Run a lesson on one thread (BLAS and OpenMP): its networks are small, so parallel loops
    only add synchronisation (badly so on a busy machine), and the results do not depend on
    thread timing. The kernels are loaded first: threadpool_limits caps only loaded pools."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        fastnn_core.get_kernels()
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)
    return wrapper


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


def _epoch_by_epoch(est, X_train, y_train, X_test, y_test, epochs, classes, target=None,
                    random_state=0):
    """Train ``est`` one epoch at a time with ``partial_fit`` (the optimizer state carries over;
    the rows are reshuffled before every epoch) and record after each epoch the training loss
    (cross-entropy of ``predict_proba`` over the whole training set) and the test accuracy.
    Stops once the test accuracy reaches ``target`` (if given)."""
    from sklearn.metrics import log_loss

    rng = np.random.RandomState(random_state)
    hist = {"loss": [], "accuracy": []}
    for _ in range(epochs):
        order = rng.permutation(len(y_train))
        est.partial_fit(X_train[order], y_train[order], classes=classes)
        hist["loss"].append(float(log_loss(y_train, est.predict_proba(X_train), labels=classes)))
        hist["accuracy"].append(float(est.score(X_test, y_test)))
        if target is not None and hist["accuracy"][-1] >= target:
            break
    return {k: np.asarray(v) for k, v in hist.items()}


def first_epoch_reaching(accuracy, target):
    """1-based epoch at which ``accuracy`` first reaches ``target`` (None if it never does)."""
    idx = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(idx[0]) + 1 if idx.size else None


# --------------------------------------------------------------------------------------------
# Lesson 2: the same lesson at scale
# --------------------------------------------------------------------------------------------

COST_SETTINGS = dict(hidden_layer_sizes=(30,), activation="logistic", solver="sgd",
                     momentum=0.0, batch_size=10, learning_rate_init=0.1, alpha=0.0)


@_one_thread
def cost_at_scale(epochs=30, target=0.9, random_state=0, data=None):
    """``loss="squared_error"`` against ``loss="log_loss"`` on ``load_digits`` (scaled), with
    logistic hidden units and plain mini-batch SGD (the same rate for both costs), trained one
    epoch at a time. Returns ``{loss: history}`` with ``"epochs_to_target"``."""
    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = _digits(random_state) if data is None else data
    classes = np.unique(y_train)
    out = {}
    for loss in ("squared_error", "log_loss"):
        est = MLPClassifier(loss=loss, random_state=random_state, **COST_SETTINGS)
        h = _epoch_by_epoch(est, X_train, y_train, X_test, y_test, epochs, classes)
        h["epochs_to_target"] = first_epoch_reaching(h["accuracy"], target)
        out[loss] = h
    return out


def cost_at_scale_summary(results, target=0.9):
    lines = []
    for loss, h in results.items():
        e = h["epochs_to_target"]
        reach = (f"{e} epochs to reach {target:.0%} test accuracy" if e is not None
                 else f"did not reach {target:.0%} in {len(h['accuracy'])} epochs")
        lines.append(f"  loss={loss!r:16s}: {reach}; after {len(h['accuracy'])} epochs "
                     f"{h['accuracy'][-1]:.1%}")
    return "\n".join(lines)


def cost_at_scale_figure(results, target=0.9):
    from .plot import _pyplot

    plt = _pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    names = {"squared_error": "quadratic cost (squared_error)", "log_loss": "cross-entropy (log_loss)"}
    for (loss, h), color in zip(results.items(), ("C3", "C0")):
        ep = np.arange(1, len(h["accuracy"]) + 1)
        ax_l.plot(ep, h["loss"], color=color, label=names.get(loss, loss))
        ax_a.plot(ep, h["accuracy"], color=color, label=names.get(loss, loss))
        if h["epochs_to_target"] is not None:
            ax_a.plot([h["epochs_to_target"]], [h["accuracy"][h["epochs_to_target"] - 1]], "o",
                      color=color)
    ax_a.axhline(target, color="gray", linestyle=":", linewidth=1)
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training cross-entropy")
    ax_l.set_title("training loss")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("test accuracy")
    ax_a.set_title(f"test accuracy (dotted: {target:.0%})")
    ax_a.set_ylim(0, 1)
    ax_a.legend(fontsize="small", loc="lower right")
    fig.suptitle("load_digits, 64-30-10 logistic network, plain SGD (rate 0.1, batches of 10)",
                 fontsize="medium")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Lesson 3: batch, stochastic and mini-batch gradient descent
# --------------------------------------------------------------------------------------------

#: (label, batch_size, learning_rate_init): one update per epoch, per sample, per 32 samples.
REGIMES = (
    ("batch GD (batch_size='full')", "full", 0.5),
    ("per-sample SGD (batch_size=1)", 1, 0.01),
    ("mini-batch (batch_size=32)", 32, 0.1),
)


@_one_thread
def gd_regimes(epochs=30, random_state=0, data=None):
    """Batch gradient descent, per-sample SGD and mini-batch SGD (plain SGD, no momentum; a
    rate suited to each) on ``load_digits``, each one ``fit`` of ``epochs`` epochs.

    Returns ``{label: history}``: ``"loss"`` is the estimator's ``loss_curve_`` (the training
    loss of each epoch), ``"seconds"`` the wall time at the end of each epoch (the fit's time
    spread evenly over its epochs: every epoch does the same work), ``"accuracy"`` the final
    test accuracy and ``"updates_per_epoch"`` the number of parameter updates per epoch.

    The fits run on one thread (BLAS and OpenMP), so that the seconds compare the regimes' work
    and not how thread pools cope with a busy machine (on oversubscribed cores, multi-threaded
    BLAS and OpenMP loops can make full-batch steps many times slower)."""
    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = _digits(random_state) if data is None else data
    n = X_train.shape[0]
    out = {}
    for label, batch_size, lr in REGIMES:
        est = MLPClassifier(hidden_layer_sizes=(64,), solver="sgd", momentum=0.0,
                            batch_size=batch_size, learning_rate_init=lr, max_iter=epochs,
                            tol=0.0, n_iter_no_change=epochs + 1, random_state=random_state)
        t0 = time.perf_counter()
        _quiet_fit(est, X_train, y_train)
        seconds = time.perf_counter() - t0
        loss = np.asarray(est.loss_curve_, dtype=np.float64)
        e = len(loss)
        bs = n if batch_size == "full" else batch_size
        out[label] = {
            "loss": loss,
            "seconds": seconds * np.arange(1, e + 1) / e,
            "accuracy": float(est.score(X_test, y_test)),
            "updates_per_epoch": -(-n // bs),
        }
    return out


def gd_regimes_summary(results):
    lines = []
    for label, h in results.items():
        lines.append(f"  {label:32s}: {h['updates_per_epoch']:5d} updates/epoch, loss "
                     f"{h['loss'][-1]:.3f} after {len(h['loss'])} epochs, test accuracy "
                     f"{h['accuracy']:.1%}, {h['seconds'][-1]:.2f} s")
    return "\n".join(lines)


def gd_regimes_figure(results):
    from .plot import _pyplot

    plt = _pyplot()
    fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    for i, (label, h) in enumerate(results.items()):
        ep = np.arange(1, len(h["loss"]) + 1)
        ax_e.plot(ep, h["loss"], color=f"C{i}", label=label)
        ax_s.plot(h["seconds"], h["loss"], color=f"C{i}", label=label)
    ax_e.set_yscale("log")
    ax_e.set_xlabel("epoch")
    ax_e.set_ylabel("training loss")
    ax_e.set_title("loss against epochs")
    ax_s.set_xscale("log")
    ax_s.set_xlabel("training time (s, one thread, log scale)")
    ax_s.set_title("loss against seconds")
    ax_s.legend(fontsize="small")
    fig.suptitle("load_digits, 64-64-10 relu network, plain SGD", fontsize="medium")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Lesson 4: the optimizers
# --------------------------------------------------------------------------------------------

#: (label, MLPClassifier parameters): a usual learning rate for each method; plain SGD gets the
#: same rate as the two momentum methods, so that the effect of momentum shows.
OPTIMIZERS = (
    ("sgd", dict(solver="sgd", momentum=0.0, learning_rate_init=0.01)),
    ("momentum", dict(solver="sgd", momentum=0.9, nesterovs_momentum=False,
                      learning_rate_init=0.01)),
    ("nesterov", dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                      learning_rate_init=0.01)),
    ("adagrad", dict(solver="adagrad", learning_rate_init=0.05)),
    ("adadelta", dict(solver="adadelta", learning_rate_init=1.0)),
    ("rmsprop", dict(solver="rmsprop", learning_rate_init=0.001)),
    ("adam", dict(solver="adam", learning_rate_init=0.001)),
)


@_one_thread
def optimizers(epochs=30, random_state=0, data=None):
    """Every optimizer on one problem (``load_digits``, 64-64-10 relu, batches of 32)."""
    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = _digits(random_state) if data is None else data
    classes = np.unique(y_train)
    out = {}
    for label, params in OPTIMIZERS:
        est = MLPClassifier(hidden_layer_sizes=(64,), batch_size=32, random_state=random_state,
                            **params)
        out[label] = _epoch_by_epoch(est, X_train, y_train, X_test, y_test, epochs, classes)
    return out


def optimizers_summary(results):
    lines = []
    for (label, params), h in zip(OPTIMIZERS, results.values()):
        lines.append(f"  {label:9s} (rate {params['learning_rate_init']:<6g}): loss "
                     f"{h['loss'][-1]:.4f}, test accuracy {h['accuracy'][-1]:.1%} after "
                     f"{len(h['loss'])} epochs")
    return "\n".join(lines)


def optimizers_figure(results):
    from .plot import _pyplot

    plt = _pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for i, (label, h) in enumerate(results.items()):
        ep = np.arange(1, len(h["loss"]) + 1)
        style = "--" if label == "nesterov" else "-"  # it overlaps classical momentum here
        ax_l.plot(ep, h["loss"], color=f"C{i}", linestyle=style, label=label)
        ax_a.plot(ep, h["accuracy"], color=f"C{i}", linestyle=style, label=label)
    ax_l.set_yscale("log")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training loss")
    ax_l.set_title("training loss")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("test accuracy")
    ax_a.set_title("test accuracy")
    ax_a.legend(fontsize="small", ncol=2, loc="lower right")
    fig.suptitle("load_digits, 64-64-10 relu network, batches of 32", fontsize="medium")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Lesson 5: choosing a learning rate, and what the network learned
# --------------------------------------------------------------------------------------------

@_one_thread
def lr_find_lesson(random_state=0, data=None, num=100):
    """The learning-rate range test for mini-batch SGD with momentum on ``load_digits``, then a
    fit at the suggested rate. Returns ``(result, fitted estimator, test accuracy)``."""
    from ._lr_find import lr_find
    from ._mlp import MLPClassifier

    X_train, X_test, y_train, y_test = _digits(random_state) if data is None else data
    est = MLPClassifier(hidden_layer_sizes=(64,), solver="sgd", batch_size=32,
                        random_state=random_state)
    result = lr_find(est, X_train, y_train, num=num)
    est.set_params(learning_rate_init=result.suggested_lr, max_iter=20)
    _quiet_fit(est, X_train, y_train)
    return result, est, float(est.score(X_test, y_test))


@_one_thread
def moons_lesson(random_state=0, max_iter=400):
    """Overfitting, seen in the training curves: a large network (2-100-100-1, tanh, adam, no L2)
    on a small, noisy two-moons sample (150 points, 30% held out for validation, so that
    ``early_stopping=True`` records the validation loss and accuracy; ``n_iter_no_change`` is
    ``max_iter`` so that training runs on past the best epoch). Returns ``(estimator, X, y)``;
    the estimator holds the weights of the best validation accuracy, as early stopping restores.
    """
    from sklearn.datasets import make_moons

    from ._mlp import MLPClassifier

    X, y = make_moons(n_samples=150, noise=0.35, random_state=random_state)
    est = MLPClassifier(hidden_layer_sizes=(100, 100), activation="tanh", solver="adam",
                        learning_rate_init=0.01, alpha=0.0, max_iter=max_iter,
                        early_stopping=True, validation_fraction=0.3, n_iter_no_change=max_iter,
                        random_state=random_state)
    _quiet_fit(est, X, y)
    return est, X, y


def moons_summary(est):
    val = np.asarray(est.validation_loss_curve_)
    best = int(np.argmax(est.validation_scores_)) + 1
    return (f"  {est.n_iter_} epochs: training loss {est.loss_curve_[0]:.3f} -> "
            f"{est.loss_curve_[-1]:.3f}; validation loss lowest {val.min():.3f} at epoch "
            f"{int(np.argmin(val)) + 1}, then up to {val[-1]:.3f} (overfitting); best validation "
            f"accuracy {est.best_validation_score_:.1%} at epoch {best} (weights restored)")


# --------------------------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------------------------

def _have_matplotlib():
    try:
        import matplotlib
    except ImportError:
        return False
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")  # figures are only written to files here
    return True


def run(lessons=("single_neuron", "cost_at_scale", "gd_regimes", "optimizers", "lr_find",
                 "training"), out_dir=None, quick=False, stream=None):
    """Run the ``lessons`` (names as in ``LESSONS``), print what each shows and, if ``out_dir``
    is given and matplotlib is installed, write its figure there. Returns the written paths."""
    stream = sys.stdout if stream is None else stream
    figures = out_dir is not None and _have_matplotlib()
    if out_dir is not None and not figures:
        print("(matplotlib is not installed: no figures; pip install 'fastnn[plot]')",
              file=stream)
    written = []

    def save(fig_fn, name):
        if figures:
            path = save_figure(fig_fn(), out_dir, name)
            written.append(path)
            print(f"  -> {path}", file=stream)

    data = None
    if set(lessons) - {"single_neuron"}:
        data = _digits(0)
    for name in lessons:
        t0 = time.perf_counter()
        if name == "single_neuron":
            epochs = 300  # instant: the same in quick mode
            r = single_neuron_lesson(lr=0.15, epochs=epochs)
            print(f"Lesson 1. One sigmoid neuron (input 1.0, target 0.0, learning rate 0.15, "
                  f"{epochs} epochs), on fastnn_core's kernels:", file=stream)
            print(single_neuron_summary(r), file=stream)
            save(lambda: single_neuron_figure(r), "single_neuron.png")
        elif name == "cost_at_scale":
            r = cost_at_scale(epochs=4 if quick else 30, data=data)
            print("Lesson 2. Quadratic cost vs cross-entropy on load_digits (64-30-10, logistic "
                  "hidden units, plain SGD, rate 0.1, batches of 10):", file=stream)
            print(cost_at_scale_summary(r), file=stream)
            save(lambda: cost_at_scale_figure(r), "cost_at_scale.png")
        elif name == "gd_regimes":
            r = gd_regimes(epochs=3 if quick else 30, data=data)
            print("Lesson 3. Batch, per-sample and mini-batch gradient descent on load_digits "
                  "(64-64-10 relu, plain SGD):", file=stream)
            print(gd_regimes_summary(r), file=stream)
            save(lambda: gd_regimes_figure(r), "gd_regimes.png")
        elif name == "optimizers":
            r = optimizers(epochs=3 if quick else 30, data=data)
            print("Lesson 4. The optimizers on load_digits (64-64-10 relu, batches of 32):",
                  file=stream)
            print(optimizers_summary(r), file=stream)
            save(lambda: optimizers_figure(r), "optimizers.png")
        elif name == "lr_find":
            result, est, acc = lr_find_lesson(data=data, num=30 if quick else 100)
            print("Lesson 5. Learning-rate range test (SGD with momentum 0.9, batches of 32, "
                  "load_digits):", file=stream)
            print(f"  {result}", file=stream)
            print(f"  20 epochs at the suggested rate: test accuracy {acc:.1%}", file=stream)

            def fig():
                from .plot import plot_lr_find
                return plot_lr_find(result)
            save(fig, "lr_find.png")
        elif name == "training":
            est, X, y = moons_lesson(max_iter=20 if quick else 400)
            print("Lesson 6. Training curves and decision boundary (two moons, 150 noisy points, "
                  "2-100-100-1 tanh, adam, 30% validation):", file=stream)
            print(moons_summary(est), file=stream)

            def fig_curves():
                from .plot import plot_training
                return plot_training(est)

            def fig_boundary():
                from .plot import plot_decision_boundary
                return plot_decision_boundary(est, X, y)
            save(fig_curves, "training_curves.png")
            save(fig_boundary, "decision_boundary.png")
        else:
            raise ValueError(f"unknown lesson {name!r}; choose from {LESSONS}")
        print(f"  ({time.perf_counter() - t0:.1f} s)\n", file=stream)
    return written


LESSONS = ("single_neuron", "cost_at_scale", "gd_regimes", "optimizers", "lr_find", "training")


def add_arguments(parser, include_quick=True):
    """Add the lessons' options to an ``argparse`` parser (for ``python -m fastnn demo``):
    ``--figures DIR``, ``--no-figures``, ``--lessons NAME...`` and, unless the parser already
    has its own (``include_quick=False``), ``--quick``."""
    parser.add_argument("--figures", default="fastnn-figures", metavar="DIR",
                        help="directory for the lessons' PNG figures (default: ./fastnn-figures)")
    parser.add_argument("--no-figures", action="store_true",
                        help="print the lessons' numbers only, write no figures")
    if include_quick:
        parser.add_argument("--quick", action="store_true", help="a few epochs each (seconds)")
    parser.add_argument("--lessons", nargs="+", choices=LESSONS, default=list(LESSONS),
                        metavar="NAME",
                        help=f"which lessons to run, among {', '.join(LESSONS)} (default: all)")
    return parser


def run_args(args, stream=None):
    """Run the lessons as selected by the options of :func:`add_arguments`."""
    out_dir = None if args.no_figures else args.figures
    return run(args.lessons, out_dir=out_dir, quick=args.quick, stream=stream)


def main(argv=None):
    """``python -m fastnn demo``'s lessons: run them, print the numbers, write the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m fastnn._lessons",
        description="The lessons of fastnn: quadratic cost vs cross-entropy, gradient-descent "
                    "regimes, optimizers, learning-rate finder, training curves.")
    add_arguments(parser)
    run_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
