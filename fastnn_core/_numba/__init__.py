"""The ``numba`` backend: the kernels of BACKENDS.md compiled with ``@njit(cache=True, nogil=True)``.

Each kernel here is a thin Python wrapper that turns the optional arguments (``None``) into an
empty array plus a flag and activation names into integer codes, so every compiled function has
exactly one specialisation per dtype (float32, float64) and nothing is up-cast. ``exp`` is the
vectorisable polynomial ``_vmath.vexp`` (Numba's ``math.exp`` is a scalar libm call here).

Row kernels (softmax family, cross-entropy, bce, sqerr) have a serial and a ``parallel=True``
(``prange`` over blocks of rows) driver. The parallel one is used only when the array has at
least ``PARALLEL["min_elements"]`` elements and Numba's current thread count
(``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``, read at each call) is above 1; it is compiled
on its first use. The total loss is summed over the same groups of rows in the same order by
both drivers, so results do not depend on the thread count.

Numerics: sums are accumulated in float64 for both dtypes; no function uses ``fastmath=True``.
The only fast-math flags are ``reassoc`` on the float64 sum loops (so they vectorise; it changes
the rounding of a sum, never inf/NaN semantics: ``nnan``/``ninf`` are not set) and ``contract``
(FMA formation) inside ``_vmath``'s polynomials. The contract's non-finite rules (masked ``-inf``
classes, NaN/``+inf`` rows entirely NaN, ``+inf`` loss and finite gradient for a masked label)
are checked against the NumPy reference by the test suite on this backend.

``_train.train_epoch`` (the native training loop) calls the compiled drivers of ``_rows`` and
``_elementwise`` directly: their signatures are an internal API of this package.
"""

import numba
import numpy as np

from . import _elementwise as _E
from . import _rows as _R
from ._train import train_epoch

__all__ = [
    "PARALLEL",
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
    "parallel_info",
    "rmsprop",
    "sgd",
    "softmax",
    "sqerr",
    "train_epoch",
]

# Below this many elements a kernel runs serially even with several threads allowed.
_MIN_PARALLEL = 1 << 17

PARALLEL = {
    "parallel_kernels": ("softmax", "log_softmax", "logsumexp", "ce_hard", "ce_soft", "bce",
                         "sqerr"),
    "min_elements": _MIN_PARALLEL,
    "threading_layer_requested": numba.config.THREADING_LAYER,
    "max_threads": numba.config.NUMBA_NUM_THREADS,
    "numba": numba.__version__,
}


def __getattr__(name):
    """``train_epoch`` (BACKENDS.md, "Training epoch"; in ``_train.py``) is imported on first
    use: the kernels above do not need it and it is only looked up by fastnn's native loop."""
    if name == "train_epoch":
        from ._train import train_epoch

        globals()["train_epoch"] = train_epoch
        return train_epoch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parallel_info():
    """``PARALLEL`` plus the live state: the threading layer in use (None until a parallel
    kernel has run) and the current thread count of the calling thread."""
    info = dict(PARALLEL)
    try:
        info["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        info["threading_layer"] = None
    info["num_threads"] = numba.get_num_threads()
    return info


_EMPTY1 = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0)}
_EMPTY2 = {
    np.dtype(np.float32): np.empty((0, 0), np.float32),
    np.dtype(np.float64): np.empty((0, 0)),
}
_get_num_threads = numba.get_num_threads


def _parallel(size):
    return size >= _MIN_PARALLEL and _get_num_threads() > 1


def _opt1(a, dtype):
    return (_EMPTY1[dtype], False) if a is None else (a, True)


def _opt2(a, dtype):
    return (_EMPTY2[dtype], False) if a is None else (a, True)


# --- softmax family -----------------------------------------------------------------------------
def softmax(z, out):
    if _parallel(z.size):
        _R.softmax_parallel(z, out)
    else:
        _R.softmax_serial(z, out)


