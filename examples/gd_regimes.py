"""Lesson 3: batch, stochastic (per-sample) and mini-batch gradient descent.

One network (64-64-10, relu) on load_digits, plain SGD without momentum, three ways:

    MLPClassifier(solver="sgd", batch_size="full", learning_rate_init=0.5)  # 1 update per epoch
    MLPClassifier(solver="sgd", batch_size=1, learning_rate_init=0.01)      # 1 per sample
    MLPClassifier(solver="sgd", batch_size=32, learning_rate_init=0.1)      # 1 per 32 samples

The training loss against epochs (per-sample SGD makes the most progress per pass over the data)
and against seconds (where the many tiny updates of per-sample SGD cost the most, and mini-batches
win: vectorised work per update, yet many updates per epoch).

Run:  python examples/gd_regimes.py [--out DIR] [--quick]
Writes DIR/gd_regimes.png (default DIR: docs/figures next to this examples/ folder).
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
    results = _lessons.gd_regimes(epochs=epochs)
    print(f"load_digits, 64-64-10 relu network, plain SGD, {epochs} epochs:")
    print(_lessons.gd_regimes_summary(results))
    path = _lessons.save_figure(_lessons.gd_regimes_figure(results), args.out, "gd_regimes.png")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
