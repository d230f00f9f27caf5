"""Public optimizer steps: one fused pass over a parameter array and its state, in place.

Parameters and state arrays are updated in place, so they must already be C-contiguous,
writeable and of one floating dtype; the gradient is converted if it needs to be. ``l2`` adds
``l2 * param`` to the gradient on the fly (weight decay folded into the same pass).
"""

import numbers

import numpy as np

from . import _validate as V
from ._backend import get_kernels


def _state(arrays, grad):
    """Check the in-place arrays (name -> array) and return them raveled, with the gradient."""
    names = list(arrays)
    first = arrays[names[0]]
    for name in names:
        arr = arrays[name]
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{name} must be a NumPy array, got {type(arr).__name__}")
        if arr.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64, got {arr.dtype}")
        if arr.dtype != first.dtype or arr.shape != first.shape:
            raise ValueError(
                f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected those of "
                f"{names[0]}: {first.shape}, {first.dtype}"
            )
        if not arr.flags.c_contiguous or not arr.flags.writeable:
            raise ValueError(f"{name} must be C-contiguous and writeable (it is updated in place)")
    grad = V.as_array(grad, "grad")
    V.same_shape(first, grad, names[0], "grad")
    grad = V.as_float(grad, first.dtype)
    return [arrays[name].reshape(-1) for name in names] + [grad.reshape(-1)]


def _positive(value, name, allow_zero=False):
    if not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return float(value)


def _fraction(value, name):
    if not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def sgd_step(param, grad, velocity, *, lr, momentum=0.0, nesterov=False, l2=0.0):
    """SGD with (Nesterov) momentum, as scikit-learn's ``SGDOptimizer``:
    ``velocity = momentum * velocity - lr * g``; ``param += velocity`` (or, for Nesterov,
    ``param += momentum * velocity - lr * g``)."""
    p, v, g = _state({"param": param, "velocity": velocity}, grad)
    get_kernels().sgd(
        p, g, v, _positive(lr, "lr"), _fraction(momentum, "momentum"), bool(nesterov),
        _positive(l2, "l2", allow_zero=True),
    )


def adam_step(param, grad, m, v, *, lr, step, beta1=0.9, beta2=0.999, eps=1e-8, l2=0.0):
    """Adam (Kingma and Ba) with scikit-learn's bias correction: ``step`` is the 1-based update
    count and the rate is ``lr * sqrt(1 - beta2**step) / (1 - beta1**step)``."""
    if not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step must be a positive integer (1 for the first update), got {step!r}")
    beta1 = _fraction(beta1, "beta1")
    beta2 = _fraction(beta2, "beta2")
    p, m_, v_, g = _state({"param": param, "m": m, "v": v}, grad)
    lr_t = _positive(lr, "lr") * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    get_kernels().adam(p, g, m_, v_, float(lr_t), beta1, beta2, _positive(eps, "eps"),
                       _positive(l2, "l2", allow_zero=True))


def adagrad_step(param, grad, acc, *, lr, eps=1e-10, l2=0.0):
    """AdaGrad: ``acc += g**2``; ``param -= lr * g / (sqrt(acc) + eps)``."""
    p, a, g = _state({"param": param, "acc": acc}, grad)
    get_kernels().adagrad(p, g, a, _positive(lr, "lr"), _positive(eps, "eps"),
                          _positive(l2, "l2", allow_zero=True))


def rmsprop_step(param, grad, sq, *, lr, rho=0.9, eps=1e-8, l2=0.0):
    """RMSProp: ``sq = rho * sq + (1 - rho) * g**2``; ``param -= lr * g / (sqrt(sq) + eps)``."""
    p, s, g = _state({"param": param, "sq": sq}, grad)
    get_kernels().rmsprop(p, g, s, _positive(lr, "lr"), _fraction(rho, "rho"), _positive(eps, "eps"),
                          _positive(l2, "l2", allow_zero=True))


def adadelta_step(param, grad, acc_g, acc_dx, *, lr=1.0, rho=0.9, eps=1e-6, l2=0.0):
    """AdaDelta (Zeiler): the step ``sqrt(acc_dx + eps) / sqrt(acc_g + eps) * g`` scaled by
    ``lr``, with running averages of squared gradients and squared steps."""
    p, ag, ad, g = _state({"param": param, "acc_g": acc_g, "acc_dx": acc_dx}, grad)
    get_kernels().adadelta(p, g, ag, ad, _positive(lr, "lr"), _fraction(rho, "rho"),
                           _positive(eps, "eps"), _positive(l2, "l2", allow_zero=True))
