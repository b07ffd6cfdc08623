"""What the index says of a run and of each of its attempts (one row each), as
:meth:`mlplab.store.store.Store.runs` and :meth:`~mlplab.store.store.Store.attempts` return them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AttemptInfo:
    run_id: str
    attempt: int
    seed: int
    end_reason: str
    epochs: int
    steps: int
    best_epoch: int
    best_value: float
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    train_loss: float
    target_met: bool
    wall_time: float


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    sweep_id: str | None
    name: str
    config_hash: str
    status: str
    source: str
    seed: int
    created: float
    finished: float | None
    wall_time: float | None
    best_attempt: int | None
    n_attempts: int | None
    restarts: int | None
    end_reason: str | None
    target_met: bool | None
    epochs: int | None
    best_value: float | None
    val_loss: float | None
    val_acc: float | None
    test_loss: float | None
    test_acc: float | None
    train_loss: float | None
    error: str | None
    summary: dict[str, Any]
    config: dict[str, Any]
