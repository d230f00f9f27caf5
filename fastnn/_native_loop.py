"""The native training loop: the adapter between ``MLPClassifier`` and the backends'
``train_epoch`` kernels (fastnn_core/BACKENDS.md, "Training epoch").

:class:`NativeEpoch` is built once per fit (per ``partial_fit`` call): it takes over the
workspaces the Python loop already allocated (the :class:`~fastnn._network.Network` buffers and
the batch buffers of the epoch context), encodes the activation, loss and optimizer as the
integer codes the kernels take and packs the optimizer's state arrays and hyperparameters.
Each :meth:`NativeEpoch.run` is then ONE call into compiled code (no GIL held) that runs every
batch of the epoch: gather rows, forward, fused loss + gradient, backward, fused optimizer
update of every parameter. The result is the same arithmetic as
``MLPClassifier._fit_epoch_python`` (the readable reference), to rounding.

What stays in Python between epochs: the shuffle (the permutation is drawn by the estimator
exactly as for the Python loop and passed in), the learning-rate schedules of ``sgd``
(``invscaling``, ``adaptive``), validation for early stopping, the progress bar, the divergence
check and snapshot restore.

The native loop needs dense input and the ``cython`` or ``numba`` backend; sparse ``X`` or the
``numpy`` backend train on the Python loop (:func:`native_available`).
"""

import contextlib
import sys

import numpy as np
import scipy.sparse as sp

ACTIVATION_CODES = {
    "identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "softplus": 5, "elu": 6,
}
OPTIMIZER_CODES = {"sgd": 0, "adam": 1, "adagrad": 2, "rmsprop": 3, "adadelta": 4}
# loss kinds: 0 softmax + log_loss on class indices, 1 logistic + log_loss (binary CE),
# 2 squared error on logistic outputs, 3 squared error on softmax outputs
LOSS_CODES = {("softmax", "log_loss"): 0, ("logistic", "log_loss"): 1,
              ("logistic", "squared_error"): 2, ("softmax", "squared_error"): 3}


def train_epoch_kernel(kernels):
    """The backend's ``train_epoch`` or None when it has none (the ``numpy`` reference)."""
    return getattr(kernels, "train_epoch", None)


_BLAS_CONTROLLER = None


