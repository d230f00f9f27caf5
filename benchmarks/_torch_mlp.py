"""The PyTorch CPU contender: the same network and optimizer as scikit-learn's MLPClassifier,
trained with plain manual batching, the way a PyTorch user would write it.

``nn.Linear`` / ``nn.ReLU`` / ... / ``nn.Linear``, ``F.cross_entropy`` (mean over the batch),
``torch.optim.Adam`` (or ``SGD`` with scikit-learn's momentum 0.9 and Nesterov), with L2 on the
weights only, as scikit-learn does (``alpha / batch_size`` as ``weight_decay`` of the weight
group: scikit-learn adds ``alpha * W`` to the summed gradient before dividing by the batch size).
One epoch: a fresh ``torch.randperm``, then for each batch gather the rows by index, zero the
gradients, forward, loss, backward, step, and accumulate the loss (``.item()``, as the other
contenders compute the epoch loss too).  The optimizer uses PyTorch's fused CPU kernel by
default (``fused=True``: one kernel for all parameters; on this machine an Adam step of the
100-unit network took about a third of the time of the default per-parameter loop, and whole
updates were fastest with it at batch 1 and 32); ``optim_impl="foreach"`` or ``"default"`` picks
the other implementations.  The thread count is ``torch.set_num_threads(t)``,
which the caller sets.
"""

from __future__ import annotations

import numpy as np


def _torch():
    import torch

    return torch


def torch_epoch_fn(
    X,
    y,
    hidden_layer_sizes,
    n_classes,
    batch_size,
    solver="adam",
    learning_rate_init=1e-3,
    alpha=1e-4,
    momentum=0.9,
    nesterovs_momentum=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    activation="relu",
    seed=0,
    optim_impl="fused",
):
    """Return a zero-argument callable that trains one epoch and returns the epoch loss."""
    torch = _torch()
    import torch.nn as nn
    import torch.nn.functional as F

    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(X.dtype)
    ]
    torch.manual_seed(seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    yt = torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))
    n, d = Xt.shape
    B = n if batch_size == "full" else int(min(batch_size, n))
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": nn.Identity}[
        activation
    ]
    layers = []
    prev = d
    for h in hidden_layer_sizes:
        layers += [nn.Linear(prev, h), act()]
        prev = h
    layers.append(nn.Linear(prev, n_classes))
    model = nn.Sequential(*layers).to(dtype)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    groups = [
        {"params": weights, "weight_decay": alpha / B},
        {"params": biases, "weight_decay": 0.0},
    ]
    impl = {"fused": {"fused": True}, "foreach": {"foreach": True}, "default": {}}[optim_impl]
    if solver == "adam":
        opt = torch.optim.Adam(
            groups, lr=learning_rate_init, betas=(beta_1, beta_2), eps=epsilon, **impl
        )
    elif solver == "sgd":
        opt = torch.optim.SGD(
            groups, lr=learning_rate_init, momentum=momentum, nesterov=nesterovs_momentum, **impl
        )
    else:
        raise ValueError(f"unsupported solver for the torch contender: {solver!r}")
    gen = torch.Generator().manual_seed(seed)
    cross_entropy = F.cross_entropy

    def epoch():
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, B):
            idx = perm[start : start + B]
            xb = Xt[idx]
            yb = yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        return total / n

    return epoch
