"""A cohort's training state on the device, and how it changes between steps.

:class:`CohortState` holds the K models' parameters as one ``flat [K, P]`` tensor (with
per-layer views), their optimizer state and hyper-parameters, and the early-stopping state
as ``[K]`` tensors. :func:`end_epoch` evaluates all models and records the epoch;
:func:`apply_stopping_rule` folds the monitored values into the stopping rule
(:func:`fold_epoch`: :mod:`mlplab.engine.stopping`'s rule as masks), with no host sync;
:func:`restart_rows` starts single rows afresh; :func:`finish_attempts` copies ended
attempts to the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from mlplab.config import RunConfig
from mlplab.model.mlp import Head
from mlplab.model.stacked import (Forward, StackedMLP, accuracy, eval_scratch, evaluate,
                                  forward_loss, layers)
from mlplab.optim.batched import BatchedOptimizer
from mlplab.optim.schedule import PlateauLRState, plateau_init, plateau_reset, plateau_step
from . import stopping
from .reference import Tensors
from .trace import FinishedAttempt, Trace


@dataclass
class CohortState:
    """The cohort's training state on the device (rows are models)."""

    flat: Tensor                 # [K, P] parameters (only ever updated in place)
    params: list[tuple[Tensor, Tensor]]   # per-layer views of flat (stacked.layers)
    init: Tensor                 # [K, P] each model's initialisation in this attempt
    best: Tensor                 # [K, P] parameters at the best epoch so far
    grad: Tensor                 # [K, P] scratch gradient when a step is not traced
    opt_state: Any
    hyper: Any                   # optimizer hyper-parameters, [K] float64 each
    base_lr: Tensor              # [K] float64
    plateau: stopping.BatchedPlateauState
    lr_plateau: PlateauLRState | None    # reduce-on-plateau's state, that schedule only
    epoch: Tensor                # [K] long, epoch within the current attempt
    active: Tensor               # [K] bool, still training
    end_code: Tensor             # [K] long, stopping.reason_of's code (0: training)
    # full batch: the end-of-epoch forward on the training set, at the weights the next
    # step starts from, kept for that step's backward (None: the step makes its own)
    forward: Forward | None = None
    eval_scratch: Tensor | None = None   # [2, E] evaluate's buffers, made at the first use

    def stop(self) -> "EpochStop":
        """The stopping state, as :func:`fold_epoch` reads it."""
        return EpochStop(self.plateau, self.best, self.lr_plateau, self.epoch, self.active,
                         self.end_code)

    def take_stop(self, stop: "EpochStop") -> None:
        """Adopt the stopping state :func:`fold_epoch` returned."""
        self.plateau, self.best, self.lr_plateau = stop.plateau, stop.best, stop.lr_plateau
        self.epoch, self.active, self.end_code = stop.epoch, stop.active, stop.end_code


def new_state(spec: StackedMLP, rows: Tensor, opt: BatchedOptimizer, hyper: Any,
              schedule: str) -> CohortState:
    """The state of K fresh models whose initial parameters are ``rows [K, P]``."""
    k, device = rows.shape[0], rows.device
    flat = rows.clone()
    base_lr = hyper.lr.clone()                                       # [K] float64
    lr_plateau = plateau_init(k, device) if schedule == "plateau" else None
    return CohortState(flat=flat, params=layers(spec, flat), init=rows.clone(),
                       best=rows.clone(), grad=torch.empty_like(rows),
                       opt_state=opt.init([rows]), hyper=hyper, base_lr=base_lr,
                       plateau=stopping.init_batched(k, device), lr_plateau=lr_plateau,
                       epoch=torch.zeros(k, dtype=torch.long, device=device),
                       active=torch.ones(k, dtype=torch.bool, device=device),
                       end_code=torch.zeros(k, dtype=torch.long, device=device))


