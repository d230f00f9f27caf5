"""Input checks and normalisation shared by every backend.

Everything a kernel may assume (BACKENDS.md) is established here, before any unchecked loop runs:
C-contiguous arrays of one floating dtype, class indices in range, weights finite and
non-negative, output buffers of the right shape and dtype.
"""

import numbers

import numpy as np

REDUCTIONS = ("mean", "sum", "none")
ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu")
ACTIVATION_ALIASES = {"sigmoid": "logistic", "linear": "identity"}
SQERR_ACTIVATIONS = ("identity", "logistic", "softmax")
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def compute_dtype(*arrays):
    """The floating dtype a kernel runs in: float32 when the first array (the logits) is float32
    and no other input is a wider float, float64 otherwise. Integer or boolean targets never
    up-cast float32 logits; integer or float16 logits compute in float64."""
    for a in arrays:
        if a.dtype.kind not in "biuf":
            raise ValueError(f"expected real numbers, got an array of dtype {a.dtype}")
    if arrays[0].dtype != _FLOAT32:
        return _FLOAT64
    for a in arrays[1:]:
        if a.dtype.kind == "f" and a.dtype.itemsize > 4:
            return _FLOAT64
    return _FLOAT32


def as_array(x, name):
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def as_float(arr, dtype):
    return np.ascontiguousarray(arr, dtype=dtype)


def logits_2d(z, name="z"):
    z = as_array(z, name)
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {z.shape}")
    return z


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_out(out, shape, dtype, name="out"):
    """``out`` as given (same shape, dtype, C-contiguous, writeable), or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def weights(w, length, dtype, name, what):
    """A 1-D array of ``length`` finite, non-negative weights in ``dtype``, or None."""
    if w is None:
        return None
    w = as_array(w, name)
    if w.ndim != 1 or w.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},) (one per {what}), got {w.shape}")
    w = as_float(w, dtype)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return w


def labels(y, n_samples, n_classes):
    """Integer class indices ``(n,)`` as np.intp, every one in ``[0, n_classes)``."""
    if y.dtype.kind not in "biu":
        raise ValueError(
            f"class-index targets must be integers, got dtype {y.dtype} "
            "(pass class probabilities as a 2-D array)"
        )
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} labels but z has {n_samples} rows")
    # the common case in one pass: viewed as unsigned, a negative index is a huge one
    if y.dtype == np.intp and (not n_samples or int(y.view(np.uintp).max()) < n_classes):
        return np.ascontiguousarray(y)
    if n_samples:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0:
            raise ValueError(f"class index {lo} is negative")
        if hi >= n_classes:
            raise ValueError(
                f"class index {hi} is out of range for {n_classes} classes (0..{n_classes - 1})"
            )
    return np.ascontiguousarray(y, dtype=np.intp)


def label_smoothing(eps):
    if type(eps) is float and 0.0 <= eps <= 1.0:  # the common case, without the ABC check
        return eps
    if not isinstance(eps, numbers.Real) or not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got {eps!r}")
    return float(eps)


def same_shape(z, y, z_name="z", y_name="y"):
    if z.shape != y.shape:
        raise ValueError(f"{y_name} has shape {y.shape} but {z_name} has shape {z.shape}")


def activation_name(name, allowed=ACTIVATIONS):
    canonical = ACTIVATION_ALIASES.get(name, name)
    if canonical not in allowed:
        raise ValueError(f"unknown activation {name!r}; choose one of {list(allowed)}")
    return canonical


def mean_scale(denominator, what):
    if not denominator > 0:
        raise ValueError(
            f"reduction='mean' is undefined: {what} is {denominator} (no data or zero weights)"
        )
    return 1.0 / denominator
