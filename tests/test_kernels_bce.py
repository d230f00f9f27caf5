"""binary_cross_entropy / binary_cross_entropy_grad on every backend, both dtypes, against the
float64 reference (itself checked against ``logaddexp``/``expit``), and the gradient against a
central finite difference of the loss."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn_core as fc
from _kernels_oracle import (
    HYP,
    assert_close,
    central_difference,
    expected_bce,
    logits,
    nonneg_weights,
    rtol_for,
)

REDUCTIONS = ("mean", "sum", "none")
SHAPES = [(1,), (7,), (1, 1), (5, 1), (1, 6), (16, 3), (64, 100), (1000,), (300, 257), (1000, 200)]


def _targets(rng, shape, dtype, kind):
    if kind == "binary":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.uniform(0, 1, size=shape).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_matches_reference(backend, dtype, rng, shape, reduction, weighted):
    z = logits(rng, shape, dtype, scale=4.0)
    y = _targets(rng, shape, dtype, "binary" if len(shape) == 2 else "prob")
    kw = {"reduction": reduction}
    if weighted:
        kw["sample_weight"] = nonneg_weights(rng, shape[0], dtype)
    exp_loss, exp_grad = expected_bce(z, y, **kw)
    loss = fc.binary_cross_entropy(z, y, **kw)
    loss2, grad = fc.binary_cross_entropy_grad(z, y, **kw)
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == (shape[0],)
    else:
        assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == shape
    assert_close(loss, exp_loss, dtype, err_msg="loss")
    assert_close(loss2, exp_loss, dtype, err_msg="loss from _grad")
    assert_close(grad, exp_grad, dtype, err_msg="grad")


def test_gradient_is_sigmoid_minus_target(backend, dtype, rng):
    z = logits(rng, (40, 3), dtype, scale=5.0)
    y = rng.uniform(0, 1, (40, 3)).astype(dtype)
    _, grad = fc.binary_cross_entropy_grad(z, y, reduction="sum")
    sigmoid = 1 / (1 + np.exp(-z.astype(np.float64)))
    assert_close(grad, sigmoid - y, dtype)


def test_in_place(backend, dtype, rng):
    z = logits(rng, (33, 4), dtype)
    y = _targets(rng, (33, 4), dtype, "binary")
    sw = nonneg_weights(rng, 33, dtype)
    loss, grad = fc.binary_cross_entropy_grad(z.copy(), y, sample_weight=sw)
    loss_ip, grad_ip = fc.binary_cross_entropy_grad(z, y, sample_weight=sw, out=z)
    assert grad_ip is z
    assert loss_ip == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(z, grad, rtol=rtol_for(dtype), atol=rtol_for(dtype) * np.abs(grad).max())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@HYP
@given(seed=st.integers(0, 2**32 - 1), two_d=st.booleans(), weighted=st.booleans(),
       scale=st.sampled_from([0.5, 3.0, 10.0]))
def test_gradient_is_finite_difference_of_loss(backend, reduction, seed, two_d, weighted, scale):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 4))) if two_d else (int(rng.integers(1, 7)),)
    z = logits(rng, shape, np.float64, scale=scale)
    y = rng.uniform(0, 1, shape)
    kw = {"reduction": reduction}
    if weighted:
        kw["sample_weight"] = rng.uniform(0.1, 2, shape[0])
    _, grad = fc.binary_cross_entropy_grad(z, y, **kw)
    numeric = central_difference(lambda zz: float(np.sum(fc.binary_cross_entropy(zz, y, **kw))), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(numeric).max()))
