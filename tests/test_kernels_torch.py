"""PyTorch as an independent oracle (skipped where torch is not importable): F.cross_entropy with
weight= and label_smoothing= (class indices and probabilities, every reduction) and its autograd
gradient, F.binary_cross_entropy_with_logits, F.softmax / F.log_softmax / torch.logsumexp.

PyTorch runs in float64; our float32 results are compared at the float32 tolerance."""

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import assert_close, ce_grad_scale, labels, logits, nonneg_weights, soft_targets

torch = pytest.importorskip("torch", reason="PyTorch is not installed; it is an optional oracle")
F = torch.nn.functional

TORCH_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _torch_ce(z, y, weight, smoothing, reduction):
    zt = _t(z).requires_grad_(True)
    yt = torch.from_numpy(np.asarray(y, np.int64)) if np.ndim(y) == 1 else _t(y)
    wt = None if weight is None else _t(weight)
    loss = F.cross_entropy(zt, yt, weight=wt, label_smoothing=smoothing, reduction=reduction)
    (loss.sum() if reduction == "none" else loss).backward()
    return loss.detach().numpy(), zt.grad.numpy()


@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "weight"])
def test_cross_entropy_vs_torch(backend, dtype, rng, target, reduction, smoothing, weighted):
    n, C = 23, 9
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C) if target == "hard" else soft_targets(rng, n, C, dtype)
    cw = nonneg_weights(rng, C, dtype) if weighted else None
    if weighted and target == "hard":
        cw[y[0]] = max(cw[y[0]], dtype.type(0.5))  # keep the mean's denominator positive
    t_loss, t_grad = _torch_ce(z, y, cw, smoothing, reduction)
    loss, grad = fc.cross_entropy_grad(z, y, class_weight=cw, label_smoothing=smoothing, reduction=reduction)
    rtol = TORCH_RTOL[dtype]
    assert_close(loss, t_loss, dtype, rtol=rtol)
    scale = ce_grad_scale(z, y, class_weight=cw, label_smoothing=smoothing, reduction=reduction)
    assert_close(grad, t_grad, dtype, rtol=rtol, atol_scale=scale)
    assert_close(fc.cross_entropy(z, y, class_weight=cw, label_smoothing=smoothing, reduction=reduction),
                 t_loss, dtype, rtol=rtol)


@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sample_weight_vs_torch_per_row_losses(backend, dtype, rng, target, reduction):
    """torch has no sample_weight: weight its per-row losses by hand. 'mean' divides by
    sum_i s_i w_{y_i} (class indices) or sum_i s_i (probabilities), as documented."""
    n, C = 17, 5
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C) if target == "hard" else soft_targets(rng, n, C, dtype)
    cw = nonneg_weights(rng, C, dtype, zeros=False)
    sw = nonneg_weights(rng, n, dtype)
    zt = _t(z).requires_grad_(True)
    yt = torch.from_numpy(np.asarray(y, np.int64)) if target == "hard" else _t(y)
    rows = F.cross_entropy(zt, yt, weight=_t(cw), label_smoothing=0.1, reduction="none")
    weighted = rows * _t(sw)
    if reduction == "none":
        t_loss = weighted
    else:
        t_loss = weighted.sum()
        if reduction == "mean":
            denominator = (_t(sw) * _t(cw)[yt]).sum() if target == "hard" else _t(sw).sum()
            t_loss = t_loss / denominator
    (t_loss.sum() if reduction == "none" else t_loss).backward()
    loss, grad = fc.cross_entropy_grad(z, y, sample_weight=sw, class_weight=cw, label_smoothing=0.1,
                                       reduction=reduction)
    rtol = TORCH_RTOL[dtype]
    assert_close(loss, t_loss.detach().numpy(), dtype, rtol=rtol)
    scale = ce_grad_scale(z, y, sample_weight=sw, class_weight=cw, label_smoothing=0.1, reduction=reduction)
    assert_close(grad, zt.grad.numpy(), dtype, rtol=rtol, atol_scale=scale)


