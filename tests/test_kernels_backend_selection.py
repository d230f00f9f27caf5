"""Choosing a backend: available_backends / get_backend / set_backend / use_backend (local to a
thread), FASTNN_BACKEND read at import (in a subprocess), and that every backend that loads
implements the whole contract of BACKENDS.md."""

import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import ALL_BACKENDS, loaded_backends, skip_unless_loaded

KERNELS = (
    "softmax", "log_softmax", "logsumexp", "ce_hard", "ce_soft", "bce", "sqerr",
    "activation", "activation_grad", "sgd", "adam", "adagrad", "rmsprop", "adadelta",
)


@pytest.fixture
def restore_default():
    previous = fc.get_backend()
    yield previous
    fc.set_backend(previous)


def _two_backends():
    names = loaded_backends()
    if len(names) < 2:
        pytest.skip(f"needs two backends that load; only {names} load here")
    return names[0], names[1]


def test_available_backends():
    names = fc.available_backends()
    assert "numpy" in names
    assert set(names) <= set(ALL_BACKENDS)
    assert names == [n for n in ("cython", "numba", "numpy") if n in names]  # fastest first
    assert fc.get_backend() in names


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_loaded_backend_implements_every_kernel(name):
    """A backend that loads must provide every kernel of BACKENDS.md; otherwise it is reported
    unavailable (a half-built backend must not be chosen)."""
    skip_unless_loaded(name)
    module = fc.get_kernels(name)
    missing = [k for k in KERNELS if not callable(getattr(module, k, None))]
    assert not missing, f"backend {name!r} ({module.__name__}) loads but lacks kernels {missing}"
    assert fc.backend_error(name) is None


def test_set_backend(restore_default):
    for name in loaded_backends():
        fc.set_backend(name)
        assert fc.get_backend() == name
        assert fc.get_kernels() is fc.get_kernels(name)
        z = np.array([[1.0, 2.0, 3.0]])
        np.testing.assert_allclose(fc.softmax(z).sum(), 1.0)
        with ThreadPoolExecutor(1) as pool:  # set_backend is global: other threads see it
            assert pool.submit(fc.get_backend).result() == name


def test_use_backend_restores_and_nests(restore_default):
    outer = fc.get_backend()
    names = loaded_backends()
    for name in names:
        with fc.use_backend(name) as chosen:
            assert chosen == name and fc.get_backend() == name
            with fc.use_backend("numpy"):
                assert fc.get_backend() == "numpy"
            assert fc.get_backend() == name
        assert fc.get_backend() == outer
    with pytest.raises(RuntimeError, match="boom"):
        with fc.use_backend(names[-1]):
            raise RuntimeError("boom")
    assert fc.get_backend() == outer


def test_use_backend_dispatches(monkeypatch):
    """Kernels called inside the block run on that backend (spy on its softmax)."""
    for name in loaded_backends():
        module = fc.get_kernels(name)
        calls = []
        original = module.softmax

        def spy(z, out, _original=original, _calls=calls):
            _calls.append(z.shape)
            return _original(z, out)

        monkeypatch.setattr(module, "softmax", spy)
        others = [n for n in loaded_backends() if n != name]
        with fc.use_backend(name):
            fc.softmax(np.zeros((2, 3)))
        for other in others:
            with fc.use_backend(other):
                fc.softmax(np.zeros((4, 3)))
        assert calls == [(2, 3)], (name, calls)
        monkeypatch.undo()


def test_use_backend_is_local_to_the_thread(restore_default):
    """Inside ``use_backend(b)`` another thread keeps the default ``a``, and a block in another
    thread does not leak into this one."""
    a, b = _two_backends()
    fc.set_backend(a)
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def other_thread():
        seen["before"] = fc.get_backend()
        inside.wait(10)
        seen["during"] = fc.get_backend()
        with fc.use_backend("numpy"):
            seen["own block"] = fc.get_backend()
            release.set()
            inside.wait(10)

    t = threading.Thread(target=other_thread)
    t.start()
    with fc.use_backend(b):
        inside.set()
        assert release.wait(10)
        assert fc.get_backend() == b  # the other thread's block does not leak here
    t.join(10)
    assert seen == {"before": a, "during": a, "own block": "numpy"}
    with fc.use_backend(b):
        with ThreadPoolExecutor(2) as pool:
            assert pool.submit(fc.get_backend).result() == a
    assert fc.get_backend() == a


def _run_python(code, env_backend):
    env = {k: v for k, v in os.environ.items() if k != "FASTNN_BACKEND"}
    if env_backend is not None:
        env["FASTNN_BACKEND"] = env_backend
    package_parent = str(Path(fc.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1], result.stderr


CHECK = (
    "import warnings, numpy as np\n"
    "warnings.simplefilter('always')\n"
    "import fastnn_core as fc\n"
    "p = fc.softmax(np.array([[0.0, np.log(3.0)]]))\n"
    "assert abs(p[0, 1] - 0.75) < 1e-12, p\n"
    "print(fc.get_backend(), fc.get_kernels().__name__)\n"
)


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_environment_variable_is_honoured(name):
    skip_unless_loaded(name)
    last, _ = _run_python(CHECK, name)
    assert last.split()[0] == name
    assert last.split()[1] == fc.get_kernels(name).__name__


def test_environment_variable_is_case_and_space_insensitive():
    last, _ = _run_python(CHECK, "  NumPy ")
    assert last.split()[0] == "numpy"


def test_environment_variable_unknown_name_warns_and_falls_back():
    last, stderr = _run_python(CHECK, "fortran")
    assert "FASTNN_BACKEND='fortran' is not a backend" in stderr
    assert last.split()[0] == loaded_backends()[0]


def test_default_without_environment_variable():
    last, _ = _run_python(CHECK, None)
    assert last.split()[0] == loaded_backends()[0]  # the fastest that loads


def test_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        fc.set_backend("gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="unknown backend"):
            with fc.use_backend("gpu"):
                pass
