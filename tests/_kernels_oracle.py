"""Helpers for the kernel tests (tests/test_kernels_*.py): inputs, tolerances and oracles.

Two float64 oracles are used:

* ``ref(...)`` -- the public function run on the ``numpy`` backend with every floating input cast
  to float64 (the NumPy reference computed in float64);
* the ``*_oracle`` functions below -- textbook formulas written independently of
  ``fastnn_core.reference`` (SciPy's softmax family, an explicit target-weight matrix for
  cross-entropy, ...). The ``expected_*`` helpers check that the reference agrees with them before
  returning the reference, so even the ``numpy`` backend in float64 is tested against something
  other than itself.
"""

import os

import numpy as np
import pytest
import scipy.special as sps
from hypothesis import HealthCheck, settings

import fastnn_core as fc

ALL_BACKENDS = ("cython", "numba", "numpy")


def unavailable_reason(name):
    """None if backend ``name`` loads here, else why not."""
    if name not in fc.available_backends():
        return fc.backend_error(name) or "not reported by available_backends()"
    try:
        fc.get_kernels(name)
    except fc.BackendUnavailableError as exc:
        return str(exc)
    return None


def skip_unless_loaded(name):
    """Skip the test (saying why) if backend ``name`` cannot run here; fail instead if it is listed
    in FASTNN_TEST_REQUIRE_BACKENDS (comma-separated, e.g. "cython,numba" in CI)."""
    reason = unavailable_reason(name)
    if reason is None:
        return
    required = {b.strip() for b in os.environ.get("FASTNN_TEST_REQUIRE_BACKENDS", "").split(",")}
    if name in required:
        pytest.fail(f"backend {name!r} is required (FASTNN_TEST_REQUIRE_BACKENDS) but: {reason}")
    pytest.skip(f"backend {name!r} is not available here: {reason}")


def loaded_backends():
    """Names of the backends that load here, fastest first (for tests comparing backends)."""
    return [name for name in ALL_BACKENDS if unavailable_reason(name) is None]


RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

# hypothesis: modest budgets (FASTNN_HYPOTHESIS_EXAMPLES=500 for a deep run), no deadline (first
# calls may compile), and the function-scoped ``backend`` fixture is deliberately shared by all
# examples of one test.
HYP = settings(
    deadline=None,
    max_examples=int(os.environ.get("FASTNN_HYPOTHESIS_EXAMPLES", "25")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def rtol_for(dtype):
    return RTOL[np.dtype(dtype)]


def assert_close(actual, expected, dtype, *, rtol=None, atol_scale=None, err_msg=""):
    """``actual`` within ``rtol`` of the float64 ``expected``, plus an absolute slack of
    ``rtol * atol_scale`` (default: the largest finite magnitude in ``expected``), which
    absorbs the cancellation in entries near zero (e.g. ``p - 1`` in a gradient). Infinities
    must match exactly and NaNs must be in the same places."""
    rtol = rtol_for(dtype) if rtol is None else rtol
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, err_msg)
    if atol_scale is None:
        finite = np.abs(expected[np.isfinite(expected)])
        atol_scale = float(finite.max()) if finite.size else 0.0
        if atol_scale == 0.0:  # all zeros (e.g. the gradient for one class): O(1) quantities
            atol_scale = 1.0
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * atol_scale, equal_nan=True, err_msg=err_msg
    )


