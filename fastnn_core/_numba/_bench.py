"""Time the numba backend against the NumPy reference on the benchmark shapes, one thread:
``python -m fastnn_core._numba._bench [shape indices]``.

Fused ``ce_hard`` with gradient (forward + backward) and ``softmax``, float32 and float64, on
(8192, 10), (4096, 100), (4096, 1000), (512, 32000). Kernels are called directly (no validation
layer); the time is the best of several repeats of the calling thread's CPU time
(``time.thread_time``), which stays meaningful on a loaded machine where wall-clock times swing.
"""

import sys
import time
import timeit

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastnn_core import _numba as N
from fastnn_core import reference as R

SHAPES = [(8192, 10), (4096, 100), (4096, 1000), (512, 32000)]


def best_time(f):
    f()
    timer = timeit.Timer(f, timer=time.thread_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=7, number=number)) / number


def main(argv):
    numba.set_num_threads(1)
    shapes = [SHAPES[int(a)] for a in argv] or SHAPES
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for dt in (np.float32, np.float64):
            for n, C in shapes:
                z = (rng.standard_normal((n, C)) * 3).astype(dt)
                lab = rng.integers(0, C, n).astype(np.intp)
                g = np.empty_like(z)
                o = np.empty_like(z)
                cells = []
                for name, fn in [
                    ("ce_hard+grad", lambda K: K.ce_hard(z, lab, None, None, 0.0, 1.0 / n, g, None)),
                    ("softmax", lambda K: K.softmax(z, o)),
                ]:
                    tn = best_time(lambda: fn(N))
                    tr = best_time(lambda: fn(R))
                    cells.append(f"{name}: numba {tn * 1e3:7.3f} ms numpy {tr * 1e3:7.3f} ms "
                                 f"x{tr / tn:4.1f}")
                print(f"{dt.__name__} ({n},{C}) | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
