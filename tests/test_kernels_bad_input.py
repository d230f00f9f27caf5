"""Bad input raises ValueError naming the problem, on every backend, and class indices are checked
before any kernel runs (a compiled kernel never sees an out-of-range index)."""

import numpy as np
import pytest

import fastnn_core as fc
import fastnn_core._api as api_module

N, C = 4, 3
RNG = np.random.default_rng(0)
Z = RNG.standard_normal((N, C))
Y = np.array([0, 2, 1, 1])
T = RNG.dirichlet(np.ones(C), N)


def _readonly(shape):
    a = np.zeros(shape)
    a.flags.writeable = False
    return a


BAD_OUT = [
    (np.zeros((N, C + 1)), "shape"),
    (np.zeros((N, C), np.float32), "dtype"),
    (np.zeros((N, 2 * C))[:, ::2], "C-contiguous"),
    (np.zeros((C, N)).T, "C-contiguous"),
    (_readonly((N, C)), "read-only"),
    ([[0.0] * C] * N, "NumPy array"),
]

CE_CASES = [
    # (y, kwargs, message)
    (np.array([0, 3, 1, 1]), {}, r"class index 3 is out of range for 3 classes"),
    (np.array([0, 2**40, 1, 1]), {}, r"out of range"),
    (np.array([0, -1, 1, 1]), {}, r"class index -1 is negative"),
    (np.array([0, -(2**62), 1, 1]), {}, r"negative"),
    (np.array([0, 2**64 - 1, 1, 1], dtype=np.uint64), {}, r"out of range"),
    (np.array([0.0, 2.0, 1.0, 1.0]), {}, r"integers"),
    (np.array([0, 1, 1]), {}, r"3 labels but z has 4 rows"),
    (np.array([0, 1, 1, 1, 2]), {}, r"labels but z has"),
    (np.zeros((N, C, 1)), {}, r"y must be"),
    (np.zeros((N, C + 1)), {}, r"shape"),
    (np.zeros((N + 1, C)), {}, r"shape"),
    (np.array(["a", "b", "c", "d"]), {}, r"y must hold real numbers"),
    (Y, {"reduction": "avg"}, r"reduction must be one of"),
    (Y, {"reduction": None}, r"reduction"),
    (Y, {"label_smoothing": -0.1}, r"label_smoothing"),
    (Y, {"label_smoothing": 1.5}, r"label_smoothing"),
    (Y, {"label_smoothing": float("nan")}, r"label_smoothing"),
    (Y, {"label_smoothing": "0.1"}, r"label_smoothing"),
    (Y, {"sample_weight": np.ones(N + 1)}, r"sample_weight must have shape \(4,\)"),
    (Y, {"sample_weight": np.ones((N, 1))}, r"sample_weight must have shape"),
    (Y, {"sample_weight": np.array([1, -1, 1, 1.0])}, r"sample_weight must be non-negative"),
    (Y, {"sample_weight": np.array([1, np.nan, 1, 1])}, r"sample_weight contains NaN"),
    (Y, {"sample_weight": np.array([1, np.inf, 1, 1])}, r"sample_weight contains NaN or infinity"),
    (Y, {"class_weight": np.ones(C + 1)}, r"class_weight must have shape \(3,\)"),
    (Y, {"class_weight": np.array([1, -2, 1.0])}, r"class_weight must be non-negative"),
    (Y, {"class_weight": np.array([1, np.nan, 1])}, r"class_weight contains NaN"),
    (T, {"class_weight": np.array([-1, 1, 1.0])}, r"class_weight must be non-negative"),
    (Y, {"sample_weight": np.zeros(N)}, r"reduction='mean' is undefined"),
    (Y, {"class_weight": np.zeros(C)}, r"reduction='mean' is undefined"),
    (np.array([1, 2, 1, 2]), {"class_weight": np.array([1.0, 0.0, 0.0])}, r"reduction='mean' is undefined"),
    (T, {"sample_weight": np.zeros(N)}, r"reduction='mean' is undefined"),
]


@pytest.mark.parametrize("fn", [fc.cross_entropy, fc.cross_entropy_grad], ids=["loss", "grad"])
@pytest.mark.parametrize("y, kw, message", CE_CASES, ids=[c[2][:40] for c in CE_CASES])
def test_cross_entropy_bad_input(backend, fn, y, kw, message):
    with pytest.raises(ValueError, match=message):
        fn(Z, y, **kw)


