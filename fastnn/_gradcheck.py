"""Gradient checking: the network's analytic gradient against two-sided finite differences.

For every parameter ``p`` (all weights and biases of all layers), the numerical derivative is
``(loss(p + eps) - loss(p - eps)) / (2 eps)``; the check reports the relative error
``||g - g_num|| / (||g|| + ||g_num||)`` overall and per layer. Everything runs in float64 on
copies of the parameters: the estimator is never modified.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _network

__all__ = ["GradCheckResult", "gradcheck"]

CORRECT = 1e-7
WRONG = 1e-2


def _reading(err):
    """The usual reading of a relative error between analytic and numerical gradients."""
    if not math.isfinite(err):
        return "wrong (the error is not finite)"
    if err < CORRECT:
        return "correct (below 1e-7)"
    if err < 1e-5:
        return "probably correct (between 1e-7 and 1e-5; kinks such as relu's at 0 can do this)"
    if err <= WRONG:
        return "suspicious (around 1e-4: check the gradient)"
    return "wrong (above 1e-2: the gradient has a bug)"


def _relative_error(g, g_num):
    g = np.ravel(g)
    g_num = np.ravel(g_num)
    denom = float(np.linalg.norm(g) + np.linalg.norm(g_num))
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(g - g_num)) / denom


@dataclass
class GradCheckResult:
    """What :func:`gradcheck` measured.

    Attributes
    ----------
    relative_error : float
        ``||g - g_num|| / (||g|| + ||g_num||)`` over all parameters.
    layer_errors : list of dict
        One entry per weight layer ``i``: ``{"layer": i, "coef": err, "intercept": err,
        "relative_error": err}`` (the last one over the layer's weights and biases together).
    verdict : str
        The usual reading: below 1e-7 correct; around 1e-4 suspicious; above 1e-2 wrong.
    n_params : int
        Number of parameters checked (two loss evaluations each).
    eps : float
        The finite-difference step.
    loss : float
        The loss at the checked parameters.
    """

    relative_error: float
    layer_errors: list = field(default_factory=list)
    verdict: str = ""
    n_params: int = 0
    eps: float = 0.0
    loss: float = float("nan")

    @property
    def ok(self):
        """True when the overall relative error is below 1e-7."""
        return self.relative_error < CORRECT

    def __str__(self):
        lines = [f"gradient check ({self.n_params} parameters, eps={self.eps:g}): relative error "
                 f"{self.relative_error:.3e} -> {self.verdict}"]
        for e in self.layer_errors:
            lines.append(f"  layer {e['layer']}: weights {e['coef']:.3e}, biases "
                         f"{e['intercept']:.3e}")
        return "\n".join(lines)


def check_gradients(coefs, intercepts, X, Y, sample_weight, activation, out_activation, loss,
                    alpha, eps=1e-6):
    """The finite-difference check on plain arrays (float64 copies are made here).

    ``loss_and_gradients`` is looked up on :mod:`fastnn._network` at call time, so a test can
    replace it to check that a corrupted gradient is caught."""
    import fastnn_core
    from threadpoolctl import threadpool_limits

    # Thousands of tiny loss evaluations: one thread is fastest (parallel loops on small arrays
    # only add synchronisation, badly so on a busy machine) and sums in a fixed order. Load the
    # kernels first: threadpool_limits only caps thread pools already loaded.
    fastnn_core.get_kernels()
    with threadpool_limits(limits=1):
        return _check_gradients(coefs, intercepts, X, Y, sample_weight, activation,
                                out_activation, loss, alpha, eps)


def _check_gradients(coefs, intercepts, X, Y, sample_weight, activation, out_activation, loss,
                     alpha, eps):
    coefs = [np.array(w, dtype=np.float64, order="C") for w in coefs]
    intercepts = [np.array(b, dtype=np.float64, order="C") for b in intercepts]
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    fn = _network.loss_and_gradients

    def f():
        return fn(coefs, intercepts, X, Y, sample_weight, activation, out_activation, loss,
                  alpha)[0]

    value, coef_grads, intercept_grads = fn(coefs, intercepts, X, Y, sample_weight, activation,
                                            out_activation, loss, alpha)
    analytic = []
    numeric = []
    for params, grads in ((coefs, coef_grads), (intercepts, intercept_grads)):
        a_list, n_list = [], []
        for p, g in zip(params, grads):
            flat = p.reshape(-1)  # a view: perturbing it perturbs the network
            g_num = np.empty(flat.size)
            for j in range(flat.size):
                old = flat[j]
                flat[j] = old + eps
                plus = f()
                flat[j] = old - eps
                minus = f()
                flat[j] = old
                g_num[j] = (plus - minus) / (2.0 * eps)
            a_list.append(np.asarray(g, dtype=np.float64).reshape(-1))
            n_list.append(g_num)
        analytic.append(a_list)
        numeric.append(n_list)
    (ca, ia), (cn, inum) = analytic, numeric
    layer_errors = []
    for i in range(len(coefs)):
        layer_errors.append({
            "layer": i,
            "coef": _relative_error(ca[i], cn[i]),
            "intercept": _relative_error(ia[i], inum[i]),
            "relative_error": _relative_error(np.concatenate([ca[i], ia[i]]),
                                              np.concatenate([cn[i], inum[i]])),
        })
    g_all = np.concatenate(ca + ia)
    n_all = np.concatenate(cn + inum)
    err = _relative_error(g_all, n_all)
    if not np.all(np.isfinite(g_all)) or not np.all(np.isfinite(n_all)):
        err = float("inf")
    return GradCheckResult(relative_error=err, layer_errors=layer_errors, verdict=_reading(err),
                           n_params=int(g_all.size), eps=float(eps), loss=float(value))


def _check_eps(eps):
    if not isinstance(eps, (int, float, np.floating, np.integer)) or not math.isfinite(eps) \
            or eps <= 0:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _as_2d_float(X, est):
    import scipy.sparse as sp

    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
    else:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinity")
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 samples)")
    n_features = getattr(est, "n_features_in_", None)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {n_features} "
            "features as input"
        )
    return X


def _is_fitted(est):
    return hasattr(est, "coefs_") and hasattr(est, "intercepts_")


def _float64(arrays):
    return [np.array(a, dtype=np.float64, order="C") for a in arrays]


def initial_parameters(est, X, y):
    """``(model, coefs, intercepts)``: a fitted model describing the network (``est`` itself if
    it is fitted, else a fitted copy, for the target encoder and output activation) and float64
    copies of the parameters to check: the fitted ones, or for an unfitted ``est`` the ones
    ``fit`` starts from. ``est`` itself is never modified."""
    if _is_fitted(est):
        return est, _float64(est.coefs_), _float64(est.intercepts_)
    model = _initialized_clone(est, X, y)
    coefs, intercepts = fresh_parameters(est, model)
    return model, coefs, intercepts


def fresh_parameters(est, model):
    """float64 ``(coefs, intercepts)`` drawn as ``fit`` draws them (``est.init`` from
    ``est.random_state``: the same numbers as fit's for an integer seed), with the layer sizes
    of the fitted ``model``. A ``RandomState`` instance is copied, never advanced."""
    import copy

    from sklearn.utils import check_random_state

    from ._init import init_params

    units = [model.coefs_[0].shape[0]] + [w.shape[1] for w in model.coefs_]
    seed = getattr(est, "random_state", None)
    rs = copy.deepcopy(seed) if isinstance(seed, np.random.RandomState) else seed
    return init_params(getattr(est, "init", "glorot"), units, est.activation,
                       check_random_state(rs), np.float64)


def _initialized_clone(est, X, y):
    """A fitted clone of ``est`` (one epoch or iteration; warnings silenced): it carries the
    fitted attributes (classes, target encoder, output activation) that the checks need."""
    from sklearn.base import clone

    model = clone(est)
    params = model.get_params()
    overrides = {"max_iter": 1, "verbose": False}
    if params.get("early_stopping"):
        overrides["early_stopping"] = False
    if params.get("warm_start"):
        overrides["warm_start"] = False
    if params.get("solver") == "lbfgs":
        overrides["max_fun"] = 1
    model.set_params(**overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model


def effective_sample_weight(model, X, y, sample_weight):
    """The per-row weights of the loss ``fit`` minimises: ``sample_weight * class_weight[y]``
    (the estimator's own rule when it has one), float64, or None."""
    hook = getattr(model, "_effective_sample_weight", None)
    if hook is not None and getattr(model, "class_weight", None) is not None:
        sw = hook(y, None if sample_weight is None else np.asarray(sample_weight, np.float64),
                  X, False)
        return None if sw is None else np.asarray(sw, dtype=np.float64)
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.shape != (X.shape[0],):
        raise ValueError(f"sample_weight has shape {sw.shape}, expected ({X.shape[0]},)")
    if not np.all(np.isfinite(sw)) or np.any(sw < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    return sw


def gradcheck(estimator, X, y, eps=1e-6, sample_weight=None):
    """Check the network's analytic gradient against two-sided finite differences.

    The full training loss of ``estimator`` (data term and L2 penalty, every layer's weights and
    biases) is differentiated numerically, ``(L(p + eps) - L(p - eps)) / (2 eps)`` for each
    parameter ``p``, and compared with the backpropagated gradient, all in float64 on copies of
    the parameters (``estimator`` is not modified).

    Parameters
    ----------
    estimator : fastnn.MLPClassifier
        Fitted: its current parameters are checked. Unfitted: a copy is initialised the way
        ``fit`` would and checked.
    X : array-like of shape (n_samples, n_features)
        Keep it small: the check costs two loss evaluations per parameter.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    eps : float, default 1e-6
        The finite-difference step (positive).
    sample_weight : array-like of shape (n_samples,), optional
        Row weights of the loss (multiplied by the estimator's ``class_weight``, as in ``fit``).

    Returns
    -------
    GradCheckResult
        ``relative_error`` (``||g - g_num|| / (||g|| + ||g_num||)``), ``layer_errors``,
        ``verdict``: below 1e-7 the gradient is correct; around 1e-4 suspicious; above 1e-2
        wrong. ``print(result)`` shows it all.

    Raises
    ------
    ValueError
        ``eps`` not positive, or ``X`` with the wrong number of features for a fitted estimator.
    """
    eps = _check_eps(eps)
    X = _as_2d_float(X, estimator)
    y = np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
    model, coefs, intercepts = initial_parameters(estimator, X, y)
    if coefs[0].shape[0] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, but the network expects "
                         f"{coefs[0].shape[0]} features as input")
    Y = np.asarray(model._encode_targets(y), dtype=np.float64)
    sw = effective_sample_weight(model, X, y, sample_weight)
    return check_gradients(coefs, intercepts, X, Y, sw, model.activation, model.out_activation_,
                           getattr(model, "loss", "log_loss"), float(model.alpha), eps)