def log_softmax(z, out):
    if _parallel(z.size):
        _R.log_softmax_parallel(z, out)
    else:
        _R.log_softmax_serial(z, out)


def logsumexp(z, out):
    if _parallel(z.size):
        _R.logsumexp_parallel(z, out)
    else:
        _R.logsumexp_serial(z, out)


# --- losses ---------------------------------------------------------------------------------------
def ce_hard(z, labels, sw, cw, smoothing, scale, grad, row_loss):
    dt = z.dtype
    sw, has_sw = _opt1(sw, dt)
    if cw is None:
        cw, has_cw, W = _EMPTY1[dt], False, float(z.shape[1])
    else:
        has_cw, W = True, float(cw.sum(dtype=np.float64))
    grad, has_grad = _opt2(grad, dt)
    row_loss, has_rl = _opt1(row_loss, dt)
    fn = _R.ce_hard_parallel if _parallel(z.size) else _R.ce_hard_serial
    return fn(z, labels, sw, has_sw, cw, has_cw, W, float(smoothing), float(scale), grad,
              has_grad, row_loss, has_rl)


def ce_soft(z, target, sw, cw, smoothing, scale, grad, row_loss):
    dt = z.dtype
    sw, has_sw = _opt1(sw, dt)
    cw, has_cw = _opt1(cw, dt)
    grad, has_grad = _opt2(grad, dt)
    row_loss, has_rl = _opt1(row_loss, dt)
    fn = _R.ce_soft_parallel if _parallel(z.size) else _R.ce_soft_serial
    return fn(z, target, sw, has_sw, cw, has_cw, float(smoothing), float(scale), grad, has_grad,
              row_loss, has_rl)


def bce(z, y, sw, scale, grad, row_loss):
    dt = z.dtype
    sw, has_sw = _opt1(sw, dt)
    grad, has_grad = _opt2(grad, dt)
    row_loss, has_rl = _opt1(row_loss, dt)
    fn = _E.bce_parallel if _parallel(z.size) else _E.bce_serial
    return fn(z, y, sw, has_sw, float(scale), grad, has_grad, row_loss, has_rl)


_SQERR_CODES = {"identity": _E.IDENTITY, "logistic": _E.LOGISTIC, "softmax": _E.SOFTMAX}


def sqerr(z, y, act, sw, scale, grad, row_loss):
    dt = z.dtype
    code = _SQERR_CODES[act]
    sw, has_sw = _opt1(sw, dt)
    grad, has_grad = _opt2(grad, dt)
    row_loss, has_rl = _opt1(row_loss, dt)
    fn = _E.sqerr_parallel if _parallel(z.size) else _E.sqerr_serial
    return fn(z, y, code, sw, has_sw, float(scale), grad, has_grad, row_loss, has_rl)


# --- activations ----------------------------------------------------------------------------------
def activation(name, z, out):
    _E.activation(_E.ACTIVATION_CODES[name], z, out)


def activation_grad(name, a, upstream, out):
    _E.activation_grad(_E.ACTIVATION_CODES[name], a, upstream, out)


# --- optimizer steps ------------------------------------------------------------------------------
def sgd(p, g, v, lr, momentum, nesterov, l2):
    _E.sgd(p, g, v, float(lr), float(momentum), bool(nesterov), float(l2))


def adam(p, g, m, v, lr_t, beta1, beta2, eps, l2):
    _E.adam(p, g, m, v, float(lr_t), float(beta1), float(beta2), float(eps), float(l2))


def adagrad(p, g, acc, lr, eps, l2):
    _E.adagrad(p, g, acc, float(lr), float(eps), float(l2))


def rmsprop(p, g, sq, lr, rho, eps, l2):
    _E.rmsprop(p, g, sq, float(lr), float(rho), float(eps), float(l2))


def adadelta(p, g, acc_g, acc_dx, lr, rho, eps, l2):
    _E.adadelta(p, g, acc_g, acc_dx, float(lr), float(rho), float(eps), float(l2))
