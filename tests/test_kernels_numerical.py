"""The numerical contract (issue 2, BACKENDS.md "Non-finite input"): extreme finite logits give
finite, correct results; ``-inf`` logits are masked classes; an all-``-inf`` row, NaN and ``+inf``
behave exactly as documented, on every backend; empty inputs."""

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import (
    ACTIVATIONS,
    activation_oracle,
    assert_close,
    bce_oracle,
    check_rows_past_first_vector,
    ce_grad_scale,
    ce_oracle,
    derivative_from_output,
    log_softmax_oracle,
    logsumexp_oracle,
    softmax_oracle,
    sqerr_oracle,
)

BIG = {np.dtype(np.float32): 1e4, np.dtype(np.float64): 1e300}


def extreme_logits(dtype, rng, n=12, C=6):
    """Rows at +-BIG, rows with huge spreads, ties at BIG, and ordinary rows shifted by BIG."""
    big = BIG[np.dtype(dtype)]
    z = rng.uniform(-1, 1, (n, C)) * big
    z[0] = big  # all equal, huge
    z[1] = -big
    z[2] = [big, 0, -big, big / 2, -big / 2, 1]
    z[3] = [big, big, -big, -big, 0, 0]
    z[4] = big + rng.standard_normal(C) * (0 if dtype == np.float64 else 1)  # near-ties at BIG
    z[5] = -big * 0.999
    z[5, 2] = big * 0.999
    return z.astype(dtype)


@pytest.fixture
def big(dtype):
    return BIG[dtype]


def test_softmax_family_extreme_logits(backend, dtype, rng, big):
    z = extreme_logits(dtype, rng)
    p, lp, lse = fc.softmax(z), fc.log_softmax(z), fc.logsumexp(z)
    assert np.isfinite(p).all() and np.isfinite(lp).all() and np.isfinite(lse).all()
    assert_close(p, softmax_oracle(z), dtype)
    assert_close(lp, log_softmax_oracle(z), dtype)
    assert_close(lse, logsumexp_oracle(z), dtype)


@pytest.mark.parametrize("C", [64, 130, 1000])
def test_one_huge_logit_at_every_position(backend, dtype, rng, big, C):
    """Row ``j`` has its one huge logit in column ``j``: every lane and every unrolled vector of
    a row-max loop, and the masked tail, must take part in the maximum (a maximum that misses
    the huge logit makes its exp overflow: inf and NaN)."""
    n = C
    z = rng.standard_normal((n, C)).astype(dtype)
    z[np.arange(n), np.arange(n)] = big
    y = rng.integers(0, C, n)
    p, lse = fc.softmax(z), fc.logsumexp(z)
    loss, grad = fc.cross_entropy_grad(z, y, reduction="none")
    assert np.isfinite(p).all() and np.isfinite(lse).all()
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert_close(p, softmax_oracle(z), dtype)
    assert_close(lse, logsumexp_oracle(z), dtype)
    exp_loss, exp_grad = ce_oracle(z.astype(np.float64), y, reduction="none")
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype, atol_scale=ce_grad_scale(z, y, reduction="none"))


@pytest.mark.parametrize("C", [64, 100, 1000, 1500, 5000])
@pytest.mark.parametrize("in_place", [False, True])
def test_row_maximum_past_the_first_vector(backend, dtype, rng, C, in_place):
    """The compiled rows first shift by the maximum of their first vector (16 logits; 8 in the
    double register rows) and redo a row from its maximum when the sum of exps leaves [1, 2^64]
    (BACKENDS.md); every backend gives the oracle's results on the rows of
    ``check_rows_past_first_vector``."""
    check_rows_past_first_vector(rng, dtype, C, in_place)


