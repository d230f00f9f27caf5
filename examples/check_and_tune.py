"""Lesson 5: check the gradient, pick a learning rate, watch the training.

    import fastnn
    from fastnn.plot import plot_lr_find, plot_training, plot_decision_boundary

    print(fastnn.gradcheck(est, X_small, y_small))   # relative error, per layer, and its reading
    result = fastnn.lr_find(est, X, y)               # learning-rate range test
    plot_lr_find(result)                             # loss against rate, suggestion marked
    est.set_params(learning_rate_init=result.suggested_lr).fit(X, y)
    plot_training(est)                               # loss and accuracy against epochs
    plot_decision_boundary(est, X, y)                # for 2-D data

Run:  python examples/check_and_tune.py [--out DIR] [--quick]
Writes DIR/lr_find.png, DIR/training_curves.png and DIR/decision_boundary.png (default DIR:
docs/figures next to this examples/ folder).
"""

import argparse
import os
import sys

import numpy as np

import fastnn
from fastnn import MLPClassifier, _lessons

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "figures"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for the PNGs")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    args = parser.parse_args(argv)
    from fastnn.plot import plot_decision_boundary, plot_lr_find, plot_training

    # 1. Gradient check on a small network and a few rows (two loss evaluations per parameter).
    X_train, X_test, y_train, y_test = _lessons._digits(0)
    rows = np.arange(40)
    small = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", random_state=0)
    print(fastnn.gradcheck(small, X_train[rows], y_train[rows]))

    # 2. Learning-rate range test for SGD with momentum, then a fit at the suggested rate.
    result, est, acc = _lessons.lr_find_lesson(num=30 if args.quick else 100)
    print(result)
    print(f"20 epochs at learning_rate_init={result.suggested_lr:.3g}: test accuracy {acc:.1%}")
    paths = [_lessons.save_figure(plot_lr_find(result), args.out, "lr_find.png")]

    # 3. Training curves (with a validation split) and the decision boundary, on 2-D data: a
    #    network too large for its data overfits (the validation loss turns up).
    est, X, y = _lessons.moons_lesson(max_iter=20 if args.quick else 400)
    print("two moons, 150 noisy points, a 2-100-100-1 network:")
    print(_lessons.moons_summary(est))
    paths.append(_lessons.save_figure(plot_training(est), args.out, "training_curves.png"))
    paths.append(_lessons.save_figure(plot_decision_boundary(est, X, y), args.out,
                                      "decision_boundary.png"))
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