@pytest.mark.parametrize("shape", [(1, 1), (40, 3), (500, 1000)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_cross_entropy_shapes_vs_torch(backend, dtype, rng, shape):
    z = logits(rng, shape, dtype, scale=5.0)
    y = labels(rng, *shape)
    t_loss, t_grad = _torch_ce(z, y, None, 0.0, "mean")
    loss, grad = fc.cross_entropy_grad(z, y)
    assert_close(loss, t_loss, dtype, rtol=TORCH_RTOL[dtype])
    assert_close(grad, t_grad, dtype, rtol=TORCH_RTOL[dtype], atol_scale=1.0 / shape[0])


def test_cross_entropy_extreme_logits_vs_torch(backend, dtype, rng):
    big = 1e4 if dtype == np.float32 else 1e300
    z = (rng.uniform(-1, 1, (8, 5)) * big).astype(dtype)
    z[0] = [big, 0, -big, 1, -1]
    y = labels(rng, 8, 5)
    t_loss, t_grad = _torch_ce(z, y, None, 0.0, "none")
    loss, grad = fc.cross_entropy_grad(z, y, reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert_close(loss, t_loss, dtype, rtol=TORCH_RTOL[dtype])
    assert_close(grad, t_grad, dtype, rtol=TORCH_RTOL[dtype], atol_scale=1.0)


@pytest.mark.parametrize("shape", [(1,), (50,), (1, 1), (30, 4), (300, 64)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "sample_weight"])
def test_binary_cross_entropy_vs_torch(backend, dtype, rng, shape, reduction, weighted):
    z = logits(rng, shape, dtype, scale=6.0)
    y = rng.uniform(0, 1, shape).astype(dtype)
    sw = nonneg_weights(rng, shape[0], dtype) if weighted else None
    zt = _t(z).requires_grad_(True)
    w = None if sw is None else _t(sw).reshape((-1,) + (1,) * (len(shape) - 1)).expand(shape)
    elementwise = F.binary_cross_entropy_with_logits(zt, _t(y), weight=w, reduction="none")
    if reduction == "none":
        t_loss = elementwise.reshape(shape[0], -1).sum(dim=1)
    elif reduction == "sum":
        t_loss = elementwise.sum()
    else:
        k = 1 if len(shape) == 1 else shape[1]
        t_loss = elementwise.sum() / ((float(sw.astype(np.float64).sum()) if weighted else shape[0]) * k)
        if not weighted:  # torch's own mean is the same thing
            torch.testing.assert_close(
                t_loss, F.binary_cross_entropy_with_logits(zt, _t(y), reduction="mean"), rtol=1e-12, atol=0
            )
    (t_loss.sum() if reduction == "none" else t_loss).backward()
    loss, grad = fc.binary_cross_entropy_grad(z, y, sample_weight=sw, reduction=reduction)
    assert_close(loss, t_loss.detach().numpy(), dtype, rtol=TORCH_RTOL[dtype])
    assert_close(grad, zt.grad.numpy(), dtype, rtol=TORCH_RTOL[dtype])


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 100), (8, 5000)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_family_vs_torch(backend, dtype, rng, shape):
    z = logits(rng, shape, dtype, scale=4.0)
    z[0, 0] = z.max() + 30  # one very confident row
    zt = _t(z)
    rtol = TORCH_RTOL[dtype]
    assert_close(fc.softmax(z), F.softmax(zt, dim=1).numpy(), dtype, rtol=rtol)
    assert_close(fc.log_softmax(z), F.log_softmax(zt, dim=1).numpy(), dtype, rtol=rtol)
    assert_close(fc.logsumexp(z), torch.logsumexp(zt, dim=1).numpy(), dtype, rtol=rtol)


def test_masked_softmax_vs_torch(backend, dtype, rng):
    z = logits(rng, (6, 7), dtype)
    z[rng.random((6, 7)) < 0.4] = -np.inf
    z[:, 3] = 1.0  # one finite class per row at least
    zt = _t(z)
    rtol = TORCH_RTOL[dtype]
    assert_close(fc.softmax(z), F.softmax(zt, dim=1).numpy(), dtype, rtol=rtol)
    assert_close(fc.log_softmax(z), F.log_softmax(zt, dim=1).numpy(), dtype, rtol=rtol)
    assert_close(fc.logsumexp(z), torch.logsumexp(zt, dim=1).numpy(), dtype, rtol=rtol)
