"""``fastnn.show_config()`` and ``python -m fastnn --version / --config``."""

import io
import json
import os
import subprocess
import sys

import pytest

import fastnn
import fastnn_core
from fastnn._config import get_config


def _python_m_fastnn(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTNN_")}
    return subprocess.run(
        [sys.executable, "-m", "fastnn", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def config():
    return get_config()


def test_show_config_prints_the_report():
    buffer = io.StringIO()
    assert fastnn.show_config(file=buffer) is None
    text = buffer.getvalue()
    for needle in (
        f"version: {fastnn.__version__}",
        "platform:",
        "backends:",
        "active:",
        "cython:",
        "numba:",
        "numpy:",
        "isa:",
        "threadpools:",
        "dependencies:",
        "scikit-learn:",
    ):
        assert needle in text, needle


def test_config_is_json_serialisable(config):
    assert json.loads(json.dumps(config)) == config


def test_config_backends(config):
    backends = config["backends"]
    assert backends["active"] in ("cython", "numba", "numpy")
    assert backends["numpy"]["available"] is True
    for name in ("cython", "numba", "numpy"):
        entry = backends[name]
        assert entry["available"] == (name in fastnn_core.available_backends())
        if not entry["available"]:
            assert entry["reason"], f"{name} is unavailable without a reason"


def test_config_reports_openmp_consistently(config):
    cython = config["backends"]["cython"]
    if not cython["available"]:
        pytest.skip("no Cython build here")
    from fastnn_core import _cython

    assert cython["openmp"] == _cython.OPENMP
    build = config["build"]
    if isinstance(build, dict):  # an installed build records how it was compiled
        assert build["openmp"] == bool(_cython.OPENMP)
        assert build["compiler"] and isinstance(build["extra_compile_args"], list)


def test_config_reports_numba(config):
    numba = config["backends"]["numba"]
    if not numba["available"]:
        pytest.skip("Numba is not available here")
    import numba as nb

    assert numba["version"] == nb.__version__
    assert "cache_dir" in numba


def test_config_cpu_and_dependencies(config):
    import numpy as np

    assert config["cpu"]["logical_cpus"] == os.cpu_count()
    assert isinstance(config["cpu"]["isa"], list)
    assert config["dependencies"]["numpy"] == np.__version__
    assert any(pool.get("user_api") == "blas" for pool in config["threadpools"])


def test_python_m_fastnn_version():
    result = _python_m_fastnn("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"fastnn {fastnn.__version__}"


def test_python_m_fastnn_config():
    result = _python_m_fastnn("--config")
    assert result.returncode == 0, result.stderr
    assert f"version: {fastnn.__version__}" in result.stdout
    result = _python_m_fastnn("--config", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fastnn"]["version"] == fastnn.__version__


def test_python_m_fastnn_usage_errors():
    assert _python_m_fastnn("--frobnicate").returncode == 2
    assert _python_m_fastnn().returncode == 2
    assert _python_m_fastnn("--help").returncode == 0


def test_python_m_fastnn_demo_dispatches(monkeypatch):
    import types

    from fastnn import __main__

    calls = []
    fake = types.ModuleType("fastnn._demo")
    fake.main = lambda argv=None: calls.append(argv)
    monkeypatch.setitem(sys.modules, "fastnn._demo", fake)
    assert __main__.main(["demo", "--quick", "x"]) == 0
    assert calls == [["--quick", "x"]]
