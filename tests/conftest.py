"""Shared fixtures for the test suite.

``backend``  -- parametrised over every backend name; the test body runs inside
                ``fastnn_core.use_backend(name)``. A backend that cannot be loaded here is skipped
                with the reason ``fastnn_core`` gives (set ``FASTNN_TEST_REQUIRE_BACKENDS=cython,numba``
                to turn that skip into a failure, e.g. in CI where every backend must be built).
``dtype``    -- ``np.float32`` and ``np.float64``.
``rng``      -- a ``numpy.random.Generator`` seeded from the test's node id (reproducible).
"""

import zlib

import numpy as np
import pytest

import fastnn_core
from _kernels_oracle import ALL_BACKENDS, skip_unless_loaded


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    name = request.param
    skip_unless_loaded(name)
    with fastnn_core.use_backend(name):
        yield name


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
