"""The learning-rate range test (Leslie Smith's "LR range test", fastai's ``lr_find``).

Starting from the network's initial weights, train on successive mini-batches with the
estimator's own optimizer while the learning rate grows geometrically from ``start`` to ``stop``;
record the (smoothed) loss at every step; stop once the loss explodes. The curve falls slowly at
tiny rates, steeply at good ones, and shoots up once the rate is too large. A good
``learning_rate_init`` sits well before the minimum: the suggestion is the rate at the minimum of
the smoothed loss divided by 10.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

import fastnn_core

from . import _network
from ._gradcheck import (
    _as_2d_float,
    _initialized_clone,
    _is_fitted,
    effective_sample_weight,
    fresh_parameters,
)

__all__ = ["LRFindResult", "lr_find"]

EXPLODE_FACTOR = 4.0


@dataclass
class LRFindResult:
    """What :func:`lr_find` measured.

    Attributes
    ----------
    rates : ndarray
        The learning rate of each step (geometric, from ``start``), up to where the test stopped.
    losses : ndarray
        The loss at each step, smoothed (bias-corrected exponential moving average).
    raw_losses : ndarray
        The mini-batch loss at each step, unsmoothed.
    suggested_lr : float
        The suggested ``learning_rate_init``: ``min_loss_lr / 10``.
    min_loss_lr : float
        The rate at which the smoothed loss is lowest.
    steepest_lr : float
        The rate at which the smoothed loss falls fastest (per log-rate), another common pick.
    stopped_early : bool
        True if the loss exploded (above 4x the best, or not finite) before ``stop``.
    solver : str
        The optimizer that was used (the estimator's ``solver``).
    """

    rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray = field(repr=False, default=None)
    suggested_lr: float = float("nan")
    min_loss_lr: float = float("nan")
    steepest_lr: float = float("nan")
    stopped_early: bool = False
    solver: str = ""

    def __iter__(self):
        """Unpack as ``rates, losses, suggested_lr = lr_find(...)``."""
        return iter((self.rates, self.losses, self.suggested_lr))

    def __str__(self):
        stop = "the loss exploded" if self.stopped_early else "reached the last rate"
        return (f"learning-rate range test ({self.solver}, {len(self.rates)} steps, {stop}): "
                f"lowest loss at {self.min_loss_lr:.3g}, steepest descent at "
                f"{self.steepest_lr:.3g}; suggested learning_rate_init = {self.suggested_lr:.3g}")


def _check_args(start, stop, num, smoothing):
    for name, value in (("start", start), ("stop", stop)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if start <= 0:
        raise ValueError(f"start must be positive (the rates grow geometrically), got {start!r}")
    if stop <= start:
        raise ValueError(f"stop must be greater than start, got start={start!r}, stop={stop!r}")
    if not isinstance(num, numbers.Integral) or isinstance(num, bool) or num < 2:
        raise ValueError(f"num must be an integer >= 2, got {num!r}")
    if not isinstance(smoothing, numbers.Real) or not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")


def _batch_size(est, n):
    bs = getattr(est, "batch_size", "auto")
    if bs == "auto" or bs is None:
        return min(200, n)
    if bs == "full":
        return n
    return max(1, min(int(bs), n))


def _starting_parameters(est, X, y):
    """``(model, coefs, intercepts)``: float64 copies of the weights ``fit`` starts from, and a
    fitted model whose target encoder and output activation describe the network."""
    model = est if _is_fitted(est) else _initialized_clone(est, X, y)
    coefs, intercepts = fresh_parameters(est, model)
    return model, coefs, intercepts


def _optimizer(est, params):
    from ._optimizers import make_optimizer

    solver = getattr(est, "solver", "adam")
    if solver == "lbfgs":
        raise ValueError("lr_find needs a stochastic solver (sgd, adam, adagrad, adadelta, "
                         "rmsprop): solver='lbfgs' has no learning rate")
    kwargs = dict(
        learning_rate_init=1.0,
        learning_rate="constant",
        momentum=getattr(est, "momentum", 0.9),
        nesterovs_momentum=getattr(est, "nesterovs_momentum", True),
        beta_1=getattr(est, "beta_1", 0.9),
        beta_2=getattr(est, "beta_2", 0.999),
        epsilon=getattr(est, "epsilon", 1e-8),
    )
    rho = getattr(est, "rho", None)
    if rho is not None:
        kwargs["rho"] = rho
    return solver, make_optimizer(solver, params, **kwargs)


def _steepest(rates, losses):
    if len(rates) < 3:
        return float(rates[int(np.argmin(losses))])
    slope = np.gradient(losses, np.log(rates))
    return float(rates[int(np.argmin(slope))])


def lr_find(estimator, X, y, start=1e-6, stop=1.0, num=100, smoothing=0.9, sample_weight=None):
    """Learning-rate range test: which ``learning_rate_init`` to use for ``estimator``.

    From the weights ``fit`` starts from, the estimator's optimizer (its ``solver``, momentum,
    betas...) trains on ``num`` successive mini-batches (its ``batch_size``, reshuffled every
    epoch with its ``random_state``) while the rate grows geometrically from ``start`` to
    ``stop``. The loss of each mini-batch (including the L2 term) is recorded and smoothed; the
    test stops early when the smoothed loss exceeds 4 times the lowest seen (or is not finite).
    Everything runs on float64 copies: the estimator's parameters are left exactly as they were.

    Parameters
    ----------
    estimator : fastnn.MLPClassifier
        Fitted or not; only its hyperparameters and architecture are used.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    start, stop : float, default 1e-6 and 1.0
        The first and last learning rate (``0 < start < stop``).
    num : int, default 100
        Number of steps (mini-batches), at least 2.
    smoothing : float in [0, 1), default 0.9
        Decay of the exponential moving average of the loss (0: no smoothing).
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    LRFindResult
        ``rates``, ``losses`` (smoothed), ``suggested_lr`` (the rate of lowest loss / 10) and
        more; unpacks as ``rates, losses, suggested_lr``. Plot it with
        :func:`fastnn.plot.plot_lr_find`.

    Raises
    ------
    ValueError
        ``start`` not positive, ``stop <= start``, ``num < 2``, ``X`` with the wrong number of
        features, or ``solver="lbfgs"``.
    """
    _check_args(start, stop, num, smoothing)
    from threadpoolctl import threadpool_limits

    # Many small steps: one thread (parallel loops on small batches only add synchronisation,
    # badly so on a busy machine). Load the kernels first: threadpool_limits only caps thread
    # pools already loaded.
    fastnn_core.get_kernels()
    with threadpool_limits(limits=1):
        return _lr_find(estimator, X, y, start, stop, num, smoothing, sample_weight)


def _lr_find(estimator, X, y, start, stop, num, smoothing, sample_weight):
    X = _as_2d_float(X, estimator)
    y = np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}")
    if getattr(estimator, "solver", None) == "lbfgs":
        _optimizer(estimator, [])  # raises
    model, coefs, intercepts = _starting_parameters(estimator, X, y)
    if coefs[0].shape[0] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, but the network expects "
                         f"{coefs[0].shape[0]} features as input")
    Y = np.asarray(model._encode_targets(y), dtype=np.float64)
    sw = effective_sample_weight(model, X, y, sample_weight)
    params = coefs + intercepts
    solver, opt = _optimizer(estimator, params)
    kernels = fastnn_core.get_kernels()  # the active backend, as loss_and_gradients uses
    flat_params = [p.reshape(-1) for p in params]
    l2s = [0.0] * len(params)  # the L2 term is already in loss_and_gradients' gradient

    rates = start * (stop / start) ** (np.arange(num) / (num - 1))
    bs = _batch_size(estimator, n)
    rng = np.random.RandomState(getattr(estimator, "random_state", None)
                                if isinstance(getattr(estimator, "random_state", None),
                                              (int, np.integer)) else 0)
    shuffle = bool(getattr(estimator, "shuffle", True))
    order = rng.permutation(n) if shuffle else np.arange(n)
    pos = 0
    activation, out_act = model.activation, model.out_activation_
    loss_name, alpha = getattr(model, "loss", "log_loss"), float(model.alpha)

    raw, smooth = [], []
    avg, best = 0.0, math.inf
    stopped = False
    for k, lr in enumerate(rates):
        if pos + bs > n:
            order = rng.permutation(n) if shuffle else np.arange(n)
            pos = 0
        idx = order[pos:pos + bs]
        pos += bs
        Xb = X[idx]
        value, cg, ig = _network.loss_and_gradients(
            coefs, intercepts, Xb, Y[idx], None if sw is None else sw[idx], activation, out_act,
            loss_name, alpha)
        if not math.isfinite(value):
            stopped = True
            break
        avg = smoothing * avg + (1.0 - smoothing) * value
        smoothed = avg / (1.0 - smoothing ** (k + 1))
        raw.append(value)
        smooth.append(smoothed)
        best = min(best, smoothed)
        if k > 0 and smoothed > EXPLODE_FACTOR * best:
            stopped = True
            break
        opt.learning_rate_init = float(lr)
        opt.learning_rate = float(lr)
        grads = [np.ascontiguousarray(g, dtype=np.float64).reshape(-1) for g in cg + ig]
        opt.step(kernels, flat_params, grads, l2s)
        if not all(np.all(np.isfinite(p)) for p in flat_params):
            stopped = True
            break
    m = len(smooth)
    rates = rates[:m]
    losses = np.asarray(smooth)
    if m == 0:
        return LRFindResult(rates=rates, losses=losses, raw_losses=np.asarray(raw),
                            stopped_early=True, solver=solver)
    i_min = int(np.argmin(losses))
    min_lr = float(rates[i_min])
    return LRFindResult(
        rates=rates, losses=losses, raw_losses=np.asarray(raw), suggested_lr=min_lr / 10.0,
        min_loss_lr=min_lr, steepest_lr=_steepest(rates[: i_min + 1], losses[: i_min + 1]),
        stopped_early=stopped, solver=solver,
    )