@pytest.mark.parametrize("z, message", [
    (np.zeros(5), r"z must be 2-D"),
    (np.zeros((2, 3, 4)), r"z must be 2-D"),
    (np.array(3.0), r"z must be 2-D"),
    (np.zeros((2, 3), complex), r"z must hold real numbers"),
    ([["a", "b"]], r"z must hold real numbers"),
])
def test_logits_must_be_2d_real(backend, z, message):
    for fn in (fc.softmax, fc.log_softmax, fc.logsumexp):
        with pytest.raises(ValueError, match=message):
            fn(z)
    with pytest.raises(ValueError, match=message):
        fc.cross_entropy_grad(z, np.zeros(np.shape(z)[:1], int) if np.ndim(z) else 0)


@pytest.mark.parametrize("out, message", BAD_OUT, ids=[m for _, m in BAD_OUT])
def test_bad_out(backend, out, message):
    for call in (
        lambda: fc.softmax(Z, out=out),
        lambda: fc.log_softmax(Z, out=out),
        lambda: fc.cross_entropy_grad(Z, Y, out=out),
        lambda: fc.cross_entropy_grad(Z, T, out=out),
        lambda: fc.binary_cross_entropy_grad(Z, T, out=out),
        lambda: fc.squared_error_grad(Z, T, out=out),
        lambda: fc.activation("relu", Z, out=out),
        lambda: fc.activation_grad("relu", Z, Z, out=out),
    ):
        with pytest.raises(ValueError, match=rf"out .*{message}|out has {message}|out must be a {message}"):
            call()


class _NoKernels:
    def __getattr__(self, name):
        raise AssertionError(f"kernel {name!r} was reached with invalid input")


@pytest.mark.parametrize("y", [np.array([0, 3, 1, 1]), np.array([0, -1, 1, 1]),
                               np.array([2**62, 0, 0, 0]), np.array([0, 1, 1, 2**63], np.uint64)],
                         ids=["C", "-1", "2**62", "uint64-max"])
def test_labels_checked_before_any_kernel(backend, monkeypatch, y):
    """The check happens in Python before the backend is asked for a kernel; the real call on this
    backend raises too and leaves ``out`` untouched."""
    out = np.full((N, C), 7.0)
    z = Z.copy()
    fc.cross_entropy_grad(z, Y, out=out)  # the backend works on valid input
    out[...] = 7.0
    with pytest.raises(ValueError, match="class index"):
        fc.cross_entropy_grad(z, y, out=out)
    with pytest.raises(ValueError, match="class index"):
        fc.cross_entropy_grad(z, y, out=z)
    assert (out == 7.0).all()
    np.testing.assert_array_equal(z, Z)
    with monkeypatch.context() as m:
        m.setattr(api_module, "get_kernels", lambda name=None: _NoKernels())
        for fn in (fc.cross_entropy, fc.cross_entropy_grad):
            with pytest.raises(ValueError, match="class index"):
                fn(z, y)
            with pytest.raises(ValueError, match="class index"):
                fn(z, y, sample_weight=np.ones(N), class_weight=np.ones(C), label_smoothing=0.1)


ELEMENTWISE = [
    (lambda z, y, **kw: fc.binary_cross_entropy(z, y, **kw), "bce"),
    (lambda z, y, **kw: fc.binary_cross_entropy_grad(z, y, **kw), "bce_grad"),
    (lambda z, y, **kw: fc.squared_error(z, y, **kw), "sqerr"),
    (lambda z, y, **kw: fc.squared_error_grad(z, y, **kw), "sqerr_grad"),
]


