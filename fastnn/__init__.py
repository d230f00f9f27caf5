"""fastnn: fast neural-network classifiers on native kernels (see ``fastnn_core``)."""

from ._version import __version__
from ._config import show_config
from ._mlp import DivergenceWarning, MLPClassifier
from ._gradcheck import gradcheck
from ._lr_find import lr_find
from . import plot  # matplotlib itself is imported only when a plot function is called