@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("options", ["plain", "weighted-smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_extreme_logits(backend, dtype, rng, target, options, reduction):
    z = extreme_logits(dtype, rng)
    n, C = z.shape
    y = rng.integers(0, C, n) if target == "hard" else rng.dirichlet(np.ones(C), n).astype(dtype)
    kw = {"reduction": reduction}
    if options == "weighted-smoothed":
        kw.update(sample_weight=rng.uniform(0.5, 2, n).astype(dtype),
                  class_weight=rng.uniform(0.5, 2, C).astype(dtype), label_smoothing=0.1)
    loss, grad = fc.cross_entropy_grad(z, y, **kw)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    kw64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    y64 = y if target == "hard" else y.astype(np.float64)
    exp_loss, exp_grad = ce_oracle(z.astype(np.float64), y64, **kw64)
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype, atol_scale=ce_grad_scale(z, y64, **kw64))
    assert_close(fc.cross_entropy(z, y, **kw), exp_loss, dtype)


def test_bce_extreme_logits(backend, dtype, rng):
    z = extreme_logits(dtype, rng)
    y = rng.integers(0, 2, z.shape).astype(dtype)
    loss, grad = fc.binary_cross_entropy_grad(z, y, reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    exp_loss, exp_grad = bce_oracle(z, y, reduction="none")
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


@pytest.mark.parametrize("act", ["logistic", "softmax", "identity"])
def test_squared_error_extreme_logits(backend, dtype, rng, act):
    z = extreme_logits(dtype, rng)
    if act == "identity":  # (a - y)^2 of 1e300 overflows, as it must: keep that case at 1e4 / 1e150
        z = (z / BIG[dtype] * (1e4 if dtype == np.float32 else 1e150)).astype(dtype)
    y = np.random.default_rng(3).uniform(0, 1, z.shape).astype(dtype)
    loss, grad = fc.squared_error_grad(z, y, activation=act, reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    exp_loss, exp_grad = sqerr_oracle(z, y, activation=act, reduction="none")
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_extreme_inputs(backend, dtype, rng, name):
    z = extreme_logits(dtype, rng).ravel()
    a = fc.activation(name, z)
    assert np.isfinite(a).all()
    assert_close(a, activation_oracle(name, z), dtype)
    g = fc.activation_grad(name, a, np.ones_like(z))
    assert np.isfinite(g).all()
    assert_close(g, derivative_from_output(name, a), dtype)


# -------------------------------------------------------------------------------- masked classes
def masked_logits(dtype, rng, n=7, C=6):
    z = rng.standard_normal((n, C)).astype(dtype) * 3
    mask = rng.random((n, C)) < 0.4
    mask[np.arange(n), rng.integers(0, C, n)] = False  # at least one finite per row
    mask[0] = True
    mask[0, 3] = False  # exactly one finite class
    mask[1] = False  # nothing masked
    z[mask] = -np.inf
    return z, mask


def test_masked_classes_softmax_family(backend, dtype, rng):
    z, mask = masked_logits(dtype, rng)
    p, lp, lse = fc.softmax(z), fc.log_softmax(z), fc.logsumexp(z)
    assert not np.isnan(p).any() and not np.isnan(lp).any() and not np.isnan(lse).any()
    assert (p[mask] == 0).all()
    assert (lp[mask] == -np.inf).all() and np.isfinite(lp[~mask]).all()
    assert p[0, 3] == 1 and lp[0, 3] == 0
    assert np.isfinite(lse).all()
    zm = np.where(mask, -np.inf, z.astype(np.float64))
    assert_close(p, softmax_oracle(zm), dtype)
    assert_close(lp, log_softmax_oracle(zm), dtype)
    assert_close(lse, logsumexp_oracle(zm), dtype)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_masked_classes_cross_entropy(backend, dtype, rng, smoothing, reduction):
    """Labels on finite classes: finite loss (without smoothing; with smoothing the uniform part
    targets the masked class, so the loss is +inf, as in the formula) and a finite gradient that
    is 0 on masked classes without smoothing."""
    z, mask = masked_logits(dtype, rng)
    n, C = z.shape
    y = np.array([int(np.flatnonzero(~mask[i])[0]) for i in range(n)])
    cw = rng.uniform(0.5, 2, C).astype(dtype)
    loss, grad = fc.cross_entropy_grad(z, y, class_weight=cw, label_smoothing=smoothing, reduction=reduction)
    assert not np.isnan(grad).any() and np.isfinite(grad).all()
    assert not np.isnan(loss).any()
    exp_loss, exp_grad = ce_oracle(z, y, class_weight=cw.astype(np.float64), label_smoothing=smoothing,
                                   reduction=reduction)
    if smoothing == 0:
        assert np.isfinite(loss).all()
        assert (grad[mask] == 0).all()
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


def test_masked_classes_soft_targets(backend, dtype, rng):
    """Soft targets that put no mass on the masked classes: finite loss and gradient."""
    z, mask = masked_logits(dtype, rng)
    t = np.where(mask, 0.0, rng.random(z.shape))
    t = (t / t.sum(axis=1, keepdims=True)).astype(dtype)
    loss, grad = fc.cross_entropy_grad(z, t, reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    exp_loss, exp_grad = ce_oracle(z, t.astype(np.float64), reduction="none")
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)


@pytest.mark.parametrize("weighted", [False, True])
def test_hard_label_on_masked_class(backend, dtype, rng, weighted):
    """BACKENDS.md: a hard label on a masked class gives loss +inf and a finite gradient."""
    z = rng.standard_normal((3, 4)).astype(dtype)
    z[1, 2] = -np.inf
    y = np.array([0, 2, 1])
    kw = {"class_weight": np.array([1, 2, 0.5, 1], dtype)} if weighted else {}
    loss, grad = fc.cross_entropy_grad(z, y, reduction="none", **kw)
    assert loss[1] == np.inf
    assert np.isfinite(loss[[0, 2]]).all()
    assert np.isfinite(grad).all()
    exp_loss, exp_grad = ce_oracle(z, y, reduction="none",
                                   **{k: v.astype(np.float64) for k, v in kw.items()})
    assert_close(loss, exp_loss, dtype)
    assert_close(grad, exp_grad, dtype)
    total = fc.cross_entropy(z, y, reduction="sum", **kw)
    assert total == np.inf


def test_zero_weight_on_masked_class_adds_nothing(backend, dtype, rng):
    """A term with q_ic = 0 adds 0, even on a masked class (no 0 * inf = NaN)."""
    z = rng.standard_normal((2, 3)).astype(dtype)
    z[:, 2] = -np.inf
    y = np.array([2, 0])
    sw = np.array([0.0, 1.0], dtype)
    loss, grad = fc.cross_entropy_grad(z, y, sample_weight=sw, reduction="none")
    assert loss[0] == 0 and np.isfinite(loss[1])
    assert (grad[0] == 0).all() and np.isfinite(grad).all()
    cw = np.array([1.0, 1.0, 0.0], dtype)
    loss, grad = fc.cross_entropy_grad(z, np.array([0, 1]), class_weight=cw, label_smoothing=0.3,
                                       reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


# --------------------------------------------------------------------- NaN, +inf, all -inf rows
POISON = {"nan": np.nan, "+inf": np.inf}


def _poisoned(dtype, rng, kind):
    """Rows 1 and 3 are poisoned; the others are ordinary (row 4 has a masked class)."""
    z = rng.standard_normal((6, 5)).astype(dtype)
    z[4, 1] = -np.inf
    if kind == "all -inf":
        z[1] = -np.inf
        z[3] = -np.inf
    else:
        z[1, 2] = POISON[kind]
        z[3, 0] = POISON[kind]
        z[3, 4] = -np.inf
    return z, np.array([1, 3])


@pytest.mark.parametrize("kind", ["nan", "+inf", "all -inf"])
def test_non_finite_rows_softmax_family(backend, dtype, rng, kind):
    """A NaN or +inf logit (or a row of only -inf) makes the whole row NaN in softmax,
    log_softmax and logsumexp; the other rows are unaffected."""
    z, bad = _poisoned(dtype, rng, kind)
    good = np.setdiff1d(np.arange(z.shape[0]), bad)
    p, lp, lse = fc.softmax(z), fc.log_softmax(z), fc.logsumexp(z)
    for name, out in (("softmax", p), ("log_softmax", lp), ("logsumexp", lse)):
        assert np.isnan(out[bad]).all(), (name, out[bad])
        assert not np.isnan(out[good]).any(), name
    zg = z[good].astype(np.float64)
    assert_close(p[good], softmax_oracle(zg), dtype)
    assert_close(lp[good], log_softmax_oracle(zg), dtype)
    assert_close(lse[good], logsumexp_oracle(zg), dtype)


@pytest.mark.parametrize("kind", ["nan", "+inf", "all -inf"])
@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("options", ["plain", "weighted-smoothed"])
def test_non_finite_rows_cross_entropy(backend, dtype, rng, kind, target, options):
    """The row loss and gradient row of a poisoned row are NaN, the total loss (sum and mean) is
    NaN; the other rows are computed as usual."""
    z, bad = _poisoned(dtype, rng, kind)
    n, C = z.shape
    good = np.setdiff1d(np.arange(n), bad)
    y = np.array([0, 1, 2, 3, 2, 4]) if target == "hard" else rng.dirichlet(np.ones(C), n).astype(dtype)
    if target == "soft":
        y[4] = [0.5, 0, 0.5, 0, 0]  # no mass on the masked class of row 4
    kw = {}
    if options == "weighted-smoothed":
        kw = {"class_weight": rng.uniform(0.5, 2, C).astype(dtype), "sample_weight": np.ones(n, dtype)}
        if target == "soft":
            kw["label_smoothing"] = 0.0
    rows, grad = fc.cross_entropy_grad(z, y, reduction="none", **kw)
    assert np.isnan(rows[bad]).all() and not np.isnan(rows[good]).any()
    assert np.isnan(grad[bad]).all(), grad[bad]
    assert not np.isnan(grad[good]).any()
    exp_rows, exp_grad = ce_oracle(z[good], y[good], reduction="none",
                                   **{k: (v[good] if k == "sample_weight" else v) for k, v in kw.items()})
    assert_close(rows[good], exp_rows, dtype)
    assert_close(grad[good], exp_grad, dtype)
    for reduction in ("sum", "mean"):
        loss, grad = fc.cross_entropy_grad(z, y, reduction=reduction, **kw)
        assert np.isnan(loss), reduction
        assert np.isnan(grad[bad]).all() and not np.isnan(grad[good]).any()
        assert np.isnan(fc.cross_entropy(z, y, reduction=reduction, **kw))


def test_nan_rows_in_place(backend, dtype, rng):
    z, bad = _poisoned(dtype, rng, "nan")
    expected = fc.cross_entropy_grad(z.copy(), np.zeros(6, int), reduction="none")
    rows, grad = fc.cross_entropy_grad(z, np.zeros(6, int), reduction="none", out=z)
    np.testing.assert_allclose(rows, expected[0], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-5, atol=1e-6, equal_nan=True)


# ---------------------------------------------------------------------------------- empty input
def test_empty_batch(backend, dtype):
    z = np.empty((0, 5), dtype)
    assert fc.softmax(z).shape == (0, 5)
    assert fc.log_softmax(z).shape == (0, 5)
    assert fc.logsumexp(z).shape == (0,)
    y = np.empty(0, int)
    loss, grad = fc.cross_entropy_grad(z, y, reduction="sum")
    assert loss == 0.0 and grad.shape == (0, 5) and grad.dtype == dtype
    rows = fc.cross_entropy(z, y, reduction="none")
    assert rows.shape == (0,) and rows.dtype == dtype
    loss, grad = fc.cross_entropy_grad(z, np.empty((0, 5), dtype), reduction="sum")
    assert loss == 0.0 and grad.shape == (0, 5)
    loss, grad = fc.binary_cross_entropy_grad(z, z, reduction="sum")
    assert loss == 0.0 and grad.shape == (0, 5)
    loss, grad = fc.squared_error_grad(z, z, activation="softmax", reduction="sum")
    assert loss == 0.0 and grad.shape == (0, 5)
    assert fc.activation("tanh", np.empty(0, dtype)).shape == (0,)


def test_zero_classes(backend, dtype):
    """(n, 0) logits: the log of an empty sum is -inf; softmax is empty."""
    z = np.empty((3, 0), dtype)
    assert fc.softmax(z).shape == (3, 0)
    assert fc.log_softmax(z).shape == (3, 0)
    lse = fc.logsumexp(z)
    assert lse.shape == (3,) and (lse == -np.inf).all()