@pytest.mark.parametrize("fn", [f for f, _ in ELEMENTWISE], ids=[n for _, n in ELEMENTWISE])
def test_elementwise_losses_bad_input(backend, fn):
    with pytest.raises(ValueError, match=r"y has shape \(4, 2\) but z has shape \(4, 3\)"):
        fn(Z, T[:, :2])
    with pytest.raises(ValueError, match=r"y has shape"):
        fn(Z, T.T)
    with pytest.raises(ValueError, match=r"z must be 1-D \(n,\) or 2-D"):
        fn(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        fn(Z, T, reduction="average")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4,\)"):
        fn(Z, T, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative"):
        fn(Z, T, sample_weight=-np.ones(N))
    with pytest.raises(ValueError, match=r"sample_weight contains NaN"):
        fn(Z, T, sample_weight=np.full(N, np.nan))
    with pytest.raises(ValueError, match=r"reduction='mean' is undefined"):
        fn(Z, T, sample_weight=np.zeros(N))
    with pytest.raises(ValueError, match=r"y must hold real numbers"):
        fn(Z, np.full(Z.shape, "x"))


def test_unknown_activation(backend):
    for name in ("softmax", "swish", "ReLU", "", None):
        with pytest.raises(ValueError, match=r"unknown activation"):
            fc.activation(name, Z)
        with pytest.raises(ValueError, match=r"unknown activation"):
            fc.activation_grad(name, Z, Z)
    for name in ("tanh", "relu", "swish"):
        with pytest.raises(ValueError, match=r"unknown activation"):
            fc.squared_error(Z, T, activation=name)
        with pytest.raises(ValueError, match=r"unknown activation"):
            fc.squared_error_grad(Z, T, activation=name)


def test_activation_grad_shape_mismatch(backend):
    with pytest.raises(ValueError, match=r"upstream has shape \(3, 4\) but a has shape \(4, 3\)"):
        fc.activation_grad("tanh", Z, Z.T.copy())


def _opt_arrays(shape=(5,), dtype=np.float64):
    return [np.zeros(shape, dtype) for _ in range(3)]


def test_optimizer_bad_input(backend):
    p, v, g = _opt_arrays()
    with pytest.raises(ValueError, match=r"lr must be positive"):
        fc.sgd_step(p, g, v, lr=0.0)
    with pytest.raises(ValueError, match=r"lr must be a finite number"):
        fc.sgd_step(p, g, v, lr=float("nan"))
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        fc.sgd_step(p, g, v, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"l2 must be non-negative"):
        fc.sgd_step(p, g, v, lr=0.1, l2=-1e-3)
    with pytest.raises(ValueError, match=r"velocity has shape \(4,\)"):
        fc.sgd_step(p, g, np.zeros(4), lr=0.1)
    with pytest.raises(ValueError, match=r"velocity has shape \(5,\) and dtype float32"):
        fc.sgd_step(p, g, np.zeros(5, np.float32), lr=0.1)
    with pytest.raises(ValueError, match=r"grad has shape \(6,\) but param has shape \(5,\)"):
        fc.sgd_step(p, np.zeros(6), v, lr=0.1)
    with pytest.raises(ValueError, match=r"param must be float32 or float64"):
        fc.sgd_step(np.zeros(5, int), g, v, lr=0.1)
    with pytest.raises(ValueError, match=r"param must be a NumPy array"):
        fc.sgd_step([0.0] * 5, g, v, lr=0.1)
    with pytest.raises(ValueError, match=r"param must be C-contiguous and writeable"):
        fc.sgd_step(np.zeros(10)[::2], g, v, lr=0.1)
    with pytest.raises(ValueError, match=r"velocity must be C-contiguous and writeable"):
        fc.sgd_step(p, g, _readonly(5), lr=0.1)
    m = np.zeros(5)
    with pytest.raises(ValueError, match=r"step must be a positive integer"):
        fc.adam_step(p, g, m, v, lr=0.1, step=0)
    with pytest.raises(ValueError, match=r"step must be a positive integer"):
        fc.adam_step(p, g, m, v, lr=0.1, step=1.5)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\)"):
        fc.adam_step(p, g, m, v, lr=0.1, step=1, beta1=1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\)"):
        fc.adam_step(p, g, m, v, lr=0.1, step=1, beta2=-0.1)
    with pytest.raises(ValueError, match=r"eps must be positive"):
        fc.adam_step(p, g, m, v, lr=0.1, step=1, eps=0.0)
    with pytest.raises(ValueError, match=r"eps must be positive"):
        fc.adagrad_step(p, g, v, lr=0.1, eps=-1.0)
    with pytest.raises(ValueError, match=r"rho must be in \[0, 1\)"):
        fc.rmsprop_step(p, g, v, lr=0.1, rho=1.5)
    with pytest.raises(ValueError, match=r"acc_dx has shape"):
        fc.adadelta_step(p, g, v, np.zeros(3), lr=1.0)
    assert not p.any() and not v.any()  # nothing was updated by any failed call


@pytest.mark.parametrize("name", ["fortran", "NUMPY", "", "torch"])
def test_unknown_backend_name(name):
    with pytest.raises(ValueError, match=r"unknown backend"):
        fc.set_backend(name)
    with pytest.raises(ValueError, match=r"unknown backend"):
        with fc.use_backend(name):
            pass
    with pytest.raises(ValueError, match=r"unknown backend"):
        fc.get_kernels(name)
    with pytest.raises(ValueError, match=r"unknown backend"):
        fc.backend_error(name)
