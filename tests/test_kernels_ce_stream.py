"""The AVX-512 cross-entropy path for rows of more than 4 KB and up to 32 KB without smoothing
(``fnn_v4_ce_stream_*``): the exps of a row go to a scratch row, and the previous row is scaled
into the gradient with streaming stores on 64-byte lines plus masked stores for the partial
lines at both ends, the label column blended in.  So the gradient's alignment, where the label
falls (the partial line before the first boundary, a full line, the partial line at the end) and
writing in place all matter; rows one element past either bound take the generic loop."""

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import (
    assert_close,
    ce_grad_scale,
    expected_ce,
    logits,
    non_finite_logits,
    nonneg_weights,
    skip_unless_loaded,
)


@pytest.fixture(autouse=True)
def cython_backend():
    skip_unless_loaded("cython")
    with fc.use_backend("cython"):
        yield


def _classes(dtype):
    """Row lengths at and around the bounds (4 KB exclusive, 32 KB inclusive) and in between."""
    size = np.dtype(dtype).itemsize
    return [4096 // size, 4096 // size + 1, 6000 // size + 3, 32768 // size, 32768 // size + 1]


def _labels(C):
    """One row per kind of place: first and last columns, around 16-lane boundaries, middle."""
    return np.array([0, C - 1, 1, C - 2, 7, 8, 15, 16, C // 2], dtype=np.intp)


def _out(n, C, dtype, shift):
    """An (n, C) C-contiguous view whose start is ``shift`` elements past a 64-byte boundary."""
    size = np.dtype(dtype).itemsize
    buf = np.empty(n * C + 64 // size + shift, dtype=dtype)
    start = (-buf.ctypes.data % 64) // size + shift
    return buf[start:start + n * C].reshape(n, C)


@pytest.mark.parametrize("shift", [0, 1, 3])
@pytest.mark.parametrize("options", ["plain", "sample_weight", "class_weight", "none"])
def test_stream_rows(dtype, rng, shift, options):
    for C in _classes(dtype):
        y = _labels(C)
        n = len(y)
        z = logits(rng, (n, C), dtype)
        kw = {}
        if options == "sample_weight":
            kw["sample_weight"] = nonneg_weights(rng, n, dtype)
        elif options == "class_weight":
            kw["class_weight"] = nonneg_weights(rng, C, dtype, zeros=False)
        elif options == "none":
            kw["reduction"] = "none"
        exp_loss, exp_grad = expected_ce(z, y, **kw)
        atol_scale = ce_grad_scale(z.astype(np.float64), y, **{
            k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in kw.items()})
        out = _out(n, C, dtype, shift)
        loss, grad = fc.cross_entropy_grad(z, y, out=out, **kw)
        assert grad is out
        assert_close(loss, exp_loss, dtype, err_msg=f"C={C}")
        assert_close(grad, exp_grad, dtype, atol_scale=atol_scale, err_msg=f"C={C}")
        zi = _out(n, C, dtype, shift)
        zi[...] = z
        loss_in_place, grad_in_place = fc.cross_entropy_grad(zi, y, out=zi, **kw)
        assert grad_in_place is zi
        if 4096 < C * np.dtype(dtype).itemsize <= 32768:
            # the stream path reads z again after the exp pass in place too: the same shift
            np.testing.assert_array_equal(loss_in_place, loss)
            np.testing.assert_array_equal(zi, grad)
        else:
            # the generic loop in place shifts by the row's maximum, not by its first vector's
            assert_close(loss_in_place, exp_loss, dtype, err_msg=f"C={C}")
            assert_close(zi, exp_grad, dtype, atol_scale=atol_scale, err_msg=f"C={C}")


def test_stream_rows_non_finite(dtype, rng):
    """NaN / +inf rows and all -inf rows are NaN; masked (-inf) classes get gradient p = 0."""
    C = _classes(dtype)[2]
    z = non_finite_logits(rng, C, dtype)
    y = np.full(6, C - 1)
    rows, grad = fc.cross_entropy_grad(z, y, reduction="none")
    assert np.isnan(rows[:3]).all() and np.isnan(grad[:3]).all()
    assert (grad[3, : C // 2] == 0).all()
    assert np.isfinite(rows[3:]).all() and np.isfinite(grad[3:]).all()
    exp_rows, exp_grad = expected_ce(z[3:], y[3:], reduction="none")
    assert_close(rows[3:], exp_rows, dtype)
    assert_close(grad[3:], exp_grad, dtype)
