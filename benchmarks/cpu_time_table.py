"""CPU seconds per training epoch of fastnn's Python reference loop and native loop next to
scikit-learn's MLPClassifier, as thread CPU time on one thread.

This is the check of issue 3's target (the Python loop faster than scikit-learn at every batch
size, >= 1.5x at batch 200 in float32) for a machine too busy for wall-clock medians: thread CPU
time does not count the time slices other processes take. One epoch is one ``partial_fit`` call
(input validation included), median of 5 (3 at batch 1). Data: ``make_classification(60000,
100 features, 50 informative, 10 classes)``, standardised; hidden (100,), relu, adam, the same
``random_state``; batch 1 on the first 2000 rows.

Run: ``python benchmarks/cpu_time_table.py``
"""

import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastnn
import fastnn_core


def _epoch_seconds(make, X, y, repeats):
    est = make()
    est.partial_fit(X, y, classes=np.arange(10))  # warm-up: allocation, first calls
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        est.partial_fit(X, y)
        times.append(time.thread_time() - start)
    return float(np.median(times))


def main():
    fastnn_core.get_kernels()  # load the OpenMP runtime before limiting it
    X, y = make_classification(n_samples=60000, n_features=100, n_informative=50,
                               n_classes=10, random_state=0)
    X = StandardScaler().fit_transform(X)
    warnings.simplefilter("ignore")
    print("| batch | dtype | rows | fastnn python loop s | fastnn native s | sklearn s "
          "| sklearn/python | sklearn/native |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(1):
        for bs in [1, 32, 200, "full"]:
            for dtype in [np.float32, np.float64]:
                n = 2000 if bs == 1 else X.shape[0]
                Xd, yd = X[:n].astype(dtype), y[:n]
                repeats = 3 if bs == 1 else 5
                contenders = {
                    "python": lambda: fastnn.MLPClassifier(loop="python", batch_size=bs,
                                                           random_state=0),
                    "native": lambda: fastnn.MLPClassifier(loop="native", batch_size=bs,
                                                           random_state=0),
                    "sklearn": lambda: SkMLP(batch_size=n if bs == "full" else bs,
                                             random_state=0),
                }
                t = {name: _epoch_seconds(make, Xd, yd, repeats)
                     for name, make in contenders.items()}
                print(f"| {bs} | {np.dtype(dtype).name} | {n} | {t['python']:.4f} "
                      f"| {t['native']:.4f} | {t['sklearn']:.4f} "
                      f"| {t['sklearn'] / t['python']:.2f}x | {t['sklearn'] / t['native']:.2f}x |",
                      flush=True)


if __name__ == "__main__":
    main()
