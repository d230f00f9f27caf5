"""Memory layout and dtypes: ``out=`` aliasing the input (in place), non-contiguous and mixed-dtype
inputs (correct results; a copy is fine), and dtype preservation (float32 in -> float32 out)."""

import itertools

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import (
    ACTIVATIONS,
    assert_close,
    ce_grad_scale,
    expected_bce,
    expected_ce,
    expected_softmax_family,
    expected_sqerr,
    labels,
    logits,
    nonneg_weights,
    ref,
    rtol_for,
    soft_targets,
)

CE_OPTIONS = list(
    itertools.product(["hard", "soft"], ["none", "sample", "class", "both"], [0.0, 0.2], ["mean", "sum", "none"])
)


@pytest.mark.parametrize("target, weights, smoothing, reduction", CE_OPTIONS)
def test_cross_entropy_grad_out_is_z(backend, dtype, rng, target, weights, smoothing, reduction):
    """cross_entropy_grad(z, y, out=z) gives the same loss and gradient as without ``out``."""
    n, C = 29, 13
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C) if target == "hard" else soft_targets(rng, n, C, dtype)
    kw = {"label_smoothing": smoothing, "reduction": reduction}
    if weights in ("sample", "both"):
        kw["sample_weight"] = nonneg_weights(rng, n, dtype)
    if weights in ("class", "both"):
        kw["class_weight"] = nonneg_weights(rng, C, dtype, zeros=False)
    loss, grad = fc.cross_entropy_grad(z.copy(), y, **kw)
    loss_ip, grad_ip = fc.cross_entropy_grad(z, y, out=z, **kw)
    assert grad_ip is z
    tol = rtol_for(dtype)
    np.testing.assert_allclose(loss_ip, loss, rtol=tol, atol=0)
    np.testing.assert_allclose(z, grad, rtol=tol, atol=tol * ce_grad_scale(z, y, **kw))


def test_cross_entropy_grad_separate_out_buffer(backend, dtype, rng):
    z = logits(rng, (10, 4), dtype)
    z0 = z.copy()
    y = labels(rng, 10, 4)
    out = np.full_like(z, np.nan)
    loss, grad = fc.cross_entropy_grad(z, y, out=out)
    assert grad is out
    np.testing.assert_array_equal(z, z0)  # the logits are not touched
    exp_loss, exp_grad = expected_ce(z, y)
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


def _variants(z):
    """Non-contiguous views holding the same values as ``z`` (n, C)."""
    n, C = z.shape
    wide = np.zeros((n, 2 * C), z.dtype)
    wide[:, ::2] = z
    reversed_rows = np.ascontiguousarray(z[::-1])[::-1]
    fortran = np.asfortranarray(z)
    stacked = np.zeros((2 * n, C), z.dtype)
    stacked[::2] = z
    return {
        "column-stride": wide[:, ::2],
        "negative-stride": reversed_rows,
        "fortran": fortran,
        "row-stride": stacked[::2],
    }


@pytest.mark.parametrize("layout", ["column-stride", "negative-stride", "fortran", "row-stride"])
def test_non_contiguous_inputs(backend, dtype, rng, layout):
    n, C = 11, 7
    z = logits(rng, (n, C), dtype)
    zv = _variants(z)[layout]
    assert not zv.flags.c_contiguous
    sm, lsm, lse = expected_softmax_family(z)
    assert_close(fc.softmax(zv), sm, dtype)
    assert_close(fc.log_softmax(zv), lsm, dtype)
    assert_close(fc.logsumexp(zv), lse, dtype)

    y = labels(rng, n, C)
    y_strided = np.repeat(y, 2)[::2]
    sw = nonneg_weights(rng, n, dtype)
    sw_strided = np.repeat(sw, 3)[::3]
    cw = nonneg_weights(rng, C, dtype, zeros=False)
    cw_strided = np.repeat(cw, 2)[::2]
    kw = {"label_smoothing": 0.1}
    exp_loss, exp_grad = expected_ce(z, y, sample_weight=sw, class_weight=cw, **kw)
    loss, grad = fc.cross_entropy_grad(zv, y_strided, sample_weight=sw_strided, class_weight=cw_strided, **kw)
    assert grad.dtype == dtype
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)

    t = soft_targets(rng, n, C, dtype)
    tv = _variants(t)[layout]
    exp_loss, exp_grad = expected_ce(z, t)
    loss, grad = fc.cross_entropy_grad(zv, tv)
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)

    b = rng.integers(0, 2, (n, C)).astype(dtype)
    exp_loss, exp_grad = expected_bce(z, b, sample_weight=sw)
    loss, grad = fc.binary_cross_entropy_grad(zv, _variants(b)[layout], sample_weight=sw_strided)
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)

    for act in ("identity", "logistic", "softmax"):
        exp_loss, exp_grad = expected_sqerr(z, t, activation=act)
        loss, grad = fc.squared_error_grad(zv, tv, activation=act)
        assert_close(loss, exp_loss, dtype, err_msg=act)
        assert_close(grad, exp_grad, dtype, err_msg=act)

    for name in ACTIVATIONS:
        a = fc.activation(name, zv)
        assert a.shape == z.shape
        assert_close(a, ref(fc.activation, name, z), dtype, err_msg=name)
        g = fc.activation_grad(name, _variants(a)[layout], zv)
        assert_close(g, ref(fc.activation_grad, name, a, z), dtype, err_msg=name)


