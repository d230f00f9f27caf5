"""The cython backend's code for each ISA it dispatches to at run time, not only the one this CPU
picks: the softmax family and hard-label cross-entropy forced to each level with
``_kernels._set_isa`` against the float64 reference (short rows, where the AVX-512 level has its
own register path, long rows, ragged tails, non-finite rows, in place), and the polynomial exp
of every variant against an extended-precision exp."""

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import (
    assert_close,
    ce_grad_scale,
    check_rows_past_first_vector,
    expected_ce,
    expected_softmax_family,
    labels,
    logits,
    non_finite_logits,
    nonneg_weights,
    skip_unless_loaded,
)

LEVELS = {0: "default (SSE2)", 1: "x86-64-v3 (AVX2)", 2: "x86-64-v4 (AVX-512)"}


@pytest.fixture(scope="module")
def kernels():
    skip_unless_loaded("cython")
    from fastnn_core._cython import _kernels

    return _kernels


@pytest.fixture(params=sorted(LEVELS), ids=list(LEVELS.values()))
def isa(request, kernels):
    previous = kernels._set_isa(request.param)
    if previous < 0:
        pytest.skip(f"this CPU or build cannot run {LEVELS[request.param]}")
    try:
        with fc.use_backend("cython"):
            yield request.param
    finally:
        kernels._set_isa(previous)


def test_set_isa_rejects_unknown_levels(kernels):
    assert kernels._set_isa(3) == -1
    assert kernels._set_isa(-1) == -1