@torch.no_grad()
def end_epoch(spec: StackedMLP, head: Head, data: Tensors, val_is_train: bool,
              live: CohortState, trace: Trace, keep_forward: bool = False
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Evaluate every model and record the epoch in the trace; returns ``(train loss,
    train acc, val loss, val acc)``, ``[K]`` each, for the stopping rule. No host sync.
    ``keep_forward`` (full batch): the training-set forward is the next step's, so it is
    kept in ``live.forward``."""
    # evaluate's buffers, not made when the kept forward gives every metric (full batch)
    if live.eval_scratch is None and not (keep_forward and val_is_train):
        live.eval_scratch = eval_scratch(spec, len(live.flat), max(len(data.y_train),
                                                                   len(data.y_val)), live.flat)
    if keep_forward:
        live.forward = forward_loss(spec, live.params, data.x_train, data.y_train, head)
        tr_loss, tr_acc = live.forward.loss, accuracy(live.forward.zs[-1], data.y_train, head)
    else:
        tr_loss, tr_acc = evaluate(spec, live.params, data.x_train, data.y_train, head,
                                   live.eval_scratch)                                # [K]
    va_loss, va_acc = (tr_loss, tr_acc) if val_is_train else \
        evaluate(spec, live.params, data.x_val, data.y_val, head, live.eval_scratch)
    trace.record_epoch([tr_loss, tr_acc, va_loss, va_acc], live.active,
                       live.hyper.lr if live.lr_plateau is not None else None)
    return tr_loss, tr_acc, va_loss, va_acc


def apply_stopping_rule(live: CohortState, values: tuple[Tensor, Tensor, Tensor, Tensor],
                        cfg: RunConfig, lr_floor: Tensor | None, max_epoch: int | None = None
                        ) -> Tensor:
    """:func:`fold_epoch` of the epoch's ``values`` into ``live``'s stopping state; returns
    the ``[K]`` mask of models whose attempt ended this epoch. No host sync. ``max_epoch``:
    no running model is past this epoch of its attempt (the host's count; an upper bound
    will do): the max-epochs and plateau checks are skipped while they cannot hold."""
    folded = fold_epoch(live.stop(), live.flat, values, cfg, lr_floor, max_epoch)
    live.take_stop(folded)
    return folded.ended


class EpochStop(NamedTuple):
    """The stopping state :func:`fold_epoch` reads and returns (``[K]`` tensors but
    ``best [K, P]``; ``ended``: whose attempt ended this epoch, None on the way in)."""

    plateau: stopping.BatchedPlateauState
    best: Tensor
    lr_plateau: PlateauLRState | None
    epoch: Tensor
    active: Tensor
    end_code: Tensor
    ended: Tensor | None = None


def fold_epoch(state: EpochStop, flat: Tensor, values: tuple[Tensor, Tensor, Tensor, Tensor],
               cfg: RunConfig, lr_floor: Tensor | None, max_epoch: int | None = None
               ) -> EpochStop:
    """One epoch's metrics ``(train loss, train acc, val loss, val acc)`` folded into the
    stopping rule of every model at parameters ``flat [K, P]``: pure tensor ops, no host
    sync (the compiled epoch of :mod:`mlplab.engine.compiled` runs the same function).
    ``max_epoch``: as :func:`apply_stopping_rule`'s."""
    tr_loss, va_loss = values[0], values[2]
    monitored = dict(zip(("train_loss", "train_acc", "val_loss", "val_acc"), values))[
        cfg.stopping.monitor]
    st, active = cfg.stopping, state.active
    lr_plateau = state.lr_plateau if state.lr_plateau is None else \
        plateau_step(state.lr_plateau, va_loss, cfg.train.schedule, lr_floor, active)
    plateau, improved = stopping.observe_batched_mask(state.plateau, state.epoch, monitored,
                                                      st, active)                # [K]
    best = torch.where(improved.unsqueeze(-1), flat, state.best) if st.restore_best \
        else state.best
    # stopping.end_reason's checks as [K] masks; a check that cannot hold yet is skipped
    # (None): `since` can reach `patience` at epoch patience - 1 at the earliest
    last = max_epoch is None or max_epoch >= cfg.train.epochs - 1
    late = max_epoch is None or max_epoch + 1 >= st.patience
    code = stopping.end_codes({                                   # [K] long, 0: going on
        "max_epochs": state.epoch >= cfg.train.epochs - 1 if last else None,
        "plateau": stopping.is_plateau(plateau, st) if late else None,
        "target": stopping.target_met_batched(monitored, st) if stopping.has_target(st) else None,
        "diverged": stopping.diverged(tr_loss)})
    ended = active & code.bool()
    active = active ^ ended                                    # ended is a subset of active
    return EpochStop(plateau, best, lr_plateau, state.epoch + active, active,
                     torch.where(ended, code, state.end_code), ended)


def keep_snapshots(snaps: Tensor, snap_slot: dict[int, int], host_epoch: np.ndarray,
                   host_done: np.ndarray, live: CohortState,
                   span: tuple[int, int] | None = None) -> None:
    """Keep the parameters of models at a boundary-snapshot epoch (drawn at the end).
    ``span``: ``(min, max)`` of the running models' epochs, if known."""
    lo, hi = span if span is not None else (int(host_epoch.min()), int(host_epoch.max()))
    if lo == hi and lo not in snap_slot:       # the common case: one epoch, not a snapshot
        return
    if lo == hi and not host_done.any():       # every model at this snapshot: one copy
        snaps[snap_slot[lo]].copy_(live.flat)
        return
    at = [(k, snap_slot[e]) for k, e in enumerate(host_epoch.tolist())
          if e in snap_slot and not host_done[k]]
    for s in sorted({s for _, s in at}):
        idx = torch.tensor([k for k, t in at if t == s], device=live.flat.device)
        snaps[s].index_copy_(0, idx, live.flat.index_select(0, idx))


@torch.no_grad()
def finish_attempts(live: CohortState, ks: list[int], cfg: RunConfig, attempts: Sequence[int],
                    seeds: Sequence[int], snaps: Tensor | None) -> list[FinishedAttempt]:
    """Copy the ended attempts of models ``ks`` to the host (one transfer)."""
    idx = torch.tensor(ks, device=live.flat.device)
    keep_best = live.plateau.best_epoch[idx] >= 0 if cfg.stopping.restore_best else \
        torch.zeros(len(ks), dtype=torch.bool, device=idx.device)
    kept = torch.where(keep_best.unsqueeze(-1), live.best[idx], live.flat[idx])
    rows = torch.stack([live.init[idx], kept, live.flat[idx]]).cpu()      # [3, len, P]
    info = torch.stack([live.end_code[idx], live.epoch[idx] + 1,
                        live.plateau.best_epoch[idx]]).tolist()
    best_values = live.plateau.best[idx].tolist()
    snap_rows = snaps[:, idx].cpu() if snaps is not None else None       # [S, len, P]
    return [FinishedAttempt(model=k, attempt=attempts[k], seed=seeds[i],
                            end_reason=stopping.reason_of(info[0][i]), epochs=info[1][i],
                            best_epoch=info[2][i], best_value=best_values[i],
                            init=rows[0, i], kept=rows[1, i], last=rows[2, i],
                            snapshots=None if snap_rows is None else snap_rows[:, i])
            for i, k in enumerate(ks)]


@torch.no_grad()
def restart_rows(live: CohortState, ks: list[int], rows: Tensor, opt: BatchedOptimizer) -> None:
    """Start models ``ks`` afresh from ``rows [len, P]``: params, optimizer, stopping."""
    idx = torch.tensor(ks, device=live.flat.device)
    rows = rows.to(live.flat.device)
    live.forward = None                      # made with the old rows
    for t in (live.flat, live.init, live.best):
        t.index_copy_(0, idx, rows)
    mask = torch.zeros_like(live.active).index_fill_(0, idx, True)        # [K]
    live.opt_state = opt.reset(live.opt_state, mask)
    fresh = stopping.init_batched(len(mask), mask.device)
    live.plateau = stopping.BatchedPlateauState(
        *(torch.where(mask, f, s) for f, s in zip((fresh.best, fresh.best_epoch, fresh.since),
                                                    (live.plateau.best, live.plateau.best_epoch,
                                                     live.plateau.since))))
    if live.lr_plateau is not None:
        live.lr_plateau = plateau_reset(live.lr_plateau, mask)
    live.epoch = live.epoch.masked_fill(mask, 0)
    live.end_code = live.end_code.masked_fill(mask, 0)
    live.active = live.active | mask
