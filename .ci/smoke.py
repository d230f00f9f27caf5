"""Smoke test of an installed fastnn (run by .ci/run in the venv built from the sdist).

Checks that fastnn imports from site-packages (not the checkout), starts without Numba, reports
its configuration, runs one kernel per backend against the NumPy reference, and fits a tiny
MLPClassifier.
"""

import os
import subprocess
import sys
import sysconfig
import warnings

# A backend fallback warning here means the build is broken.
warnings.filterwarnings("error", message=".*backend.*", category=RuntimeWarning)

code = "import sys, fastnn; assert 'numba' not in sys.modules, 'import fastnn imported numba'"
subprocess.run([sys.executable, "-c", code], check=True)

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
import fastnn_core  # noqa: E402

site = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
for module in (fastnn, fastnn_core):
    location = os.path.realpath(module.__file__)
    assert any(location.startswith(s + os.sep) for s in site), f"{module.__name__} from {location}"
    tree = os.environ.get("FASTNN_SOURCE_TREE")
    if tree:
        assert not location.startswith(os.path.realpath(tree) + os.sep), location
print("fastnn", fastnn.__version__, "from", os.path.dirname(fastnn.__file__))

fastnn.show_config()

assert fastnn_core.get_backend() == "cython", fastnn_core.get_backend()
rng = np.random.default_rng(0)
z = rng.standard_normal((64, 10)).astype(np.float32)
y = rng.integers(0, 10, 64)
with fastnn_core.use_backend("numpy"):
    ref_p = fastnn_core.softmax(z)
    ref_loss, ref_grad = fastnn_core.cross_entropy_grad(z, y)
for backend in ("cython", "numba", "numpy"):
    with fastnn_core.use_backend(backend):
        p = fastnn_core.softmax(z)
        loss, grad = fastnn_core.cross_entropy_grad(z, y)
    np.testing.assert_allclose(p, ref_p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
    assert abs(loss - ref_loss) <= 1e-5 * abs(ref_loss), (backend, loss, ref_loss)
    print(f"backend {backend}: softmax and cross_entropy_grad agree with the reference")

from sklearn.datasets import load_digits  # noqa: E402

X, y = load_digits(return_X_y=True)
X = X[:400] / 16.0
y = y[:400]
clf = fastnn.MLPClassifier(
    hidden_layer_sizes=(32,), max_iter=50, learning_rate_init=0.01, random_state=0
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a ConvergenceWarning after 50 epochs is fine
    clf.fit(X, y)
accuracy = clf.score(X, y)
print(f"MLPClassifier: training accuracy {accuracy:.3f} on 400 digits")
assert accuracy > 0.95, accuracy  # scikit-learn's MLPClassifier gets 1.0 here
print("smoke test passed")
