"""The NumPy backend: the oracle every compiled kernel is tested against and the baseline of
every benchmark. Written the way a careful NumPy user would (stable, vectorised)."""

from .activations import activation, activation_grad
from .losses import bce, ce_hard, ce_soft, sqerr
from .optim import adadelta, adagrad, adam, rmsprop, sgd
from .softmax import log_softmax, logsumexp, softmax

__all__ = [
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
]
