"""Thread safety: the same kernels called from 4 Python threads at once (each with its own arrays,
some sharing one read-only input) give the same results as serial calls."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastnn_core as fc
from _kernels_oracle import logits, rtol_for, skip_unless_loaded

N_THREADS = 4
ROUNDS = 3


def _workload(shared_z, shared_y, own_z, own_t, own_p):
    """Every kernel family once; returns all outputs as a list of arrays/floats."""
    results = []
    loss, grad = fc.cross_entropy_grad(shared_z, shared_y, label_smoothing=0.1)
    results += [loss, grad]
    results.append(fc.softmax(shared_z))
    results.append(fc.logsumexp(own_z))
    zc = own_z.copy()
    loss, _ = fc.cross_entropy_grad(zc, own_t, reduction="sum", out=zc)  # in place on a private copy
    results += [loss, zc]
    results.append(fc.log_softmax(own_z))
    results += list(fc.binary_cross_entropy_grad(own_z, own_t, reduction="none"))
    results += list(fc.squared_error_grad(shared_z, own_t, activation="softmax"))
    a = fc.activation("tanh", own_z)
    results += [a, fc.activation_grad("tanh", a, shared_z)]
    p = own_p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for step in range(1, 4):
        fc.adam_step(p, shared_z.reshape(-1)[: p.size].reshape(p.shape), m, v, lr=0.01, step=step)
    results += [p, m, v]
    return results


def _inputs(rng, dtype, n, C):
    z = logits(rng, (n, C), dtype)
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    return z, t, rng.standard_normal(600).astype(dtype)


@pytest.mark.parametrize("shared", ["read-only", "writeable"])
@pytest.mark.parametrize("shape", [(64, 10), (256, 1000)], ids=["small", "256x1000"])
def test_concurrent_calls_match_serial(backend, dtype, rng, shape, shared):
    """The shared logits and labels are read by every thread at once; with ``read-only`` they are
    also flagged non-writeable (reading such arrays must work: see test_kernels_layout)."""
    n, C = shape
    shared_z = logits(rng, shape, dtype)
    shared_y = rng.integers(0, C, n)
    if shared == "read-only":
        shared_z.flags.writeable = False
        shared_y.flags.writeable = False
    own = [_inputs(rng, dtype, n, C) for _ in range(N_THREADS)]

    serial = [_workload(shared_z, shared_y, *own[i]) for i in range(N_THREADS)]

    barrier = threading.Barrier(N_THREADS)

    def worker(i):
        with fc.use_backend(backend):  # use_backend is thread-local: enter it in the worker
            barrier.wait(30)
            return [_workload(shared_z, shared_y, *own[i]) for _ in range(ROUNDS)]

    with ThreadPoolExecutor(N_THREADS) as pool:
        concurrent = list(pool.map(worker, range(N_THREADS)))

    tol = rtol_for(dtype) * 1e-2  # same inputs, same code: only reduction order may differ
    for i in range(N_THREADS):
        for r, results in enumerate(concurrent[i]):
            for k, (got, want) in enumerate(zip(results, serial[i])):
                np.testing.assert_allclose(
                    got, want, rtol=tol, atol=tol * np.abs(want).max(),
                    err_msg=f"thread {i}, round {r}, output {k}",
                )


def _limit_threads(backend, n):
    """A context manager limiting the backend's own worker threads to ``n``."""
    import contextlib

    if backend == "numba":
        numba = pytest.importorskip("numba")

        @contextlib.contextmanager
        def numba_limit():
            previous = numba.get_num_threads()
            numba.set_num_threads(n)
            try:
                yield
            finally:
                numba.set_num_threads(previous)

        return numba_limit()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return threadpoolctl.threadpool_limits(limits=n)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs at least 2 CPUs to run kernels in parallel")
@pytest.mark.parametrize("backend_name", ["cython", "numba"])  # numpy has no threads of its own
def test_results_do_not_depend_on_the_number_of_threads(backend_name, dtype, rng):
    """Large inputs run in parallel over rows (OpenMP / Numba prange); one thread gives the same
    results (only the order of the final sum over rows may differ)."""
    skip_unless_loaded(backend_name)
    backend = backend_name
    n, C = 600, 1000  # 600k elements: above every backend's parallel threshold
    z = logits(rng, (n, C), dtype)
    y = rng.integers(0, C, n)
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype)

    def run():
        return [
            fc.softmax(z), fc.log_softmax(z), fc.logsumexp(z),
            *fc.cross_entropy_grad(z, y, sample_weight=sw, label_smoothing=0.1),
            *fc.cross_entropy_grad(z, t, reduction="none"),
            *fc.binary_cross_entropy_grad(z, t, sample_weight=sw),
            *fc.squared_error_grad(z, t, activation="softmax", reduction="sum"),
            fc.activation("softplus", z),
        ]

    with fc.use_backend(backend):
        parallel = run()
        with _limit_threads(backend, 1):
            serial = run()
    tol = rtol_for(dtype) * 1e-1
    for k, (a, b) in enumerate(zip(parallel, serial)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=f"output {k}")


@pytest.mark.parametrize("package", ["fastnn_core", "fastnn"])
def test_threadpool_limits_reach_the_kernels_in_a_fresh_process(package):
    """``with threadpool_limits(1): softmax(z)`` (or ``est.fit``) right after ``import
    fastnn_core`` (or ``fastnn``): the compiled kernels, the training loop and their OpenMP
    runtime are loaded at import, so the limit applies to them (loaded lazily inside the block,
    they would run on every core)."""
    import subprocess
    import sys

    pytest.importorskip("threadpoolctl")
    skip_unless_loaded("cython")
    code = (
        f"import {package}\n"
        "from threadpoolctl import threadpool_limits\n"
        "with threadpool_limits(1):\n"
        "    import fastnn_core._cython._train as T\n"
        "    print(T.max_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"
