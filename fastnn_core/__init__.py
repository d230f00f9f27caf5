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

# Load the compiled kernels (and with them the OpenMP runtime) now, not at the first call:
# threadpoolctl only limits the libraries already loaded when a ``threadpool_limits`` block
# starts, so ``with threadpool_limits(1): softmax(z)`` right after the import would otherwise run
# on every core. A build that does not load is remembered (``backend_error``), never raised here.
from ._backend import _try_load

_try_load("cython")
del _try_load

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
