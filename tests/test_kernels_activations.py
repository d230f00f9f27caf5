"""activation / activation_grad for every activation, every backend, both dtypes: the forward
pass against the float64 reference (itself checked against SciPy/NumPy formulas), the fused
backward (derivative computed from the OUTPUT) against the table of BACKENDS.md and against
central finite differences of the forward pass."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn_core as fc
from _kernels_oracle import (
    ACTIVATIONS,
    HYP,
    activation_oracle,
    assert_close,
    derivative_from_input,
    derivative_from_output,
    logits,
    ref,
    rtol_for,
)

SHAPES = [(1,), (13,), (1, 1), (7, 5), (64, 129), (2, 3, 4), (100_003,), (300, 1001)]


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_matches_reference(backend, dtype, rng, name, shape):
    z = logits(rng, shape, dtype, scale=4.0)
    expected = ref(fc.activation, name, z)
    assert_close(expected, activation_oracle(name, z), np.float64, err_msg="reference vs formula")
    a = fc.activation(name, z)
    assert a.dtype == dtype and a.shape == shape
    assert_close(a, expected, dtype, err_msg=name)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1,), (7, 5), (64, 129), (2, 3, 4)], ids=lambda s: "x".join(map(str, s)))
def test_backward_matches_reference(backend, dtype, rng, name, shape):
    z = logits(rng, shape, dtype, scale=4.0)
    a = ref(fc.activation, name, z).astype(dtype)  # the stored forward output
    upstream = logits(rng, shape, dtype, scale=1.0)
    expected = ref(fc.activation_grad, name, a, upstream)
    formula = upstream.astype(np.float64) * derivative_from_output(name, a)
    assert_close(expected, formula, np.float64, err_msg="reference vs formula")
    g = fc.activation_grad(name, a, upstream)
    assert g.dtype == dtype and g.shape == shape
    assert_close(g, expected, dtype, err_msg=name)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivative_from_output_is_the_derivative(backend, rng, name):
    """In float64, the fused backward equals upstream * f'(z) written in terms of z."""
    z = logits(rng, (300,), np.float64, scale=4.0)
    z = z[np.abs(z) > 1e-3]
    upstream = logits(rng, z.shape, np.float64, scale=1.0)
    g = fc.activation_grad(name, fc.activation(name, z), upstream)
    assert_close(g, upstream * derivative_from_input(name, z), np.float64, rtol=1e-9)


@pytest.mark.parametrize("name", ACTIVATIONS)
@HYP
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.5, 3.0, 20.0]))
def test_backward_is_finite_difference_of_forward(backend, name, seed, scale):
    rng = np.random.default_rng(seed)
    z = logits(rng, (int(rng.integers(1, 30)),), np.float64, scale=scale)
    z = np.where(np.abs(z) < 1e-3, 0.5, z)  # away from the kinks of relu / leaky_relu / elu
    upstream = rng.standard_normal(z.shape)
    g = fc.activation_grad(name, fc.activation(name, z), upstream)
    h = 1e-6 * np.maximum(1.0, np.abs(z))
    numeric = (fc.activation(name, z + h) - fc.activation(name, z - h)) / (2 * h)
    np.testing.assert_allclose(g, upstream * numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("alias, canonical", [("sigmoid", "logistic"), ("linear", "identity")])
def test_aliases(backend, rng, alias, canonical):
    z = logits(rng, (5, 4), np.float64)
    np.testing.assert_array_equal(fc.activation(alias, z), fc.activation(canonical, z))
    a = fc.activation(canonical, z)
    np.testing.assert_array_equal(fc.activation_grad(alias, a, z), fc.activation_grad(canonical, a, z))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_in_place(backend, dtype, rng, name):
    z = logits(rng, (17, 9), dtype)
    expected = fc.activation(name, z.copy())
    assert fc.activation(name, z, out=z) is z
    np.testing.assert_allclose(z, expected, rtol=rtol_for(dtype), atol=0)
    upstream = logits(rng, (17, 9), dtype)
    expected_g = fc.activation_grad(name, z, upstream.copy())
    assert fc.activation_grad(name, z, upstream, out=upstream) is upstream
    np.testing.assert_allclose(upstream, expected_g, rtol=rtol_for(dtype), atol=0)


def test_input_not_modified(backend, dtype, rng):
    z = logits(rng, (8, 8), dtype)
    z0 = z.copy()
    for name in ACTIVATIONS:
        a = fc.activation(name, z)
        fc.activation_grad(name, a, z)
        np.testing.assert_array_equal(z, z0, err_msg=name)
