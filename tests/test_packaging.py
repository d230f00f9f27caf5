"""Packaging and start-up: what is installed, what ``import fastnn`` costs, how a broken build or
an unwritable cache degrades.

The tests that break an installation work on a COPY of the installed ``fastnn``/``fastnn_core``
(in ``tmp_path``, first on ``PYTHONPATH`` of a subprocess), so the installation itself is never
touched. .ci/run sets ``FASTNN_TEST_INSTALLED=1`` (and ``FASTNN_SOURCE_TREE``) to require that the
suite runs against an installed package rather than the checkout.
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import fastnn
import fastnn_core

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [Path(fastnn.__file__).resolve().parent, Path(fastnn_core.__file__).resolve().parent]


def _run(code, env=None, cwd=None, check=True):
    """Run ``code`` in a fresh interpreter; return the CompletedProcess (text output)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({result.returncode})\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}"
        )
    return result


def _clean_env(**overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FASTNN_", "NUMBA_")) and k not in ("PYTHONPATH", "XDG_CACHE_HOME")
    }
    # The fastnn under test, whether installed or a checkout (harmless for site-packages).
    env["PYTHONPATH"] = str(PACKAGE_DIRS[0].parent)
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return env


def _copy_installation(dest):
    """Copy the importable fastnn and fastnn_core (and auditwheel's fastnn.libs) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGE_DIRS:
        shutil.copytree(package, dest / package.name, ignore=ignore)
    libs = PACKAGE_DIRS[0].parent / "fastnn.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / "fastnn.libs")
    return dest


def _extension_files(root):
    return sorted((root / "fastnn_core" / "_cython").glob("*.so")) + sorted(
        (root / "fastnn_core" / "_cython").glob("*.pyd")
    )


requires_extension = pytest.mark.skipif(
    not _extension_files(PACKAGE_DIRS[1].parent),
    reason="no compiled Cython extension in this installation",
)


# --- what is installed ---------------------------------------------------------------------------


def test_version_has_one_source():
    from fastnn._version import __version__

    assert fastnn.__version__ == __version__
    try:
        installed = importlib.metadata.version("fastnn")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastnn is not installed (running from a checkout)")
    assert installed == fastnn.__version__


@pytest.mark.skipif(
    not os.environ.get("FASTNN_TEST_INSTALLED"), reason="set FASTNN_TEST_INSTALLED=1 (.ci/run does)"
)
def test_tests_run_against_the_installed_package_not_the_checkout():
    site = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    trees = {CHECKOUT}
    if os.environ.get("FASTNN_SOURCE_TREE"):
        trees.add(Path(os.environ["FASTNN_SOURCE_TREE"]).resolve())
    for package in PACKAGE_DIRS:
        assert any(s in package.parents for s in site), f"{package} is not in {site}"
        for tree in trees:
            assert tree not in package.parents, f"{package} is inside the source tree {tree}"
    # Nothing of the checkout is on sys.path either (pytest may add tests/ itself, nothing above).
    for entry in sys.path:
        if entry:
            assert Path(entry).resolve() not in trees, f"{entry} (the checkout) is on sys.path"


def test_py_typed_is_shipped():
    for package in PACKAGE_DIRS:
        assert (package / "py.typed").is_file(), package


def test_metadata():
    try:
        meta = importlib.metadata.metadata("fastnn")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastnn is not installed (running from a checkout)")
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "BSD-3-Clause"
    extras = set(meta.get_all("Provides-Extra"))
    assert {"test", "bench", "plot", "progress", "torch", "numba", "all"} <= extras
    requires = meta.get_all("Requires-Dist")
    for dist in ("numpy", "scipy", "scikit-learn", "threadpoolctl"):
        assert any(r.startswith(dist + ">=") for r in requires), (dist, requires)


# --- start-up --------------------------------------------------------------------------------------


def test_import_fastnn_is_lazy():
    """``import fastnn`` imports neither Numba nor scikit-learn nor any optional heavy dependency
    and compiles nothing; ``fastnn.MLPClassifier`` loads the estimator (and scikit-learn)."""
    result = _run(
        """
        import sys, json
        import fastnn
        heavy = [m for m in ("numba", "llvmlite", "torch", "matplotlib", "tqdm", "sklearn",
                             "fastnn._mlp", "fastnn_core._numba")
                 if m in sys.modules]
        est = fastnn.MLPClassifier
        print(json.dumps([heavy, est.__module__, "sklearn" in sys.modules,
                          "MLPClassifier" in dir(fastnn)]))
        """,
        env=_clean_env(),
    )
    heavy, module, sklearn_loaded, listed = json.loads(result.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert module == "fastnn._mlp" and sklearn_loaded and listed


def test_unknown_attribute_of_fastnn_raises_attribute_error():
    import fastnn

    with pytest.raises(AttributeError, match="no attribute 'MLPRegressor'"):
        fastnn.MLPRegressor


def test_numba_backend_imports_numba_only_on_first_use():
    pytest.importorskip("numba")
    result = _run(
        """
        import sys
        import numpy as np
        import fastnn_core
        assert "numba" in fastnn_core.available_backends()
        assert "numba" not in sys.modules
        with fastnn_core.use_backend("numba"):
            fastnn_core.softmax(np.ones((2, 3)))
        assert "numba" in sys.modules
        """,
        env=_clean_env(),
    )
    assert result.returncode == 0


# --- a broken or missing compiled extension --------------------------------------------------------

_FALLBACK_PROBE = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import fastnn
        import fastnn_core
        p = fastnn_core.softmax(np.array([[0.0, 1.0, 2.0]]))
    assert abs(p.sum() - 1) < 1e-12
    try:
        fastnn_core.set_backend("cython")
        explicit = None
    except fastnn_core.BackendUnavailableError as exc:
        explicit = str(exc)
    print(json.dumps({
        "backend": fastnn_core.get_backend(),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "explicit": explicit,
        "error": fastnn_core.backend_error("cython"),
    }))
""")


