"""Which kernel implementation runs: the registry of backends and how users choose one.

The choice is, in order of precedence: a ``use_backend`` block (local to the current thread or
task), ``set_backend``, the ``FASTNN_BACKEND`` environment variable read at import, and finally
the fastest backend that loads (``cython``, then ``numba``, then ``numpy``).
"""

import contextlib
import contextvars
import importlib
import importlib.util
import os
import warnings

_MODULES = {
    "cython": "fastnn_core._cython",
    "numba": "fastnn_core._numba",
    "numpy": "fastnn_core.reference",
}
_PREFERENCE = ("cython", "numba", "numpy")


class BackendUnavailableError(ImportError):
    """Raised when a backend is asked for by name but cannot be loaded here."""


_loaded = {}
_errors = {}
_override = contextvars.ContextVar("fastnn_backend_override", default=None)
_default = None


def _check_name(name):
    if name not in _MODULES:
        raise ValueError(
            f"unknown backend {name!r}; choose one of {sorted(_MODULES)}"
        )


def _try_load(name):
    """Import a backend's module once; remember why it failed if it did."""
    if name in _loaded:
        return _loaded[name]
    if name in _errors:
        return None
    if name == "numba" and importlib.util.find_spec("numba") is None:
        _errors[name] = "Numba is not installed (pip install 'fastnn[numba]')"
        return None
    try:
        module = importlib.import_module(_MODULES[name])
    except Exception as exc:  # a broken build must not break `import fastnn`
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = module
    return module


def _load(name):
    module = _try_load(name)
    if module is None:
        raise BackendUnavailableError(
            f"the {name!r} backend is not available: {_errors[name]}"
        )
    return module


def _is_available(name):
    if name in _loaded:
        return True
    if name == "numba":
        # Importing Numba costs about a second: installed is enough to call it available.
        return name not in _errors and importlib.util.find_spec("numba") is not None
    return _try_load(name) is not None


def available_backends():
    """Names of the backends that can run here, fastest first."""
    return [name for name in _PREFERENCE if _is_available(name)]


def backend_error(name):
    """Why ``name`` failed to load, or None if it loaded (or was never tried)."""
    _check_name(name)
    return _errors.get(name)


def _initial_default():
    requested = os.environ.get("FASTNN_BACKEND", "").strip().lower()
    if requested:
        if requested not in _MODULES:
            warnings.warn(
                f"FASTNN_BACKEND={requested!r} is not a backend; choose one of "
                f"{sorted(_MODULES)}. Using the default.",
                RuntimeWarning,
                stacklevel=3,
            )
        elif _is_available(requested):
            return requested
        else:
            warnings.warn(
                f"FASTNN_BACKEND={requested!r} cannot be used: {_errors.get(requested)}. "
                "Using the default.",
                RuntimeWarning,
                stacklevel=3,
            )
    if _is_available("cython"):
        return "cython"
    fallback = "numba" if _is_available("numba") else "numpy"
    warnings.warn(
        f"fastnn's compiled Cython kernels could not be loaded ({_errors.get('cython')}); "
        f"falling back to the {fallback!r} backend, which is slower. Reinstall fastnn to fix this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return fallback


def get_backend():
    """The name of the backend that kernels called now would run on."""
    global _default
    override = _override.get()
    if override is not None:
        return override
    if _default is None:
        _default = _initial_default()
    return _default


def set_backend(name):
    """Make ``name`` (``"cython"``, ``"numba"`` or ``"numpy"``) the default backend.

    Raises
    ------
    ValueError
        If ``name`` is not a backend.
    BackendUnavailableError
        If the backend cannot be loaded here; the message says why.
    """
    global _default
    _check_name(name)
    _load(name)
    _default = name


@contextlib.contextmanager
def use_backend(name):
    """Run the kernels of the ``with`` block on ``name``; other threads are not affected."""
    _check_name(name)
    _load(name)
    token = _override.set(name)
    try:
        yield name
    finally:
        _override.reset(token)


def get_kernels(name=None):
    """The kernel module of ``name`` (default: the active backend), as in BACKENDS.md."""
    if name is None:
        name = get_backend()
    else:
        _check_name(name)
    module = _loaded.get(name)
    return module if module is not None else _load(name)
