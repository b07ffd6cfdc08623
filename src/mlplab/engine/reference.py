"""The reference engine: one configuration, one network at a time, with ``torch.optim``.

Reads top to bottom: data, model, optimizer, then one loop per attempt that sets the
lr, steps, records the probe, evaluates, and asks the stopping rule whether to end.
The cohort engine (:mod:`mlplab.engine.cohort`) must produce the same records.

>>> from mlplab.config import from_dict
>>> rec = train(from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3},
...                        "stopping": {"restarts": 0}}))
>>> rec.attempts[0].epochs
3
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import torch

from mlplab.config import ConfigError, RunConfig, optimizer_hyper, to_dict
from mlplab.data import Dataset, load_data
from mlplab.metrics import MetricsLog, layer_name
from mlplab.model import boundary
from mlplab.model.loss import accuracy, batch_loss
from mlplab.model.mlp import Head, build_mlp, derive_seed, linear_layers, resolve_head
from mlplab.optim.schedule import lr_scale, plateau_floor, plateau_init, plateau_step
from mlplab.optim.table import OPTIMIZERS, torch_kwargs
from mlplab.probe.norms import activation_stats, layer_norms
from mlplab.probe.curvature_probe import MLPCurvature
from mlplab.record import AttemptRecord, RunRecord, attempt_record, best_attempt_index
from . import stopping
from .grad_clip import clip_grad_norm_


@dataclass(frozen=True)
class Tensors:
    """The dataset on the training device."""

    x_train: torch.Tensor   # [N, d]
    y_train: torch.Tensor   # [N]
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_probe: torch.Tensor   # [P, d] fixed batch for activation statistics


DEVICES = "cpu, or cuda / cuda:N where torch sees a CUDA GPU"


def resolve_device(device: str | torch.device, key: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` this process can train on: a
    :class:`ConfigError` naming ``key``, the value and what is allowed otherwise (not
    torch's assertion from deep inside the first tensor it would have put there).

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(key, device, DEVICES) from None
    if dev.type == "cuda":
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus == 0:
            raise ConfigError(key, device, f"cpu: this torch ({torch.__version__}) sees no "
                                           "CUDA GPU")
        if dev.index is not None and dev.index >= gpus:
            raise ConfigError(key, device, f"cpu, cuda, cuda:0 to cuda:{gpus - 1}")
    elif dev.type != "cpu":
        raise ConfigError(key, device, DEVICES)
    return dev


def to_tensors(data: Dataset, probe_batch: int, device: str | torch.device = "cpu",
               dtype: torch.dtype | None = None) -> Tensors:
    """The dataset on ``device``; inputs cast to ``dtype`` when given (labels stay int64)."""
    t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    x = lambda a: torch.as_tensor(a, device=device, dtype=dtype)  # noqa: E731
    return Tensors(x(data.x_train), t(data.y_train), x(data.x_val), t(data.y_val),
                   x(data.x_test), t(data.y_test), x(data.x_train[:probe_batch]))


def batch_order_generator(seed: int) -> torch.Generator:
    """The generator of an attempt's minibatch order (apart from its init generator)."""
    return torch.Generator().manual_seed((int(seed) * 7919 + 17) % (2 ** 63 - 1))


def batch_size_of(cfg: RunConfig, n_train: int) -> int:
    bs = cfg.train.batch_size
    return n_train if bs == 0 or bs >= n_train else bs


