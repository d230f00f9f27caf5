"""The public kernel functions: validate at the boundary, then call the active backend."""

import numpy as np

from . import _validate as V
from ._backend import get_kernels


def _logits_out(z, out):
    z = V.logits_2d(z)
    z = V.as_float(z, V.compute_dtype(z))
    return z, V.check_out(out, z.shape, z.dtype)


def softmax(z, out=None):
    """Row-wise softmax of logits ``z`` ``(n_samples, n_classes)``; rows sum to 1.

    ``out`` (same shape and floating dtype, C-contiguous) may be ``z`` itself. ``-inf`` logits are
    masked classes (probability 0); a row with NaN or ``+inf`` comes out NaN.
    """
    z, out = _logits_out(z, out)
    get_kernels().softmax(z, out)
    return out


def log_softmax(z, out=None):
    """Row-wise ``z - logsumexp(z)``, computed without overflow for any finite logits."""
    z, out = _logits_out(z, out)
    get_kernels().log_softmax(z, out)
    return out


def logsumexp(z):
    """``log(sum(exp(z), axis=1))`` per row, shape ``(n_samples,)``, stable for any finite ``z``."""
    z = V.logits_2d(z)
    z = V.as_float(z, V.compute_dtype(z))
    out = np.empty(z.shape[0], dtype=z.dtype)
    get_kernels().logsumexp(z, out)
    return out


def _cross_entropy(z, y, sample_weight, class_weight, label_smoothing, reduction, out, want_grad):
    z = V.logits_2d(z)
    y = V.as_array(y, "y")
    V.check_reduction(reduction)
    eps = V.label_smoothing(label_smoothing)
    n, C = z.shape
    if y.ndim == 1:
        dtype = V.compute_dtype(z)
        labels = V.labels(y, n, C)
        target = None
    elif y.ndim == 2:
        V.same_shape(z, y)
        dtype = V.compute_dtype(z, y)
        target = V.as_float(y, dtype)
        labels = None
    else:
        raise ValueError(f"y must be class indices (n,) or probabilities (n, C), got shape {y.shape}")
    z = V.as_float(z, dtype)
    sw = V.weights(sample_weight, n, dtype, "sample_weight", "sample")
    cw = V.weights(class_weight, C, dtype, "class_weight", "class")
    if reduction == "mean":
        if labels is not None and cw is not None:
            wy = cw[labels].astype(np.float64)
            denominator = float(wy.sum() if sw is None else wy @ sw)
        else:
            denominator = float(n if sw is None else sw.sum(dtype=np.float64))
        scale = V.mean_scale(denominator, "the total weight")
    else:
        scale = 1.0
    grad = V.check_out(out, z.shape, dtype) if want_grad else None
    row_loss = np.empty(n, dtype=dtype) if reduction == "none" else None
    kernels = get_kernels()
    if labels is not None:
        total = kernels.ce_hard(z, labels, sw, cw, eps, scale, grad, row_loss)
    else:
        total = kernels.ce_soft(z, target, sw, cw, eps, scale, grad, row_loss)
    loss = row_loss if reduction == "none" else total * scale
    return (loss, grad) if want_grad else loss


