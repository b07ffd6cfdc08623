"""The probe in the user's own training loop: :class:`Probe`, for any ``nn.Module``.

    probe = mlplab.Probe(model, out="runs/mine", optimizer=opt)
    for epoch in range(epochs):
        for x, y in batches:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            probe.step(loss)           # after backward(), before opt.step()
            opt.step()
        probe.epoch(train_loss=..., val_loss=..., val_acc=...)   # optional
    probe.close()                      # then: mlplab runs / report / diagnose runs/mine

It writes a run in the store format of mlplab's own engine (``source = "probe"``), with
the same ``metrics.parquet`` schema and the same meaning of each value, so the two kinds
of run read alike:

- **Layers.** Every module with parameters of its own (``Linear``, ``Conv*``, norm
  layers, ...) is a layer named by its module name (``"0"``, ``"encoder.fc1"``; the root
  module itself is ``"model"``). Its parameter ``weight`` gives the ``*_w`` metrics,
  ``bias`` the ``*_b`` metrics; any other parameter ``p`` is a layer ``"<name>.p"`` of
  its own with ``*_w`` metrics.
- **Step ``t``** (every ``every`` steps): ``loss`` and the gradient norms of step ``t``;
  ``weight_norm``, ``update_ratio`` ‖Δw‖/‖w‖ of the update that step ``t`` made and
  ``dist_init`` ‖w − w₀‖ *after* that update. The optimizer updates after
  ``probe.step``, so those three are measured at the next ``probe.step`` (or at
  :meth:`Probe.close`) and filed under step ``t``; ``lr`` when an optimizer is given.
- **Activations** (every ``activations_every`` steps): forward pre-hooks on activation
  modules (``ReLU``, ``Tanh``, ``Sigmoid``, ``GELU``, ...) take statistics of their
  *input*, the pre-activations of the training batch of that step: mean, std, the
  share of dead units (ReLU) and of saturated units (sigmoid/tanh), as
  :func:`mlplab.probe.norms.activation_stats`. The layer is named after the parameterised
  module that ran just before the activation (so one ``nn.ReLU`` used after ``fc1``
  and ``fc2`` gives two layers), or after the activation module if none ran or that
  name is taken. After a convolution or batch/instance/group norm the units are the
  channels. Only forwards with gradients enabled count (not ``torch.no_grad()``
  evaluation), and the last such forward before ``probe.step`` wins.
  Functional activations (``F.relu``) are not seen.
- **Curvature** (every ``curvature_every`` steps, 0 = off; needs ``loss_fn`` and a
  fixed ``batch=(x, y)``): ``sharpness``, ``hess_trace``, ``grad_noise_scale`` and
  (with an optimizer of :mod:`mlplab.optim.table`'s kinds) ``stability`` of
  ``loss_fn(model(x), y)``, as :mod:`mlplab.probe.curvature` defines them, at the
  parameters after step ``t``'s update (measured at the next ``probe.step``), filed
  under step ``t``. Buffers (batch-norm statistics) are copied, never updated.
- **Epochs**: whatever ``probe.epoch(...)`` is given.

Values stay on the device and are read back in one transfer once ``FLUSH_EVERY``
measurements (a few per recorded step) are waiting, and at ``close``: no host sync per
step. The hooks are attached only for
the steps that record activations, so the other steps run the model's plain forward.

Where the run goes is the ``sink``'s business (:class:`RunSink`): ``mlplab.Probe`` is
this class with a sink that writes into a store (:class:`mlplab.run.Probe`), so nothing
here reads or writes files.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
>>> kept = []
>>> class Keep:
...     def begin(self, name, config): return name
...     def finish(self, record): kept.append(record)
>>> with Probe(net, Keep(), name="doc") as probe:
...     loss = net(torch.ones(8, 2)).pow(2).mean()
...     loss.backward()
...     probe.step(loss)
>>> probe.layers, kept[0].attempts[0].steps
(['0', '2'], 1)
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mlplab.config import ConfigError
from mlplab.metrics import EPOCH_METRICS, MetricsLog
from mlplab.record import RunRecord, attempt_record
from .norms import activation_stats, units_last
from .curvature_probe import ModuleCurvature
from .paramnorms import ParamNorms

# Measurements (a few per recorded step) kept on the device before one read-back.
FLUSH_EVERY = 256

# Activation modules seen by the hooks, and the kind passed to activation_stats
# (ReLU6 before Hardtanh: it subclasses it).
ACTIVATION_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"), (nn.ReLU6, "relu"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
    (nn.LeakyReLU, "leaky_relu"), (nn.ELU, "elu"), (nn.GELU, "gelu"), (nn.SiLU, "silu"),
    (nn.SELU, "selu"), (nn.CELU, "celu"), (nn.Mish, "mish"), (nn.Softplus, "softplus"),
    (nn.PReLU, "prelu"), (nn.Hardtanh, "hardtanh"), (nn.Hardsigmoid, "hardsigmoid"),
    (nn.Hardswish, "hardswish"), (nn.Softsign, "softsign"))

# Producers whose output has its units (channels) in dimension 1.
CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm,
                  nn.modules.instancenorm._InstanceNorm, nn.GroupNorm)

ROOT_LAYER = "model"


def activation_kind(module: nn.Module) -> str | None:
    """The activation kind of ``module`` (``"relu"``, ``"tanh"``, ...) or None."""
    for cls, kind in ACTIVATION_KINDS:
        if isinstance(module, cls):
            return kind
    return None


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, value, "a positive integer")
    return value


class RunSink(Protocol):
    """Where a probe's run goes: ``begin`` names it (returns the run id) when the probe
    starts, ``finish`` takes its record once, at ``close``."""

    def begin(self, name: str, config: dict[str, Any]) -> str: ...

    def finish(self, record: RunRecord) -> None: ...


class Probe:
    """Per-layer instrumentation of a user's training loop; see the module docstring.

    ``sink``: where the run goes (:class:`RunSink`). ``name``: the run's name
    (default: the model's class name). ``every``: steps between per-layer norm records;
    ``activations_every``: steps between activation statistics. ``optimizer`` (optional)
    records its class, hyper-parameters and the lr of each recorded step; ``config``
    (optional, JSON-ready) is stored with the run under ``config["user"]``; ``seed``
    is stored as the run's seed.
    """

    def __init__(self, model: nn.Module, sink: RunSink, name: str | None = None,
                 every: int = 1, activations_every: int = 10, *,
                 optimizer: torch.optim.Optimizer | None = None,
                 config: dict[str, Any] | None = None, seed: int | None = None,
                 curvature_every: int = 0, loss_fn: Any = None,
                 batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
        self.model, self.optimizer = model, optimizer
        self.every = _positive_int("probe.every", every)
        self.activations_every = _positive_int("probe.activations_every", activations_every)
        self.curvature_every = 0 if curvature_every == 0 else \
            _positive_int("probe.curvature_every", curvature_every)
        if self.curvature_every and (loss_fn is None or batch is None or len(batch) != 2):
            raise ConfigError("probe.curvature_every", curvature_every,
                              "0, or a positive integer with loss_fn=(output, target) -> "
                              "scalar loss and batch=(x, y), the fixed batch it is measured on")
        self._curv = None if not self.curvature_every else \
            ModuleCurvature(model, loss_fn, batch, optimizer)
        self._curv_pending: tuple[int, int, Any] | None = None
        self.name = name or type(model).__name__.lower()
        self.seed = seed
        # (layer, metric suffix, parameter) for every parameter, in module order
        self._params: list[tuple[str, str, nn.Parameter]] = []
        self.layers: list[str] = []
        for mod_name, module in model.named_modules():
            layer = mod_name or ROOT_LAYER
            for p_name, p in module.named_parameters(recurse=False):
                if p_name in ("weight", "bias"):
                    entry = (layer, "_w" if p_name == "weight" else "_b", p)
                else:
                    entry = (f"{layer}.{p_name}", "_w", p)
                self._params.append(entry)
                if entry[0] not in self.layers:
                    self.layers.append(entry[0])
        self._norms = ParamNorms(self._params)
        self._init_state = self._state()
        self._step = self._epoch = 0
        self._pending: tuple[int, int] | None = None   # (step, epoch) awaiting its update
        self._buffer: list[tuple[str, int, int, list[tuple[str, str]], torch.Tensor]] = []
        self._log = MetricsLog()
        self._epochs: list[dict[str, float]] = []
        self._acts: dict[str, torch.Tensor] = {}
        self._kinds: dict[str, str] = {}
        self._last: tuple[str, bool] | None = None     # last parameterised module run
        self._closed = False
        self._start = time.perf_counter()
        self.config = self._config(config)
        self.sink = sink
        self.run_id = sink.begin(self.name, self.config)
        self._hooks: list[Any] = []
        self._attach_hooks()                           # step 0 records activations

    # -- the loop's calls ------------------------------------------------------------
    def step(self, loss: torch.Tensor | float) -> None:
        """Record step ``t``: call after ``loss.backward()``, before ``optimizer.step()``."""
        self._check_open()
        value = self._loss_value(loss)
        measured = self._pending is not None
        if measured:
            self._record_update(*self._pending)
            self._pending = None
        self._record_curvature()
        t = self._step
        if self._curv is not None and t % self.curvature_every == 0:
            lr = self.optimizer.param_groups[0].get("lr") if self.optimizer is not None else None
            self._curv_pending = (t, self._epoch, lr)
        if t % self.every == 0:
            self._record_gradients(t, value)
            self._norms.snapshot(measured)
            self._pending = (t, self._epoch)
        if self._acts:
            keys = [(layer, m) for layer in self._acts
                    for m in ("act_mean", "act_std", "dead_frac", "sat_frac")]
            self._push("act", t, self._epoch, keys, torch.cat(list(self._acts.values())))
            self._acts = {}
        self._step += 1
        if self._step % self.activations_every == 0:
            self._attach_hooks()
        else:
            self._detach_hooks()

    def epoch(self, train_loss: float | None = None, val_loss: float | None = None,
              val_acc: float | None = None, train_acc: float | None = None) -> None:
        """Record the end of an epoch (values may be floats or 0-d tensors)."""
        self._check_open()
        given = {"train_loss": train_loss, "train_acc": train_acc,
                 "val_loss": val_loss, "val_acc": val_acc}
        values = {m: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                  for m, v in given.items() if v is not None}
        if not values:
            raise ConfigError("probe.epoch", "no values", ", ".join(EPOCH_METRICS))
        for metric, v in values.items():
            self._log.add(0, self._step, self._epoch, "epoch", "", metric, v)
        self._epochs.append(values)
        self._epoch += 1

    def close(self, interrupted: bool = False) -> str:
        """Hand the run to the sink (once) and remove the hooks; returns the run id."""
        if self._closed:
            return self.run_id
        if self._pending is not None:
            self._record_update(*self._pending)
            self._pending = None
        self._record_curvature()
        self._flush()
        self._detach_hooks()
        self._closed = True
        self.sink.finish(self._record(interrupted))
        return self.run_id

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(interrupted=exc_type is not None)   # the error itself propagates

    # -- measurements (device tensors, no host sync) -----------------------------------
    @staticmethod
    def _loss_value(loss: torch.Tensor | float) -> torch.Tensor:
        """The loss as a ``[1]`` tensor on its device (no host sync)."""
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ConfigError("probe.step(loss)", f"a tensor of shape {tuple(loss.shape)}",
                                  "the scalar loss of the step")
            return loss.detach().reshape(1)
        return torch.tensor([float(loss)])

    def _record_gradients(self, t: int, value: torch.Tensor) -> None:
        self._push("step", t, self._epoch, [("", "loss")], value)
        for keys, values in self._norms.gradients():
            self._push("step", t, self._epoch, keys, values)
        if self.optimizer is not None:
            self._log.add(0, t, self._epoch, "step", "", "lr",
                          float(self.optimizer.param_groups[0]["lr"]))

    def _record_update(self, t: int, epoch: int) -> None:
        for keys, values in self._norms.updates():
            self._push("step", t, epoch, keys, values)

    def _record_curvature(self) -> None:
        """The curvature due at step t, at the parameters after t's update (filed under t)."""
        if self._curv_pending is None or self._curv is None:
            return
        t, epoch, lr = self._curv_pending
        self._curv_pending = None
        values = self._curv.measure(lr)
        self._push("step", t, epoch, [("", m) for m in values],
                   torch.stack([v.reshape(()) for v in values.values()]))

    def _push(self, scope: str, step: int, epoch: int, keys: list[tuple[str, str]],
              values: torch.Tensor) -> None:
        self._buffer.append((scope, step, epoch, keys, values))
        if len(self._buffer) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        """Read every buffered value back to the host in one transfer, then file the
        records by (scope, keys) as columns."""
        if not self._buffer:
            return
        device = self._buffer[0][4].device
        flat = torch.cat([v.to(device, torch.float64) for *_, v in self._buffer]).cpu().numpy()
        blocks: dict[tuple, list[tuple[int, int, np.ndarray]]] = {}
        i = 0
        for scope, step, epoch, keys, _ in self._buffer:
            blocks.setdefault((scope, tuple(keys)), []).append((step, epoch, flat[i:i + len(keys)]))
            i += len(keys)
        for (scope, keys), rows in blocks.items():
            steps, epochs = [r[0] for r in rows], [r[1] for r in rows]
            table = np.stack([r[2] for r in rows])                  # [records, keys]
            for j, (layer, metric) in enumerate(keys):
                self._log.add_arrays(0, steps, epochs, scope, layer, metric, table[:, j])
        self._buffer = []

    # -- hooks -------------------------------------------------------------------------
    def _attach_hooks(self) -> None:
        if self._hooks:
            return
        model = self.model
        self._hooks.append(model.register_forward_pre_hook(self._on_model_forward))
        for mod_name, module in model.named_modules():
            if any(True for _ in module.parameters(recurse=False)) and module is not model:
                self._hooks.append(module.register_forward_hook(
                    self._param_hook(mod_name, isinstance(module, CHANNELS_FIRST))))
            kind = activation_kind(module)
            if kind is not None:
                self._hooks.append(module.register_forward_pre_hook(
                    self._activation_hook(mod_name or ROOT_LAYER, kind)))

    def _detach_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _recording_activations(self) -> bool:
        return (not self._closed and self._step % self.activations_every == 0
                and torch.is_grad_enabled())

    def _on_model_forward(self, module: nn.Module, args: Any) -> None:
        self._last = None
        if self._recording_activations():
            self._acts = {}

    def _param_hook(self, name: str, channels_first: bool) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._last = (name, channels_first)
        return hook

    def _activation_hook(self, name: str, kind: str) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            if not self._recording_activations() or not args or \
                    not isinstance(args[0], torch.Tensor):
                return
            layer = self._last[0] if self._last is not None else name
            k = 2
            while layer in self._acts:            # name taken: the activation's own name
                layer = name if layer != name and name not in self._acts else f"{name}#{k}"
                k += 1
            x = units_last(args[0].detach(), self._last is not None and self._last[1])
            stats = activation_stats(x, kind)
            self._acts[layer] = torch.stack(list(stats.values())).float()   # [4]
            self._kinds[layer] = kind
        return hook

    # -- the run record ------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"Probe for run '{self.run_id}' is closed")

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()
                if isinstance(v, torch.Tensor)}

    def _config(self, user: dict[str, Any] | None) -> dict[str, Any]:
        train: dict[str, Any] = {"seed": self.seed}
        if self.optimizer is not None:
            group = self.optimizer.param_groups[0]
            train["optimizer"] = type(self.optimizer).__name__
            train.update({k: float(v) for k, v in group.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool)})
        shapes = {f"{layer}{suffix}": list(p.shape) for layer, suffix, p in self._params}
        return {"name": self.name, "source": "probe",
                "model": {"class": type(self.model).__name__, "layers": list(self.layers),
                          "parameters": sum(p.numel() for _, _, p in self._params),
                          "shapes": shapes},
                "train": train,
                "probe": {"every": self.every, "activations_every": self.activations_every,
                          "curvature_every": self.curvature_every},
                "user": dict(user or {})}

    def _record(self, interrupted: bool) -> RunRecord:
        frame = self._log.to_frame()
        frame_losses = frame.loc[(frame["metric"] == "loss") & (frame["scope"] == "step"),
                                 "value"].tolist()
        monitor = next((m for m in ("val_loss", "train_loss")
                        if any(m in e for e in self._epochs)), "loss")
        if monitor == "loss":
            tail = [v for v in frame_losses[-10:] if math.isfinite(v)]
            best_value, best_epoch = (sum(tail) / len(tail) if tail else math.nan), -1
        else:
            seen = [(e.get(monitor, math.nan), i) for i, e in enumerate(self._epochs)]
            finite = [(v, i) for v, i in seen if math.isfinite(v)]
            best_value, best_epoch = min(finite) if finite else (math.nan, -1)
        last = self._epochs[-1] if self._epochs else {}
        diverged = bool(frame_losses) and not math.isfinite(frame_losses[-1])
        reason = "interrupted" if interrupted else "diverged" if diverged else "closed"
        state = self._state()
        wall = time.perf_counter() - self._start
        # no test set: the final metrics are the last epoch's (train loss: the recent
        # steps' mean when no epoch gave one)
        final = {m: last.get(m, math.nan) for m in ("val_loss", "val_acc")}
        final["train_loss"] = last.get("train_loss", best_value if monitor == "loss" else math.nan)
        attempt = attempt_record(
            self._log, attempt=0, seed=-1 if self.seed is None else int(self.seed),
            end_reason=reason, epochs=self._epoch, steps=self._step, best_epoch=best_epoch,
            best_value=best_value, final=final, target_met=False, wall_time=wall,
            init_state=self._init_state, best_state=state, last_state=state)
        info = {"source": "probe", "layers": list(self.layers), "activations": dict(self._kinds),
                "monitor": monitor, "mode": "min", "model_class": type(self.model).__name__,
                "param_counts": {layer: sum(p.numel() for lay, _, p in self._params if lay == layer)
                                 for layer in self.layers},
                "weight_counts": {lay: p.numel() for lay, suffix, p in self._params
                                  if suffix == "_w"}}
        if self._curv is not None and self._curv.bound is not None:
            info["stability_bound"] = self._curv.bound
        return RunRecord(run_id=self.run_id, name=self.name, config=self.config,
                         attempts=[attempt], best_attempt=0, metrics=self._log, info=info,
                         wall_time=wall, source="probe")