def make_optimizer(net: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer named by ``train.optimizer``: the class and keywords
    of its row in :mod:`mlplab.optim.table`."""
    name = cfg.train.optimizer
    cls = getattr(torch.optim, OPTIMIZERS[name].torch_class)
    return cls(net.parameters(), **torch_kwargs(name, optimizer_hyper(cfg.train)))


def run_info(cfg: RunConfig, data: Dataset, head: Head) -> dict:
    """What readers need besides the config: head, layers, classes, monitor mode, the
    data's Bayes limit."""
    from mlplab.stats import data_bayes_limit

    limit = data_bayes_limit(cfg.data)
    dims = [data.input_dim, *cfg.model.hidden, head.out_dim]
    return {"head": {"output": head.output, "loss": head.loss, "out_dim": head.out_dim},
            "input_dim": data.input_dim, "layers": [layer_name(i) for i in range(len(dims) - 1)],
            "layer_sizes": dims, "n_classes": data.n_classes,
            "class_names": list(data.class_names), "feature_names": list(data.feature_names),
            "n_train": len(data.y_train), "n_val": len(data.y_val), "n_test": len(data.y_test),
            "val_is_train": data.val_is_train, "test_is_val": data.test_is_val,
            "monitor": cfg.stopping.monitor, "mode": stopping.monitor_mode(cfg.stopping),
            "optimizer_hyper": optimizer_hyper(cfg.train),
            # the best any classifier can do on this (generated) data: diagnose and figures
            "bayes": None if limit is None else limit.to_dict(),
            # data.standardize: the network expects (x - input_mean) / input_std
            "input_mean": None if data.mean is None else data.mean.tolist(),
            "input_std": None if data.std is None else data.std.tolist(),
            **curvature_info(cfg)}


def curvature_info(cfg: RunConfig) -> dict:
    """With the curvature probe on: the bound on ``stability`` (lr x sharpness) of the
    optimizer in use, :func:`mlplab.optim.table.stability_bound`."""
    if cfg.probe.curvature_every <= 0:
        return {}
    from mlplab.optim.table import stability_bound

    return {"stability_bound": stability_bound(cfg.train.optimizer, optimizer_hyper(cfg.train))}


def resolved_config(cfg: RunConfig, head: Head) -> RunConfig:
    """The config with ``auto`` loss and output replaced by what was used."""
    return replace(cfg, model=replace(cfg.model, output=head.output),
                   train=replace(cfg.train, loss=head.loss))


@torch.no_grad()
def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, head: Head) -> tuple[float, float]:
    out = net(x)
    return float(batch_loss(out, y, head)), float(accuracy(out, y, head))


def _record_layers(log: MetricsLog, net: torch.nn.Module, prev: list, init: list,
                   attempt: int, step: int, epoch: int) -> None:
    for i, (_, lin) in enumerate(linear_layers(net)):
        norms = layer_norms(lin.weight.detach(), lin.bias.detach(), lin.weight.grad, lin.bias.grad,
                            prev[i][0], prev[i][1], init[i][0], init[i][1])
        values = torch.stack(list(norms.values())).tolist()
        for metric, v in zip(norms, values):
            log.add(attempt, step, epoch, "step", layer_name(i), metric, v)


# torch.optim's per-parameter state an adaptive optimizer divides by (curvature.preconditioner)
_PRECONDITIONER_STATE = ("exp_avg_sq", "square_avg", "grad_avg", "sum")


def curvature_probe(cfg: RunConfig, head: Head, net: torch.nn.Module,
                    data: Tensors) -> MLPCurvature | None:
    """The curvature probe on the fixed probe batch (None: ``probe.curvature_every`` 0)."""
    if cfg.probe.curvature_every <= 0:
        return None
    from mlplab.model.stacked import StackedMLP

    spec = StackedMLP.of(net, cfg.model.activation, cfg.model.negative_slope, head.output)
    return MLPCurvature(spec, head, data.x_probe, data.y_train[:len(data.x_probe)],
                        cfg.train.optimizer)


def _record_curvature(log: MetricsLog, curv: MLPCurvature, net: torch.nn.Module,
                      opt: torch.optim.Optimizer, cfg: RunConfig, lr: float, attempt: int,
                      step: int, epoch: int) -> None:
    """The curvature metrics at the parameters after this step's update, with the
    optimizer's state as its next step will read it. Reads only: the parameters, their
    gradients and the optimizer are left as they were."""
    params = [p for _, lin in linear_layers(net) for p in (lin.weight, lin.bias)]
    theta = torch.cat([p.detach().reshape(-1) for p in params])[None]        # [1, P]
    hyper = {k: torch.tensor([v], dtype=torch.float64) for k, v in
             optimizer_hyper(cfg.train).items()}
    hyper["lr"] = torch.tensor([lr], dtype=torch.float64)
    states = [opt.state.get(p, {}) for p in params]
    state = None
    keys = [k for k in _PRECONDITIONER_STATE if all(k in s for s in states)]
    if keys and states and "step" in states[0]:
        state = {k: torch.cat([s[k].detach().reshape(-1) for s in states])[None] for k in keys}
        state["count"] = torch.tensor([float(states[0]["step"])])
    values = curv.measure(theta, hyper, state)
    for metric, v in zip(values, torch.stack(list(values.values()))[:, 0].tolist()):
        log.add(attempt, step, epoch, "step", "", metric, v)


