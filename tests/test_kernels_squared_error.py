"""squared_error / squared_error_grad with the identity, logistic and softmax output activations,
every backend, both dtypes, against the float64 reference (itself checked against a formula with
the softmax Jacobian formed explicitly), and against central finite differences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn_core as fc
from _kernels_oracle import (
    HYP,
    assert_close,
    central_difference,
    expected_sqerr,
    logits,
    nonneg_weights,
    rtol_for,
    soft_targets,
)

ACTS = ("identity", "logistic", "softmax")
REDUCTIONS = ("mean", "sum", "none")
SHAPES = [(1, 1), (3, 1), (1, 5), (8, 2), (16, 10), (50, 64), (9, 300), (700, 200)]


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(backend, dtype, rng, act, shape, reduction):
    z = logits(rng, shape, dtype, scale=2.0)
    y = soft_targets(rng, shape[0], shape[1], dtype) if act == "softmax" else logits(rng, shape, dtype, 1.0)
    kw = {"activation": act, "reduction": reduction, "sample_weight": nonneg_weights(rng, shape[0], dtype)}
    if reduction == "mean" and not kw["sample_weight"].any():
        kw["sample_weight"][0] = 1.0
    exp_loss, exp_grad = expected_sqerr(z, y, **kw)
    loss = fc.squared_error(z, y, **kw)
    loss2, grad = fc.squared_error_grad(z, y, **kw)
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == (shape[0],)
    else:
        assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == shape
    assert_close(loss, exp_loss, dtype, err_msg="loss")
    assert_close(loss2, exp_loss, dtype, err_msg="loss from _grad")
    assert_close(grad, exp_grad, dtype, err_msg="grad")


@pytest.mark.parametrize("act", ["identity", "logistic"])
def test_one_dimensional(backend, dtype, rng, act):
    z = logits(rng, (25,), dtype)
    y = rng.uniform(0, 1, 25).astype(dtype)
    exp_loss, exp_grad = expected_sqerr(z, y, activation=act)
    loss, grad = fc.squared_error_grad(z, y, activation=act)
    assert grad.shape == (25,) and grad.dtype == dtype
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


def test_sigmoid_alias(backend, rng):
    z = logits(rng, (6, 3), np.float64)
    y = rng.uniform(0, 1, (6, 3))
    a = fc.squared_error_grad(z, y, activation="sigmoid")
    b = fc.squared_error_grad(z, y, activation="logistic")
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("act", ACTS)
def test_in_place(backend, dtype, rng, act):
    z = logits(rng, (21, 7), dtype)
    y = soft_targets(rng, 21, 7, dtype)
    loss, grad = fc.squared_error_grad(z.copy(), y, activation=act, reduction="sum")
    loss_ip, grad_ip = fc.squared_error_grad(z, y, activation=act, reduction="sum", out=z)
    assert grad_ip is z
    assert loss_ip == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(z, grad, rtol=rtol_for(dtype), atol=rtol_for(dtype) * np.abs(grad).max())


@pytest.mark.parametrize("act", ACTS)
@HYP
@given(seed=st.integers(0, 2**32 - 1), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans(),
       scale=st.sampled_from([0.5, 2.0, 6.0]))
def test_gradient_is_finite_difference_of_loss(backend, act, seed, reduction, weighted, scale):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    z = logits(rng, shape, np.float64, scale=scale)
    y = rng.uniform(0, 1, shape)
    kw = {"activation": act, "reduction": reduction}
    if weighted:
        kw["sample_weight"] = rng.uniform(0.1, 2, shape[0])
    _, grad = fc.squared_error_grad(z, y, **kw)
    numeric = central_difference(lambda zz: float(np.sum(fc.squared_error(zz, y, **kw))), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(numeric).max()))


def test_logistic_saturation_slows_learning(backend, rng):
    """The documented point of the quadratic cost: with a saturated sigmoid output the squared-error
    gradient vanishes while the cross-entropy gradient does not."""
    z = np.array([[-12.0], [12.0]])
    y = np.array([[1.0], [0.0]])  # confidently wrong
    _, g_sq = fc.squared_error_grad(z, y, activation="logistic", reduction="sum")
    _, g_ce = fc.binary_cross_entropy_grad(z, y, reduction="sum")
    assert np.abs(g_sq).max() < 1e-4
    assert np.abs(g_ce).min() > 0.99
