"""Optimizer steps (sgd with momentum / Nesterov, adam with bias correction, adagrad, rmsprop,
adadelta, with and without folded L2) on every backend, both dtypes: several in-place steps against
hand-written float64 formulas and, for SGD and Adam, against scikit-learn's own optimizers."""

import numpy as np
import pytest

import fastnn_core as fc

SHAPES = [(1,), (7,), (1000,), (64, 33), (100_003,)]
N_STEPS = 4


def _rtol(dtype):
    # several dependent steps: float32 rounding of the state compounds a little
    return 1e-12 if dtype == np.float64 else 2e-5


def _grads(rng, shape, dtype, n=N_STEPS):
    return [(rng.standard_normal(shape) * 0.1).astype(dtype) for _ in range(n)]


def _assert_close(actual, expected, dtype, what):
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(
        actual, expected, rtol=_rtol(dtype), atol=_rtol(dtype) * np.abs(expected).max(), err_msg=what
    )


# ---------------------------------------------------------------- hand-written formulas (float64)
def sgd_formula(p, g, v, lr, momentum, nesterov, l2):
    g = g + l2 * p
    v[...] = momentum * v - lr * g
    p += (momentum * v - lr * g) if nesterov else v


def adam_formula(p, g, m, v, lr, step, beta1, beta2, eps, l2):
    g = g + l2 * p
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    # the textbook form lr * m_hat / (sqrt(v_hat) + eps_hat) with eps_hat = eps / sqrt(1 - b2^t)
    # is scikit-learn's lr_t * m / (sqrt(v) + eps)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - beta2**step))


def adagrad_formula(p, g, acc, lr, eps, l2):
    g = g + l2 * p
    acc += g**2
    p -= lr * g / (np.sqrt(acc) + eps)


def rmsprop_formula(p, g, sq, lr, rho, eps, l2):
    g = g + l2 * p
    sq[...] = rho * sq + (1 - rho) * g**2
    p -= lr * g / (np.sqrt(sq) + eps)


def adadelta_formula(p, g, acc_g, acc_dx, lr, rho, eps, l2):
    g = g + l2 * p
    acc_g[...] = rho * acc_g + (1 - rho) * g**2
    dx = np.sqrt(acc_dx + eps) / np.sqrt(acc_g + eps) * g
    acc_dx[...] = rho * acc_dx + (1 - rho) * dx**2
    p -= lr * dx


CASES = {
    "sgd-plain": (fc.sgd_step, sgd_formula, 1, dict(lr=0.1, momentum=0.0, nesterov=False)),
    "sgd-momentum": (fc.sgd_step, sgd_formula, 1, dict(lr=0.05, momentum=0.9, nesterov=False)),
    "sgd-nesterov": (fc.sgd_step, sgd_formula, 1, dict(lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (fc.adam_step, adam_formula, 2, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)),
    "adam-odd-betas": (fc.adam_step, adam_formula, 2, dict(lr=0.003, beta1=0.5, beta2=0.75, eps=1e-4)),
    "adagrad": (fc.adagrad_step, adagrad_formula, 1, dict(lr=0.1, eps=1e-10)),
    "rmsprop": (fc.rmsprop_step, rmsprop_formula, 1, dict(lr=0.01, rho=0.9, eps=1e-8)),
    "adadelta": (fc.adadelta_step, adadelta_formula, 2, dict(lr=1.0, rho=0.95, eps=1e-6)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("l2", [0.0, 0.01], ids=["no-l2", "l2"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_steps_match_formula(backend, dtype, rng, case, l2, shape):
    step_fn, formula, n_state, hp = CASES[case]
    p = rng.standard_normal(shape).astype(dtype)
    state = [np.zeros(shape, dtype) for _ in range(n_state)]
    if case.startswith("sgd"):
        state[0][...] = (rng.standard_normal(shape) * 0.01).astype(dtype)  # a running velocity
    p64 = p.astype(np.float64)
    state64 = [s.astype(np.float64) for s in state]
    for t, g in enumerate(_grads(rng, shape, dtype), start=1):
        g0 = g.copy()
        extra = {"step": t} if step_fn is fc.adam_step else {}
        result = step_fn(p, g, *state, l2=l2, **extra, **hp)
        assert result is None  # in place
        np.testing.assert_array_equal(g, g0, err_msg="the gradient must not be modified")
        formula(p64, g.astype(np.float64), *state64, l2=l2, **extra, **hp)
        _assert_close(p, p64, dtype, f"param after step {t}")
        for i, (s, s64) in enumerate(zip(state, state64)):
            _assert_close(s, s64, dtype, f"state {i} after step {t}")
    assert p.dtype == dtype and all(s.dtype == dtype for s in state)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_sgd_matches_scikit_learn(backend, rng, momentum, nesterov, l2):
    opt_mod = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    shape = (40, 7)
    p = rng.standard_normal(shape)
    v = np.zeros(shape)
    p_sk = p.copy()
    sk = opt_mod.SGDOptimizer([p_sk], learning_rate_init=0.05, momentum=momentum, nesterov=nesterov)
    for g in _grads(rng, shape, np.float64, n=6):
        g_eff = g + l2 * p_sk
        sk.update_params([p_sk], [g_eff])
        fc.sgd_step(p, g, v, lr=0.05, momentum=momentum, nesterov=nesterov, l2=l2)
        np.testing.assert_allclose(p, p_sk, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(v, sk.velocities[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_adam_matches_scikit_learn(backend, rng, l2):
    opt_mod = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    shape = (13, 5)
    p = rng.standard_normal(shape)
    m, v = np.zeros(shape), np.zeros(shape)
    p_sk = p.copy()
    sk = opt_mod.AdamOptimizer([p_sk], learning_rate_init=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    for t, g in enumerate(_grads(rng, shape, np.float64, n=6), start=1):
        g_eff = g + l2 * p_sk
        sk.update_params([p_sk], [g_eff])
        fc.adam_step(p, g, m, v, lr=0.01, step=t, beta1=0.9, beta2=0.999, eps=1e-8, l2=l2)
        np.testing.assert_allclose(p, p_sk, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(m, sk.ms[0], rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(v, sk.vs[0], rtol=1e-12, atol=1e-18)


def test_gradient_of_other_dtype_or_layout(backend, rng):
    """The gradient may have another dtype or be non-contiguous (it is converted); the result is
    that of the converted gradient."""
    p = rng.standard_normal((6, 8)).astype(np.float32)
    acc = np.zeros_like(p)
    g_big = rng.standard_normal((8, 6))  # float64, and we pass its transpose (non-contiguous)
    p_ref, acc_ref = p.copy(), acc.copy()
    fc.adagrad_step(p_ref, np.ascontiguousarray(g_big.T, dtype=np.float32), acc_ref, lr=0.1)
    fc.adagrad_step(p, g_big.T, acc, lr=0.1)
    np.testing.assert_allclose(p, p_ref, rtol=1e-6)
    np.testing.assert_allclose(acc, acc_ref, rtol=1e-6)