def _fallback(tmp_path, breakage, prelude="", **env):
    root = _copy_installation(tmp_path / "site")
    for so in _extension_files(root):
        if breakage == "corrupt":
            so.write_bytes(b"this is not a shared object")
        else:
            so.unlink()
    result = _run(prelude + _FALLBACK_PROBE, env=_clean_env(PYTHONPATH=root, **env), cwd=tmp_path)
    return json.loads(result.stdout.strip().splitlines()[-1])


@requires_extension
@pytest.mark.parametrize("breakage", ["corrupt", "missing"])
def test_broken_extension_falls_back_to_numba_with_one_warning(tmp_path, breakage):
    pytest.importorskip("numba")
    out = _fallback(tmp_path, breakage)
    assert out["backend"] == "numba"
    assert len(out["warnings"]) == 1, out["warnings"]
    message = out["warnings"][0]
    assert "Cython" in message and "'numba'" in message and out["error"] in message
    # Asking for it by name says why it cannot be had.
    assert out["explicit"] is not None
    assert "'cython'" in out["explicit"] and out["error"] in out["explicit"]
    if breakage == "missing":
        assert "No module named" in out["error"] or "cannot import" in out["error"]


@requires_extension
def test_broken_extension_without_numba_falls_back_to_numpy(tmp_path):
    # sys.modules["numba"] = None makes Numba look uninstalled to this interpreter.
    out = _fallback(tmp_path, "corrupt", prelude='import sys; sys.modules["numba"] = None\n')
    assert out["backend"] == "numpy"
    assert len(out["warnings"]) == 1, out["warnings"]
    assert "'numpy'" in out["warnings"][0] and "Numba" in out["warnings"][0]
    assert out["explicit"] is not None and out["error"] in out["explicit"]


def test_extension_import_failure_in_process_falls_back(tmp_path):
    """The same without a compiled build: make ``fastnn_core._cython`` fail to import."""
    out = json.loads(
        _run(
            'import sys; sys.modules["fastnn_core._cython"] = None\n' + _FALLBACK_PROBE,
            env=_clean_env(),
        ).stdout.strip().splitlines()[-1]
    )
    assert out["backend"] in ("numba", "numpy")
    assert len(out["warnings"]) == 1, out["warnings"]
    assert out["explicit"] is not None and out["error"] in out["explicit"]