# 1, 16, 128 classes: exact vectors of the short-row path; 17, 129: one past; 1000: long rows.
# 64 .. 104 classes: the AVX-512 double register path of cross-entropy; 105: one past.
# 150, 160: long rows of an odd number of 16-lane vectors and a tail, of an even number and none
# (the exp-sum passes take vectors in pairs).
SHAPES = [(67, 1), (67, 10), (33, 16), (65, 17), (19, 64), (64, 100), (9, 104), (9, 105),
          (9, 128), (9, 129), (9, 150), (5, 160), (7, 1000)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_family(isa, dtype, rng, shape):
    z = logits(rng, shape, dtype)
    sm, lsm, lse = expected_softmax_family(z)
    assert_close(fc.softmax(z), sm, dtype)
    assert_close(fc.log_softmax(z), lsm, dtype)
    assert_close(fc.logsumexp(z), lse, dtype)
    zi = z.copy()
    assert fc.softmax(zi, out=zi) is zi
    assert_close(zi, sm, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("options", ["plain", "sample_weight", "class_weight-smoothing"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_grad(isa, dtype, rng, shape, options, reduction):
    n, C = shape
    z, y = logits(rng, shape, dtype), labels(rng, n, C)
    kw = {"reduction": reduction}
    if options == "sample_weight":
        kw["sample_weight"] = nonneg_weights(rng, n, dtype)
    elif options == "class_weight-smoothing":
        kw.update(class_weight=nonneg_weights(rng, C, dtype, zeros=False), label_smoothing=0.1)
    exp_loss, exp_grad = expected_ce(z, y, **kw)
    loss, grad = fc.cross_entropy_grad(z, y, **kw)
    assert_close(loss, exp_loss, dtype)
    atol_scale = ce_grad_scale(z.astype(np.float64), y, **{k: (v.astype(np.float64) if
                               isinstance(v, np.ndarray) else v) for k, v in kw.items()})
    assert_close(grad, exp_grad, dtype, atol_scale=atol_scale)
    loss_in_place, grad_in_place = fc.cross_entropy_grad(z, y, out=z, **kw)
    assert grad_in_place is z
    assert_close(loss_in_place, exp_loss, dtype)
    assert_close(z, exp_grad, dtype, atol_scale=atol_scale)


@pytest.mark.parametrize("C", [64, 100, 1000, 5000])
@pytest.mark.parametrize("in_place", [False, True])
def test_row_maximum_past_the_first_vector(isa, dtype, rng, C, in_place):
    """Each level's exp-sum passes with a shift from the first vector: logits past the exps'
    domain are clamped and the row redone from its maximum."""
    check_rows_past_first_vector(rng, dtype, C, in_place)


@pytest.mark.parametrize("C", [10, 100, 1000])
def test_non_finite_rows(isa, dtype, rng, C):
    """NaN / +inf rows and all -inf rows are NaN; masked (-inf) classes get probability 0."""
    z = non_finite_logits(rng, C, dtype)
    y = np.full(6, C - 1)
    p = fc.softmax(z)
    rows, grad = fc.cross_entropy_grad(z, y, reduction="none")
    assert np.isnan(p[:3]).all() and np.isnan(rows[:3]).all() and np.isnan(grad[:3]).all()
    assert (p[3, : C // 2] == 0).all() and np.isfinite(p[3:]).all()
    assert np.isfinite(rows[3:]).all() and np.isfinite(grad[3:]).all()
    assert_close(p[3:], expected_softmax_family(z[3:])[0], dtype)
    exp_rows, exp_grad = expected_ce(z[3:], y[3:], reduction="none")
    assert_close(rows[3:], exp_rows, dtype)
    assert_close(grad[3:], exp_grad, dtype)


# ------------------------------------------------------------------------------------ the exp
# dtype: (lowest x with a normal result, max ulp error with FMA, without: the default SSE2
# build rounds every Horner step twice)
EXP = {
    np.float32: (-87.33654, 1.06, 1.4),
    np.float64: (-708.3964185322641, 1.0, 1.2),
}
# 3: the explicit AVX-512 exps of the x86-64-v4 row ranges (and float's short rows)
VARIANTS = {0: "default (SSE2)", 1: "x86-64-v3", 2: "x86-64-v4", 3: "explicit AVX-512 exp"}


def _max_ulp_error(kernels, dtype, variant):
    """Max error in ulp of exp ``variant`` over 2 million points of [lo, 0] plus tiny |x|, against
    numpy's long-double exp (None when the variant is not available here)."""
    lo = EXP[dtype.type][0]
    x = np.concatenate([np.linspace(lo, 0.0, 2_000_000), -np.logspace(-30, 0, 10_000)]).astype(dtype)
    y = np.empty_like(x)
    if not kernels._exp(x, y, variant):
        return None
    normal = x >= lo
    x, y = x[normal], y[normal]
    exact = np.exp(x.astype(np.longdouble))
    ulp = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    return float(np.max(np.abs(y.astype(np.longdouble) - exact) / ulp))


@pytest.mark.parametrize("variant", sorted(VARIANTS), ids=list(VARIANTS.values()))
def test_exp_ulp(kernels, dtype, variant):
    """Max error in ulp over 2 million points of the domain the kernels use (x <= 0), against
    numpy's long-double exp; below the normal range the result is +0, -inf gives 0, NaN NaN."""
    lo, bound_fma, bound_no_fma = EXP[dtype.type]
    bound = bound_no_fma if variant == 0 else bound_fma
    err = _max_ulp_error(kernels, dtype, variant)
    if err is None:
        pytest.skip(f"{VARIANTS[variant]} is not available here for {dtype}")
    assert err <= bound, f"max error {err:.3f} ulp"
    special = np.array([lo * 1.001, -1000.0, -np.inf, np.nan], dtype)
    out = np.empty_like(special)
    kernels._exp(special, out, variant)
    assert out[0] == 0 and out[1] == 0 and out[2] == 0 and np.isnan(out[3])


def test_checked_exp(kernels):
    """The double register rows' exp (variant 4: 2^n by vscalefpd, no cutoff compare) gives the
    explicit AVX-512 exp's results bit for bit where those are normal (and within its bound up to
    ln(DBL_MAX)), the subnormal results below ln(DBL_MIN) to within one subnormal step, +inf
    above ln(DBL_MAX), and below -745 either +0 or a non-finite number, never a wrong finite
    one: the rows' check of the exp sum in [1, 2^64] relies on that."""
    x = np.concatenate([np.linspace(-708.39, 709.0, 1_000_001), -np.logspace(-30, 0, 1000)])
    y3, y4 = np.empty_like(x), np.empty_like(x)
    if not kernels._exp(x, y4, 4):
        pytest.skip("the checked AVX-512 exp is not available here")
    kernels._exp(x, y3, 3)
    np.testing.assert_array_equal(y4, y3)
    top = np.linspace(709.0, 709.78, 10_001)  # where the explicit exp's 2^n overflows
    y = np.empty_like(top)
    kernels._exp(top, y, 4)
    exact = np.exp(top.astype(np.longdouble))
    ulp = np.spacing(exact.astype(np.float64)).astype(np.longdouble)
    assert float(np.max(np.abs(y.astype(np.longdouble) - exact) / ulp)) <= EXP_V4[np.float64][0]
    sub = np.linspace(-745.2, -708.4, 100_001)
    y = np.empty_like(sub)
    kernels._exp(sub, y, 4)
    err = np.abs(y.astype(np.longdouble) - np.exp(sub.astype(np.longdouble)))
    assert float(err.max()) <= 1.5 * 2.0**-1074
    big = np.logspace(np.log10(709.79), 308, 3000)
    out = np.empty_like(big)
    kernels._exp(big, out, 4)
    assert (out == np.inf).all()
    kernels._exp(-big, out, 4)
    below = big > 745.2
    assert below.sum() > 2900 and ((out[below] == 0) | ~np.isfinite(out[below])).all()
    special = np.array([-np.inf, np.inf, np.nan])
    out = np.empty_like(special)
    kernels._exp(special, out, 4)
    # vscalefpd of the NaN r by k = -inf: +0 on AMD Zen 4, NaN by Intel's table; both are right
    # for the rows (+0 is exp(-inf), a NaN sum sends the row to the exact path)
    assert out[0] == 0 or np.isnan(out[0])
    assert out[1] == np.inf or np.isnan(out[1])
    assert np.isnan(out[2])


# dtype: (bound on x <= 0, the top of the positive range checked)
EXP_V4 = {np.float32: (0.6, 88.0), np.float64: (0.7, 709.0)}


def test_avx512_exp_rounds_once(kernels, dtype):
    """The explicit AVX-512 exps keep the rounding error of their 2^(j/16) table apart (hi and a
    relative lo) and round once at the end: 0.55 ulp (float) and 0.65 (double) measured, against
    1.05 for the float degree-6 polynomial and 0.66 for the double's former hi + (hi q + lo)
    with a vscalefpd (a table without its low part goes past these bounds); also right for
    0 < x <= 88 / 709, where 2^n is still built from the exponent bits."""
    bound, top = EXP_V4[dtype.type]
    err = _max_ulp_error(kernels, dtype, 3)
    if err is None:
        pytest.skip("the explicit AVX-512 exp is not available here")
    assert err <= bound, f"max error {err:.3f} ulp"
    x = np.linspace(0.0, top, 100_001).astype(dtype)
    y = np.empty_like(x)
    kernels._exp(x, y, 3)
    exact = np.exp(x.astype(np.longdouble))
    ulp = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    assert float(np.max(np.abs(y.astype(np.longdouble) - exact) / ulp)) <= bound
