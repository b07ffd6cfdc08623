"""(a) of the benchmark: the per-model loop a user writes (``nn.Sequential``,
``torch.optim``, ``.item()`` of the loss and of each gradient norm every step).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .workloads import Workload


def user_net(sizes: list[tuple[int, int]], sigmoid: bool) -> nn.Sequential:
    """The network as a user writes it."""
    modules: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(sizes):
        modules.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 1:
            modules.append(nn.ReLU())
    if sigmoid:
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def _user_loop(cfg: Any, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """(a): train one model the ordinary way; returns the last step's loss."""
    from mlplab.engine.reference import batch_order_generator, batch_size_of
    from mlplab.model.mlp import build_mlp, linear_layers, resolve_head

    head = resolve_head(cfg.model, cfg.train.loss, int(y.max()) + 1)
    init = build_mlp(cfg.model, head, x.shape[1], cfg.train.seed)        # same initial weights
    sizes = [(m.in_features, m.out_features) for _, m in linear_layers(init)]
    net = user_net(sizes, head.output == "sigmoid").to(device)
    net.load_state_dict(init.state_dict())
    hp = cfg.train
    if hp.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=hp.lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=hp.lr, momentum=hp.momentum or 0.0)
    loss_fn: Callable = (lambda out, t: nn.functional.mse_loss(out[:, 0], t.float())) \
        if head.output == "sigmoid" else nn.functional.cross_entropy
    n, order = len(y), batch_order_generator(cfg.train.seed)    # the cohort's minibatch order
    bs = batch_size_of(cfg, n)
    history: list[tuple[float, list[float]]] = []
    for _ in range(hp.epochs):
        perm = torch.randperm(n, generator=order).to(device) if bs < n else None
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs] if perm is not None else slice(None)
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            history.append((loss.item(), [p.grad.norm().item() for p in net.parameters()]))
            opt.step()
    return history[-1][0]


def time_user_loop(w: Workload, models: Sequence[int],
                   device: torch.device) -> tuple[list[float], float]:
    """(a), the per-model loop, for ``models`` of ``w`` one after another: each model's
    last loss and the seconds all of them took (the data is loaded before the clock)."""
    from mlplab.data import load_data

    data = load_data(w.configs[0].data)
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    start = time.perf_counter()
    losses = [_user_loop(w.configs[k], x, y, device) for k in models]
    return losses, time.perf_counter() - start
