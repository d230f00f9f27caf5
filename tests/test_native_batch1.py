"""Batch size 1 on the cython native loop: the AVX-512 kernels of
``fastnn_core/_cython/_train_small_v4.h`` (vector-matrix product, fused sgd / Nesterov / Adam
rank-1 updates) against the Python reference loop and against IEEE arithmetic.

The kernels run whole rows through 512-bit vectors (16 float / 8 double lanes) with the last
partial vector of a row under a lane mask, update rows in a strided order (0, s, 2s, ..., 1,
1 + s, ...; s >= 2 when rows end in a partial vector), keep up to 8 vectors of z in registers
in the vector-matrix product, and take the square root of every third float64 Adam vector on
the FMA units (exactly: tests/test_exact_nr_math.py).
So the shapes below have layer widths that are multiples of 16, of 8 but not 16, of neither,
below one vector (3, and 1 for a binary output, where s is 6 / 16), and above 8 vectors (150:
two column blocks, the second partial); inputs have zeros (rows the product skips).  On a CPU
without AVX-512 the same tests run the portable kernels.
"""

import warnings

import numpy as np
import pytest

import fastnn_core
from fastnn import MLPClassifier
from fastnn._mlp import DivergenceWarning
from test_native_loop import _assert_restored_alike, _assert_same

pytestmark = pytest.mark.skipif("cython" not in fastnn_core.available_backends(),
                                reason="cython backend not available")

RTOL = {np.float64: 1e-10, np.float32: 1e-4}

SHAPES = {
    # hidden layers, classes (N of the output layer; 2 classes = 1 logistic output), features
    "w150-24-c3-d37": ((150, 24), 3, 37),
    "w32-16-c16-d16": ((32, 16), 16, 16),
    "w13-5-c2-d20": ((13, 5), 2, 20),
    "w8-40-c3-d9": ((8, 40), 3, 9),
    "w100-c10-d100": ((100,), 10, 100),
}

OPTIMIZERS = {
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "plain-sgd": dict(solver="sgd", momentum=0.0),
    "adam": dict(solver="adam"),
    "adagrad": dict(solver="adagrad"),
    "rmsprop": dict(solver="rmsprop"),
    "adadelta": dict(solver="adadelta"),
}


