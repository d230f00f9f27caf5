"""``fastnn.show_config()``: what this installation of fastnn is and what it runs on.

The text is meant to be pasted into bug reports: version and location, Python and platform, the
kernel backends (available, active, and why one is not), how the compiled kernels were built
(OpenMP or serial, compiler flags, SIMD), the CPU's instruction sets that matter for dispatch, the
BLAS/OpenMP thread pools in use and the versions of the libraries fastnn works with.

Only the standard library is imported at module level: ``import fastnn`` stays cheap. Calling
``show_config()`` loads every backend (Numba included, about a second) so that it can say why
one fails.
"""

import importlib.metadata
import json
import os
import platform
import sys
import warnings

_DEPENDENCIES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "threadpoolctl",
    "joblib",
    "numba",
    "llvmlite",
    "torch",
    "matplotlib",
    "tqdm",
)
_ENVIRONMENT = (
    "FASTNN_BACKEND",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
    "NUMBA_DISABLE_JIT",
)
# Instruction sets a kernel may dispatch on (names as NumPy reports them).
_ISA = (
    "SSE2", "SSE41", "SSE42", "AVX", "FMA3", "AVX2", "AVX512F", "AVX512DQ", "AVX512BW",
    "AVX512VL", "AVX512_SKX", "AVX512BF16", "AVX512FP16", "ASIMD", "ASIMDHP", "SVE", "VSX", "VX",
)


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu():
    info = {"machine": platform.machine(), "logical_cpus": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if model is None:
        model = platform.processor() or None
    info["model"] = model
    try:  # NumPy's run-time CPU feature detection works on every OS it supports
        from numpy._core import _multiarray_umath as umath

        features = umath.__cpu_features__
        info["isa"] = [name for name in _ISA if features.get(name)]
        info["numpy_baseline"] = list(umath.__cpu_baseline__)
        info["numpy_dispatch"] = [
            name for name in umath.__cpu_dispatch__ if features.get(name)
        ]
    except Exception as exc:  # private NumPy API: never let it break the report
        info["isa"] = f"unknown ({type(exc).__name__}: {exc})"
    return info


def _build_info():
    import fastnn_core

    path = os.path.join(os.path.dirname(fastnn_core.__file__), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _backend_details(name, module):
    details = {}
    if name == "cython":
        details["openmp"] = getattr(module, "OPENMP", "unknown (not exposed by this build)")
        details["simd"] = getattr(module, "SIMD_INFO", "unknown (not exposed by this build)")
    elif name == "numba":
        import numba

        from fastnn_core import _backend

        details["version"] = numba.__version__
        details["parallel"] = getattr(module, "PARALLEL", "unknown (not exposed)")
        details["threads"] = numba.config.NUMBA_NUM_THREADS
        details["threading_layer"] = numba.config.THREADING_LAYER
        path, reason = _backend.numba_cache_dir()
        details["cache_dir"] = path if path else f"none: {reason}"
    return details


def get_config():
    """Everything :func:`show_config` prints, as a dict of plain values (JSON-serialisable)."""
    from . import __version__

    import fastnn_core
    from fastnn_core import _backend

    config = {
        "fastnn": {"version": __version__, "location": os.path.dirname(os.path.abspath(__file__))},
        "python": {
            "version": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "cpu": _cpu(),
    }

    caught = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        backends = {}
        for name in _backend._PREFERENCE:
            module = _backend._try_load(name)
            entry = {"available": module is not None}
            if module is None:
                entry["reason"] = _backend.backend_error(name)
            else:
                try:
                    entry.update(_backend_details(name, module))
                except Exception as exc:  # the report must not fail on a detail
                    entry["details_error"] = f"{type(exc).__name__}: {exc}"
            backends[name] = entry
        try:
            active = fastnn_core.get_backend()
        except Exception as exc:
            active = f"error: {type(exc).__name__}: {exc}"
        caught.extend(str(w.message) for w in record)
    config["backends"] = {"active": active, "preference": list(_backend._PREFERENCE), **backends}
    build = _build_info()
    config["build"] = build if build is not None else "no build record (_build_info.json missing)"
    if caught:
        config["warnings"] = caught

    try:
        import threadpoolctl

        config["threadpools"] = [
            {
                key: pool.get(key)
                for key in ("user_api", "internal_api", "prefix", "version", "num_threads",
                            "threading_layer", "architecture", "filepath")
                if pool.get(key) is not None
            }
            for pool in threadpoolctl.threadpool_info()
        ]
    except Exception as exc:
        config["threadpools"] = f"unknown ({type(exc).__name__}: {exc})"

    config["dependencies"] = {dist: _version(dist) or "not installed" for dist in _DEPENDENCIES}
    config["environment"] = {
        key: os.environ[key] for key in _ENVIRONMENT if key in os.environ
    }
    # Plain JSON values only (tuples become lists, anything exotic its str()).
    return json.loads(json.dumps(config, default=str))


def _format(value, indent):
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) and all(not isinstance(i, (dict, list)) for i in item):
                lines.append(f"{pad}{key}: " + (", ".join(map(_scalar, item)) or "none"))
            elif isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_format(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            lines.append(pad + ", ".join(_scalar(item) for item in value))
        else:
            for item in value:
                sub = _format(item, indent + 1)
                lines.append(pad + "- " + sub[0].lstrip())
                lines.extend(sub[1:])
    else:
        lines.append(pad + _scalar(value))
    return lines


def _scalar(value):
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return "none" if not value else json.dumps(value)
    return str(value)


def show_config(file=None):
    """Print fastnn's version, platform, backends, build and thread-pool information.

    Paste the output into bug reports. ``file`` defaults to ``sys.stdout``. The same information
    is available as a dict from ``fastnn._config.get_config()`` (``python -m fastnn --config
    --json`` prints it as JSON).
    """
    text = "\n".join(_format(get_config(), 0))
    print(text, file=file if file is not None else sys.stdout)
