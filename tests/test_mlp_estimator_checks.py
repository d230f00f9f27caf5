"""scikit-learn's estimator contract for fastnn.MLPClassifier: the default estimator and every
solver, with no expected failures."""

import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from fastnn import MLPClassifier

# Small max_iter keeps the suite fast; learning rates suited to each solver so that the checks
# that need a trained model (e.g. check_classifiers_train, accuracy > 0.83) are met.
ESTIMATORS = [
    MLPClassifier(),
    MLPClassifier(solver="sgd", learning_rate_init=0.01, max_iter=100),
    MLPClassifier(solver="adam", max_iter=100),
    MLPClassifier(solver="lbfgs", max_iter=100),
    MLPClassifier(solver="adagrad", learning_rate_init=0.01, max_iter=100),
    MLPClassifier(solver="adadelta", learning_rate_init=1.0, max_iter=100),
    MLPClassifier(solver="rmsprop", learning_rate_init=0.01, max_iter=100),
]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # The checks fit tiny networks: BLAS threads only add synchronisation cost there.
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
