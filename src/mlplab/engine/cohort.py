"""The cohort engine: K same-shape configurations trained at once (SPEC §10).

A cohort is one set of stacked tensors: every model's parameters are a row of
``flat [K, P]`` (:mod:`mlplab.model.stacked`); each step is one forward over ``[K, B, d]``, one
backward of the summed per-model losses and one batched optimizer update
(:mod:`mlplab.optim.batched`) with per-model hyper-parameters as ``[K]`` tensors. Early
stopping is a mask (:func:`mlplab.engine.stopping.observe_batched`); a restart re-initialises one
row with the model's next seed and resets its optimizer state. The probe's raw inputs are
copied into preallocated device buffers (:mod:`mlplab.engine.trace`) and turned into the
same :class:`~mlplab.record.RunRecord` as :func:`mlplab.engine.reference.train` makes, once, at the
end (:mod:`mlplab.engine.records`). The step loop never syncs with the host; when the
epoch loop reads the ``[K]`` stopping flags back is :class:`mlplab.engine.host.HostSync`'s
decision (once an epoch, or every few epochs in full-batch cohorts without restarts).

>>> from mlplab.config import from_dict
>>> from mlplab.engine.cohort_members import cohort_key
>>> cfgs = [from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3, "seed": s,
...                    "lr": lr}, "stopping": {"restarts": 0}}) for s, lr in [(0, .1), (1, .2)]]
>>> cohort_key(cfgs[0]) == cohort_key(cfgs[1])
True
>>> [r.attempts[0].epochs for r in train_cohort(cfgs)]
[3, 3]
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from mlplab.config import ConfigError, RunConfig, optimizer_hyper
from mlplab.data import load_data
from mlplab.model import boundary
from mlplab.model.mlp import Head, build_mlp, derive_seed, init_flat_, resolve_head
from mlplab.model.stacked import StackedMLP, loss_and_grad
from mlplab.optim.batched import BatchedOptimizer, make_optimizer, hyper_from_configs
from mlplab.optim.inplace import StepPlan, plan_step, step_all_active
from mlplab.optim.schedule import lr_scale, plateau_floor
from mlplab.probe.curvature_probe import MLPCurvature
from mlplab.record import RunRecord
from . import stopping
from .grad_clip import clip_grad_norm_
from .cohort_state import (CohortState, apply_stopping_rule, end_epoch, finish_attempts,
                           keep_snapshots, new_state, restart_rows)
from .cohort_members import check_cohort
from .compiled import CompiledEpoch
from .host import HostSync, HostView
from .process import cpu_threads
from .records import build_records
from .reference import Tensors, batch_order_generator, batch_size_of, resolve_device, to_tensors
from .trace import FinishedAttempt, Timeline, Trace, recorded_steps

# intra-op CPU threads while a cohort trains. The batched kernels are small enough that
# torch's OpenMP/MKL parallel regions cost more than they give, and on a shared machine
# they stall: a small cohort measured 55x slower with 2 threads than with 1 on 2 busy cores.
CPU_THREADS = 1


def _new_rows(configs: Sequence[RunConfig], ks: Sequence[int], attempts: Sequence[int],
              head: Head, d_in: int, dtype: torch.dtype,
              spec: StackedMLP | None) -> tuple[StackedMLP, Tensor]:
    """Model k's initial parameters for ``attempt``, the draws of the engine's
    :func:`build_mlp`, filled straight into flat rows (no modules: 10x faster)."""
    if spec is None:
        model = configs[ks[0]].model
        spec = StackedMLP.of(build_mlp(model, head, d_in, 0, dtype=dtype), model.activation,
                             model.negative_slope, head.output)
    rows = torch.empty(len(ks), spec.n_params, dtype=dtype)         # [len(ks), P]
    for row, k, a in zip(rows, ks, attempts):
        init_flat_(row, configs[k].model, head, d_in, derive_seed(configs[k].train.seed, a))
    return spec, rows


def _lr_table(configs: Sequence[RunConfig], device: torch.device) -> tuple[Tensor, Tensor]:
    """Closed-form schedules: ``scale[epoch, u]`` per distinct base lr u (cosine depends on
    it), computed with :func:`mlplab.optim.schedule.lr_scale` itself, and each model's column."""
    sched, epochs = configs[0].train.schedule, configs[0].train.epochs
    lrs = [c.train.lr for c in configs] if sched.name == "cosine" else [1.0] * len(configs)
    distinct = sorted(set(lrs))
    table = [[lr_scale(sched, e, epochs, lr) for lr in distinct] for e in range(epochs)]
    column = [distinct.index(lr) for lr in lrs]
    return (torch.tensor(table, dtype=torch.float64, device=device),
            torch.tensor(column, dtype=torch.long, device=device))


