"""The network math of fastnn's MLP on the fastnn_core kernels: forward pass, loss, backprop.

No scikit-learn here: this module is plain arrays in, arrays out, so that the native training
loop (and ``fastnn.gradcheck``) can be checked against it.

Conventions (identical to scikit-learn's MLP):

- ``coefs[i]`` has shape ``(n_units[i], n_units[i + 1])``, ``intercepts[i]`` ``(n_units[i + 1],)``.
- Hidden layers use ``activation`` (identity, logistic, tanh, relu, and the extra kernels'
  leaky_relu, softplus, elu); the output layer uses ``out_activation`` (``"softmax"`` for
  multiclass, ``"logistic"`` for binary and multilabel targets).
- With effective sample weights ``s_i`` (``sample_weight * class_weight[y]``; all ones when
  there are none) and ``S = sum_i s_i`` (the number of rows without weights), the loss is::

      loss = sum_i s_i L_i / S + 0.5 * alpha * sum_l ||W_l||^2 / S

  where ``L_i`` is the cross-entropy of row ``i`` (softmax + categorical cross-entropy for
  ``"softmax"`` outputs, sigmoid + binary cross-entropy summed over the outputs for
  ``"logistic"``) for ``loss="log_loss"``, or ``0.5 * sum_j (a_ij - y_ij)^2`` on the output
  activations ``a`` for ``loss="squared_error"``. Cross-entropy is computed from the logits, so
  it is finite for any finite logits (scikit-learn clips probabilities instead; identical away
  from saturation).
- Gradients: ``dW_l = A_l^T delta_l + alpha W_l / S``, ``db_l = sum_i delta_l[i]`` with the
  output delta ``s_i * dL_i/dz_i / S`` and hidden deltas ``(delta_{l+1} W_{l+1}^T) * f'(z_l)``
  (``f'`` from the activation output, ``fastnn_core.activation_grad``).

In the training loop the L2 term is not added to the gradients here: the optimizer kernels fold
it in (``l2 = alpha / S`` on weights, ``0`` on biases), which is the same update.
"""

import numpy as np
import scipy.sparse as sp

import fastnn_core

OUT_ACTIVATIONS = ("softmax", "logistic")
LOSSES = ("log_loss", "squared_error")


def _matmul(a, b, out):
    """``out[...] = a @ b`` with BLAS into ``out`` (``a`` may be a sparse matrix)."""
    if sp.issparse(a):
        out[...] = a @ b
    else:
        np.dot(a, b, out=out)


def l2_sum(coefs):
    """``sum_l ||W_l||^2`` as a Python float (accumulated in float64)."""
    total = 0.0
    for w in coefs:
        flat = w.reshape(-1)
        total += float(np.dot(flat, flat))
    return total