@torch.no_grad()
def _record_activations(log: MetricsLog, net: torch.nn.Module, x: torch.Tensor, cfg: RunConfig,
                        attempt: int, step: int, epoch: int) -> None:
    h = x
    linears = linear_layers(net)
    for i, (_, lin) in enumerate(linears[:-1]):
        pre = lin(h)                                         # [P, units]
        stats = activation_stats(pre, cfg.model.activation, cfg.model.negative_slope)
        for metric, v in zip(stats, torch.stack(list(stats.values())).tolist()):
            log.add(attempt, step, epoch, "act", layer_name(i), metric, v)
        h = net[2 * i + 1](pre)                              # the activation module


def train_attempt(cfg: RunConfig, head: Head, data: Tensors, grid: boundary.BoundaryGrid | None,
                  attempt: int, seed: int, log: MetricsLog) -> AttemptRecord:
    """Train one network from a fresh initialisation until the stopping rule ends it."""
    start = time.perf_counter()
    net = build_mlp(cfg.model, head, data.x_train.shape[1], seed,
                    dtype=data.x_train.dtype).to(data.x_train.device)
    opt = make_optimizer(net, cfg)
    init_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    init = [(lin.weight.detach().clone(), lin.bias.detach().clone()) for _, lin in linear_layers(net)]
    order = batch_order_generator(seed)
    n, bs = len(data.y_train), batch_size_of(cfg, len(data.y_train))
    base_lr, monitor, sched = cfg.train.lr, cfg.stopping.monitor, cfg.train.schedule
    # reduce-on-plateau's state: the cohort's [K] tensors, K = 1
    lr_state, lr_floor = plateau_init(1), plateau_floor(sched, torch.tensor([base_lr],
                                                                            dtype=torch.float64))
    snap_epochs = set(boundary.snapshot_epochs(cfg.train.epochs, cfg.probe.boundary_snapshots))
    snaps: list[tuple[int, dict[str, torch.Tensor]]] = []      # (epoch, state_dict)
    plateau = stopping.PlateauState()
    curv = curvature_probe(cfg, head, net, data)
    best_state, step, reason, epoch = init_state, 0, "max_epochs", 0
    for epoch in range(cfg.train.epochs):
        scale = float(lr_state.scale[0]) if sched.name == "plateau" else \
            lr_scale(sched, epoch, cfg.train.epochs, base_lr)
        for group in opt.param_groups:
            group["lr"] = base_lr * scale
        perm = torch.randperm(n, generator=order).to(data.x_train.device) if bs < n else None
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs] if perm is not None else slice(None)
            loss = batch_loss(net(data.x_train[idx]), data.y_train[idx], head)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.clip_grad_norm is not None:
                clip_grad_norm_([p.grad for p in net.parameters() if p.grad is not None],
                                cfg.train.clip_grad_norm)
            probing = step % cfg.probe.every == 0
            if probing:
                prev = [(lin.weight.detach().clone(), lin.bias.detach().clone())
                        for _, lin in linear_layers(net)]
            opt.step()
            if probing:
                log.add(attempt, step, epoch, "step", "", "loss", loss.item())
                log.add(attempt, step, epoch, "step", "", "lr", base_lr * scale)
                _record_layers(log, net, prev, init, attempt, step, epoch)
            if step % cfg.probe.activations_every == 0:
                _record_activations(log, net, data.x_probe, cfg, attempt, step, epoch)
            if curv is not None and step % cfg.probe.curvature_every == 0:
                _record_curvature(log, curv, net, opt, cfg, base_lr * scale, attempt, step,
                                  epoch)
            step += 1
        train_loss, train_acc = evaluate(net, data.x_train, data.y_train, head)
        val_loss, val_acc = evaluate(net, data.x_val, data.y_val, head)
        values = {"train_loss": train_loss, "train_acc": train_acc,
                  "val_loss": val_loss, "val_acc": val_acc}
        for metric, v in values.items():
            log.add(attempt, step, epoch, "epoch", "", metric, v)
        if sched.name == "plateau":
            lr_state = plateau_step(lr_state, torch.tensor([val_loss], dtype=torch.float64),
                                    sched, lr_floor)
        plateau = stopping.observe(plateau, epoch, values[monitor], cfg.stopping)
        if plateau.best_epoch == epoch and cfg.stopping.restore_best:
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        reason = stopping.end_reason(values[monitor], train_loss, plateau, cfg.stopping,
                                     epoch, cfg.train.epochs)
        if grid is not None and (epoch in snap_epochs or reason is not None):
            snaps.append((epoch, {k: v.detach().cpu().clone()
                                  for k, v in net.state_dict().items()}))
        if reason is not None:
            break
    last_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if cfg.stopping.restore_best and plateau.best_epoch >= 0:
        net.load_state_dict(best_state)
    else:
        best_state = last_state
    final = {"train_loss": evaluate(net, data.x_train, data.y_train, head)[0]}
    final["val_loss"], final["val_acc"] = evaluate(net, data.x_val, data.y_val, head)
    final["test_loss"], final["test_acc"] = evaluate(net, data.x_test, data.y_test, head)
    if grid is not None and snaps:
        packed = boundary.pack(grid, [e for e, _ in snaps],
                               {k: torch.stack([s[k] for _, s in snaps]) for k in snaps[0][1]})
    else:
        packed = None
    return attempt_record(
        log, attempt=attempt, seed=seed, end_reason=reason, epochs=epoch + 1, steps=step,
        best_epoch=plateau.best_epoch, best_value=plateau.best, final=final,
        target_met=stopping.target_met(plateau.best, cfg.stopping),
        wall_time=time.perf_counter() - start, init_state=init_state, best_state=best_state,
        last_state=last_state, boundary=packed)


