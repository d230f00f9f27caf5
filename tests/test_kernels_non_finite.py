"""NaN and +-inf in the elementwise functions (binary_cross_entropy, squared_error, activations and
their gradients): the documented behaviour of fastnn_core/BACKENDS.md ("Non-finite input"), the
same on every backend, in both dtypes. The softmax family and cross-entropy are covered by
test_kernels_numerical.py."""

import numpy as np
import pytest

import fastnn_core as fc

NAN, INF = np.nan, np.inf
Z = np.array([NAN, INF, -INF, 0.0, 1.0])


def _check(actual, expected, dtype):
    """Same NaN positions and infinities; finite entries to the dtype's rounding."""
    actual = np.asarray(actual)
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=1e-6, atol=1e-7,
                               equal_nan=True)


@pytest.fixture(autouse=True)
def _quiet():
    with np.errstate(all="ignore"):
        yield


@pytest.mark.parametrize("y, loss, grad", [
    (0.0, [NAN, NAN, NAN, np.log(2), np.log1p(np.e)], [NAN, 1, 0, 0.5, 1 / (1 + np.exp(-1))]),
    (1.0, [NAN, NAN, INF, np.log(2), np.log1p(np.exp(-1))],
     [NAN, 0, -1, -0.5, 1 / (1 + np.exp(-1)) - 1]),
])
def test_bce_non_finite_logits(backend, dtype, y, loss, grad):
    z = Z.astype(dtype)
    rows, g = fc.binary_cross_entropy_grad(z, np.full_like(z, y), reduction="none")
    _check(rows, loss, dtype)
    _check(g, grad, dtype)
    assert np.isnan(fc.binary_cross_entropy(z, np.full_like(z, y)))


def test_bce_non_finite_targets(backend, dtype):
    z = np.zeros(3, dtype)
    y = np.array([NAN, INF, 0.0], dtype)
    rows, g = fc.binary_cross_entropy_grad(z, y, reduction="none")
    _check(rows, [NAN, NAN, np.log(2)], dtype)
    _check(g, [NAN, -INF, 0.5], dtype)


def test_bce_row_with_nan_is_nan(backend, dtype):
    z = np.array([[0.0, NAN], [0.0, 1.0]], dtype)
    rows = fc.binary_cross_entropy(z, np.zeros_like(z), reduction="none")
    assert np.isnan(rows[0]) and np.isfinite(rows[1])


def test_squared_error_identity(backend, dtype):
    z = Z.astype(dtype)
    rows, g = fc.squared_error_grad(z, np.full_like(z, 0.5), reduction="none")
    _check(rows, [NAN, INF, INF, 0.125, 0.125], dtype)
    _check(g, [NAN, INF, -INF, -0.5, 0.5], dtype)
    rows, g = fc.squared_error_grad(np.zeros(2, dtype), np.array([NAN, INF], dtype),
                                    reduction="none")
    _check(rows, [NAN, INF], dtype)
    _check(g, [NAN, -INF], dtype)


def test_squared_error_logistic(backend, dtype):
    z = Z.astype(dtype)
    rows, g = fc.squared_error_grad(z, np.full_like(z, 0.5), activation="logistic",
                                    reduction="none")
    s1 = 1 / (1 + np.exp(-1))
    _check(rows, [NAN, 0.125, 0.125, 0.0, 0.5 * (s1 - 0.5) ** 2], dtype)
    _check(g, [NAN, 0.0, 0.0, 0.0, (s1 - 0.5) * s1 * (1 - s1)], dtype)


def test_squared_error_softmax_rows(backend, dtype):
    """Row-wise like softmax: NaN / +inf poison the row, -inf is a class with a = 0."""
    z = np.array([[0.0, -INF, 1.0], [0.0, INF, 1.0], [NAN, 0.0, 1.0]], dtype)
    rows, g = fc.squared_error_grad(z, np.full_like(z, 0.3), activation="softmax",
                                    reduction="none")
    assert np.isfinite(rows[0]) and np.isfinite(g[0]).all() and g[0, 1] == 0
    assert np.isnan(rows[1:]).all() and np.isnan(g[1:]).all()


ACTIVATIONS = {  # name: f(NaN), f(+inf), f(-inf)
    "identity": (NAN, INF, -INF),
    "logistic": (NAN, 1.0, 0.0),
    "tanh": (NAN, 1.0, -1.0),
    "relu": (NAN, INF, 0.0),
    "leaky_relu": (NAN, INF, -INF),
    "softplus": (NAN, INF, 0.0),
    "elu": (NAN, INF, -1.0),
}
# f'(a) for a = NaN: computed from a (NaN), or the a <= 0 branch of a comparison
DERIVATIVE_AT_NAN = {"identity": 1.0, "logistic": NAN, "tanh": NAN, "relu": 0.0,
                     "leaky_relu": 0.01, "softplus": NAN, "elu": NAN}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(backend, dtype, name):
    z = np.array([NAN, INF, -INF], dtype)
    _check(fc.activation(name, z), ACTIVATIONS[name], dtype)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grad(backend, dtype, name):
    a = np.full(3, 0.5, dtype)  # f'(0.5) != 0 for every function
    fprime = fc.activation_grad(name, a, np.ones(3, dtype))[0]
    upstream = np.array([NAN, INF, -INF], dtype)
    _check(fc.activation_grad(name, a, upstream), [NAN, INF * np.sign(fprime),
                                                   -INF * np.sign(fprime)], dtype)
    _check(fc.activation_grad(name, np.array([NAN], dtype), np.ones(1, dtype)),
           [DERIVATIVE_AT_NAN[name]], dtype)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_activation_grad_zero_derivative_times_inf(backend, dtype, name):
    """relu's f'(a <= 0) = 0 times an infinite upstream is NaN (0 * inf), not 0; leaky_relu's
    0.01 keeps the infinity."""
    a = np.array([0.0, -1.0], dtype)
    out = fc.activation_grad(name, a, np.array([INF, -INF], dtype))
    _check(out, [NAN, NAN] if name == "relu" else [INF, -INF], dtype)
