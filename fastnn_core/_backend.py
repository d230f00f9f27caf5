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
import sys
import threading
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
_default_lock = threading.Lock()


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
        if name == "numba":
            with _numba_cache_guard():
                module = importlib.import_module(_MODULES[name])
        else:
            module = importlib.import_module(_MODULES[name])
    except Exception as exc:  # a broken build must not break `import fastnn`
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = module
    return module


# --- Numba's on-disk cache -------------------------------------------------------------------
# The Numba kernels are ``@njit(cache=True)``. Numba stores the machine code next to the source
# (``fastnn_core/_numba/__pycache__``) when that is writable, else in the user-wide cache
# (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``), or in ``$NUMBA_CACHE_DIR`` when the user set
# it. When none of these is writable Numba refuses to decorate the function at all ("cannot cache
# function ...: no locator available"), which would make the whole backend unusable. The guard
# below turns that case into "compile on every run" with one warning.

_numba_cache_disabled = None  # None, or why the Numba kernels run without an on-disk cache


@contextlib.contextmanager
def _numba_cache_guard():
    """While the Numba backend is imported, let ``cache=True`` degrade to no cache, not an error."""
    from numba.core import dispatcher  # imports numba: only ever called to load the backend

    original = dispatcher.Dispatcher.enable_caching

    def enable_caching(self):
        global _numba_cache_disabled
        try:
            original(self)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            if _numba_cache_disabled is None:
                _numba_cache_disabled = (
                    "no writable cache directory: neither the package directory, nor the user "
                    f"cache {_numba_user_cache_dir()!r}, nor NUMBA_CACHE_DIR"
                )
                warnings.warn(
                    f"fastnn: Numba found {_numba_cache_disabled}; its kernels will be compiled "
                    "again in every process. Set NUMBA_CACHE_DIR to a writable directory to "
                    "cache them.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    dispatcher.Dispatcher.enable_caching = enable_caching
    try:
        yield
    finally:
        dispatcher.Dispatcher.enable_caching = original


def _numba_user_cache_dir():
    """Numba's user-wide cache directory (what ``appdirs.user_cache_dir`` gives on this OS)."""
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "numba", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/numba")
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numba")


def numba_cache_dir():
    """Where the Numba kernels' compiled code is cached, or None with the reason if nowhere.

    Returns ``(path, None)`` or ``(None, reason)``. Once the backend is loaded this is read from
    Numba itself; before that it is predicted the way Numba decides, without importing Numba.
    """
    module = _loaded.get("numba")
    if module is not None:
        if _numba_cache_disabled is not None:
            return None, _numba_cache_disabled
        prefix = module.__name__
        for name, submodule in list(sys.modules.items()):
            if submodule is None or not (name == prefix or name.startswith(prefix + ".")):
                continue
            for obj in vars(submodule).values():
                path = getattr(getattr(obj, "_cache", None), "cache_path", None)
                if path:
                    return path, None
    spec = importlib.util.find_spec(_MODULES["numba"])
    candidates = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        candidates.append(os.environ["NUMBA_CACHE_DIR"])
    if spec is not None and spec.origin:
        candidates.append(os.path.join(os.path.dirname(spec.origin), "__pycache__"))
    candidates.append(_numba_user_cache_dir())
    for path in candidates:
        if _writable_dir(path):
            return path, None
    return None, "none of " + ", ".join(map(repr, candidates)) + " is writable"


def _writable_dir(path):
    """True if ``path`` exists or can be created and a file can be made in it (as Numba checks)."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    return os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)


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
    """The backend used when none was set: FASTNN_BACKEND if it loads, else the fastest that loads.

    Falling back from the compiled Cython kernels warns once, with the reason; an unusable
    FASTNN_BACKEND warns once as well. Neither ever raises: the NumPy backend always loads.
    """
    requested = os.environ.get("FASTNN_BACKEND", "").strip().lower()
    problem = None
    if requested:
        if requested not in _MODULES:
            problem = (
                f"FASTNN_BACKEND={requested!r} is not a backend (choose one of {sorted(_MODULES)})"
            )
        elif _try_load(requested) is not None:
            return requested
        else:
            problem = f"FASTNN_BACKEND={requested!r} cannot be used: {_errors[requested]}"
    if _try_load("cython") is not None:
        choice = "cython"
    elif _try_load("numba") is not None:
        choice = "numba"
    else:
        choice = "numpy"
    if choice != "cython":
        problem = (problem + "; also, " if problem else "") + (
            f"fastnn's compiled Cython kernels could not be loaded ({_errors.get('cython')})"
        )
        if choice == "numpy" and "numba" in _errors:
            problem += f" and neither could Numba ({_errors['numba']})"
        problem += ". Reinstalling fastnn (pip install --force-reinstall fastnn) may fix this"
    if problem:
        warnings.warn(
            f"{problem}. Using the {choice!r} backend"
            + (", which is slower." if choice != "cython" else "."),
            RuntimeWarning,
            stacklevel=4,
        )
    return choice


def get_backend():
    """The name of the backend that kernels called now would run on."""
    global _default
    override = _override.get()
    if override is not None:
        return override
    if _default is None:
        with _default_lock:  # so that two threads starting at once warn (at most) once
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
