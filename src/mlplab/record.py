"""What an engine hands the store when a run is finished: plain records, no I/O.

Both engines (one model, a cohort) and the user-loop :class:`~mlplab.probe.user.Probe`
produce a :class:`RunRecord`; :meth:`mlplab.store.store.Store.write_run` persists it.
Each makes its attempts with :func:`attempt_record`, which also files the attempt's final
metrics in the run's log, so the three agree on what an ended attempt holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlplab.metrics import FINAL_METRICS, MetricsLog

if TYPE_CHECKING:
    import torch


@dataclass
class AttemptRecord:
    """One network trained from one initialisation."""

    attempt: int
    seed: int
    end_reason: str                 # plateau, diverged, target, max_epochs (or "closed" for a Probe)
    epochs: int                     # epochs run
    steps: int                      # optimizer steps taken
    best_epoch: int                 # epoch of the best monitored value (-1: none)
    best_value: float               # best monitored value
    val_loss: float = math.nan      # at the kept weights (best epoch if restore_best)
    val_acc: float = math.nan
    test_loss: float = math.nan
    test_acc: float = math.nan
    train_loss: float = math.nan
    target_met: bool = False
    wall_time: float = 0.0
    init_state: dict[str, "torch.Tensor"] = field(default_factory=dict)
    best_state: dict[str, "torch.Tensor"] = field(default_factory=dict)
    last_state: dict[str, "torch.Tensor"] = field(default_factory=dict)
    boundary: dict[str, "torch.Tensor"] | None = None   # see mlplab.model.boundary


# what an attempt reports at its kept weights: AttemptRecord's fields of these names
FINAL_FIELDS = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


def attempt_record(log: MetricsLog, *, attempt: int, seed: int, end_reason: str, epochs: int,
                   steps: int, best_epoch: int, best_value: float, final: Mapping[str, float],
                   target_met: bool, wall_time: float, init_state: dict[str, "torch.Tensor"],
                   best_state: dict[str, "torch.Tensor"], last_state: dict[str, "torch.Tensor"],
                   boundary: dict[str, "torch.Tensor"] | None = None) -> AttemptRecord:
    """The record of an ended attempt. ``final``: its metrics at the kept weights, some of
    :data:`FINAL_FIELDS` (those missing are NaN); the test metrics among them are filed in
    ``log`` too (scope ``final``, at the attempt's last step and epoch).

    >>> log = MetricsLog()
    >>> rec = attempt_record(log, attempt=0, seed=1, end_reason="max_epochs", epochs=2,
    ...                      steps=4, best_epoch=1, best_value=0.5,
    ...                      final={"val_loss": 0.5, "test_loss": 0.6}, target_met=False,
    ...                      wall_time=0.1, init_state={}, best_state={}, last_state={})
    >>> rec.val_loss, math.isnan(rec.val_acc), log.to_frame()[["step", "metric"]].values.tolist()
    (0.5, True, [[4, 'test_loss']])
    """
    unknown = set(final) - set(FINAL_FIELDS)
    if unknown:
        raise ValueError(f"attempt_record: final metrics {sorted(unknown)} are not among "
                         f"{FINAL_FIELDS}")
    for metric in FINAL_METRICS:
        if metric in final:
            log.add(attempt, steps, epochs - 1, "final", "", metric, final[metric])
    return AttemptRecord(attempt=attempt, seed=seed, end_reason=end_reason, epochs=epochs,
                         steps=steps, best_epoch=best_epoch, best_value=best_value,
                         target_met=target_met, wall_time=wall_time, init_state=init_state,
                         best_state=best_state, last_state=last_state, boundary=boundary,
                         **{m: final.get(m, math.nan) for m in FINAL_FIELDS})


@dataclass
class RunRecord:
    """A finished run: its resolved configuration, attempts and measurements."""

    run_id: str
    name: str
    config: dict[str, Any]          # the resolved config (mlplab.config.to_dict)
    attempts: list[AttemptRecord]
    best_attempt: int
    metrics: MetricsLog
    info: dict[str, Any]            # head, layer names, classes, features, monitor, ...
    wall_time: float = 0.0
    source: str = "engine"          # engine, cohort, probe

    @property
    def best(self) -> AttemptRecord:
        return self.attempts[self.best_attempt]


def best_attempt_index(attempts: list[AttemptRecord], mode: str) -> int:
    """The attempt with the best monitored value (non-finite values rank last)."""
    def key(a: AttemptRecord) -> float:
        v = a.best_value
        if not math.isfinite(v):
            return math.inf
        return v if mode == "min" else -v

    return min(range(len(attempts)), key=lambda i: key(attempts[i]))


def improving_restarts(best_values: Sequence[float], mode: str) -> int:
    """How many restarts (attempts after the first) ended better than every attempt
    before them: the restarts that paid, as against all restarts (``len - 1``).

    >>> improving_restarts([0.30, 0.10, 0.20, 0.05], "min"), improving_restarts([0.9, 0.8], "max")
    (2, 0)
    >>> improving_restarts([float("nan"), 0.5], "min")
    1
    """
    best, improved = math.nan, 0
    for i, v in enumerate(best_values):       # a finite attempt after a diverged one improved
        if math.isfinite(v) and (math.isnan(best) or (v < best if mode == "min" else v > best)):
            improved += i > 0
            best = v
    return improved
