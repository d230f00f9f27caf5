"""fastnn: fast neural-network classifiers on native kernels (see ``fastnn_core``)."""

from ._version import __version__
from ._config import show_config
from ._gradcheck import gradcheck
from ._lr_find import lr_find
from . import plot  # matplotlib itself is imported only when a plot function is called

import fastnn_core  # noqa: F401  (loads the compiled kernels: see fastnn_core/__init__.py)

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
