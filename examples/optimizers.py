"""Lesson 4: what momentum, Nesterov, AdaGrad, AdaDelta, RMSProp and Adam change.

One problem (load_digits, 64-64-10 relu, batches of 32), seven optimizers, each one parameter
of MLPClassifier:

    solver="sgd", momentum=0                            plain SGD, rate 0.01
    solver="sgd", momentum=0.9, nesterovs_momentum=False  classical momentum, rate 0.01
    solver="sgd", momentum=0.9 (nesterovs_momentum=True)  Nesterov momentum, rate 0.01
    solver="adagrad"                                    rate 0.05
    solver="adadelta"                                   rate 1.0 (Zeiler's method)
    solver="rmsprop"                                    rate 0.001
    solver="adam"                                       rate 0.001

Training loss and test accuracy against epochs, on one figure.

Run:  python examples/optimizers.py [--out DIR] [--quick]
Writes DIR/optimizers.png (default DIR: docs/figures next to this examples/ folder).
"""

import argparse
import os
import sys

from fastnn import _lessons

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "figures"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for the PNG")
    parser.add_argument("--quick", action="store_true", help="a few epochs (a smoke test)")
    args = parser.parse_args(argv)

    epochs = 3 if args.quick else 30
    results = _lessons.optimizers(epochs=epochs)
    print(f"load_digits, 64-64-10 relu network, batches of 32, {epochs} epochs:")
    print(_lessons.optimizers_summary(results))
    path = _lessons.save_figure(_lessons.optimizers_figure(results), args.out, "optimizers.png")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