def _epoch_steps(spec: StackedMLP, head: Head, live: CohortState, opt: BatchedOptimizer,
                 data: Tensors, perm: Tensor | None, bs: int, first_step: int,
                 traced: Sequence[bool], acts: Sequence[bool], trace: Trace | None,
                 clip: float | None, plan: StepPlan | None,
                 curvature: Callable[[int], None] | None = None) -> None:
    """One epoch of optimizer steps for all K models: no host sync in here. ``traced[j]``:
    step j's raw probe inputs go to the trace (``acts[j]``: activations wanted too).
    ``plan``: every model is known to be active, update in place without masks.
    ``curvature(j)``: called after step j's update (it measures where it is due)."""
    if perm is not None:            # each model's epoch in its order: one gather an epoch
        # gathered batch last, [K, d, N] with unit stride along N: the first layer's
        # weight gradient is then a product with a transposed operand (3x faster on W2)
        xs = data.x_train.t().index_select(1, perm.reshape(-1)).view(-1, *perm.shape) \
            .transpose(0, 1)                                                       # [K, d, N]
        ys = data.y_train.index_select(0, perm.reshape(-1)).view(perm.shape)       # [K, N]
    for j, is_traced in enumerate(traced):
        if perm is None:                                            # full batch, shared
            xb, yb = data.x_train, data.y_train                     # [N, d], [N]
        else:
            xb = xs[:, :, j * bs:(j + 1) * bs].transpose(-1, -2)          # [K, B, d] view
            yb = ys[:, j * bs:(j + 1) * bs]                                 # [K, B]
        slot = trace.open_slot(first_step + j, acts[j]) if trace is not None and is_traced \
            else None
        prev, after, grad, loss_row = (None, None, live.grad, None) if slot is None \
            else trace.rows[slot]                                   # [K, P] x3, [K]
        fwd, live.forward = live.forward, None           # end_epoch's, at these weights
        loss = loss_and_grad(spec, live.params, xb, yb, head, grad, fwd)  # [K]
        if clip is not None:
            clip_grad_norm_([grad], clip, batch_dims=1)
        if prev is not None:
            prev.copy_(live.flat)
        if plan is not None:
            live.opt_state = step_all_active(plan, [live.flat], [grad], live.opt_state,
                                             live.hyper)
        else:
            live.opt_state = opt.step([live.flat], [grad], live.opt_state, live.hyper,
                                      live.active)
        if after is not None:
            after.copy_(live.flat)
            loss_row.copy_(loss)
        if curvature is not None:
            curvature(j)


def train_cohort(configs: Sequence[RunConfig], run_ids: Sequence[str] | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 *, probe: bool = True, threads: int | None = CPU_THREADS,
                 compile: bool = False) -> list[RunRecord]:
    """Train same-shape configurations together; one :class:`RunRecord` per config, equal
    in content to :func:`mlplab.engine.reference.train`'s (``source="cohort"``; attempt wall times
    are shares of the cohort loop's time).

    ``probe=False`` skips the probe (step norms, activation statistics, boundary
    snapshots; for benchmarks; compiled, a program that computes none of them); epoch
    and final metrics are always kept. ``threads``:
    torch's intra-op CPU threads while training (restored after; None leaves them).
    ``compile``: each epoch as one program compiled ahead of time
    (:mod:`mlplab.engine.compiled`: ~2x faster per epoch on W1, ~1.7x on W2 with the probe
    ~10x cheaper; a build once per machine and kind of network, 15-30 s for a full-batch
    epoch, ~1 min for W2's 11 minibatch steps; equal to the eager cohort to float32
    rounding); where it cannot be compiled (more than ``cohort_compiled.MAX_STEPS``
    minibatch steps an epoch, no compiler) the cohort warns and trains eagerly. Raises
    :class:`ConfigError` if the configs do not share a :func:`cohort_key`.
    """
    configs = list(configs)
    check_cohort(configs)
    if run_ids is not None and len(run_ids) != len(configs):
        raise ConfigError("run_ids", len(run_ids), f"{len(configs)} ids, one per config")
    # inference mode: no version counters or autograd keys on the cohort's tensors (13%
    # less time on W1); the records are built outside it, from normal tensors
    dev = resolve_device(device)
    with cpu_threads(threads, dev), torch.inference_mode():
        return _train(configs, run_ids, dev, dtype, probe, compile)