def test_mixed_dtypes(backend, rng):
    """float32 logits with float64 probabilities compute in float64 (the wider input); float32
    logits with float64 weights stay float32; integer logits compute in float64."""
    n, C = 8, 5
    z32 = logits(rng, (n, C), np.float32)
    t64 = soft_targets(rng, n, C, np.float64)
    loss, grad = fc.cross_entropy_grad(z32, t64)
    assert grad.dtype == np.float64
    exp_loss, exp_grad = expected_ce(z32.astype(np.float64), t64)
    assert_close(loss, exp_loss, np.float64)
    assert_close(grad, exp_grad, np.float64)

    y = labels(rng, n, C)
    sw64 = nonneg_weights(rng, n, np.float64)
    cw64 = nonneg_weights(rng, C, np.float64, zeros=False)
    loss, grad = fc.cross_entropy_grad(z32, y, sample_weight=sw64, class_weight=cw64)
    assert grad.dtype == np.float32
    exp_loss, exp_grad = expected_ce(z32, y, sample_weight=sw64.astype(np.float32),
                                     class_weight=cw64.astype(np.float32))
    assert_close(loss, exp_loss, np.float32)
    assert_close(grad, exp_grad, np.float32)

    zi = rng.integers(-5, 5, (n, C))
    p = fc.softmax(zi)
    assert p.dtype == np.float64
    assert_close(p, expected_softmax_family(zi.astype(np.float64))[0], np.float64)

    z64 = z32.astype(np.float64)
    t32 = t64.astype(np.float32)
    loss, grad = fc.squared_error_grad(z64, t32, activation="softmax")
    assert grad.dtype == np.float64
    exp_loss, exp_grad = expected_sqerr(z64, t32.astype(np.float64), activation="softmax")
    assert_close(loss, exp_loss, np.float64)
    assert_close(grad, exp_grad, np.float64)

    a32 = fc.activation("tanh", z32)
    g = fc.activation_grad("tanh", a32, z64)
    assert g.dtype == np.float64
    assert_close(g, z64 * (1 - a32.astype(np.float64) ** 2), np.float64)


@pytest.mark.parametrize("y_dtype", [np.int64, np.int8, np.bool_])
def test_float32_logits_with_integer_targets_stay_float32(backend, rng, y_dtype):
    """0/1 targets given as integers must not up-cast float32 logits (issue 2: "no silent up-cast
    copies"): the loss is computed in float32 and the gradient comes back float32."""
    z = logits(rng, (9, 3), np.float32)
    y = rng.integers(0, 2, (9, 3)).astype(y_dtype)
    _, grad = fc.binary_cross_entropy_grad(z, y)
    assert grad.dtype == np.float32
    _, grad = fc.squared_error_grad(z, y, activation="logistic")
    assert grad.dtype == np.float32


def test_float32_in_float32_out(backend, rng):
    n, C = 6, 4
    z = logits(rng, (n, C), np.float32)
    y = labels(rng, n, C)
    t = soft_targets(rng, n, C, np.float32)
    sw = nonneg_weights(rng, n, np.float32)
    outputs = {
        "softmax": fc.softmax(z),
        "log_softmax": fc.log_softmax(z),
        "logsumexp": fc.logsumexp(z),
        "ce none": fc.cross_entropy(z, y, reduction="none"),
        "ce grad": fc.cross_entropy_grad(z, y, sample_weight=sw)[1],
        "ce soft grad": fc.cross_entropy_grad(z, t, reduction="none")[1],
        "bce none": fc.binary_cross_entropy(z, t, reduction="none"),
        "bce grad": fc.binary_cross_entropy_grad(z, t)[1],
        "sqerr grad": fc.squared_error_grad(z, t, activation="softmax")[1],
        "activation": fc.activation("elu", z),
        "activation_grad": fc.activation_grad("elu", fc.activation("elu", z), z),
    }
    for what, arr in outputs.items():
        assert arr.dtype == np.float32, what
    for loss in (fc.cross_entropy(z, y), fc.binary_cross_entropy(z, t), fc.squared_error(z, t)):
        assert type(loss) is float