class Network:
    """Preallocated buffers and the per-batch forward/backward pass of one architecture.

    Allocate it once per fit (``max_rows`` = the largest batch); every batch then runs on views
    of the same buffers, with matrix products through BLAS into ``out=`` and the fused
    fastnn_core kernels called directly (``kernels`` is a backend module, see BACKENDS.md: its
    kernels do not validate, so everything passed here must be C-contiguous, of ``dtype``).

    After :meth:`backprop`, ``coef_grads`` and ``intercept_grads`` hold the gradients of the data
    term ``sum_i s_i L_i / S`` (WITHOUT the L2 term; add ``alpha * W / S`` to the coefficient
    gradients, or pass ``l2 = alpha / S`` to the optimizer kernels).
    """

    def __init__(self, layer_units, max_rows, dtype, activation, out_activation, loss, kernels):
        if out_activation not in OUT_ACTIVATIONS:
            raise ValueError(f"out_activation must be one of {OUT_ACTIVATIONS}, got {out_activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.layer_units = list(layer_units)
        self.n_layers = len(layer_units) - 1  # number of weight layers
        self.dtype = np.dtype(dtype)
        self.activation = activation
        self.out_activation = out_activation
        self.loss = loss
        self.kernels = kernels
        self.max_rows = int(max_rows)
        # acts[i]: output of weight layer i (hidden activation; the logits for the last one).
        self.acts = [np.empty((self.max_rows, u), dtype=self.dtype) for u in layer_units[1:]]
        self.deltas = [np.empty((self.max_rows, u), dtype=self.dtype) for u in layer_units[1:]]
        self.coef_grads = [
            np.empty((a, b), dtype=self.dtype) for a, b in zip(layer_units[:-1], layer_units[1:])
        ]
        self.intercept_grads = [np.empty(b, dtype=self.dtype) for b in layer_units[1:]]

    def logits(self, coefs, intercepts, X):
        """Forward pass of ``X`` (``n <= max_rows`` rows); returns a view of the output logits.

        The hidden activations stay in ``self.acts`` for :meth:`backprop`."""
        n = X.shape[0]
        act = self.activation
        a = X
        last = self.n_layers - 1
        for i in range(self.n_layers):
            z = self.acts[i][:n]
            if i == 0:
                _matmul(X, coefs[0], z)  # X may be sparse
            else:
                np.dot(a, coefs[i], out=z)
            z += intercepts[i]
            if i != last:
                flat = z.reshape(-1)
                self.kernels.activation(act, flat, flat)
            a = z
        return a

    def output_loss(self, z, target, sw, scale, grad):
        """``sum_i s_i L_i`` (unscaled) of logits ``z``; writes ``scale * dL/dz`` into ``grad``
        (if not None). ``target`` is class indices (intp, softmax + log_loss only) or a matrix."""
        k = self.kernels
        if self.loss == "log_loss":
            if self.out_activation == "softmax":
                if target.ndim == 1:
                    return k.ce_hard(z, target, sw, None, 0.0, scale, grad, None)
                return k.ce_soft(z, target, sw, None, 0.0, scale, grad, None)
            return k.bce(z, target, sw, scale, grad, None)
        return k.sqerr(z, target, self.out_activation, sw, scale, grad, None)

    def backprop(self, coefs, intercepts, X, target, sw, S):
        """Forward and backward pass on one batch; returns the data loss ``sum_i s_i L_i / S``.

        ``sw`` is the batch's effective sample weights (or None: all ones) and ``S`` their sum
        (the batch size without weights). Gradients go to ``coef_grads`` / ``intercept_grads``.
        """
        n = X.shape[0]
        scale = 1.0 / S
        z = self.logits(coefs, intercepts, X)
        delta = self.deltas[-1][:n]
        total = self.output_loss(z, target, sw, scale, delta)
        act = self.activation
        k = self.kernels
        for i in range(self.n_layers - 1, -1, -1):
            delta = self.deltas[i][:n]
            if i == 0:
                a_prev = X
                if sp.issparse(X):
                    self.coef_grads[0][...] = (X.T @ delta)
                else:
                    np.dot(X.T, delta, out=self.coef_grads[0])
            else:
                a_prev = self.acts[i - 1][:n]
                np.dot(a_prev.T, delta, out=self.coef_grads[i])
            np.add.reduce(delta, axis=0, out=self.intercept_grads[i])
            if i > 0:
                d_prev = self.deltas[i - 1][:n]
                np.dot(delta, coefs[i].T, out=d_prev)
                flat = d_prev.reshape(-1)
                k.activation_grad(act, a_prev.reshape(-1), flat, flat)
        return total * scale


def output_activation(z, out_activation, kernels=None):
    """Apply the output activation to logits ``z`` in place (softmax over rows or logistic)."""
    k = fastnn_core.get_kernels() if kernels is None else kernels
    if out_activation == "softmax":
        k.softmax(z, z)
    else:
        flat = z.reshape(-1)
        k.activation("logistic", flat, flat)
    return z


def log_output_activation(z, out_activation, kernels=None):
    """``log(output_activation(z))`` computed stably from the logits, in place:
    log-softmax, or log-sigmoid ``-softplus(-z)``; finite for finite logits (never ``log(0)``)."""
    k = fastnn_core.get_kernels() if kernels is None else kernels
    if out_activation == "softmax":
        k.log_softmax(z, z)
    else:
        flat = z.reshape(-1)
        np.negative(flat, out=flat)
        k.activation("softplus", flat, flat)
        np.negative(flat, out=flat)
    return z


def _prepare(coefs, intercepts, X, dtype=None):
    dtype = np.dtype(coefs[0].dtype if dtype is None else dtype)
    coefs = [np.ascontiguousarray(w, dtype=dtype) for w in coefs]
    intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in intercepts]
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
    else:
        X = np.ascontiguousarray(X, dtype=dtype)
    return coefs, intercepts, X, dtype


