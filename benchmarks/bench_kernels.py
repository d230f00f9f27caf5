"""Kernel benchmarks: fused cross-entropy forward+backward and softmax, per backend.

Run with pytest-benchmark (no timing assertions anywhere)::

    pytest benchmarks/bench_kernels.py --benchmark-only -q
    pytest benchmarks/bench_kernels.py --benchmark-only -k "float32 and 4096x1000 and t1"

``benchmarks/kernel_table.py`` times the same cases (built by :func:`make_case`) in one run and
prints the Markdown ratio table of benchmarks/README.md.

What is timed, through the PUBLIC API (validation included) under
``fastnn_core.use_backend(name)``:

- ``cross_entropy_grad``: ``fastnn_core.cross_entropy_grad(z, y)`` (hard labels, mean
  reduction, loss and gradient; the gradient array is allocated by the call, as in PyTorch);
- ``softmax``: ``fastnn_core.softmax(z)``;

for the backends ``numpy`` (the reference), ``cython`` and ``numba``; ``cython_out`` is the
cython backend writing into a preallocated ``out=`` array (no allocation, the setting of the
copy floor); ``torch`` is ``F.cross_entropy(z, y)`` + ``backward()`` (a fresh ``z.grad`` per
call) or ``torch.softmax(z, 1)`` if PyTorch is importable; ``floor`` is ``np.copyto(out, z)``
of the same array, the memory-bandwidth floor of any kernel that reads z and writes n x C.

Threads: ``threadpoolctl.threadpool_limits(t)`` caps every OpenMP and BLAS pool it finds
(fastnn's Cython kernels read ``omp_get_max_threads()``), plus ``torch.set_num_threads`` and
``numba.set_num_threads`` when those are loaded.
"""

import contextlib
import sys

import numpy as np
import pytest

SHAPES = [(8192, 10), (4096, 100), (4096, 1000), (512, 32000)]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]
OPS = ["cross_entropy_grad", "softmax"]
BACKENDS = ["numpy", "cython", "numba"]
IMPLS = ["numpy", "cython", "cython_out", "numba", "torch", "floor"]


class Unavailable(Exception):
    """This implementation cannot run here (backend not built, torch not installed)."""


def make_data(shape, dtype, seed=0):
    """Logits ``z`` (n, C) with a few units of spread and labels ``y`` (n,) intp."""
    rng = np.random.default_rng(seed)
    n, C = shape
    z = (3.0 * rng.standard_normal((n, C))).astype(dtype)
    y = rng.integers(0, C, n).astype(np.intp)
    return z, y


def _torch():
    try:
        import torch
    except Exception as exc:  # not installed, or a broken install
        raise Unavailable(f"torch: {exc}") from None
    return torch


@contextlib.contextmanager
def limit_threads(threads):
    """Cap OpenMP + BLAS (threadpoolctl), torch and numba to ``threads`` for the block."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    numba = sys.modules.get("numba")
    old_torch = torch.get_num_threads() if torch is not None else None
    old_numba = None
    if numba is not None:
        try:
            old_numba = numba.get_num_threads()
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except Exception:
            old_numba = None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_torch)
        if old_numba is not None:
            numba.set_num_threads(old_numba)


def make_case(op, impl, z, y):
    """A zero-argument callable running ``op`` once on ``(z, y)`` with ``impl``.

    Raises Unavailable when ``impl`` cannot run here.
    """
    if impl == "floor":
        out = np.empty_like(z)
        return lambda: np.copyto(out, z)
    if impl == "torch":
        torch = _torch()
        import torch.nn.functional as F

        zt = torch.from_numpy(z.copy())
        if op == "softmax":
            return lambda: torch.softmax(zt, 1)
        zt.requires_grad_(True)
        yt = torch.from_numpy(y.astype(np.int64))

        def run_torch():
            zt.grad = None
            loss = F.cross_entropy(zt, yt)
            loss.backward()
            return loss.item(), zt.grad

        return run_torch

    import fastnn_core

    backend = "cython" if impl == "cython_out" else impl
    if backend not in BACKENDS:
        raise ValueError(f"unknown implementation {impl!r}")
    try:
        fastnn_core.get_kernels(backend)
    except fastnn_core.BackendUnavailableError as exc:
        raise Unavailable(str(exc)) from None
    out = np.empty_like(z) if impl == "cython_out" else None
    fn = fastnn_core.cross_entropy_grad if op == "cross_entropy_grad" else fastnn_core.softmax

    if op == "cross_entropy_grad":
        def run():
            with fastnn_core.use_backend(backend):
                return fn(z, y, out=out)
    else:
        def run():
            with fastnn_core.use_backend(backend):
                return fn(z, out=out)
    return run


def _shape_id(shape):
    return f"{shape[0]}x{shape[1]}"


_DATA = {}


def _data(shape, dtype):
    key = (shape, dtype)
    if key not in _DATA:
        _DATA.clear()  # keep one (up to 128 MB) data set alive at a time
        _DATA[key] = make_data(shape, dtype)
    return _DATA[key]


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", OPS)
def test_kernel(benchmark, op, impl, shape, dtype, threads):
    z, y = _data(shape, dtype)
    try:
        run = make_case(op, impl, z, y)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"{op} {_shape_id(shape)} {dtype} {threads} thread(s)"
    benchmark.extra_info.update(op=op, impl=impl, n=shape[0], C=shape[1], dtype=dtype,
                                threads=threads)
    with limit_threads(threads):
        run()  # warm-up: numba compilation, first-touch of buffers
        benchmark(run)
