"""The BLAS floor of one training epoch of a fully connected network.

The floor is the same sequence of matrix products that every implementation of mini-batch
training has to perform, and nothing else: for every batch, the forward GEMMs
``A_l = A_{l-1} @ W_l`` and the backward GEMMs ``G_l = A_{l-1}.T @ D_l`` (weight gradients) and
``D_{l-1} = D_l @ W_l.T`` (deltas; not for the input layer), with ``np.dot(..., out=...)`` on
arrays allocated once.  No bias, activation, loss, optimizer update, shuffling or gathering of
the shuffled rows: those are what an implementation adds on top of the floor.

Batches are contiguous row slices of ``X`` (a row slice of a C-contiguous array is contiguous),
so the floor does not pay for gathering shuffled rows either.  Every call still goes through
NumPy's dispatch (about a microsecond per ``np.dot``), which dominates at batch size 1: the floor
is a meaningful lower bound for large batches (the issue-4 target compares batch 256 and full
batch against it) and only an indication for tiny ones.

NumPy's BLAS (``numpy.libs/libscipy_openblas64_``) is a different library from the one SciPy's
``cython_blas`` uses (``scipy.libs/libscipy_openblas``); both are OpenBLAS builds of about the
same version; limit both pools when timing (``threadpoolctl.threadpool_limits(n)``).
"""

from __future__ import annotations

import numpy as np


class BlasFloor:
    """Preallocated GEMM sequence of one epoch.

    Parameters
    ----------
    X : (n, d) array, the training data (its dtype is the dtype of every product)
    layer_sizes : sequence of int, ``[d, h1, ..., C]``
    batch_size : int, or "full"
    chunk_rows : int or None
        Run the products of a batch of more rows than this chunk by chunk, the weight
        gradients summed over the chunks by a GEMM with beta = 1, as fastnn's native loop does
        (``fastnn_core._cython._train.BATCH_CHUNK_ROWS``): the products that loop
        runs, cheaper than whole-batch products whose operands do not fit in cache.
    """

    def __init__(self, X, layer_sizes, batch_size, seed=0, chunk_rows=None):
        X = np.ascontiguousarray(X)
        self.X = X
        self.chunk_rows = chunk_rows
        n = X.shape[0]
        self.n = n
        self.batch_size = n if batch_size == "full" else int(min(batch_size, n))
        dtype = X.dtype
        sizes = [int(s) for s in layer_sizes]
        if sizes[0] != X.shape[1]:
            raise ValueError("layer_sizes[0] must equal X.shape[1]")
        rng = np.random.default_rng(seed)
        B = self.batch_size
        self.W = [
            (rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))).astype(dtype)
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
        self.G = [np.empty_like(w) for w in self.W]
        # activations A[1..L] and deltas D[1..L] (index 0 is the input batch)
        self.A = [None] + [np.empty((B, s), dtype=dtype) for s in sizes[1:]]
        self.D = [None] + [np.ones((B, s), dtype=dtype) * 1e-3 for s in sizes[1:]]
        self.n_layers = len(self.W)
        from scipy.linalg import blas

        self._gemm = blas.sgemm if dtype == np.float32 else blas.dgemm

    def gemm_count_per_batch(self):
        return 3 * self.n_layers - 1

    def flops_per_epoch(self):
        total = 0
        for w in self.W:
            a, b = w.shape
            total += 2 * self.n * a * b * 3  # forward, weight grad, delta
        a, b = self.W[0].shape
        total -= 2 * self.n * a * b  # no delta for the input layer
        return total

    def _batch(self, xb, m, accumulate=False):
        dot = np.dot
        A, D, W, G = self.A, self.D, self.W, self.G
        L = self.n_layers
        prev = xb
        for l in range(1, L + 1):
            out = A[l] if m == A[l].shape[0] else A[l][:m]
            dot(prev, W[l - 1], out=out)
            prev = out
        for l in range(L, 0, -1):
            d = D[l] if m == D[l].shape[0] else D[l][:m]
            a_prev = xb if l == 1 else (A[l - 1] if m == A[l - 1].shape[0] else A[l - 1][:m])
            if accumulate:  # row-major G += A^T D is column-major G^T += D^T A
                self._gemm(1.0, d.T, a_prev.T, beta=1.0, c=G[l - 1].T, trans_b=True,
                           overwrite_c=True)
            else:
                dot(a_prev.T, d, out=G[l - 1])
            if l > 1:
                dprev = D[l - 1] if m == D[l - 1].shape[0] else D[l - 1][:m]
                dot(d, W[l - 1].T, out=dprev)

    def epoch(self):
        X, B, n, c = self.X, self.batch_size, self.n, self.chunk_rows
        for start in range(0, n, B):
            stop = min(start + B, n)
            if c is None or stop - start <= c:
                self._batch(X[start:stop], stop - start)
                continue
            for c0 in range(start, stop, c):
                c1 = min(c0 + c, stop)
                self._batch(X[c0:c1], c1 - c0, accumulate=c0 > start)
        return None


def floor_epoch_fn(X, layer_sizes, batch_size, seed=0, chunk_rows=None):
    """Return a zero-argument callable that runs the floor of one epoch."""
    f = BlasFloor(X, layer_sizes, batch_size, seed=seed, chunk_rows=chunk_rows)
    return f.epoch