def test_unusable_FASTNN_BACKEND_warns_once_and_runs(tmp_path):
    out = json.loads(
        _run(
            'import sys; sys.modules["fastnn_core._cython"] = None\n' + _FALLBACK_PROBE,
            env=_clean_env(FASTNN_BACKEND="cython"),
        ).stdout.strip().splitlines()[-1]
    )
    assert out["backend"] in ("numba", "numpy")
    assert len(out["warnings"]) == 1, out["warnings"]
    assert "FASTNN_BACKEND='cython'" in out["warnings"][0]


def test_explicit_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend"):
        fastnn_core.set_backend("fortran")


# --- Numba's cache when site-packages is read-only ------------------------------------------------

_NUMBA_PROBE = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import fastnn_core
        from fastnn_core import _backend
        with fastnn_core.use_backend("numba"):
            z = np.random.default_rng(0).standard_normal((8, 5))
            p = fastnn_core.softmax(z)  # one kernel: compiling Numba kernels takes seconds
    from numba.core.dispatcher import Dispatcher
    hits = misses = 0
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith("fastnn_core._numba"):
            for obj in vars(module).values():
                if isinstance(obj, Dispatcher):
                    hits += sum(obj.stats.cache_hits.values())
                    misses += sum(obj.stats.cache_misses.values())
    print(json.dumps({
        "ok": bool(abs(p.sum(axis=1) - 1).max() < 1e-12),
        "hits": hits,
        "misses": misses,
        "cache": _backend.numba_cache_dir(),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    }))
""")


def _read_only_copy(tmp_path):
    """A copy of the installation whose Numba sources cannot get a ``__pycache__``.

    CI runs as root, for whom ``chmod a-w`` changes nothing; a regular FILE named ``__pycache__``
    makes the directory impossible to create for anyone (what Numba's in-tree cache needs). As a
    normal user the copy is also made read-only with chmod.
    """
    root = _copy_installation(tmp_path / "site")
    numba_dir = root / "fastnn_core" / "_numba"
    for directory in {p.parent for p in numba_dir.rglob("*.py")}:
        (directory / "__pycache__").write_text("not a directory\n")
    if os.geteuid() != 0:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    return root


def _restore_writable(root):
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture
def read_only_install(tmp_path):
    pytest.importorskip("numba")
    root = _read_only_copy(tmp_path)
    yield root
    _restore_writable(root)


def test_numba_cache_goes_to_the_user_cache_when_site_packages_is_read_only(
    tmp_path, read_only_install
):
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(PYTHONPATH=read_only_install, HOME=home)
    first = json.loads(_run(_NUMBA_PROBE, env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert first["ok"] and first["warnings"] == []
    cache_dir, reason = first["cache"]
    assert reason is None and Path(cache_dir).is_relative_to(home / ".cache" / "numba"), cache_dir
    assert list((home / ".cache" / "numba").rglob("*.nbi")), "nothing was cached"
    assert first["misses"] > 0
    # A second process loads the machine code from that cache instead of compiling again.
    second = json.loads(_run(_NUMBA_PROBE, env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert second["ok"] and second["hits"] > 0 and second["misses"] == 0, second


def test_numba_without_any_writable_cache_dir_runs_uncached_with_one_warning(
    tmp_path, read_only_install
):
    # HOME=/dev/null: ~/.cache cannot be created, not even by root.
    env = _clean_env(PYTHONPATH=read_only_install, HOME="/dev/null")
    out = json.loads(_run(_NUMBA_PROBE, env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert out["ok"]
    assert out["hits"] == 0 and out["cache"][0] is None
    assert len(out["warnings"]) == 1 and "NUMBA_CACHE_DIR" in out["warnings"][0], out["warnings"]


def test_user_NUMBA_CACHE_DIR_is_respected(tmp_path, read_only_install):
    cache = tmp_path / "numba-cache"
    env = _clean_env(PYTHONPATH=read_only_install, HOME="/dev/null", NUMBA_CACHE_DIR=cache)
    out = json.loads(_run(_NUMBA_PROBE, env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert out["ok"] and out["warnings"] == []
    assert Path(out["cache"][0]).is_relative_to(cache)
    assert list(cache.rglob("*.nbi"))
