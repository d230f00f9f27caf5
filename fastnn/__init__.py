"""fastnn: fast neural-network classifiers on native kernels (see ``fastnn_core``)."""

from ._version import __version__
from ._config import show_config
from ._gradcheck import gradcheck
from ._lr_find import lr_find
from . import plot  # matplotlib itself is imported only when a plot function is called

try:
    # Load the compiled kernels (and with them the OpenMP runtime) now, not lazily at the
    # first fit: threadpoolctl only limits the libraries already loaded when a
    # ``threadpool_limits`` block starts, so ``with threadpool_limits(1): est.fit(...)`` right
    # after ``import fastnn`` would otherwise leave OpenMP unlimited.
    import fastnn_core._cython  # noqa: F401
except ImportError:  # the cython backend is not built: numba or the Python loop
    pass

_ESTIMATOR_NAMES = ("MLPClassifier", "DivergenceWarning")


def __getattr__(name):
    # The estimator module imports scikit-learn (about 2.5 s cold): load it on first use so
    # that the kernels, gradcheck and show_config do not pay for it.
    if name in _ESTIMATOR_NAMES:
        from . import _mlp

        return getattr(_mlp, name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ESTIMATOR_NAMES))
