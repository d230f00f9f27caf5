"""fastnn.MLPClassifier: a drop-in replacement for scikit-learn's MLPClassifier on native kernels.

The training loop here is plain Python over the fastnn_core kernels (see ``_network.py`` and
``_optimizers.py``); :meth:`MLPClassifier._fit_epoch_python` is the reference epoch a native
loop is checked against, step for step.
"""

import contextlib
import math
import numbers
import warnings

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import fastnn_core

from ._init import INITS, init_params
from ._native_loop import NativeEpoch, native_available
from ._network import Network, l2_sum, log_output_activation, output_activation
from ._optimizers import SOLVERS as _STOCHASTIC_SOLVERS
from ._optimizers import make_optimizer
from ._progress import Progress

_ACTIVATIONS = {"identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu"}
_BACKENDS = {"cython", "numba", "numpy"}
_PARAM_NAMES = {}  # estimator class -> its parameter names (``_get_param_names``)


class DivergenceWarning(ConvergenceWarning):
    """Training diverged (the loss or the parameters became NaN or infinite) and was stopped;
    the estimator keeps the last finite parameters."""


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained on fastnn's
    native kernels.

    Every parameter of :class:`sklearn.neural_network.MLPClassifier` is accepted with the same
    name, meaning and default, and the fitted attributes and methods are the same, so it is a
    drop-in replacement. The parameters after ``max_fun`` are fastnn's additions.

    The four classic training regimes, one call each::

        MLPClassifier(solver="sgd", batch_size="full")   # batch gradient descent
        MLPClassifier(solver="sgd", batch_size=1)        # per-sample (stochastic) GD
        MLPClassifier(solver="sgd", batch_size=32)       # mini-batch SGD
        MLPClassifier(solver="adam")                     # Adam (the default)

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'softplus', 'elu'}, \
            default='relu'
        Activation of the hidden layers (the last three are fastnn additions).
    solver : {'lbfgs', 'sgd', 'adam', 'adagrad', 'adadelta', 'rmsprop'}, default='adam'
        'lbfgs' runs ``scipy.optimize`` L-BFGS-B on the full-batch loss and gradient. The others
        are stochastic; 'adagrad', 'adadelta' and 'rmsprop' are fastnn additions and use
        ``learning_rate_init`` as their (constant) rate; AdaDelta is Zeiler's method scaled by
        that rate, so use ``learning_rate_init=1.0`` for the original.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / S`` (``S``: total sample weight).
    batch_size : int, 'auto' or 'full', default='auto'
        Rows per update of the stochastic solvers. 'auto' is ``min(200, n_samples)``; 'full' is
        the whole training set (batch gradient descent); 1 is per-sample SGD.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Rate schedule of solver='sgd', as in scikit-learn.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs of the stochastic solvers, iterations of lbfgs.
    shuffle : bool, default=True
        Shuffle the samples every epoch (stochastic solvers). Not done when one batch holds
        every sample (``batch_size="full"`` or larger than the data): the gradient of the whole
        set does not depend on the order of its rows, and gathering them in a new order would
        copy ``X`` every epoch for nothing but a different rounding of the sums.
    random_state : int, RandomState instance or None, default=None
        Initial weights, the early-stopping split, and the shuffles.
    tol : float, default=1e-4
    verbose : bool or int, default=False
        Show a progress bar (tqdm, if installed; otherwise one printed line per epoch) with the
        epoch, the training loss and, with early stopping, the validation score and loss.
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its accuracy stops improving and
        restore the best weights. fastnn also records the validation loss per epoch in
        ``validation_loss_curve_``.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters; ``epsilon`` is also the stabiliser of adagrad, adadelta and rmsprop.
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Maximum number of loss evaluations of lbfgs.
    loss : {'log_loss', 'squared_error'}, default='log_loss'
        'log_loss' is cross-entropy (softmax outputs for multiclass, sigmoid outputs for binary
        and multilabel targets), as scikit-learn. 'squared_error' is the quadratic cost
        ``0.5 * sum_j (a_j - y_j)^2`` on those same outputs: it learns slowly when an output
        saturates (its gradient carries the factor ``sigma'(z)``), it exists for comparison.
    init : {'glorot', 'he', 'normal', 'zeros'}, default='glorot'
        Weight initialisation; 'glorot' is scikit-learn's (uniform, factor 2 for logistic).
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, folded into the per-sample weights:
        ``effective weight = sample_weight * class_weight[y]``. Not for multilabel targets;
        'balanced' is not available in ``partial_fit``.
    rho : float in [0, 1) or None, default=None
        Decay of the running averages of rmsprop (None: 0.9) and adadelta (None: 0.95).
    backend : {'cython', 'numba', 'numpy'} or None, default=None
        The fastnn_core backend to run on; None is the active one (``fastnn_core.get_backend()``).
    loop : {'native', 'python'}, default='native'
        Training loop of the stochastic solvers. 'native' runs each epoch as one call into
        compiled code without the GIL (``fastnn/_native_loop.py``; the ``train_epoch`` kernel of
        the cython and numba backends); 'python' is the readable reference loop
        (:meth:`_fit_epoch_python`). Both give the same parameters to rounding. Sparse ``X`` and
        the 'numpy' backend always use the Python loop.

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_
        As in scikit-learn. ``coefs_`` and ``intercepts_`` have the dtype of the training data
        (float32 or float64).
    validation_loss_curve_ : list of float or None
        With ``early_stopping``: the loss on the validation set after each epoch (same
        definition as ``loss_curve_``, weighted by the validation sample weights).
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(_ACTIVATIONS)],
        "solver": [StrOptions({"lbfgs", *_STOCHASTIC_SOLVERS})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto", "full"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Options(numbers.Real, {np.inf}),
        ],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "loss": [StrOptions({"log_loss", "squared_error"})],
        "init": [StrOptions(set(INITS))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "rho": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "backend": [StrOptions(_BACKENDS), None],
        "loop": [StrOptions({"native", "python"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        loss="log_loss",
        init="glorot",
        class_weight=None,
        rho=None,
        backend=None,
        loop="native",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.init = init
        self.class_weight = class_weight
        self.rho = rho
        self.backend = backend
        self.loop = loop

    # ------------------------------------------------------------------ scikit-learn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    def _validate_params(self):
        # ``get_params(deep=False)`` without re-inspecting ``__init__``'s signature every call
        # (the parameter names of a class do not change).
        cls = type(self)
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = cls._get_param_names()
        validate_parameter_constraints(
            self._parameter_constraints, {k: getattr(self, k) for k in names},
            caller_name=cls.__name__,
        )

    def _kernels(self):
        """The backend module the kernels run on (validated once, then called directly)."""
        return fastnn_core.get_kernels(self.backend)

    # ------------------------------------------------------------------ targets and weights
    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        first = (not hasattr(self, "classes_")) or (not self.warm_start and not incremental)
        idx = None if first else self._fast_class_indices(y, check_all_present=self.warm_start)
        if idx is None:
            check_classification_targets(y)
        else:
            # y is 1-D integer labels, all in classes_: check_classification_targets would find
            # it 'binary' or 'multiclass' and only warn about too many distinct labels.
            n = y.shape[0]
            if n > 20 and self.classes_.shape[0] > round(0.5 * n):
                n_unique = np.count_nonzero(np.bincount(idx, minlength=self.classes_.shape[0]))
                if n_unique > 2 and n_unique > round(0.5 * n):
                    warnings.warn(
                        "The number of unique classes is greater than 50% of the number "
                        "of samples. `y` could represent a regression problem, not a "
                        "classification problem.",
                        UserWarning,
                        stacklevel=2,
                    )
        if first:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if len(self.classes_) < 2 and self._label_binarizer.y_type_ != "multilabel-indicator":
                raise ValueError(
                    "The number of classes has to be greater than one; got "
                    f"{len(self.classes_)} class"
                )
        elif idx is not None:
            pass  # every label of y is in classes_ (and, with warm_start, every class is in y)
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        if sp.issparse(X):
            X = X.tocsr()
        else:
            X = np.ascontiguousarray(X)
        return X, y

    def _encode_targets(self, y):
        """Encode labels ``y`` as the output layer's target matrix ``Y`` (n_samples, n_outputs_):
        one-hot rows for multiclass (softmax), a 0/1 column for binary, the indicator matrix for
        multilabel (logistic), in the dtype of ``coefs_``. This is the ``Y`` that
        :func:`fastnn._network.loss_and_gradients` takes."""
        check_is_fitted(self)
        return self._label_binarizer.transform(y).astype(self.coefs_[0].dtype)

    def _effective_sample_weight(self, y, sample_weight, X, incremental):
        """``sample_weight * class_weight[y]`` in X's dtype, or None if neither is given."""
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. Pass the "
                "weights as a dict, e.g. computed with "
                "sklearn.utils.class_weight.compute_class_weight on the full data."
            )
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        cw_y = cw[np.searchsorted(self.classes_, y)].astype(X.dtype)
        return cw_y if sample_weight is None else sample_weight * cw_y

    def _fast_class_indices(self, y, check_all_present=False):
        """Column of each label of ``y`` in ``classes_`` (intp), or None when the fast path does
        not apply and ``LabelBinarizer.transform`` must be used.

        The fast path: 1-D ``y`` of the same numeric dtype as ``classes_``, a binary or multiclass
        binarizer with the default 0/1 dense output, and every label of ``y`` in ``classes_``
        (with ``check_all_present``, also every class in ``y``). There
        ``LabelBinarizer.transform(y)`` is the one-hot matrix of these indices (its last column
        for binary), which is what :meth:`_training_targets` builds from them, without the
        target-type checks that already ran on ``y`` in :meth:`_validate_input`."""
        lb = getattr(self, "_label_binarizer", None)
        classes = getattr(self, "classes_", None)
        if (lb is None or classes is None or lb.y_type_ not in ("binary", "multiclass")
                or lb.sparse_output or lb.neg_label != 0 or lb.pos_label != 1
                or not isinstance(y, np.ndarray) or y.ndim != 1
                or not isinstance(classes, np.ndarray) or classes.ndim != 1
                or y.dtype != classes.dtype or y.dtype.kind not in "iub"
                or not np.array_equal(classes, lb.classes_)):
            return None
        K = classes.shape[0]
        if K < 2 or y.shape[0] == 0 or np.any(classes[1:] <= classes[:-1]):
            return None
        idx = np.searchsorted(classes, y)
        np.minimum(idx, K - 1, out=idx)
        if not np.array_equal(classes[idx], y):
            return None
        if check_all_present and np.count_nonzero(np.bincount(idx, minlength=K)) != K:
            return None
        return idx.astype(np.intp, copy=False)

    def _binarized(self, y):
        """``(Y, class indices or None)``: ``LabelBinarizer.transform(y)`` (dense), computed once
        per fit call, from the class indices when :meth:`_fast_class_indices` applies."""
        idx = self._fast_class_indices(y)
        if idx is None:
            Y = self._label_binarizer.transform(y)
            if sp.issparse(Y):
                Y = Y.toarray()
            return Y, None
        K = self.classes_.shape[0]
        Y = np.zeros((idx.shape[0], K), dtype=np.int64)
        Y[np.arange(idx.shape[0]), idx] = 1
        if self._label_binarizer.y_type_ == "binary":
            Y = Y[:, -1:]
        return Y, idx

    def _training_targets(self, y, dtype, binarized=None):
        """What the loss kernels take: class indices (softmax + log_loss) or a float matrix.
        ``binarized``: the ``(Y, idx)`` of :meth:`_binarized` when already computed."""
        Y, idx = self._binarized(y) if binarized is None else binarized
        if self.out_activation_ == "softmax" and self.loss == "log_loss":
            if idx is not None:
                return Y, np.ascontiguousarray(idx, dtype=np.intp)
            return Y, np.ascontiguousarray(np.argmax(Y, axis=1), dtype=np.intp)
        return Y, np.ascontiguousarray(Y, dtype=dtype)

    # ------------------------------------------------------------------ fitting
    def _initialize(self, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = (
            "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"
        )
        self.coefs_, self.intercepts_ = init_params(
            self.init, layer_units, self.activation, self._random_state, dtype
        )
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        kernels = self._kernels()

        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        dtype = X.dtype if first_pass else self.coefs_[0].dtype
        if X.dtype != dtype:
            X = X.astype(dtype)
        sw = self._effective_sample_weight(y, sample_weight, X, incremental)
        if sw is not None:
            sw = np.ascontiguousarray(sw, dtype=dtype)

        binarized = self._binarized(y)
        n_outputs = binarized[0].shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [n_outputs]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, dtype)
        self.n_outputs_ = n_outputs

        if self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sw, layer_units, kernels, binarized)
        else:
            self._fit_stochastic(X, y, sw, layer_units, incremental, kernels, binarized)
        return self

    def _check_divergence(self, value, params):
        return math.isfinite(value) and all(np.isfinite(p).all() for p in params)

    def _warn_divergence(self, where):
        warnings.warn(
            f"Training diverged {where}: the loss became NaN or infinite. Training stopped and "
            "the last finite parameters were kept. Lower learning_rate_init (or scale the "
            "input features).",
            DivergenceWarning,
            stacklevel=3,
        )

    def _fit_lbfgs(self, X, y, sw, layer_units, kernels, binarized=None):
        dtype = self.coefs_[0].dtype
        _, target = self._training_targets(y, dtype, binarized)
        n = X.shape[0]
        S = float(n) if sw is None else float(sw.sum(dtype=np.float64))
        if S <= 0:
            raise ValueError("The sum of the sample weights is zero: there is nothing to fit.")
        net = Network(layer_units, n, dtype, self.activation, self.out_activation_, self.loss,
                      kernels)
        shapes = [c.shape for c in self.coefs_] + [b.shape for b in self.intercepts_]
        sizes = [int(np.prod(s)) for s in shapes]
        bounds = np.cumsum([0] + sizes)
        params = self.coefs_ + self.intercepts_
        n_coefs = len(self.coefs_)
        alpha = self.alpha
        grad = np.empty(bounds[-1], dtype=np.float64)
        last_finite = {"x": np.hstack([p.ravel() for p in params]).astype(np.float64), "f": None}

        def unpack(x):
            for p, a, b in zip(params, bounds[:-1], bounds[1:]):
                p.reshape(-1)[...] = x[a:b]

        def fun(x):
            unpack(x)
            value = net.backprop(self.coefs_, self.intercepts_, X, target, sw, S)
            value += 0.5 * alpha * l2_sum(self.coefs_) / S
            grads = net.coef_grads + net.intercept_grads
            for i, (g, a, b) in enumerate(zip(grads, bounds[:-1], bounds[1:])):
                grad[a:b] = g.reshape(-1)
                if i < n_coefs and alpha:
                    grad[a:b] += (alpha / S) * params[i].reshape(-1)
            if math.isfinite(value) and np.isfinite(grad).all():
                if last_finite["f"] is None or value <= last_finite["f"]:
                    last_finite["x"] = x.copy()
                    last_finite["f"] = value
            return value, grad.copy()

        x0 = last_finite["x"].copy()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            opt_res = scipy.optimize.minimize(
                fun, x0, method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        x = opt_res.x
        self.loss_ = float(opt_res.fun)
        unpack(x)
        if not self._check_divergence(self.loss_, params):
            unpack(last_finite["x"])
            self.loss_ = last_finite["f"] if last_finite["f"] is not None else np.nan
            self._warn_divergence("in lbfgs")
        if self.verbose:
            print("lbfgs: %d iterations, loss = %.8f" % (self.n_iter_, self.loss_))

    def _make_optimizer(self, params):
        return make_optimizer(
            self.solver, params,
            learning_rate_init=self.learning_rate_init, learning_rate=self.learning_rate,
            momentum=self.momentum, nesterovs_momentum=self.nesterovs_momentum,
            power_t=self.power_t, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
            rho=self.rho,
        )

    def _fit_stochastic(self, X, y, sw, layer_units, incremental, kernels, binarized=None):
        dtype = self.coefs_[0].dtype
        params = self.coefs_ + self.intercepts_
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(params)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        Y, target = self._training_targets(y, dtype, binarized)

        early_stopping = self.early_stopping
        n_all = X.shape[0]
        if early_stopping:
            stratify = Y.astype(bool) if self.n_outputs_ == 1 else None
            train_idx, val_idx = train_test_split(
                np.arange(n_all), random_state=self._random_state,
                test_size=self.validation_fraction, stratify=stratify,
            )
            if val_idx.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            X_train, X_val = X[train_idx], X[val_idx]
            target_train, target_val = target[train_idx], target[val_idx]
            sw_train = None if sw is None else sw[train_idx]
            sw_val = None if sw is None else sw[val_idx]
            y_val = y[val_idx]
            val = (X_val, y_val, target_val, sw_val)
        else:
            X_train, target_train, sw_train, val = X, target, sw, None

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        elif self.batch_size == "full":
            batch_size = n_samples
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        S_total = float(n_samples) if sw_train is None else float(sw_train.sum(dtype=np.float64))
        if S_total <= 0:
            raise ValueError("The sum of the sample weights is zero: there is nothing to fit.")

        shuffle = self.shuffle and batch_size < n_samples
        net = Network(layer_units, batch_size, dtype, self.activation, self.out_activation_,
                      self.loss, kernels)
        ctx = _EpochContext(self, net, kernels, X_train, target_train, sw_train, batch_size,
                            S_total)
        native = (NativeEpoch(self, ctx)
                  if self.loop == "native" and native_available(kernels, X_train) else None)
        sample_idx = np.arange(n_samples)
        progress = Progress(self.verbose, None if incremental else self.max_iter)
        # Parameters at the start of the previous and of the current epoch: where a diverged
        # fit falls back to (the loss of a batch is computed before its update, so the
        # parameters in hand when a non-finite loss shows up may be the bad ones).
        cur = [p.copy() for p in params]
        prev = [p.copy() for p in params]
        diverged = False
        # Overflow shows up as a non-finite loss, handled below with one clear warning.
        errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        errstate.__enter__()
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if shuffle:
                    # One permutation per epoch, drawn exactly as sklearn.utils.shuffle does.
                    perm = np.arange(n_samples)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                prev, cur = cur, prev
                for c, p in zip(cur, params):
                    np.copyto(c, p)
                order = sample_idx if shuffle else None
                if native is not None:
                    loss = native.run(order)
                else:
                    loss = self._fit_epoch_python(ctx, order)
                if not self._check_divergence(loss, params):
                    diverged = True
                    progress.close()
                    self._restore_finite(params, [cur, prev], X_train, kernels)
                    self._warn_divergence(f"at epoch {self.n_iter_ + 1}")
                    break
                self.n_iter_ += 1
                self.loss_ = loss
                self.t_ += n_samples
                self.loss_curve_.append(loss)
                val_score = val_loss = None
                if early_stopping:
                    with native.quiet_blas() if native is not None else contextlib.nullcontext():
                        val_score, val_loss = self._validation(net, val)
                progress.update(self.n_iter_, loss, val_score, val_loss)
                self._update_no_improvement_count(early_stopping, val_score, val_loss)
                self._optimizer.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than "
                            "tol=%f for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f"
                            " for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    log = progress.message if self.verbose else None
                    if self._optimizer.trigger_stopping(msg, log):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    progress.close()
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            errstate.__exit__(None, None, None)
            progress.close()
        if not diverged and not incremental and not self._finite_logits(X_train, kernels):
            # the very last update overflowed the network (parameters huge but finite)
            self._restore_finite(params, [cur, prev], X_train, kernels)
            self._warn_divergence(f"at epoch {self.n_iter_}")

        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _finite_logits(self, X, kernels):
        with np.errstate(all="ignore"):
            return bool(np.isfinite(self._logits(X, kernels)).all())

    def _restore_finite(self, params, candidates, X, kernels):
        """Put back the first candidate parameter set whose outputs on ``X`` are finite."""
        for cand in candidates:
            for c, p in zip(cand, params):
                np.copyto(p, c)
            if self._finite_logits(X, kernels):
                return

    def _fit_epoch_python(self, ctx, sample_idx):
        """One epoch of the reference training loop; returns the epoch loss ``loss_``.

        ``sample_idx`` is this epoch's order of the training rows (None: in order, unshuffled).
        For each batch of ``ctx.batch_size`` rows: gather the rows, forward + fused loss
        gradient + backward (``Network.backprop``), then the fused optimizer update of every
        parameter with ``l2 = alpha / S`` on weights and 0 on biases (``S``: the batch's total
        sample weight). The epoch loss is ``sum_b batch_loss_b * S_b / S_total``.
        """
        net, opt, kernels = ctx.net, self._optimizer, ctx.kernels
        coefs, intercepts = self.coefs_, self.intercepts_
        X, target, sw = ctx.X, ctx.target, ctx.sw
        n, bs = ctx.n_samples, ctx.batch_size
        half_alpha, alpha = 0.5 * self.alpha, self.alpha
        zeros = ctx.zero_l2
        accumulated = 0.0
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            m = stop - start
            if sample_idx is None:
                Xb = X[start:stop]
                tb = target[start:stop]
                swb = None if sw is None else sw[start:stop]
            else:
                idx = sample_idx[start:stop]
                if ctx.sparse:
                    Xb = X[idx]
                else:
                    Xb = np.take(X, idx, axis=0, out=ctx.X_buf[:m], mode="clip")
                tb = np.take(target, idx, axis=0, out=ctx.target_buf[:m], mode="clip")
                swb = None if sw is None else np.take(sw, idx, out=ctx.sw_buf[:m], mode="clip")
            S = float(m) if swb is None else float(swb.sum(dtype=np.float64))
            if S <= 0.0:  # a batch of zero-weight rows carries no gradient
                continue
            data_loss = net.backprop(coefs, intercepts, Xb, tb, swb, S)
            reg = half_alpha * l2_sum(coefs) if alpha else 0.0
            accumulated += data_loss * S + reg
            l2 = alpha / S
            opt.step(kernels, ctx.flat_params, ctx.flat_grads, [l2] * ctx.n_coefs + zeros)
        return accumulated / ctx.S_total

    def _validation(self, net, val):
        """Accuracy and loss on the early-stopping validation set."""
        X_val, y_val, target_val, sw_val = val
        kernels = net.kernels
        S = float(X_val.shape[0]) if sw_val is None else float(sw_val.sum(dtype=np.float64))
        z = self._logits(X_val, kernels)
        with np.errstate(all="ignore"):
            total = net.output_loss(z, target_val, sw_val, 1.0, None)
        val_loss = (total + 0.5 * self.alpha * l2_sum(self.coefs_)) / S if S > 0 else np.nan
        proba = output_activation(z, self.out_activation_, kernels)
        if not np.isfinite(proba).all():
            return np.nan, val_loss
        if self.n_outputs_ == 1:
            proba = proba.ravel()
        y_pred = self._label_binarizer.inverse_transform(proba)
        return accuracy_score(y_val, y_pred, sample_weight=sw_val), val_loss

    def _update_no_improvement_count(self, early_stopping, val_score, val_loss):
        if early_stopping:
            self.validation_scores_.append(val_score)
            self.validation_loss_curve_.append(val_loss)
            if val_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 data trains in float32, anything else in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label-indicator matrix for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights (multiplied by ``class_weight`` of each label).

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        ``classes`` is required on the first call and may be passed again (identical) on later
        calls. Labels of ``y`` must be among ``classes``.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                if len(self.classes_) < 2:
                    del self.classes_
                    raise ValueError(
                        "The number of classes has to be greater than one; got 1 class"
                    )
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    # ------------------------------------------------------------------ prediction
    def _validate_X_predict(self, X):
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        dtype = self.coefs_[0].dtype
        if X.dtype != dtype:
            X = X.astype(dtype)
        if sp.issparse(X):
            return X.tocsr()
        return np.ascontiguousarray(X)

    def _logits(self, X, kernels):
        """Output logits of validated ``X`` (a fresh array)."""
        units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        net = Network(units, X.shape[0], self.coefs_[0].dtype, self.activation,
                      self.out_activation_, "log_loss", kernels)
        return net.logits(self.coefs_, self.intercepts_, X)

    def _forward_proba(self, X):
        check_is_fitted(self)
        X = self._validate_X_predict(X)
        kernels = self._kernels()
        return output_activation(self._logits(X, kernels), self.out_activation_, kernels)

    def predict(self, X):
        """Predict class labels (or the label-indicator matrix for multilabel targets)."""
        y_pred = self._forward_proba(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict_proba(self, X):
        """Probability estimates, shape (n_samples, n_classes), in the order of ``classes_``.

        For binary targets the columns are ``sigmoid(-z)`` and ``sigmoid(z)`` of the output
        logit ``z`` (scikit-learn computes ``1 - sigmoid(z)``, which rounds to 0 once
        ``sigmoid(z)`` rounds to 1). Probabilities that underflow are returned as the smallest
        positive normal number of the dtype instead of 0, so ``log(predict_proba(X))`` is finite.
        """
        check_is_fitted(self)
        X = self._validate_X_predict(X)
        kernels = self._kernels()
        z = self._logits(X, kernels)
        if self.n_outputs_ == 1:
            z = np.hstack([-z, z])
        proba = output_activation(z, self.out_activation_, kernels)
        # Never exactly 0 (an underflowed exp): log(predict_proba) stays finite, as
        # predict_log_proba is.
        return np.maximum(proba, np.finfo(proba.dtype).tiny, out=proba)

    def predict_log_proba(self, X):
        """Log of the probability estimates, computed stably from the logits (log-softmax or
        log-sigmoid): finite where ``log(predict_proba(X))`` would give ``-inf``."""
        check_is_fitted(self)
        X = self._validate_X_predict(X)
        kernels = self._kernels()
        z = self._logits(X, kernels)
        if self.n_outputs_ == 1:
            both = np.hstack([-z, z])
            return log_output_activation(both, "logistic", kernels)
        return log_output_activation(z, self.out_activation_, kernels)


class _EpochContext:
    """What one training epoch needs besides the parameters and the optimizer state: the
    training data, preallocated batch buffers, and flat views of parameters and gradients."""

    def __init__(self, est, net, kernels, X, target, sw, batch_size, S_total):
        self.net = net
        self.kernels = kernels
        self.X = X
        self.target = target
        self.sw = sw
        self.n_samples = X.shape[0]
        self.batch_size = batch_size
        self.S_total = S_total
        self.sparse = sp.issparse(X)
        dtype = est.coefs_[0].dtype
        self.X_buf = None if self.sparse else np.empty((batch_size, X.shape[1]), dtype=dtype)
        self.target_buf = np.empty((batch_size,) + target.shape[1:], dtype=target.dtype)
        self.sw_buf = None if sw is None else np.empty(batch_size, dtype=dtype)
        params = est.coefs_ + est.intercepts_
        self.flat_params = [p.reshape(-1) for p in params]
        self.flat_grads = [g.reshape(-1) for g in net.coef_grads + net.intercept_grads]
        self.n_coefs = len(est.coefs_)
        self.zero_l2 = [0.0] * len(est.intercepts_)