def _frozen(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def test_read_only_inputs(backend, dtype, rng):
    """Inputs that are only read may be read-only arrays (np.broadcast_to views, memory maps,
    arrays flagged non-writeable): every function gives the same result as with writeable copies."""
    n, C = 9, 5
    z = _frozen(logits(rng, (n, C), dtype))
    y = _frozen(labels(rng, n, C))
    t = _frozen(soft_targets(rng, n, C, dtype))
    sw = _frozen(nonneg_weights(rng, n, dtype))
    cw = _frozen(nonneg_weights(rng, C, dtype, zeros=False))
    b = _frozen(rng.integers(0, 2, (n, C)).astype(dtype))
    calls = {
        "softmax": lambda z, y, t, sw, cw, b: fc.softmax(z),
        "log_softmax": lambda z, y, t, sw, cw, b: fc.log_softmax(z),
        "logsumexp": lambda z, y, t, sw, cw, b: fc.logsumexp(z),
        "cross_entropy": lambda z, y, t, sw, cw, b: fc.cross_entropy(z, y),
        "cross_entropy_grad": lambda z, y, t, sw, cw, b: fc.cross_entropy_grad(z, y)[1],
        "cross_entropy_grad weighted": lambda z, y, t, sw, cw, b: fc.cross_entropy_grad(
            z, y, sample_weight=sw, class_weight=cw, label_smoothing=0.1)[1],
        "cross_entropy_grad soft": lambda z, y, t, sw, cw, b: fc.cross_entropy_grad(
            z, t, sample_weight=sw, class_weight=cw)[1],
        "binary_cross_entropy_grad": lambda z, y, t, sw, cw, b: fc.binary_cross_entropy_grad(
            z, b, sample_weight=sw)[1],
        "squared_error_grad": lambda z, y, t, sw, cw, b: fc.squared_error_grad(z, t, activation="softmax")[1],
        "activation": lambda z, y, t, sw, cw, b: fc.activation("elu", z),
        "activation_grad": lambda z, y, t, sw, cw, b: fc.activation_grad("elu", z, t),
    }
    failures = {}
    for what, call in calls.items():
        expected = call(*(np.array(a) for a in (z, y, t, sw, cw, b)))
        try:
            got = call(z, y, t, sw, cw, b)
        except Exception as exc:  # collect them all: one report per backend
            failures[what] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            continue
        np.testing.assert_allclose(got, expected, rtol=rtol_for(dtype), err_msg=what)
    p, m, v = (np.zeros(n * C, dtype) for _ in range(3))
    try:
        fc.adam_step(p, z.reshape(-1), m, v, lr=0.1, step=1)
    except Exception as exc:
        failures["adam_step (read-only grad)"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    assert not failures, failures


IN_PLACE_LARGE = {
    "softmax": lambda z, y, t, sw, out: fc.softmax(z, out=out),
    "log_softmax": lambda z, y, t, sw, out: fc.log_softmax(z, out=out),
    "ce hard": lambda z, y, t, sw, out: fc.cross_entropy_grad(
        z, y, sample_weight=sw, label_smoothing=0.1, out=out)[1],
    "ce soft": lambda z, y, t, sw, out: fc.cross_entropy_grad(z, t, reduction="none", out=out)[1],
    "bce": lambda z, y, t, sw, out: fc.binary_cross_entropy_grad(z, t, sample_weight=sw, out=out)[1],
    "sqerr identity": lambda z, y, t, sw, out: fc.squared_error_grad(z, t, out=out)[1],
    "sqerr logistic": lambda z, y, t, sw, out: fc.squared_error_grad(z, t, activation="logistic", out=out)[1],
    "sqerr softmax": lambda z, y, t, sw, out: fc.squared_error_grad(z, t, activation="softmax", out=out)[1],
    "activation": lambda z, y, t, sw, out: fc.activation("elu", z, out=out),
    "activation_grad": lambda z, y, t, sw, out: fc.activation_grad("logistic", t, z, out=out),
}


@pytest.mark.parametrize("what", list(IN_PLACE_LARGE))
def test_in_place_large(backend, dtype, rng, what):
    """out= aliasing the input on an array large enough for the parallel paths (600 x 1000)
    gives what a separate output gives."""
    n, C = 600, 1000
    z = logits(rng, (n, C), dtype)
    y = labels(rng, n, C)
    t = soft_targets(rng, n, C, dtype)
    sw = nonneg_weights(rng, n, dtype)
    call = IN_PLACE_LARGE[what]
    z0 = z.copy()
    expected = call(z, y, t, sw, None)
    assert expected is not z
    np.testing.assert_array_equal(z, z0)
    result = call(z, y, t, sw, z)
    assert result is z
    tol = rtol_for(dtype)
    np.testing.assert_allclose(z, expected, rtol=tol, atol=tol * np.abs(expected).max())
