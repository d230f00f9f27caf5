"""cross_entropy / cross_entropy_grad on every backend, float32 and float64: every keyword
combination against the float64 reference (itself checked against the textbook formula), random
shapes up to (512, 32000), and hypothesis properties (gradient rows sum to 0, the gradient is a
central finite difference of the loss, shift invariance)."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnn_core as fc
from _kernels_oracle import (
    HYP,
    assert_close,
    ce_grad_scale,
    ce_target_weights,
    central_difference,
    expected_ce,
    expected_softmax_family,
    labels,
    logits,
    nonneg_weights,
    ref,
    rtol_for,
    soft_targets,
)

REDUCTIONS = ("mean", "sum", "none")
SMOOTHING = (0.0, 0.1, 1.0)


def _check(dtype, z, y, kw):
    exp_loss, exp_grad = expected_ce(z, y, **kw)
    loss = fc.cross_entropy(z, y, **kw)
    loss2, grad = fc.cross_entropy_grad(z, y, **kw)
    if kw.get("reduction", "mean") == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype and loss.shape == (z.shape[0],)
    else:
        assert isinstance(loss, float) and isinstance(loss2, float)
    assert grad.dtype == dtype and grad.shape == z.shape
    assert_close(loss, exp_loss, dtype, err_msg=f"cross_entropy loss {kw}")
    assert_close(loss2, exp_loss, dtype, err_msg=f"cross_entropy_grad loss {kw}")
    gscale = ce_grad_scale(z, y, **kw)
    assert_close(grad, exp_grad, dtype, atol_scale=gscale, err_msg=f"cross_entropy_grad grad {kw}")


@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", SMOOTHING)
@pytest.mark.parametrize("weights", ["none", "sample", "class", "both"])
def test_keyword_combinations(backend, dtype, rng, target, reduction, smoothing, weights):
    n, C = 37, 11
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C) if target == "hard" else soft_targets(rng, n, C, dtype)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weights in ("sample", "both"):
        kw["sample_weight"] = nonneg_weights(rng, n, dtype)
    if weights in ("class", "both"):
        kw["class_weight"] = nonneg_weights(rng, C, dtype)
    _check(dtype, z, y, kw)


SHAPES = [(1, 1), (1, 2), (3, 1), (2, 2), (5, 3), (16, 10), (33, 100), (128, 1000), (7, 4099), (20000, 10)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("variant", ["plain-hard", "weighted-hard", "soft"])
def test_shapes(backend, dtype, rng, shape, variant):
    n, C = shape
    z = logits(rng, shape, dtype)
    kw = {}
    if variant == "soft":
        y = soft_targets(rng, n, C, dtype)
    else:
        y = labels(rng, n, C)
    if variant == "weighted-hard":
        kw = {
            "sample_weight": nonneg_weights(rng, n, dtype, zeros=False),
            "class_weight": nonneg_weights(rng, C, dtype, zeros=False),
            "label_smoothing": 0.05,
        }
    _check(dtype, z, y, kw)


def test_plain_gradient_is_softmax_minus_onehot(backend, dtype, rng):
    """The documented special case: no weights, no smoothing, mean -> (p - onehot) / n."""
    n, C = 20, 7
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C)
    _, grad = fc.cross_entropy_grad(z, y)
    p = expected_softmax_family(z)[0]
    p[np.arange(n), y] -= 1
    assert_close(grad, p / n, dtype)
    _, grad = fc.cross_entropy_grad(z, y, reduction="sum")
    assert_close(grad, p, dtype)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_label_dtypes(backend, rng, label_dtype):
    z = logits(rng, (12, 6), np.float64)
    y = labels(rng, 12, 6)
    expected = fc.cross_entropy_grad(z, y, reduction="none")
    got = fc.cross_entropy_grad(z, y.astype(label_dtype), reduction="none")
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.fixture(scope="module")
def large_case():
    """One (512, 32000) problem, float32 logits, and its float64 reference (computed once)."""
    rng = np.random.default_rng(512_32000)
    n, C = 512, 32000
    z = logits(rng, (n, C), np.float32, scale=4.0)
    y = labels(rng, n, C)
    sw = nonneg_weights(rng, n, np.float32)
    sm, lsm, lse = expected_softmax_family(z)
    loss, grad = expected_ce(z, y, sample_weight=sw)
    return z, y, sw, sm, lsm, lse, loss, grad


def test_large_512x32000(backend, large_case):
    z, y, sw, sm, lsm, lse, exp_loss, exp_grad = large_case
    dtype = np.dtype(np.float32)
    assert_close(fc.softmax(z), sm, dtype, err_msg="softmax")
    assert_close(fc.log_softmax(z), lsm, dtype, err_msg="log_softmax")
    assert_close(fc.logsumexp(z), lse, dtype, err_msg="logsumexp")
    loss, grad = fc.cross_entropy_grad(z, y, sample_weight=sw)
    assert grad.dtype == dtype
    assert_close(loss, exp_loss, dtype, err_msg="loss")
    assert_close(grad, exp_grad, dtype, err_msg="grad")
    zc = z.copy()
    loss_in_place, grad_in_place = fc.cross_entropy_grad(zc, y, sample_weight=sw, out=zc)
    assert grad_in_place is zc
    assert loss_in_place == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(zc, grad, rtol=1e-6, atol=1e-12)


def test_large_512x32000_float64(backend, rng):
    n, C = 512, 32000
    z = logits(rng, (n, C), np.float64, scale=4.0)
    y = labels(rng, n, C)
    exp_loss, exp_grad = ref(fc.cross_entropy_grad, z, y, reduction="sum")
    loss, grad = fc.cross_entropy_grad(z, y, reduction="sum")
    assert_close(loss, exp_loss, np.float64, err_msg="loss")
    assert_close(grad, exp_grad, np.float64, err_msg="grad")


# ------------------------------------------------------------------------ hypothesis properties
@st.composite
def ce_problem(draw, dtype, max_n=5, max_c=8, soft=None):
    n = draw(st.integers(1, max_n))
    C = draw(st.integers(1, max_c))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    z = logits(rng, (n, C), dtype, scale=draw(st.sampled_from([0.1, 1.0, 5.0])))
    is_soft = draw(st.booleans()) if soft is None else soft
    y = soft_targets(rng, n, C, dtype) if is_soft else labels(rng, n, C)
    kw = {
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
    }
    if draw(st.booleans()):
        kw["sample_weight"] = rng.uniform(0.1, 2.0, n).astype(dtype)
        if n > 1 and draw(st.booleans()):
            kw["sample_weight"][0] = 0.0
    if draw(st.booleans()):
        kw["class_weight"] = rng.uniform(0.1, 2.0, C).astype(dtype)
    return z, y, kw


@HYP
@given(data=st.data())
def test_gradient_rows_sum_to_zero(backend, dtype, data):
    """Hard labels: sum_c dL/dz_ic = Q_i - Q_i = 0 for every weighting and smoothing."""
    z, y, kw = data.draw(ce_problem(dtype, max_c=40, soft=False))
    _, grad = fc.cross_entropy_grad(z, y, **kw)
    g = grad.astype(np.float64)
    n, C = z.shape
    q, denominator = ce_target_weights(
        y, n, C, kw.get("sample_weight"), kw.get("class_weight"), kw["label_smoothing"]
    )
    # each entry is Q_i p_ic - q_ic: rounding errors are relative to Q_i (times the reduction scale)
    row_scale = q.sum(axis=1) / (denominator if kw["reduction"] == "mean" else 1.0)
    tol = rtol_for(dtype) * np.maximum(row_scale, np.abs(g).max(axis=1))
    assert (np.abs(g.sum(axis=1)) <= tol).all(), (g.sum(axis=1), tol)
    assert (g[row_scale == 0] == 0).all()


@pytest.mark.parametrize("labels_kind", ["hard", "soft"])
@HYP
@given(data=st.data())
def test_gradient_is_finite_difference_of_loss(backend, labels_kind, data):
    """cross_entropy_grad == central finite difference of cross_entropy (float64), with every
    option; for reduction='none' the gradient is that of the summed loss."""
    z, y, kw = data.draw(ce_problem(np.float64, max_n=4, max_c=6, soft=labels_kind == "soft"))

    def total(zz):
        loss = fc.cross_entropy(zz, y, **kw)
        return float(np.sum(loss))

    _, grad = fc.cross_entropy_grad(z, y, **kw)
    numeric = central_difference(total, z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(numeric).max()))


@HYP
@given(data=st.data())
def test_shift_invariance(backend, dtype, data):
    """Loss and gradient of cross-entropy are unchanged by z -> z + c (exact grid shift)."""
    n = data.draw(st.integers(1, 5))
    C = data.draw(st.integers(1, 9))
    ticks = data.draw(hnp.arrays(np.int64, (n, C), elements=st.integers(-20 * 1024, 20 * 1024)))
    c = data.draw(st.integers(-1000 * 1024, 1000 * 1024)) / 1024.0
    z = (ticks / 1024.0).astype(dtype)
    zc = (z.astype(np.float64) + c).astype(dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    y = labels(rng, n, C) if data.draw(st.booleans()) else soft_targets(rng, n, C, dtype)
    kw = {"label_smoothing": data.draw(st.sampled_from([0.0, 0.2])), "reduction": "none"}
    tol = rtol_for(dtype)
    loss, grad = fc.cross_entropy_grad(z, y, **kw)
    loss_c, grad_c = fc.cross_entropy_grad(zc, y, **kw)
    np.testing.assert_allclose(loss_c, loss, rtol=tol, atol=tol * 50)
    np.testing.assert_allclose(grad_c, grad, rtol=tol, atol=tol)
    np.testing.assert_allclose(fc.cross_entropy(zc, y, **kw), loss, rtol=tol, atol=tol * 50)


def test_reduction_relations(backend, dtype, rng):
    """sum == sum of 'none'; mean == sum / (sum_i s_i w_{y_i}); the gradients scale alike."""
    n, C = 25, 6
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C)
    sw = nonneg_weights(rng, n, dtype)
    cw = nonneg_weights(rng, C, dtype, zeros=False)
    kw = {"sample_weight": sw, "class_weight": cw, "label_smoothing": 0.3}
    none, g_none = fc.cross_entropy_grad(z, y, reduction="none", **kw)
    total, g_sum = fc.cross_entropy_grad(z, y, reduction="sum", **kw)
    mean, g_mean = fc.cross_entropy_grad(z, y, reduction="mean", **kw)
    denominator = float((sw.astype(np.float64) * cw.astype(np.float64)[y]).sum())
    tol = rtol_for(dtype)
    assert total == pytest.approx(float(none.astype(np.float64).sum()), rel=tol)
    assert mean == pytest.approx(total / denominator, rel=tol)
    np.testing.assert_allclose(g_none, g_sum, rtol=tol, atol=tol * np.abs(g_sum).max())
    np.testing.assert_allclose(g_mean, g_sum / denominator, rtol=tol, atol=tol * np.abs(g_mean).max())


def test_smoothing_one_ignores_labels(backend, dtype, rng):
    """label_smoothing=1 makes the target uniform: the labels no longer matter (without class
    weights), for hard and soft targets alike."""
    n, C = 9, 5
    z = logits(rng, (n, C), dtype)
    a = fc.cross_entropy_grad(z, labels(rng, n, C), label_smoothing=1.0, reduction="sum")
    b = fc.cross_entropy_grad(z, soft_targets(rng, n, C, dtype), label_smoothing=1.0, reduction="sum")
    tol = rtol_for(dtype)
    assert a[0] == pytest.approx(b[0], rel=tol)
    np.testing.assert_allclose(a[1], b[1], rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_onehot_equals_hard(backend, dtype, rng, reduction):
    """One-hot probabilities give the same loss and gradient as the class indices (with
    smoothing; class weights only for 'sum'/'none', whose normalisation is the same for both)."""
    n, C = 14, 6
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C)
    onehot = np.eye(C, dtype=dtype)[y]
    kw = {"reduction": reduction, "label_smoothing": 0.2, "sample_weight": nonneg_weights(rng, n, dtype)}
    if reduction != "mean":
        kw["class_weight"] = nonneg_weights(rng, C, dtype, zeros=False)
    hard = fc.cross_entropy_grad(z, y, **kw)
    soft = fc.cross_entropy_grad(z, onehot, **kw)
    tol = rtol_for(dtype)
    np.testing.assert_allclose(soft[0], hard[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(soft[1], hard[1], rtol=tol, atol=tol * np.abs(hard[1]).max())


@pytest.mark.parametrize("combo", list(itertools.product(["hard", "soft"], ["mean", "none"])))
def test_zero_weight_rows_contribute_nothing(backend, dtype, rng, combo):
    target, reduction = combo
    n, C = 10, 4
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C) if target == "hard" else soft_targets(rng, n, C, dtype)
    sw = np.ones(n, dtype)
    sw[3] = 0.0
    loss, grad = fc.cross_entropy_grad(z, y, sample_weight=sw, reduction=reduction)
    assert (grad[3] == 0).all()
    if reduction == "none":
        assert loss[3] == 0
    keep = np.arange(n) != 3
    sub_loss, sub_grad = fc.cross_entropy_grad(z[keep], y[keep], reduction=reduction)
    tol = rtol_for(dtype)
    np.testing.assert_allclose(np.asarray(loss)[keep] if reduction == "none" else loss, sub_loss, rtol=tol)
    np.testing.assert_allclose(grad[keep], sub_grad, rtol=tol, atol=tol * np.abs(sub_grad).max())
