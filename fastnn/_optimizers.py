"""Optimizers of fastnn's MLP, on the fused fastnn_core ``*_step`` kernels.

Each optimizer keeps its state in plain 1-D arrays (one per parameter array, in the order
``coefs + intercepts``) so that a native training loop can take them over unchanged, and its
``step`` calls the backend kernel directly (one fused pass per parameter array, in place, with
``l2`` weight decay folded into the gradient). No scikit-learn here.

The learning-rate logic copies scikit-learn's ``SGDOptimizer`` / ``AdamOptimizer``:
``invscaling`` is updated once per epoch in :meth:`iteration_ends` (``t`` counts samples),
``adaptive`` divides the rate by 5 when :meth:`trigger_stopping` is called (stop once it falls
to 1e-6 or below), Adam's rate is ``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` at step ``t``.
"""

import math

import numpy as np

SOLVERS = ("sgd", "adam", "adagrad", "adadelta", "rmsprop")


class Optimizer:
    """Base class: a constant learning rate and a stop on the first lack of progress."""

    #: names of the per-parameter state arrays, in the order the kernel takes them
    state_names = ()

    def __init__(self, params, learning_rate_init):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.state = {
            name: [np.zeros(p.size, dtype=p.dtype) for p in params] for name in self.state_names
        }

    def step(self, kernels, flat_params, flat_grads, l2s):
        """Update every parameter (1-D views ``flat_params``) in place with its gradient."""
        raise NotImplementedError

    def iteration_ends(self, time_step):
        """Called at the end of each epoch with the number of samples seen so far."""

    def trigger_stopping(self, msg, log=None):
        """Called when progress stalls; True means stop training. ``log`` prints a message."""
        if log is not None:
            log(msg + " Stopping.")
        return True


class SGD(Optimizer):
    """SGD with momentum (Nesterov's or classical) and scikit-learn's rate schedules."""

    state_names = ("velocity",)

    def __init__(self, params, learning_rate_init=0.1, lr_schedule="constant", momentum=0.9,
                 nesterov=True, power_t=0.5):
        super().__init__(params, learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.power_t = float(power_t)

    def step(self, kernels, flat_params, flat_grads, l2s):
        lr, mom, nest = self.learning_rate, self.momentum, self.nesterov
        for p, g, v, l2 in zip(flat_params, flat_grads, self.state["velocity"], l2s):
            kernels.sgd(p, g, v, lr, mom, nest, l2)

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, log=None):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, log)
        if self.learning_rate <= 1e-6:
            if log is not None:
                log(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if log is not None:
            log(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class Adam(Optimizer):
    """Adam (Kingma and Ba) with scikit-learn's bias-corrected rate."""

    state_names = ("m", "v")

    def __init__(self, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(params, learning_rate_init)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0

    def step(self, kernels, flat_params, flat_grads, l2s):
        self.t += 1
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        lr_t = self.learning_rate_init * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        self.learning_rate = lr_t
        for p, g, m, v, l2 in zip(flat_params, flat_grads, self.state["m"], self.state["v"], l2s):
            kernels.adam(p, g, m, v, lr_t, b1, b2, eps, l2)


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al.): per-coordinate rate ``lr / (sqrt(sum g^2) + eps)``."""

    state_names = ("acc",)

    def __init__(self, params, learning_rate_init=0.01, epsilon=1e-8):
        super().__init__(params, learning_rate_init)
        self.epsilon = float(epsilon)

    def step(self, kernels, flat_params, flat_grads, l2s):
        lr, eps = self.learning_rate, self.epsilon
        for p, g, acc, l2 in zip(flat_params, flat_grads, self.state["acc"], l2s):
            kernels.adagrad(p, g, acc, lr, eps, l2)


class RMSProp(Optimizer):
    """RMSProp (Hinton): rate ``lr / (sqrt(E[g^2]) + eps)`` with decay ``rho``."""

    state_names = ("sq",)

    def __init__(self, params, learning_rate_init=0.001, rho=0.9, epsilon=1e-8):
        super().__init__(params, learning_rate_init)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def step(self, kernels, flat_params, flat_grads, l2s):
        lr, rho, eps = self.learning_rate, self.rho, self.epsilon
        for p, g, sq, l2 in zip(flat_params, flat_grads, self.state["sq"], l2s):
            kernels.rmsprop(p, g, sq, lr, rho, eps, l2)


class AdaDelta(Optimizer):
    """AdaDelta (Zeiler): step ``sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g`` times ``lr``
    (Zeiler's method is ``lr = 1``)."""

    state_names = ("acc_g", "acc_dx")

    def __init__(self, params, learning_rate_init=1.0, rho=0.95, epsilon=1e-6):
        super().__init__(params, learning_rate_init)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def step(self, kernels, flat_params, flat_grads, l2s):
        lr, rho, eps = self.learning_rate, self.rho, self.epsilon
        for p, g, ag, ad, l2 in zip(flat_params, flat_grads, self.state["acc_g"],
                                    self.state["acc_dx"], l2s):
            kernels.adadelta(p, g, ag, ad, lr, rho, eps, l2)


def make_optimizer(solver, params, *, learning_rate_init, learning_rate="constant", momentum=0.9,
                   nesterovs_momentum=True, power_t=0.5, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                   rho=None):
    """The optimizer object for ``solver`` with the estimator's hyperparameters.

    ``rho`` (decay of the running averages) defaults to 0.9 for rmsprop and 0.95 for adadelta.
    """
    if solver == "sgd":
        return SGD(params, learning_rate_init, learning_rate, momentum, nesterovs_momentum, power_t)
    if solver == "adam":
        return Adam(params, learning_rate_init, beta_1, beta_2, epsilon)
    if solver == "adagrad":
        return AdaGrad(params, learning_rate_init, epsilon)
    if solver == "rmsprop":
        return RMSProp(params, learning_rate_init, 0.9 if rho is None else rho, epsilon)
    if solver == "adadelta":
        return AdaDelta(params, learning_rate_init, 0.95 if rho is None else rho, epsilon)
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
