"""The network math (fastnn._network) and the optimizers (fastnn._optimizers): exact gradients
against finite differences, forward pass against scikit-learn's, optimizer steps against
scikit-learn's optimizers."""

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

import fastnn_core
from fastnn import MLPClassifier
from fastnn._init import init_params
from fastnn._network import forward, loss_and_gradients
from fastnn._optimizers import make_optimizer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "softplus", "elu"]


def _problem(out_activation, n=7, units=(5, 4, 3, 3), seed=0, weighted=True):
    rng = np.random.RandomState(seed)
    coefs, intercepts = init_params("normal", list(units), "tanh", rng, np.float64)
    X = rng.normal(size=(n, units[0]))
    k = units[-1]
    if out_activation == "softmax":
        Y = np.eye(k)[rng.randint(k, size=n)]
    else:
        Y = (rng.uniform(size=(n, k)) < 0.5).astype(float)
    sw = rng.uniform(0.2, 2.0, n) if weighted else None
    return coefs, intercepts, X, Y, sw


def _numeric_grad(f, params, eps=1e-6):
    grads = []
    for p in params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = f()
            flat[i] = old - eps
            down = f()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("out_activation", ["softmax", "logistic"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_loss_and_gradients_are_exact(activation, out_activation, loss, weighted):
    coefs, intercepts, X, Y, sw = _problem(out_activation, weighted=weighted)
    if activation in ("relu", "leaky_relu"):
        X = X + 0.05  # keep pre-activations away from the kink for finite differences
    alpha = 0.3
    with fastnn_core.use_backend("numpy"):
        value, cg, ig = loss_and_gradients(coefs, intercepts, X, Y, sw, activation,
                                           out_activation, loss, alpha)

        def f():
            return loss_and_gradients(coefs, intercepts, X, Y, sw, activation, out_activation,
                                      loss, alpha)[0]

        numeric = _numeric_grad(f, coefs + intercepts)
    analytic = cg + ig
    num = np.concatenate([g.ravel() for g in numeric])
    ana = np.concatenate([g.ravel() for g in analytic])
    rel = np.linalg.norm(num - ana) / (np.linalg.norm(num) + np.linalg.norm(ana))
    assert rel < 1e-7, rel
    assert value > 0


def test_loss_value_matches_definition():
    coefs, intercepts, X, Y, sw = _problem("softmax")
    alpha = 0.5
    value, _, _ = loss_and_gradients(coefs, intercepts, X, Y, sw, "tanh", "softmax", "log_loss",
                                     alpha)
    proba = forward(coefs, intercepts, X, "tanh", "softmax")[-1]
    S = sw.sum()
    expected = -(sw * np.log((proba * Y).sum(axis=1))).sum() / S
    expected += 0.5 * alpha * sum((w**2).sum() for w in coefs) / S
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    # class indices are accepted for softmax + log_loss
    v2, _, _ = loss_and_gradients(coefs, intercepts, X, Y.argmax(axis=1), sw, "tanh", "softmax",
                                  "log_loss", alpha)
    np.testing.assert_allclose(v2, value, rtol=1e-12)


def test_forward_matches_sklearn_predict_proba():
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = load_iris(return_X_y=True)
    sk = SkMLP(hidden_layer_sizes=(6, 4), max_iter=5, random_state=0).fit(X, y)
    acts = forward(sk.coefs_, sk.intercepts_, X, sk.activation, sk.out_activation_)
    assert len(acts) == 4
    assert [a.shape[1] for a in acts] == [4, 6, 4, 3]
    np.testing.assert_allclose(acts[-1], sk.predict_proba(X), rtol=1e-12)


def test_gradcheck_contract_with_estimator():
    """What fastnn.gradcheck does: the estimator's own parameters and _encode_targets."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    for target in (y, (y == 1).astype(int)):
        est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, target)
        Y = est._encode_targets(target)
        assert Y.shape == (len(X), est.n_outputs_)
        assert Y.dtype == est.coefs_[0].dtype
        value, cg, ig = loss_and_gradients(est.coefs_, est.intercepts_, X, Y, None,
                                           est.activation, est.out_activation_, est.loss,
                                           est.alpha)
        assert len(cg) == len(est.coefs_) and len(ig) == len(est.intercepts_)
        assert np.isfinite(value)


def test_loss_curve_is_the_network_loss_for_full_batch():
    """With batch_size='full' the first epoch's loss is the network loss at the initial
    parameters: the estimator and loss_and_gradients use the same definition."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    sw = np.linspace(0.5, 2, len(y))
    kw = dict(hidden_layer_sizes=(5,), random_state=0, batch_size="full", alpha=0.1,
              shuffle=False, learning_rate_init=1e-300, solver="sgd", momentum=0.0)
    init = MLPClassifier(max_iter=1, **kw).fit(X, y, sample_weight=sw)
    est = MLPClassifier(max_iter=1, **kw).fit(X, y, sample_weight=sw)
    value, _, _ = loss_and_gradients(init.coefs_, init.intercepts_, X, est._encode_targets(y),
                                     sw, "relu", "softmax", "log_loss", 0.1)
    np.testing.assert_allclose(est.loss_curve_[0], value, rtol=1e-12)


def _sk_step(opt, params, grads):
    opt.update_params(params, grads)


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_step_matches_sklearn(nesterov):
    rng = np.random.RandomState(0)
    params = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    ours = [p.copy() for p in params]
    theirs = [p.copy() for p in params]
    sk = SGDOptimizer(theirs, learning_rate_init=0.1, momentum=0.9, nesterov=nesterov)
    opt = make_optimizer("sgd", ours, learning_rate_init=0.1, momentum=0.9,
                         nesterovs_momentum=nesterov)
    k = fastnn_core.get_kernels("numpy")
    for _ in range(5):
        grads = [rng.normal(size=p.shape) for p in params]
        opt.step(k, [p.reshape(-1) for p in ours], [g.reshape(-1) for g in grads], [0.0, 0.0])
        _sk_step(sk, theirs, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_adam_step_matches_sklearn_and_l2_is_folded():
    rng = np.random.RandomState(1)
    params = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    ours = [p.copy() for p in params]
    theirs = [p.copy() for p in params]
    sk = AdamOptimizer(theirs, learning_rate_init=0.01)
    opt = make_optimizer("adam", ours, learning_rate_init=0.01)
    k = fastnn_core.get_kernels("numpy")
    l2 = 0.25
    for _ in range(5):
        grads = [rng.normal(size=p.shape) for p in params]
        opt.step(k, [p.reshape(-1) for p in ours], [g.reshape(-1) for g in grads], [l2, 0.0])
        # scikit-learn adds alpha * W / S to the weight gradient itself
        _sk_step(sk, theirs, [grads[0] + l2 * theirs[0], grads[1]])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert opt.t == 5


@pytest.mark.parametrize("solver", ["adagrad", "rmsprop", "adadelta"])
def test_extra_optimizers_decrease_a_quadratic(solver):
    p = np.array([3.0, -2.0, 1.0])
    opt = make_optimizer(solver, [p], learning_rate_init=1.0 if solver == "adadelta" else 0.1,
                         epsilon=1e-6)
    k = fastnn_core.get_kernels("numpy")
    start = (p**2).sum()
    for _ in range(200):
        opt.step(k, [p], [2 * p.copy()], [0.0])
    assert (p**2).sum() < 0.5 * start