def _units(coefs):
    return [coefs[0].shape[0]] + [w.shape[1] for w in coefs]


def forward(coefs, intercepts, X, activation, out_activation):
    """All layer activations of the network for input ``X``.

    Returns a list ``[X, h_1, ..., h_{L-1}, output]`` where ``output`` is the output activation
    (softmax or logistic probabilities), in the dtype of ``coefs``. Uses the active fastnn_core
    backend.
    """
    coefs, intercepts, X, dtype = _prepare(coefs, intercepts, X)
    net = Network(_units(coefs), X.shape[0], dtype, activation, out_activation, "log_loss",
                  fastnn_core.get_kernels())
    z = net.logits(coefs, intercepts, X)
    output_activation(z, out_activation, net.kernels)
    return [X] + [a.copy() for a in net.acts]


def loss_and_gradients(coefs, intercepts, X, Y, sample_weight, activation, out_activation, loss,
                       alpha):
    """The network loss and its EXACT gradients with respect to every parameter.

    Parameters
    ----------
    coefs, intercepts : lists of arrays
        The parameters (e.g. a fitted estimator's ``coefs_`` and ``intercepts_``); their dtype is
        the compute dtype.
    X : array or sparse matrix of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_outputs)
        The encoded targets of the output layer (``MLPClassifier._encode_targets(y)``): one-hot
        rows for ``"softmax"`` outputs, 0/1 columns for ``"logistic"``. For ``"softmax"`` with
        ``loss="log_loss"`` a 1-D array of class indices is accepted too.
    sample_weight : array of shape (n_samples,) or None
        Effective sample weights ``s_i`` (already multiplied by any class weights).
    activation, out_activation, loss, alpha
        As the estimator's ``activation``, ``out_activation_``, ``loss``, ``alpha``.

    Returns
    -------
    loss : float
        ``sum_i s_i L_i / S + 0.5 * alpha * sum ||W||^2 / S`` (see the module docstring).
    coef_grads, intercept_grads : lists of arrays
        d loss / d coefs[i] (including the L2 term ``alpha * W / S``) and d loss / d intercepts[i].
    """
    coefs, intercepts, X, dtype = _prepare(coefs, intercepts, X)
    n = X.shape[0]
    Y = np.asarray(Y)
    if Y.ndim == 1 and not (out_activation == "softmax" and loss == "log_loss"):
        Y = Y.reshape(-1, 1)
    if Y.ndim == 1:
        target = np.ascontiguousarray(Y, dtype=np.intp)
    else:
        target = np.ascontiguousarray(Y, dtype=dtype)
    if sample_weight is None:
        sw, S = None, float(n)
    else:
        sw = np.ascontiguousarray(sample_weight, dtype=dtype)
        S = float(sw.sum(dtype=np.float64))
    net = Network(_units(coefs), max(n, 1), dtype, activation, out_activation, loss,
                  fastnn_core.get_kernels())
    value = net.backprop(coefs, intercepts, X, target, sw, S)
    value += 0.5 * alpha * l2_sum(coefs) / S
    coef_grads = [g + (alpha / S) * w for g, w in zip(net.coef_grads, coefs)]
    intercept_grads = [g.copy() for g in net.intercept_grads]
    return value, coef_grads, intercept_grads
