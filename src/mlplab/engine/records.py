"""The run records of a cohort, made once at the end from what it recorded.

:func:`build_records` turns the :class:`~mlplab.engine.trace.Trace` (step and activation
rows, epoch values), the :class:`~mlplab.engine.trace.Timeline` (each model's attempt and
epoch) and the finished attempts into one :class:`~mlplab.record.RunRecord` per model, in
the schema of :mod:`mlplab.engine.reference`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mlplab.config import RunConfig, to_dict
from mlplab.data import Dataset
from mlplab.metrics import EPOCH_METRICS, MetricsLog
from mlplab.model import boundary
from mlplab.model.mlp import Head
from mlplab.model.stacked import StackedMLP, evaluate, layers, state_of
from mlplab.record import RunRecord, attempt_record, best_attempt_index
from . import stopping
from .reference import Tensors, resolved_config, run_info
from .trace import FinishedAttempt, Timeline, Trace


@dataclass(frozen=True)
class _Series:
    """Where each model's records of one scope are: ``[K, S]`` arrays, model-major, or
    ``[1, S]`` when every model was in the same attempt and epoch throughout (one set of
    columns, shared by every model's records)."""

    keep: np.ndarray      # bool: this model recorded at this row
    attempt: np.ndarray   # int32
    step: np.ndarray      # int64, step within the attempt
    epoch: np.ndarray     # int32

    def of(self, k: int) -> tuple[slice | np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Model k's row selector (a slice when it kept every row) and its columns."""
        k = k if len(self.keep) > 1 else 0
        rows: slice | np.ndarray = slice(None) if self.keep[k].all() else \
            np.flatnonzero(self.keep[k])
        return rows, self.attempt[k, rows], self.step[k, rows], self.epoch[k, rows]


def _series(cohort_steps: np.ndarray, every: int, att: np.ndarray, ep: np.ndarray, spe: int,
            active: np.ndarray, epoch_scope: bool = False) -> _Series:
    """Attempt, step and epoch of every model at each recorded cohort step (or, with
    ``epoch_scope``, at the end of each cohort epoch), and whether it was recorded;
    ``att, ep [E, K]``: the :class:`Timeline`'s attempts and epochs. Where they and
    ``active [E, K]`` are alike for every model, the columns are computed once, ``[1, S]``."""
    if all((x == x[:, :1]).all() for x in (att, ep, active)):
        att, ep, active = att[:, :1], ep[:, :1], active[:, :1]
    if epoch_scope:
        keep, e, step = active, slice(None), (ep + 1) * spe
    else:
        e, j = cohort_steps // spe, cohort_steps % spe                      # [S]
        step = ep[e] * spe + j[:, None]                                      # [S, K]
        keep = active[e] & (step % every == 0)
    t = lambda x: np.ascontiguousarray(x.T)  # noqa: E731   [S, K] -> [K, S]
    return _Series(t(keep), t(att[e].astype(np.int32)), t(step.astype(np.int64)),
                   t(ep[e].astype(np.int32)))


def _states(spec: StackedMLP, rows: Tensor) -> list[dict[str, Tensor]]:
    """``state_of`` of each of ``rows [R, P]``: one copy per layer tensor for all R rows,
    each row's tensors contiguous views into it (not one copy per row and tensor)."""
    stacked = state_of(spec, rows)                                   # {key: [R, ...]}
    return [{key: t[i] for key, t in stacked.items()} for i in range(len(rows))]


def _boundaries(finished: list[FinishedAttempt], snap_epochs: list[int],
                grid: boundary.BoundaryGrid, spec: StackedMLP) -> list[dict[str, Tensor]]:
    """Decision-boundary snapshots of each attempt: its parameters at the epochs the engine
    snapshots (the listed epochs before the last, and the last), as :func:`boundary.pack`
    stores them (the probabilities on the grid are computed when a figure needs them)."""
    slot = {e: s for s, e in enumerate(snap_epochs)}
    epochs_of = [[e for e in snap_epochs if e < f.epochs - 1] + [f.epochs - 1] for f in finished]
    n_snap = len(snap_epochs)
    # every attempt's snapshots, then every attempt's last parameters, as one [A*S + A, P]
    stored = torch.cat([torch.stack([f.snapshots for f in finished]).flatten(0, 1)
                        if n_snap and finished[0].snapshots is not None else
                        finished[0].last.new_empty(0, finished[0].last.shape[-1]),
                        torch.stack([f.last for f in finished])])
    last_at = len(stored) - len(finished)
    pick = [i * n_snap + slot[e] if e != f.epochs - 1 else last_at + i
            for i, (f, es) in enumerate(zip(finished, epochs_of)) for e in es]
    # every attempt's snapshot states as one tensor per layer key, [R, ...]; each attempt
    # then takes its consecutive rows (contiguous views, one split per key)
    states = state_of(spec, stored.index_select(0, torch.tensor(pick, dtype=torch.long)))
    sizes = [len(es) for es in epochs_of]
    parts = {k: t.split(sizes) for k, t in states.items()}
    # the epochs as a tensor, one per distinct list (not one per attempt)
    epochs_t = {es: torch.tensor(es, dtype=torch.int64) for es in set(map(tuple, epochs_of))}
    return [boundary.pack(grid, epochs_t[tuple(es)], {k: p[i] for k, p in parts.items()})
            for i, es in enumerate(epochs_of)]


@torch.no_grad()
def build_records(configs: Sequence[RunConfig], run_ids: Sequence[str] | None,
                  finished: list[FinishedAttempt], trace: Trace, timeline: Timeline,
                  head: Head, data: Dataset, tensors: Tensors, grid: boundary.BoundaryGrid | None,
                  lr_scale: np.ndarray, loop_time: float, start: float,
                  curvature: tuple[list[int], np.ndarray, list[str]] | None = None
                  ) -> list[RunRecord]:
    """One run record per config from what the cohort recorded (``lr_scale [E, K]``: the
    lr multiplier each model used at each cohort epoch; ``curvature``: the cohort steps
    the curvature was measured at, the values ``[S, K, M]`` and the metric names)."""
    cfg, spec, spe = configs[0], trace.spec, timeline.spe
    finished = sorted(finished, key=lambda f: (f.model, f.attempt))
    like = tensors.x_train
    kept = torch.stack([f.kept for f in finished]).to(like.device)           # [R, P]
    final = [evaluate(spec, layers(spec, kept), x, y, head) for x, y in
             ((tensors.x_train, tensors.y_train), (tensors.x_val, tensors.y_val),
              (tensors.x_test, tensors.y_test))]
    (tr_loss, _), (va_loss, va_acc), (te_loss, te_acc) = [(a.tolist(), b.tolist())
                                                           for a, b in final]
    snap_epochs = boundary.snapshot_epochs(cfg.train.epochs, cfg.probe.boundary_snapshots)
    bounds = _boundaries(finished, snap_epochs, grid, spec) if grid is not None \
        else [None] * len(finished)
    inits, bests, lasts = (_states(spec, torch.stack([getattr(f, which) for f in finished]))
                           for which in ("init", "kept", "last"))
    k_models, every, act_every = len(configs), timeline.every, timeline.act_every
    vals, active, lr_plateau = trace.epoch_arrays()                          # [E, 4, K], [E, K]
    base = np.array([c.train.lr for c in configs], dtype=np.float64)
    lr = lr_plateau if lr_plateau is not None else base * lr_scale           # [E, K]
    steps, act_steps = np.asarray(trace.steps, np.int64), np.asarray(trace.act_steps, np.int64)
    att, ep = np.stack(timeline.attempt), np.stack(timeline.epoch)           # [E, K]
    scopes = []      # (scope, where, values [S, K, M], columns)
    scopes.append(("step", _series(steps, every, att, ep, spe, active),
                   trace.step_rows.array(), trace.step_columns()))
    scopes.append(("step", scopes[0][1], lr[steps // spe][:, :, None], [("", "lr")]))
    scopes.append(("act", _series(act_steps, act_every, att, ep, spe, active),
                   trace.act_rows.array(), trace.act_columns()))
    scopes.append(("epoch", _series(steps, 1, att, ep, spe, active, epoch_scope=True),
                   vals.transpose(0, 2, 1), [("", m) for m in EPOCH_METRICS]))  # [E, K, 4]
    if curvature is not None:
        c_steps, c_values, c_names = curvature
        scopes.append(("step", _series(np.asarray(c_steps, np.int64), cfg.probe.curvature_every,
                                       att, ep, spe, active),
                       c_values, [("", m) for m in c_names]))
    scopes = [sc for sc in scopes if len(sc[2])]     # none recorded (no probe): no block
    total_epochs = max(1, len(timeline.epoch))
    wall = time.perf_counter() - start
    attempts_of: list[list[int]] = [[] for _ in configs]    # indices into finished, by model
    for i, f in enumerate(finished):
        attempts_of[f.model].append(i)
    records = []
    for k, c in enumerate(configs):
        log = MetricsLog()
        for scope, where, values, columns in scopes:
            rows, a, s, es = where.of(k)
            log.add_block(a, s, es, scope, columns, values[rows, k].T, copy=False)  # [M, S_k]
        attempts = []
        for i in attempts_of[k]:
            f = finished[i]
            final = {"train_loss": tr_loss[i], "val_loss": va_loss[i], "val_acc": va_acc[i],
                     "test_loss": te_loss[i], "test_acc": te_acc[i]}
            attempts.append(attempt_record(
                log, attempt=f.attempt, seed=f.seed, end_reason=f.end_reason, epochs=f.epochs,
                steps=f.epochs * spe, best_epoch=f.best_epoch, best_value=f.best_value,
                final=final, target_met=stopping.target_met(f.best_value, c.stopping),
                wall_time=loop_time * f.epochs / total_epochs, init_state=inits[i],
                best_state=bests[i], last_state=lasts[i],
                boundary=bounds[i]))
        records.append(RunRecord(
            run_id=run_ids[k] if run_ids is not None else c.name, name=c.name,
            config=to_dict(resolved_config(c, head)), attempts=attempts,
            best_attempt=best_attempt_index(attempts, stopping.monitor_mode(c.stopping)),
            metrics=log, info=run_info(c, data, head), wall_time=wall, source="cohort"))
    return records
