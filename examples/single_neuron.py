"""Lesson 1: why the quadratic cost learns slowly and cross-entropy does not.

One sigmoid neuron, input 1.0, target 0.0, trained by gradient descent (learning rate 0.15,
300 epochs) from two starts: (w, b) = (0.6, 0.9), output 0.82, and (2.0, 2.0), output 0.98,
where the sigmoid is saturated. Every step goes through fastnn_core's kernels:

    quadratic cost:  loss, dz = fastnn_core.squared_error_grad(z, y, activation="logistic")
                     # dz = (a - y) * a * (1 - a): the factor sigma'(z) = a (1 - a) is tiny
                     # when a is near 0 or 1, so a badly wrong neuron learns slowly
    cross-entropy:   loss, dz = fastnn_core.binary_cross_entropy_grad(z, y)
                     # dz = a - y: the more wrong the neuron, the faster it learns

    then dC/dw = dz * x, dC/db = dz, and fastnn_core.sgd_step updates (w, b) in place.

Run:  python examples/single_neuron.py [--out DIR] [--quick]
Writes DIR/single_neuron.png (default DIR: docs/figures next to this examples/ folder).
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
    parser.add_argument("--quick", action="store_true",
                        help="accepted for uniformity with the other examples: this one is instant")
    args = parser.parse_args(argv)

    epochs = 300
    results = _lessons.single_neuron_lesson(lr=0.15, epochs=epochs)
    print(f"One sigmoid neuron, input 1.0, target 0.0, learning rate 0.15, {epochs} epochs:")
    print(_lessons.single_neuron_summary(results))
    path = _lessons.save_figure(_lessons.single_neuron_figure(results, lr=0.15), args.out,
                                "single_neuron.png")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