def _train(configs: list[RunConfig], run_ids: Sequence[str] | None, device: torch.device,
           dtype: torch.dtype, probe: bool, compile: bool = False) -> list[RunRecord]:
    """The cohort loop: setup, then one iteration per epoch until every model is done."""
    start = time.perf_counter()
    # ---- setup: data, K networks as one [K, P] tensor, optimizer, schedules -----------
    data = load_data(configs[0].data)                   # one dataset: the cohort key says so
    configs = [stopping.resolve_target(c, data) for c in configs]   # target: auto -> a number
    cfg, k_models = configs[0], len(configs)
    head = resolve_head(cfg.model, cfg.train.loss, data.n_classes)
    tensors = to_tensors(data, cfg.probe.batch, device, dtype)
    with torch.inference_mode(False):                 # the records hand the grid out
        grid = boundary.make_grid(data.x_train) if probe and cfg.probe.boundary_snapshots > 0 \
            else None
    n, d_in, epochs = len(data.y_train), data.input_dim, cfg.train.epochs
    bs = batch_size_of(cfg, n)
    spe = -(-n // bs)                                                  # steps per epoch
    seeds = [c.train.seed for c in configs]
    host = HostView.start(k_models)          # each model's attempt and epoch, as known here
    spec, rows = _new_rows(configs, range(k_models), host.attempts, head, d_in, dtype, None)
    opt = make_optimizer(cfg.train.optimizer)
    hyper = hyper_from_configs(cfg.train.optimizer, [optimizer_hyper(c.train) for c in configs],
                               device=device)
    sched = cfg.train.schedule.name
    live = new_state(spec, rows.to(device), opt, hyper, sched)
    lr_floor = plateau_floor(cfg.train.schedule, live.base_lr)
    lr_tab, lr_col = (None, None) if sched in ("none", "plateau") else \
        _lr_table(configs, device)
    snap_slot = {e: s for s, e in enumerate(boundary.snapshot_epochs(
        epochs, cfg.probe.boundary_snapshots))} if grid is not None else {}
    snaps = torch.zeros(len(snap_slot), k_models, spec.n_params, dtype=dtype, device=device) \
        if snap_slot else None
    trace = Trace(spec, live.init, probe, sched == "plateau", tensors.x_probe,
                  recorded_steps(epochs * spe, cfg.probe.every, cfg.probe.activations_every))
    timeline = Timeline(spe, cfg.probe.every, cfg.probe.activations_every)
    gens = [batch_order_generator(s) for s in seeds]
    finished: list[FinishedAttempt] = []
    sync = HostSync.of(cfg, spe, device)
    # the in-place optimizer step while the host knows every model is active
    plan = plan_step(cfg.train.optimizer, hyper)
    plan = plan if plan.rule else None
    compiled = CompiledEpoch.of(spec, head, cfg, opt, tensors, data.val_is_train, bs,
                                probe) if compile else None
    curv = _Curvature.of(cfg, spec, head, tensors, spe) if probe else None

    def finish(ks: list[int]) -> None:
        """Copy the attempts models ``ks`` are in to the host, as ended."""
        finished.extend(finish_attempts(live, ks, cfg, host.attempts,
                                        [derive_seed(seeds[k], host.attempts[k]) for k in ks],
                                        snaps))

    def restart(ks: list[int]) -> None:
        """A fresh network in rows ``ks``, from each model's next seed."""
        trace.flush()                        # the traced steps so far belong to old attempts
        finish(ks)
        host.restart(ks)
        for k in ks:
            gens[k] = batch_order_generator(derive_seed(seeds[k], host.attempts[k]))
        _, new = _new_rows(configs, ks, [host.attempts[k] for k in ks], head, d_in, dtype,
                           spec)
        restart_rows(live, ks, new, opt)

    # ---- the loop: one iteration per epoch of the cohort, until every model is done ----
    all_active, loop_start = True, time.perf_counter()
    untraced = [False] * spe                  # without the probe no step is traced
    for ge in itertools.count():                          # ge: the cohort's epochs so far
        _set_lr(live, lr_tab, lr_col)
        perm = _batch_orders(gens, host.done, n, device) if bs < n else None
        timeline.start_epoch(host.attempt_row, host.epoch)
        span = host.span()
        traced, acts = timeline.traced_steps(host.running_epochs(), span) if probe else \
            (untraced, untraced)
        # compiled: the steps, the evaluation and the stopping rule as one program
        ran = compiled is not None and compiled.run(
            live, trace, ge * spe, traced, acts, lr_floor,
            perm) is not None
        if not ran:
            compiled = None                  # not compiled, or compiling failed: eagerly
            _epoch_steps(spec, head, live, opt, tensors, perm, bs, ge * spe, traced, acts,
                         trace if probe else None, cfg.train.clip_grad_norm,
                         plan if all_active else None,
                         None if curv is None else curv.at(live, ge, host.running_epochs()))
            values = end_epoch(spec, head, tensors, data.val_is_train, live, trace,
                               keep_forward=perm is None)
            apply_stopping_rule(live, values, cfg, lr_floor, max_epoch=span[1])
        if snaps is not None:
            keep_snapshots(snaps, snap_slot, host.epoch, host.done, live, span)
        host.advance()
        synced = sync.should_sync(ge + 1)
        if synced:
            ended = host.read(live)                       # who ended since, and why
            again = [k for k, reason in ended.items()
                     if stopping.should_restart(reason, host.attempts[k], cfg.stopping)]
            if again:
                restart(again)
            if host.done.all():
                break
        all_active = compiled is None and sync.all_active(synced, host, live.active)
    # ---- every model is done: records, in the engine's schema --------------------------
    trace.flush()
    finish(list(range(k_models)))
    loop_time = time.perf_counter() - loop_start
    epochs_seen = np.minimum(np.stack(timeline.epoch), epochs - 1)            # [E, K]
    scale = np.ones(epochs_seen.shape) if lr_tab is None else \
        lr_tab.cpu().numpy()[epochs_seen, lr_col.cpu().numpy()]
    with torch.inference_mode(False):
        return build_records(configs, run_ids, finished, trace, timeline, head, data, tensors,
                             grid, scale, loop_time, start,
                             None if curv is None else curv.recorded())


def _set_lr(live: CohortState, lr_tab: Tensor | None, lr_col: Tensor | None) -> None:
    """This epoch's lr of each model: the closed-form schedule's table at its epoch, or
    reduce-on-plateau's multiplier."""
    if lr_tab is not None:
        live.hyper = live.hyper._replace(lr=live.base_lr * lr_tab[live.epoch, lr_col])
    elif live.lr_plateau is not None:
        live.hyper = live.hyper._replace(lr=live.base_lr * live.lr_plateau.scale)


def _batch_orders(gens: list[torch.Generator], done: np.ndarray, n: int,
                  device: torch.device) -> Tensor:
    """Each model's order of the training set this epoch, ``[K, N]``, drawn from its own
    generator as the engine draws it (none for a model that is done)."""
    return torch.stack([torch.randperm(n, generator=g) if not d else torch.arange(n)
                        for g, d in zip(gens, done)]).to(device)


class _Curvature:
    """The curvature probe of a cohort (``probe.curvature_every > 0``): after each step
    where a running model is due (its attempt step a multiple of ``every``), every
    model's curvature at once, batched (:class:`mlplab.probe.curvature_probe.MLPCurvature`);
    the records keep each model's due steps only."""

    def __init__(self, every: int, spe: int, probe: MLPCurvature) -> None:
        self.every, self.spe, self.probe = every, spe, probe
        self.steps: list[int] = []             # cohort steps measured
        self.values: list[Tensor] = []         # [K, M] each

    @staticmethod
    def of(cfg: RunConfig, spec: StackedMLP, head: Head, data: Tensors,
           spe: int) -> "_Curvature | None":
        if cfg.probe.curvature_every <= 0:
            return None
        return _Curvature(cfg.probe.curvature_every, spe, MLPCurvature(
            spec, head, data.x_probe, data.y_train[:len(data.x_probe)], cfg.train.optimizer))

    def at(self, live: CohortState, ge: int, running_epochs: np.ndarray
           ) -> Callable[[int], None] | None:
        """This epoch's callback for :func:`_epoch_steps`, None when no step is due."""
        base = (np.unique(running_epochs) * self.spe).tolist()
        due = {j for j in range(self.spe) if any((b + j) % self.every == 0 for b in base)}
        if not due:
            return None

        def measure(j: int) -> None:
            if j not in due:
                return
            hyper = live.hyper._asdict()
            fields = live.opt_state._asdict()
            state = {k: v[0] for k, v in fields.items() if isinstance(v, tuple) and v}
            state["count"] = fields["count"]
            values = self.probe.measure(live.flat, hyper, state)
            self.steps.append(ge * self.spe + j)
            self.values.append(torch.stack(list(values.values()), dim=1))   # [K, M]
            self.names = list(values)
        return measure

    def recorded(self) -> tuple[list[int], np.ndarray, list[str]] | None:
        """(cohort steps, values ``[S, K, M]``, metric names), None if none measured."""
        if not self.steps:
            return None
        return self.steps, torch.stack(self.values).cpu().numpy(), self.names