def _data(n_classes, d, dt, n=36, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    X[rng.uniform(size=X.shape) < 0.25] = 0.0  # zero inputs: rows the vecmat skips
    w = rng.normal(size=(d, n_classes))
    y = np.argmax(X @ w + 0.3 * rng.normal(size=(n, n_classes)), axis=1)
    return X.astype(dt), y


def _fit(X, y, epochs, loop, **params):
    est = MLPClassifier(max_iter=epochs, random_state=0, loop=loop, tol=0.0,
                        n_iter_no_change=1000, batch_size=1, backend="cython", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_batch1_shapes_match_reference(dt, opt, shape):
    hidden, n_classes, d = SHAPES[shape]
    X, y = _data(n_classes, d, dt)
    for epochs in (1, 5):
        a, b = (_fit(X, y, epochs, loop, hidden_layer_sizes=hidden, alpha=1e-3,
                     learning_rate_init=1e-3, **OPTIMIZERS[opt])
                for loop in ("native", "python"))
        assert a.coefs_[0].dtype == dt
        _assert_same(a, b, RTOL[dt])


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_batch1_divergence_like_reference(dt, nesterov):
    """Overflowing updates reach the fused sgd kernels (and their masked row tails) the same
    way as the reference: the epoch stops at the same point and the snapshot comes back."""
    X, y = _data(3, 13, dt, n=30, seed=5)
    X = X * dt(1e3)
    ests = []
    for loop in ("native", "python"):
        est = MLPClassifier((21,), solver="sgd", learning_rate_init=1e6, momentum=0.5,
                            nesterovs_momentum=nesterov, batch_size=1, max_iter=5,
                            random_state=0, loop=loop, backend="cython", activation="identity")
        with pytest.warns(DivergenceWarning), np.errstate(all="ignore"):
            est.fit(X, y)
        ests.append(est)
    _assert_restored_alike(*ests)


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("C", [37, 40, 3])
def test_batch1_adam_bitwise_with_special_moments(dt, C):
    """One Adam step of a 1-layer network (d x C, C not always a multiple of the lanes):
    every new parameter equals ``p - lr_t * m / (sqrt(v) + eps)`` from the kernel's own new
    m and v, bit for bit (the sign of zero included), for moments that are 0, -0, subnormal,
    tiny, huge and infinite and parameters that are +-0 or subnormal: the divider's vectors,
    the float64 vectors whose square root the FMA units take (with their fallbacks), and the
    masked tails."""
    from fastnn_core._cython._train import train_epoch

    rng = np.random.RandomState(C)
    info = np.finfo(dt)
    d = 1500
    x = rng.normal(size=(1, d)).astype(dt)
    x[0, ::3] = 0.0  # rows with zero gradient (alpha = 0): m, v only decay
    W = rng.normal(size=(d, C)).astype(dt)
    b = rng.normal(size=C).astype(dt)
    tiny = info.tiny
    m_special = np.array([0.0, -0.0, tiny / 3, -tiny * 0.77, tiny * 0.5 ** 20, tiny * 7,
                          1e-20, -1.0, info.max / 4], dtype=dt)
    v_special = np.array([0.0, tiny / 5, tiny * 3, 1e-12, 1.0, 1e30, info.max, np.inf],
                         dtype=dt)
    pick = rng.uniform(size=(d, C))
    m = np.where(pick < 0.4, rng.choice(m_special, size=(d, C)),
                 rng.normal(size=(d, C)) * 1e-3).astype(dt)
    m[pick > 0.8] = -0.0
    v = np.where(rng.uniform(size=(d, C)) < 0.5, rng.choice(v_special, size=(d, C)),
                 rng.uniform(size=(d, C)) * 1e-6).astype(dt)
    p_special = np.array([0.0, -0.0, tiny / 9, -tiny * 3], dtype=dt)
    pick = rng.uniform(size=(d, C))
    W = np.where(pick < 0.2, rng.choice(p_special, size=(d, C)), W)
    W[pick > 0.8] = -0.0
    params = (W.ravel().copy(), b.copy())
    state0 = (m.ravel().copy(), rng.normal(size=C).astype(dt))
    state1 = (v.ravel().copy(), np.abs(rng.normal(size=C)).astype(dt))
    grads = (np.empty(d * C, dt), np.empty(C, dt))
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    with np.errstate(over="ignore", invalid="ignore"):
        # the target class is the last column, the one with a negative output delta: with
        # a_k = 0 and p = -0 its gradient is -0, so a -0 moment stays -0 (-0 / den = -0)
        train_epoch(x, np.array([C - 1], dtype=np.intp), None, None, 1,
                    np.array([d, C], dtype=np.intp), params, grads, state0, state1,
                    (np.empty(C, dt),), (np.empty(C, dt),), np.empty((1, d), dt),
                    np.empty(1, dtype=np.intp), None, 3, 0, 1, [lr, b1, b2, eps], 0.0, 0)
    lr_t = dt(lr * np.sqrt(1 - b2) / (1 - b1))
    for p_old, p_new, m_new, v_new in zip((W.ravel(), b), params, state0, state1):
        with np.errstate(over="ignore", invalid="ignore"):
            expected = p_old - lr_t * m_new / (np.sqrt(v_new) + dt(eps))
        np.testing.assert_array_equal(_bits(p_new), _bits(expected))
    # the zero-gradient rows: m and v decayed exactly as b1 m and b2 v (+ 0)
    rows = np.zeros(d, bool)
    rows[::3] = True
    m_new = state0[0].reshape(d, C)[rows]
    v_new = state1[0].reshape(d, C)[rows]
    assert np.all(np.abs(m_new) <= np.abs(m[rows]))
    assert np.all((v_new <= v[rows]) | np.isnan(v_new))


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("C", [1, 3, 8, 16, 21, 150])
def test_batch1_sgd_one_step_matches_formula(dt, nesterov, C):
    """One sgd step of a 1-layer network against the fnn_sgd element formula in NumPy
    (within an ulp or two: NumPy does not fuse the multiply-adds), every width class, and
    the rows and columns past the layer untouched (masked tail stores)."""
    from fastnn_core._cython._train import train_epoch

    rng = np.random.RandomState(C)
    d = 29
    x = rng.normal(size=(1, d)).astype(dt)
    x[0, ::4] = 0.0
    W = rng.normal(size=(d, C)).astype(dt)
    b = rng.normal(size=C).astype(dt)
    vel = rng.normal(size=(d, C)).astype(dt) * dt(0.1)
    # parameters live inside larger buffers: what follows them must stay as it was
    pad = 19
    Wbuf = np.concatenate([W.ravel(), np.full(pad, 7.0, dt)])
    vbuf = np.concatenate([vel.ravel(), np.full(pad, 9.0, dt)])
    params = (Wbuf[: d * C], b.copy())
    state0 = (vbuf[: d * C], np.zeros(C, dt))
    grads = (np.empty(d * C, dt), np.empty(C, dt))
    A = np.empty(C, dt)
    D = np.empty(C, dt)
    lr, mom, alpha = 0.05, 0.9, 1e-2
    if C > 1:  # softmax cross-entropy on a class index, else logistic on a 0/1 column
        target, tbuf, loss = np.array([0], dtype=np.intp), np.empty(1, dtype=np.intp), 0
    else:
        target, tbuf, loss = np.ones((1, 1), dt), np.empty((1, 1), dt), 1
    train_epoch(x, target, None, None, 1, np.array([d, C], dtype=np.intp), params, grads,
                state0, state0, (A,), (D,), np.empty((1, d), dt), tbuf, None, 3, loss, 0,
                [lr, mom, 1.0 if nesterov else 0.0, 0.0], alpha, 0)
    assert np.all(Wbuf[d * C:] == 7.0) and np.all(vbuf[d * C:] == 9.0)
    g = np.outer(x[0], D).astype(np.float64)  # D: the output delta the step used
    ge = g + alpha * W.astype(np.float64)
    v_new = mom * vel.astype(np.float64) - lr * ge
    p_new = W + (mom * v_new - lr * ge if nesterov else v_new)
    tol = 8 * np.finfo(dt).eps
    np.testing.assert_allclose(params[0].reshape(d, C), p_new, rtol=tol, atol=tol)
    np.testing.assert_allclose(state0[0].reshape(d, C), v_new, rtol=tol, atol=tol)


def test_batch1_portable_kernels_match_reference():
    """FASTNN_BATCH1_PORTABLE=1 keeps the portable kernels (what CPUs without AVX-512 run):
    the same parity checks in a fresh process, a few shapes and optimizers."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, test_native_batch1 as t\n"
        "for dt in (np.float64, np.float32):\n"
        "    for opt in ('nesterov', 'momentum', 'adam'):\n"
        "        for shape in ('w150-24-c3-d37', 'w13-5-c2-d20'):\n"
        "            t.test_batch1_shapes_match_reference(dt, opt, shape)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, FASTNN_BATCH1_PORTABLE="1")
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        [here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=here)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