# ----------------------------------------------------------------------------------- inputs
def logits(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def non_finite_logits(rng, C, dtype):
    """Six rows of logits: a NaN, a +inf, all -inf, half the classes masked (-inf), two
    ordinary rows (rows 0-2 must come out NaN, rows 3-5 finite)."""
    z = logits(rng, (6, C), dtype)
    z[0, C - 1] = np.nan
    z[1, 0] = np.inf
    z[2] = -np.inf
    z[3, : C // 2] = -np.inf
    return z


def labels(rng, n, C):
    return rng.integers(0, C, size=n)


def soft_targets(rng, n, C, dtype=np.float64):
    return rng.dirichlet(np.ones(C), size=n).astype(dtype)


def nonneg_weights(rng, length, dtype=np.float64, zeros=True):
    """Weights in [0, 2) with some exact zeros (never all zero)."""
    w = rng.uniform(0.1, 2.0, size=length)
    if zeros and length > 2:
        w[rng.choice(length, size=length // 3, replace=False)] = 0.0
    return w.astype(dtype)


def to64(x):
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(np.float64)
    return x


def ref(fn, *args, **kwargs):
    """``fn`` (a public fastnn_core function) on the numpy backend, floating inputs in float64."""
    args = [to64(a) for a in args]
    kwargs = {k: to64(v) for k, v in kwargs.items() if k != "out"}
    with fc.use_backend("numpy"):
        return fn(*args, **kwargs)


# ------------------------------------------------------------------- independent oracles
def softmax_oracle(z):
    return sps.softmax(np.asarray(z, np.float64), axis=1)


def log_softmax_oracle(z):
    return sps.log_softmax(np.asarray(z, np.float64), axis=1)


def logsumexp_oracle(z):
    return sps.logsumexp(np.asarray(z, np.float64), axis=1)


def ce_target_weights(y, n, C, sample_weight, class_weight, eps):
    """The matrix ``q`` of BACKENDS.md, built entry by entry from its definition."""
    w = np.ones(C) if class_weight is None else np.asarray(class_weight, np.float64)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    y = np.asarray(y)
    if y.ndim == 1:
        onehot = np.zeros((n, C))
        onehot[np.arange(n), y] = 1.0
        q = (1 - eps) * onehot * w[y][:, None] + eps / C * w[None, :]
        denominator = float((s * w[y]).sum())
    else:
        q = w[None, :] * ((1 - eps) * np.asarray(y, np.float64) + eps / C)
        denominator = float(s.sum())
    return s[:, None] * q, denominator


def ce_grad_scale(z, y, sample_weight=None, class_weight=None, label_smoothing=0.0, reduction="mean"):
    """The natural size of the entries of a cross-entropy gradient, ``max_i Q_i`` times the
    reduction's scale: ``Q_i p_ic - q_ic`` is a difference of terms of that size."""
    n, C = np.shape(z)
    q, denominator = ce_target_weights(y, n, C, sample_weight, class_weight, label_smoothing)
    Q = float(q.sum(axis=1).max()) if n else 0.0
    return Q / denominator if reduction == "mean" else Q


def ce_oracle(z, y, sample_weight=None, class_weight=None, label_smoothing=0.0, reduction="mean"):
    """(loss, grad) of softmax cross-entropy from the textbook formulas, float64."""
    z = np.asarray(z, np.float64)
    n, C = z.shape
    q, denominator = ce_target_weights(y, n, C, sample_weight, class_weight, label_smoothing)
    logp = log_softmax_oracle(z)
    with np.errstate(invalid="ignore"):
        rows = -np.where(q != 0, q * logp, 0.0).sum(axis=1)
    grad = q.sum(axis=1, keepdims=True) * softmax_oracle(z) - q
    if reduction == "none":
        return rows, grad
    scale = 1.0 / denominator if reduction == "mean" else 1.0
    return rows.sum() * scale, grad * scale


def _elementwise_scale(z, sample_weight, reduction):
    n = z.shape[0]
    k = 1 if z.ndim == 1 else z.shape[1]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    scale = 1.0 / (s.sum() * k) if reduction == "mean" else 1.0
    return s.reshape((n,) + (1,) * (z.ndim - 1)), scale


def _finish_elementwise(elem, grad, s, scale, reduction):
    rows = (s * elem).reshape(elem.shape[0], -1).sum(axis=1)
    loss = rows if reduction == "none" else rows.sum() * scale
    return loss, s * grad * scale


def bce_oracle(z, y, sample_weight=None, reduction="mean"):
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    s, scale = _elementwise_scale(z, sample_weight, reduction)
    elem = np.logaddexp(0.0, z) - y * z  # -y log(sigmoid z) - (1 - y) log(1 - sigmoid z)
    return _finish_elementwise(elem, sps.expit(z) - y, s, scale, reduction)


def sqerr_oracle(z, y, activation="identity", sample_weight=None, reduction="mean"):
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    s, scale = _elementwise_scale(z, sample_weight, reduction)
    if activation == "identity":
        a, grad = z, z - y
    elif activation in ("logistic", "sigmoid"):
        a = sps.expit(z)
        grad = (a - y) * a * (1 - a)
    else:  # softmax: J^T (a - y) with the Jacobian J = diag(a) - a a^T
        z2 = z.reshape(z.shape[0], -1)
        a = sps.softmax(z2, axis=1)
        d = a - y.reshape(a.shape)
        if a.shape[1] <= 64:  # formed explicitly while it is small
            jac = np.einsum("ij,jk->ijk", a, np.eye(a.shape[1])) - a[:, :, None] * a[:, None, :]
            grad = np.einsum("ijk,ij->ik", jac, d)
        else:
            grad = a * d - a * (a * d).sum(axis=1, keepdims=True)
        grad = grad.reshape(z.shape)
        a = a.reshape(z.shape)
    return _finish_elementwise(0.5 * (a - y) ** 2, grad, s, scale, reduction)


ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu")


def activation_oracle(name, z):
    z = np.asarray(z, np.float64)
    return {
        "identity": lambda: z.copy(),
        "logistic": lambda: sps.expit(z),
        "tanh": lambda: np.tanh(z),
        "relu": lambda: np.maximum(z, 0.0),
        "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
        "softplus": lambda: np.logaddexp(0.0, z),
        "elu": lambda: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    }[name]()


def derivative_from_output(name, a):
    """f'(z) written in terms of a = f(z), the table of BACKENDS.md."""
    a = np.asarray(a, np.float64)
    return {
        "identity": lambda: np.ones_like(a),
        "logistic": lambda: a * (1 - a),
        "tanh": lambda: 1 - a * a,
        "relu": lambda: (a > 0).astype(np.float64),
        "leaky_relu": lambda: np.where(a > 0, 1.0, 0.01),
        "softplus": lambda: -np.expm1(-a),
        "elu": lambda: np.where(a > 0, 1.0, a + 1),
    }[name]()


def derivative_from_input(name, z):
    z = np.asarray(z, np.float64)
    return {
        "identity": lambda: np.ones_like(z),
        "logistic": lambda: sps.expit(z) * sps.expit(-z),
        "tanh": lambda: 1 / np.cosh(z) ** 2,
        "relu": lambda: (z > 0).astype(np.float64),
        "leaky_relu": lambda: np.where(z > 0, 1.0, 0.01),
        "softplus": lambda: sps.expit(z),
        "elu": lambda: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    }[name]()


# ----------------------------------------- the reference in float64, checked against the oracles
def expected_softmax_family(z):
    z64 = np.asarray(z, np.float64)
    sm, lsm, lse = ref(fc.softmax, z64), ref(fc.log_softmax, z64), ref(fc.logsumexp, z64)
    assert_close(sm, softmax_oracle(z64), np.float64, err_msg="reference softmax vs SciPy")
    assert_close(lsm, log_softmax_oracle(z64), np.float64, err_msg="reference log_softmax vs SciPy")
    assert_close(lse, logsumexp_oracle(z64), np.float64, err_msg="reference logsumexp vs SciPy")
    return sm, lsm, lse


def expected_ce(z, y, **kw):
    loss, grad = ref(fc.cross_entropy_grad, z, y, **kw)
    kw64 = {k: to64(v) for k, v in kw.items()}
    oloss, ograd = ce_oracle(z, to64(y), **kw64)
    assert_close(loss, oloss, np.float64, err_msg="reference cross-entropy loss vs formula")
    assert_close(grad, ograd, np.float64, atol_scale=ce_grad_scale(z, to64(y), **kw64),
                 err_msg="reference cross-entropy grad vs formula")
    return loss, grad


def expected_bce(z, y, **kw):
    loss, grad = ref(fc.binary_cross_entropy_grad, z, y, **kw)
    oloss, ograd = bce_oracle(z, y, **{k: to64(v) for k, v in kw.items()})
    assert_close(loss, oloss, np.float64, err_msg="reference bce loss vs formula")
    assert_close(grad, ograd, np.float64, err_msg="reference bce grad vs formula")
    return loss, grad


def expected_sqerr(z, y, **kw):
    loss, grad = ref(fc.squared_error_grad, z, y, **kw)
    oloss, ograd = sqerr_oracle(z, y, **{k: to64(v) for k, v in kw.items()})
    assert_close(loss, oloss, np.float64, err_msg="reference squared-error loss vs formula")
    assert_close(grad, ograd, np.float64, err_msg="reference squared-error grad vs formula")
    return loss, grad


def central_difference(f, z, h=1e-6):
    """Central finite-difference gradient of the scalar function ``f`` at float64 ``z``."""
    z = np.array(z, dtype=np.float64)
    g = np.empty_like(z)
    flat, gflat = z.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        x = flat[i]
        step = h * max(1.0, abs(x))
        flat[i] = x + step
        fp = f(z)
        flat[i] = x - step
        fm = f(z)
        flat[i] = x
        gflat[i] = (fp - fm) / (2 * step)
    return g


def check_rows_past_first_vector(rng, dtype, C, in_place):
    """Rows whose maximum is 10 to 100 (in float64 up to 800) past the maximum of their first 16
    logits, at column 16, in the middle and last, the label on it or elsewhere; NaN and +inf past
    the first vector; a first vector of masked classes, masked classes further on, a logit of
    -1e300 (float: -1e30) and one whose exp is subnormal: cross-entropy with and without class
    weights and smoothing, and softmax, against the oracles (written in place or not)."""
    gaps = [10.0, 40.0, 44.0, 45.0, 80.0] + ([600.0, 700.0, 800.0] if dtype == np.float64
                                            else [88.0, 100.0])
    rows = []
    for gap in gaps:
        for col in (16, C // 2, C - 1):
            row = rng.standard_normal(C)
            row[col] = row[:16].max() + gap
            rows.append(row)
    masked = rng.standard_normal(C)
    masked[:16] = -np.inf
    masked_later = rng.standard_normal(C)
    masked_later[[16, C // 2, C - 1]] = -np.inf
    spread = rng.standard_normal(C)
    spread[C // 2] = -1e300 if dtype == np.float64 else -1e30
    spread[C - 1] = spread[:16].max() - (720.0 if dtype == np.float64 else 95.0)  # subnormal exp
    extra = [masked, masked_later, spread]
    z = np.array(rows + extra).astype(dtype)
    n = len(z)
    y = np.where(np.arange(n) % 2 == 0, rng.integers(0, C, n), np.argmax(z, axis=1))
    y[-len(extra):] = [20, 5, C - 1]  # finite classes of the masked rows
    w = rng.uniform(0.5, 2, C).astype(dtype)
    for kw in ({}, {"class_weight": w, "label_smoothing": 0.1}):
        kw64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v)
                for k, v in kw.items()}
        exp_loss, exp_grad = ce_oracle(z.astype(np.float64), y, reduction="none", **kw64)
        zc = z.copy()
        loss, grad = fc.cross_entropy_grad(zc, y, reduction="none", out=zc if in_place else None,
                                           **kw)
        assert_close(loss, exp_loss, dtype)
        assert_close(grad, exp_grad, dtype,
                     atol_scale=ce_grad_scale(z, y, reduction="none", **kw64))
        assert_close(fc.cross_entropy(z, y, reduction="none", **kw), exp_loss, dtype)
    zc = z.copy()
    assert_close(fc.softmax(zc, out=zc if in_place else None), softmax_oracle(z), dtype)
    for bad in (np.nan, np.inf):
        zb = z[:2].copy()
        zb[:, C // 2] = bad
        loss, grad = fc.cross_entropy_grad(zb, y[:2], reduction="none")
        assert np.isnan(loss).all() and np.isnan(grad).all()
