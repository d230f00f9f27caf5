"""The backends against each other: the same inputs give allclose outputs (NaN in the same places,
infinities equal) on every pair of backends that load here, in float32 and float64."""

import itertools

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import ACTIVATIONS, loaded_backends, rtol_for


def _inputs(dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    n, C = 37, 23
    z = (rng.standard_normal((n, C)) * 3).astype(dtype)
    if kind == "extreme":
        big = 1e4 if dtype == np.float32 else 1e300
        z = (rng.uniform(-1, 1, (n, C)) * big).astype(dtype)
        z[0] = big
    elif kind == "non-finite":
        z[rng.random((n, C)) < 0.2] = -np.inf
        z[:, 5] = 0.5  # one finite class per row ...
        z[3] = -np.inf  # ... except for these rows
        z[7, 2] = np.nan
        z[11, 9] = np.inf
    y = rng.integers(0, C, n)
    y[0] = 5
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype)
    cw = rng.uniform(0.5, 2, C).astype(dtype)
    b = rng.integers(0, 2, (n, C)).astype(dtype)
    return z, y, t, sw, cw, b


def _outputs(z, y, t, sw, cw, b):
    out = {
        "softmax": fc.softmax(z),
        "log_softmax": fc.log_softmax(z),
        "logsumexp": fc.logsumexp(z),
    }
    for reduction, smoothing in itertools.product(["mean", "sum", "none"], [0.0, 0.1]):
        for name, target in (("hard", y), ("soft", t)):
            loss, grad = fc.cross_entropy_grad(z, target, sample_weight=sw, class_weight=cw,
                                               label_smoothing=smoothing, reduction=reduction)
            out[f"ce {name} {reduction} {smoothing} loss"] = loss
            out[f"ce {name} {reduction} {smoothing} grad"] = grad
        plain = fc.cross_entropy_grad(z, y, reduction=reduction)
        out[f"ce plain {reduction} loss"], out[f"ce plain {reduction} grad"] = plain
    zf = np.where(np.isfinite(z), z, 0).astype(z.dtype)  # elementwise losses: finite logits
    out["bce"] = fc.binary_cross_entropy_grad(zf, b, sample_weight=sw, reduction="none")
    for act in ("identity", "logistic", "softmax"):
        zs = zf if act != "identity" else np.clip(zf, -1e4, 1e4).astype(z.dtype)
        out[f"sqerr {act}"] = fc.squared_error_grad(zs, t, activation=act, sample_weight=sw, reduction="none")
    for name in ACTIVATIONS:
        a = fc.activation(name, zf)
        out[f"activation {name}"] = a
        out[f"activation_grad {name}"] = fc.activation_grad(name, a, t)
    return out


def _flatten(value):
    if isinstance(value, tuple):
        return [np.asarray(v, np.float64) for v in value]
    return [np.asarray(value, np.float64)]


@pytest.mark.parametrize("kind", ["random", "extreme", "non-finite"])
def test_backends_agree(dtype, kind):
    names = loaded_backends()
    if len(names) < 2:
        pytest.skip(f"needs two backends that load to compare; only {names} load here")
    inputs = _inputs(dtype, kind)
    results = {}
    for name in names:
        with fc.use_backend(name):
            results[name] = _outputs(*(a.copy() for a in inputs))
    tol = 2 * rtol_for(dtype)
    mismatches = []
    for a, b in itertools.combinations(names, 2):
        for key in results[a]:
            for x, y in zip(_flatten(results[a][key]), _flatten(results[b][key])):
                finite = np.abs(y[np.isfinite(y)])
                atol = tol * (finite.max() if finite.size and finite.max() > 0 else 1.0)
                try:
                    np.testing.assert_allclose(x, y, rtol=tol, atol=atol, equal_nan=True)
                except AssertionError as exc:
                    mismatches.append(f"{a} vs {b}: {key}: {str(exc).strip().splitlines()[-3:]}")
    assert not mismatches, "\n".join(mismatches)
