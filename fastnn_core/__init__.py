"""fastnn_core: the native kernels of fastnn (softmax, cross-entropy and its fused gradient,
binary cross-entropy, the quadratic cost, activations, optimizer steps) behind one public
function each, on a choice of backends: ``cython`` (default), ``numba`` and ``numpy`` (the
reference). It never imports ``fastnn``."""

from ._api import (
    activation,
    activation_grad,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    cross_entropy,
    cross_entropy_grad,
    log_softmax,
    logsumexp,
    softmax,
    squared_error,
    squared_error_grad,
)
from ._backend import (
    BackendUnavailableError,
    available_backends,
    backend_error,
    get_backend,
    get_kernels,
    set_backend,
    use_backend,
)
from ._optim_api import adadelta_step, adagrad_step, adam_step, rmsprop_step, sgd_step

__all__ = [
    "BackendUnavailableError",
    "activation",
    "activation_grad",
    "adadelta_step",
    "adagrad_step",
    "adam_step",
    "available_backends",
    "backend_error",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "cross_entropy",
    "cross_entropy_grad",
    "get_backend",
    "get_kernels",
    "log_softmax",
    "logsumexp",
    "rmsprop_step",
    "set_backend",
    "sgd_step",
    "softmax",
    "squared_error",
    "squared_error_grad",
    "use_backend",
]
