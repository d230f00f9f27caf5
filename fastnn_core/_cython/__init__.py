"""The ``cython`` backend: ahead-of-time compiled kernels (see fastnn_core/BACKENDS.md).

Every kernel runs without the GIL, one row at a time (vectorised inner loops from
``fastnn_simd.h``, compiled for AVX-512 / AVX2+FMA / SSE2 and picked at load time), in
parallel over rows with OpenMP when the array is large enough to pay for threads.

``OPENMP`` says whether the extension was built with OpenMP, ``SIMD_INFO`` describes the
run-time ISA dispatch (both for ``show_config``).
"""

from ._kernels import (
    OPENMP,
    PARALLEL_MIN_ELEMENTS,
    SIMD_INFO,
    activation,
    activation_grad,
    adadelta,
    adagrad,
    adam,
    bce,
    ce_hard,
    ce_soft,
    log_softmax,
    logsumexp,
    rmsprop,
    sgd,
    softmax,
    sqerr,
)
from ._train import train_epoch

__all__ = [
    "OPENMP",
    "SIMD_INFO",
    "activation",
    "activation_grad",
    "adadelta",
    "adagrad",
    "adam",
    "bce",
    "ce_hard",
    "ce_soft",
    "log_softmax",
    "logsumexp",
    "rmsprop",
    "sgd",
    "softmax",
    "sqerr",
    "train_epoch",
]
