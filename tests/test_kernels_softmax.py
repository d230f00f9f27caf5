"""softmax, log_softmax and logsumexp on every backend, float32 and float64, against the float64
reference (itself checked against SciPy), plus hypothesis properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnn_core as fc
from _kernels_oracle import HYP, assert_close, expected_softmax_family, logits, rtol_for

SHAPES = [(1, 1), (1, 2), (4, 1), (2, 3), (3, 10), (17, 5), (64, 33), (5, 257), (100, 1000), (3, 4099), (20000, 10)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_family_matches_reference(backend, dtype, rng, shape):
    z = logits(rng, shape, dtype)
    sm, lsm, lse = expected_softmax_family(z)

    p = fc.softmax(z)
    assert p.dtype == dtype and p.shape == shape
    assert_close(p, sm, dtype, err_msg="softmax")

    lp = fc.log_softmax(z)
    assert lp.dtype == dtype and lp.shape == shape
    assert_close(lp, lsm, dtype, err_msg="log_softmax")

    s = fc.logsumexp(z)
    assert s.dtype == dtype and s.shape == (shape[0],)
    assert_close(s, lse, dtype, err_msg="logsumexp")


def test_input_not_modified_and_out_is_returned(backend, dtype, rng):
    z = logits(rng, (9, 13), dtype)
    z0 = z.copy()
    out = np.full_like(z, np.nan)
    assert fc.softmax(z, out=out) is out
    np.testing.assert_array_equal(z, z0)
    assert_close(out, expected_softmax_family(z0)[0], dtype)
    out[...] = np.nan
    assert fc.log_softmax(z, out=out) is out
    np.testing.assert_array_equal(z, z0)
    assert_close(out, expected_softmax_family(z0)[1], dtype)
    fc.logsumexp(z)
    np.testing.assert_array_equal(z, z0)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_in_place(backend, dtype, rng, fn):
    z = logits(rng, (31, 47), dtype)
    expected = getattr(fc, fn)(z.copy())
    result = getattr(fc, fn)(z, out=z)
    assert result is z
    np.testing.assert_allclose(z, expected, rtol=rtol_for(dtype), atol=rtol_for(dtype))


def _rows(dtype, max_abs):
    width = 32 if dtype == np.float32 else 64
    return hnp.arrays(
        dtype,
        st.tuples(st.integers(1, 6), st.integers(1, 12)),
        elements=st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False, width=width),
    )


@pytest.mark.parametrize("max_abs", [10.0, 1e4], ids=["moderate", "huge"])  # huge: 1e300 in float64
@HYP
@given(data=st.data())
def test_softmax_properties(backend, dtype, max_abs, data):
    """Rows of softmax sum to 1, entries in [0, 1]; log_softmax <= 0 and consistent with softmax;
    logsumexp >= the row max and equal to z - log_softmax."""
    if max_abs > 10 and dtype == np.float64:
        max_abs = 1e300
    z = data.draw(_rows(dtype, max_abs))
    tol = rtol_for(dtype)
    p = fc.softmax(z)
    assert np.isfinite(p).all()
    assert (p >= 0).all() and (p <= 1 + tol).all()
    np.testing.assert_allclose(p.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=z.shape[1] * tol)
    lp = fc.log_softmax(z)
    assert np.isfinite(lp).all() and (lp <= tol).all()
    lse = fc.logsumexp(z)
    z64 = z.astype(np.float64)
    row_max = z64.max(axis=1)
    assert (lse.astype(np.float64) >= row_max - tol * (np.abs(row_max) + 1)).all()
    # z - lse == log_softmax (absolute error relative to the magnitudes involved)
    scale = np.abs(z64).max() + 1.0
    np.testing.assert_allclose(z64 - lse[:, None], lp, rtol=0, atol=4 * tol * scale)
    # where softmax is not tiny, exp(log_softmax) == softmax
    big = p > 1e-3
    np.testing.assert_allclose(np.exp(lp.astype(np.float64))[big], p[big], rtol=20 * tol * scale)


@HYP
@given(data=st.data())
def test_shift_invariance(backend, dtype, data):
    """softmax(z + c) == softmax(z), log_softmax too, logsumexp(z + c) == logsumexp(z) + c.
    Logits and the shift are on a grid of 1/1024 so that z + c is exact in the dtype."""
    n = data.draw(st.integers(1, 5))
    C = data.draw(st.integers(1, 9))
    ticks = data.draw(hnp.arrays(np.int64, (n, C), elements=st.integers(-20 * 1024, 20 * 1024)))
    c = data.draw(st.integers(-1000 * 1024, 1000 * 1024)) / 1024.0
    z = (ticks / 1024.0).astype(dtype)
    zc = (z.astype(np.float64) + c).astype(dtype)
    assert np.array_equal(zc.astype(np.float64) - c, z.astype(np.float64))  # the shift is exact
    tol = rtol_for(dtype)
    np.testing.assert_allclose(fc.softmax(zc), fc.softmax(z), rtol=tol, atol=tol * 1e-3)
    np.testing.assert_allclose(fc.log_softmax(zc), fc.log_softmax(z), rtol=tol, atol=tol * 50)
    np.testing.assert_allclose(
        fc.logsumexp(zc).astype(np.float64) - c, fc.logsumexp(z), rtol=tol, atol=tol * (abs(c) + 50)
    )