def cross_entropy(z, y, sample_weight=None, class_weight=None, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy of logits ``z`` ``(n, C)`` against ``y``.

    Parameters
    ----------
    z : array of shape (n_samples, n_classes)
        Logits. ``-inf`` masks a class.
    y : array of shape (n_samples,) or (n_samples, n_classes)
        Integer class indices, or target probabilities (soft labels).
    sample_weight : array of shape (n_samples,), optional
        Non-negative weight of each row's loss.
    class_weight : array of shape (n_classes,), optional
        Non-negative weight of each class, as ``weight=`` in ``torch.nn.functional.cross_entropy``.
    label_smoothing : float in [0, 1]
        Mixes the target with the uniform distribution, as in PyTorch.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides the weighted sum by the total weight: ``sum_i s_i * w_{y_i}`` for
        class indices (PyTorch's rule, extended by sample weights), ``sum_i s_i`` (``n`` without
        sample weights) for probabilities. ``"none"`` returns the per-row losses.

    Returns
    -------
    loss : float or array of shape (n_samples,)
    """
    return _cross_entropy(z, y, sample_weight, class_weight, label_smoothing, reduction, None, False)


def cross_entropy_grad(
    z, y, sample_weight=None, class_weight=None, label_smoothing=0.0, reduction="mean", out=None
):
    """The loss of :func:`cross_entropy` and its gradient ``dL/dz``, in one fused pass per row.

    Without weights and smoothing the gradient is ``softmax(z) - onehot(y)`` (divided by ``n`` for
    ``"mean"``). ``out`` may be ``z`` itself: the gradient then overwrites the logits and no
    ``n x C`` buffer is allocated. For ``reduction="none"`` the gradient is that of the sum.

    Returns
    -------
    loss : float or array of shape (n_samples,)
    grad : array of shape (n_samples, n_classes)
    """
    return _cross_entropy(z, y, sample_weight, class_weight, label_smoothing, reduction, out, True)


def _elementwise_loss(z, y, sample_weight, reduction, out, want_grad, kernel, *args):
    z = V.as_array(z, "z")
    y = V.as_array(y, "y")
    V.same_shape(z, y)
    if z.ndim not in (1, 2):
        raise ValueError(f"z must be 1-D (n,) or 2-D (n, k), got shape {z.shape}")
    V.check_reduction(reduction)
    dtype = V.compute_dtype(z, y)
    shape = z.shape
    n, k = shape[0], (1 if z.ndim == 1 else shape[1])
    z2 = V.as_float(z, dtype).reshape(n, k)
    y2 = V.as_float(y, dtype).reshape(n, k)
    sw = V.weights(sample_weight, n, dtype, "sample_weight", "sample")
    if reduction == "mean":
        total_weight = n if sw is None else float(sw.sum(dtype=np.float64))
        scale = V.mean_scale(total_weight * k, "the total weight")
    else:
        scale = 1.0
    grad = V.check_out(out, shape, dtype) if want_grad else None
    grad2 = None if grad is None else grad.reshape(z2.shape)
    row_loss = np.empty(n, dtype=dtype) if reduction == "none" else None
    total = kernel(get_kernels())(z2, y2, *args, sw, scale, grad2, row_loss)
    loss = row_loss if reduction == "none" else total * scale
    return (loss, grad) if want_grad else loss


def binary_cross_entropy(z, y, sample_weight=None, reduction="mean"):
    """Binary cross-entropy of sigmoid outputs, computed on the logits ``z`` (stable for any
    finite ``z``, never ``log(0)``). ``z`` and ``y`` have one shape, ``(n,)`` or ``(n, k)``
    (multilabel). ``"mean"`` averages over all elements, weighted by ``sample_weight`` per row
    (PyTorch's ``binary_cross_entropy_with_logits`` without weights)."""
    return _elementwise_loss(z, y, sample_weight, reduction, None, False, lambda k: k.bce)


def binary_cross_entropy_grad(z, y, sample_weight=None, reduction="mean", out=None):
    """The loss of :func:`binary_cross_entropy` and its gradient ``sigmoid(z) - y`` (weighted,
    scaled by the reduction). ``out`` may be ``z`` itself."""
    return _elementwise_loss(z, y, sample_weight, reduction, out, True, lambda k: k.bce)


def squared_error(z, y, activation="identity", sample_weight=None, reduction="mean"):
    """The quadratic cost ``0.5 * (a - y)^2`` with ``a = activation(z)``.

    ``activation`` is ``"identity"``, ``"logistic"`` (alias ``"sigmoid"``) or ``"softmax"``
    (over the row). With sigmoid outputs its gradient carries the factor ``sigmoid'(z)``, which
    vanishes when the output saturates: the slow learning that cross-entropy avoids.
    ``"mean"`` averages over all elements, weighted by ``sample_weight`` per row."""
    act = V.activation_name(activation, V.SQERR_ACTIVATIONS)
    return _elementwise_loss(z, y, sample_weight, reduction, None, False, lambda k: k.sqerr, act)


def squared_error_grad(z, y, activation="identity", sample_weight=None, reduction="mean", out=None):
    """The loss of :func:`squared_error` and its gradient ``(a - y) * a'(z)`` with respect to
    ``z`` (the softmax Jacobian applied for ``"softmax"``). ``out`` may be ``z`` itself."""
    act = V.activation_name(activation, V.SQERR_ACTIVATIONS)
    return _elementwise_loss(z, y, sample_weight, reduction, out, True, lambda k: k.sqerr, act)


def _elementwise_args(z, out, name="z"):
    z = V.as_array(z, name)
    z = V.as_float(z, V.compute_dtype(z))
    return z, V.check_out(out, z.shape, z.dtype)


def activation(name, z, out=None):
    """``f(z)`` elementwise for ``name`` in identity, logistic (sigmoid), tanh, relu, leaky_relu
    (slope 0.01), softplus, elu (alpha 1). ``out`` may be ``z``."""
    name = V.activation_name(name)
    z, out = _elementwise_args(z, out)
    get_kernels().activation(name, z.reshape(-1), out.reshape(-1))
    return out


def activation_grad(name, a, upstream, out=None):
    """The fused backward ``upstream * f'(z)``, with ``f'`` computed from the OUTPUT
    ``a = f(z)`` of the forward pass (as scikit-learn stores it). ``out`` may be ``upstream``."""
    name = V.activation_name(name)
    a = V.as_array(a, "a")
    upstream = V.as_array(upstream, "upstream")
    V.same_shape(a, upstream, "a", "upstream")
    dtype = V.compute_dtype(a, upstream)
    a = V.as_float(a, dtype)
    upstream = V.as_float(upstream, dtype)
    out = V.check_out(out, a.shape, dtype)
    get_kernels().activation_grad(name, a.reshape(-1), upstream.reshape(-1), out.reshape(-1))
    return out
