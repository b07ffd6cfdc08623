"""What an engine hands the store when a run is finished: plain records, no I/O.

Both engines (one model, a cohort) and the user-loop :class:`~mlplab.probe.norms.Probe`
produce a :class:`RunRecord`; :meth:`mlplab.store.store.Store.write_run` persists it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplab.metrics import MetricsLog

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