def blas_controller():
    """One ``threadpoolctl.ThreadpoolController`` per process, built on first use (a scan of
    the loaded libraries: milliseconds, too slow for every ``partial_fit`` call)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER


def native_available(kernels, X):
    """True when an epoch on ``X`` can run natively on the backend module ``kernels``."""
    return (not sp.issparse(X)) and train_epoch_kernel(kernels) is not None


def optimizer_code_and_hyper(opt):
    """``(code, hyper)`` of a fastnn optimizer object: hyper is
    ``[lr (adam: learning_rate_init), momentum | beta_1 | rho, nesterov | beta_2, epsilon]``."""
    name = type(opt).__name__
    if name == "SGD":
        return 0, [opt.learning_rate, opt.momentum, 1.0 if opt.nesterov else 0.0, 0.0]
    if name == "Adam":
        return 1, [opt.learning_rate_init, opt.beta_1, opt.beta_2, opt.epsilon]
    if name == "AdaGrad":
        return 2, [opt.learning_rate, 0.0, 0.0, opt.epsilon]
    if name == "RMSProp":
        return 3, [opt.learning_rate, opt.rho, 0.0, opt.epsilon]
    if name == "AdaDelta":
        return 4, [opt.learning_rate, opt.rho, 0.0, opt.epsilon]
    raise ValueError(f"no native loop for the optimizer {name}")


def check_order(order, n_samples):
    """The epoch's row order as a C-contiguous intp array; ValueError unless every entry is in
    ``[0, n_samples)`` (the kernels do not check: an out-of-range index would read outside X)."""
    if order is None:
        return None
    order = np.ascontiguousarray(order)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError("the sample order must be a 1-D array of integer row indices")
    order = order.astype(np.intp, copy=False)
    if order.shape[0] != n_samples:
        raise ValueError(
            f"the sample order has {order.shape[0]} entries for {n_samples} training rows"
        )
    if n_samples and (order.min() < 0 or order.max() >= n_samples):
        raise ValueError(
            f"the sample order has indices outside [0, {n_samples}): "
            f"min {order.min()}, max {order.max()}"
        )
    return order


class NativeEpoch:
    """One fit's native epochs. ``ctx`` is the estimator's ``_EpochContext`` (training data,
    batch buffers, Network workspaces); the parameters are the estimator's ``coefs_`` and
    ``intercepts_`` (updated in place) and the optimizer state is ``est._optimizer``'s."""

    def __init__(self, est, ctx):
        net = ctx.net
        self.kernel = train_epoch_kernel(ctx.kernels)
        if self.kernel is None or ctx.sparse:
            raise ValueError("the native loop needs dense X and the cython or numba backend")
        self.est = est
        self.ctx = ctx
        dtype = est.coefs_[0].dtype
        self.X = ctx.X
        self.target = ctx.target
        self.sw = ctx.sw
        params = list(est.coefs_) + list(est.intercepts_)
        grads = list(net.coef_grads) + list(net.intercept_grads)
        for a in params + grads + net.acts + net.deltas + [self.X, ctx.X_buf]:
            if a.dtype != dtype or not a.flags.c_contiguous:
                raise ValueError("native loop: every array must be C-contiguous of one dtype")
        # Every per-layer array goes in as a flat 1-D view (one tuple type for all layers).
        self.units = np.asarray(net.layer_units, dtype=np.intp)
        self.params = tuple(p.reshape(-1) for p in params)
        self.grads = tuple(g.reshape(-1) for g in grads)
        self.acts = tuple(a.reshape(-1) for a in net.acts)
        self.deltas = tuple(d.reshape(-1) for d in net.deltas)
        self.xbuf = ctx.X_buf
        self.tbuf = ctx.target_buf
        self.swbuf = ctx.sw_buf
        self.hidden = ACTIVATION_CODES[net.activation]
        self.loss_kind = LOSS_CODES[(net.out_activation, net.loss)]
        if (self.loss_kind == 0) != (self.target.ndim == 1):
            raise ValueError("softmax + log_loss takes class indices, the others a matrix")
        opt = est._optimizer
        names = opt.state_names
        # The optimizer's state arrays are already flat; a kernel without a second state gets
        # the first twice (never read).
        self.state0 = tuple(opt.state[names[0]])
        self.state1 = tuple(opt.state[names[1]]) if len(names) > 1 else self.state0
        for a in self.state0 + self.state1:
            if a.dtype != dtype or not a.flags.c_contiguous:
                raise ValueError("native loop: optimizer state must be C-contiguous, one dtype")
        self.alpha = float(est.alpha)
        # Data-parallel batches (cython backend, BACKENDS.md "Training epoch"): with 2+ OpenMP
        # threads and batches of at least parallel_min_rows() rows, each OpenMP thread runs
        # forward/backward on its share of a batch's rows into its own gradient buffers; the
        # buffers of threads 1.. are allocated here, once per fit.
        self._kmod = sys.modules.get(getattr(self.kernel, "__module__", None) or "")
        self._par_min = getattr(self._kmod, "parallel_min_rows", None)
        self.grads_extra = ()
        if self._par_min is not None and ctx.batch_size >= self._par_min():
            nt = int(self._kmod.max_threads())
            if nt >= 2:
                self.grads_extra = tuple(
                    tuple(np.zeros_like(g) for g in self.grads) for _ in range(nt - 1)
                )

    def _parallel(self):
        """True when this epoch's batches will run data-parallel or split in two parts (then
        BLAS must run on one thread per call: the OpenMP threads call it at the same time)."""
        if (bool(self.grads_extra) and self.ctx.batch_size >= self._par_min()
                and self._kmod.max_threads() >= 2):
            return True
        two_part = getattr(self._kmod, "two_part_epoch", None)
        return two_part is not None and two_part(self.ctx.batch_size, self.ctx.n_samples,
                                                 self.units, self.X.dtype.itemsize)

    def quiet_blas(self):
        """A context in which BLAS runs on the calling thread when the epochs are data-parallel
        (else a no-op). The estimator computes its validation score between epochs in it:
        after a product on OpenBLAS's own pool, its idle workers spin for about 0.1 s on the
        cores the next data-parallel epoch needs (measured: 2 threads, batch 256, hidden 100,
        early stopping made every epoch 2.3x slower)."""
        if self._parallel():
            return blas_controller().limit(limits=1, user_api="blas")
        return contextlib.nullcontext()

    def run(self, sample_idx):
        """One epoch in the order ``sample_idx`` (None: rows in order). Returns the epoch loss
        ``sum_b (data_loss_b * S_b + 0.5 * alpha * ||W||^2) / S_total`` (NaN or infinite when
        training diverged: the estimator then restores its snapshot)."""
        ctx = self.ctx
        order = check_order(sample_idx, ctx.n_samples)
        opt = self.est._optimizer
        code, hyper = optimizer_code_and_hyper(opt)
        hyper = np.asarray(hyper, dtype=np.float64)
        t = int(getattr(opt, "t", 0))
        args = (
            self.X, self.target, self.sw, order, ctx.batch_size, self.units, self.params,
            self.grads,
            self.state0, self.state1, self.acts, self.deltas, self.xbuf, self.tbuf, self.swbuf,
            self.hidden, self.loss_kind, code, hyper, self.alpha, t,
        )
        if self._parallel():
            # One pool: the OpenMP threads of the loop are the only workers; OpenBLAS runs on
            # the calling thread of each product (its own pool would fight them for the cores;
            # and a two-part epoch gives the same bits on two threads or one only so).
            # Only the BLAS pools are limited, and only for this call: the user's OpenMP limit
            # (threadpool_limits(1), OMP_NUM_THREADS=1) already gave one thread above.
            with blas_controller().limit(limits=1, user_api="blas"):
                acc, t_new, diverged = self.kernel(*args, grads_extra=self.grads_extra)
        else:
            acc, t_new, diverged = self.kernel(*args)
        if code == 1:
            opt.t = int(t_new)
            if opt.t > 0:
                b1, b2 = opt.beta_1, opt.beta_2
                opt.learning_rate = (opt.learning_rate_init * np.sqrt(1 - b2**opt.t)
                                     / (1 - b1**opt.t))
        loss = acc / ctx.S_total
        if diverged:
            return float("nan") if acc != acc else float("inf")
        return float(loss)
