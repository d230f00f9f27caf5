"""Lesson 2: the quadratic cost's slow learning, on a real network.

The same lesson as single_neuron.py at scale: scikit-learn's bundled load_digits (8x8 images of
digits, standardised), a 64-30-10 network with logistic (sigmoid) hidden units, plain mini-batch
SGD (rate 0.1, batches of 10, no momentum, no L2), trained one epoch at a time, twice:

    MLPClassifier(loss="squared_error", ...)   # the quadratic cost 0.5 * (a - y)^2 on the outputs
    MLPClassifier(loss="log_loss", ...)        # cross-entropy (the default)

and the number of epochs each needs to reach 90% test accuracy.

Run:  python examples/cost_at_scale.py [--out DIR] [--quick]
Writes DIR/cost_at_scale.png (default DIR: docs/figures next to this examples/ folder).
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

    epochs = 4 if args.quick else 30
    results = _lessons.cost_at_scale(epochs=epochs, target=0.9)
    print(f"load_digits, 64-30-10 logistic network, SGD rate 0.1, batches of 10, {epochs} epochs:")
    print(_lessons.cost_at_scale_summary(results, target=0.9))
    path = _lessons.save_figure(_lessons.cost_at_scale_figure(results, target=0.9), args.out,
                                "cost_at_scale.png")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