def train(cfg: RunConfig, run_id: str | None = None, device: str | torch.device = "cpu",
          on_attempt: Callable[[AttemptRecord], None] | None = None,
          dtype: torch.dtype = torch.float32) -> RunRecord:
    """Train one configuration with early stopping and restarts; return its record.

    Attempt ``a`` starts from seed ``derive_seed(train.seed, a)``; a plateau or divergence
    starts a fresh network while ``stopping.restarts`` remain and no target was met.
    """
    start = time.perf_counter()
    device = resolve_device(device)
    data = load_data(cfg.data)
    cfg = stopping.resolve_target(cfg, data)              # target: auto -> a number or None
    head = resolve_head(cfg.model, cfg.train.loss, data.n_classes)
    tensors = to_tensors(data, cfg.probe.batch, device, dtype)
    grid = boundary.make_grid(data.x_train) if cfg.probe.boundary_snapshots > 0 else None
    log, attempts = MetricsLog(), []
    for attempt in range(cfg.stopping.restarts + 1):
        rec = train_attempt(cfg, head, tensors, grid, attempt,
                            derive_seed(cfg.train.seed, attempt), log)
        attempts.append(rec)
        if on_attempt is not None:
            on_attempt(rec)
        if not stopping.should_restart(rec.end_reason, attempt, cfg.stopping):
            break
    resolved = to_dict(resolved_config(cfg, head))
    best = best_attempt_index(attempts, stopping.monitor_mode(cfg.stopping))
    return RunRecord(run_id=run_id or cfg.name, name=cfg.name, config=resolved, attempts=attempts,
                     best_attempt=best, metrics=log, info=run_info(cfg, data, head),
                     wall_time=time.perf_counter() - start, source="engine")

