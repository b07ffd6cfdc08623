"""A run's attempts laid end to end: where each attempt starts on the all-attempts axes
(epochs and steps) and how it ended, for every figure of a run with restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from mlplab.store.info import AttemptInfo


@dataclass(frozen=True)
class AttemptSpan:
    """Where one attempt lies on the all-attempts axes and how it ended."""

    attempt: int
    start_epoch: int          # epochs trained by earlier attempts
    start_step: int           # steps taken by earlier attempts
    epochs: int
    steps: int
    end_reason: str           # plateau, diverged, target, max_epochs, ...
    best_epoch: int           # within the attempt (0-based; -1: none)
    best_value: float
    target_met: bool
    kept: bool                # the run's kept (best) attempt


def attempt_spans(frame: "pd.DataFrame", attempts: Sequence["AttemptInfo"],
                  best_attempt: int | None = None) -> tuple[AttemptSpan, ...]:
    """The attempts laid end to end; lengths from ``attempts``, else from the frame."""
    by_number = {a.attempt: a for a in attempts}
    numbers = sorted(set(by_number) | set(int(a) for a in frame["attempt"].unique()))
    spans, epoch0, step0 = [], 0, 0
    for n in numbers:
        rows = frame[frame["attempt"] == n]
        a = by_number.get(n)
        epochs = a.epochs if a is not None else (int(rows["epoch"].max()) + 1 if len(rows) else 0)
        steps = a.steps if a is not None else _steps_taken(rows)
        spans.append(AttemptSpan(
            attempt=n, start_epoch=epoch0, start_step=step0, epochs=epochs, steps=steps,
            end_reason=a.end_reason if a is not None else "",
            best_epoch=a.best_epoch if a is not None else -1,
            best_value=a.best_value if a is not None else math.nan,
            target_met=bool(a.target_met) if a is not None else False,
            kept=n == (best_attempt if best_attempt is not None else numbers[-1])))
        epoch0, step0 = epoch0 + epochs, step0 + steps
    return tuple(spans)


def _steps_taken(rows: "pd.DataFrame") -> int:
    """Steps of an attempt from its rows: step records are numbered from 0, epoch and
    final records carry the number of steps taken so far."""
    if not len(rows):
        return 0
    per_step = rows[rows["scope"].isin(["step", "act"])]["step"]
    after = rows[~rows["scope"].isin(["step", "act"])]["step"]
    return int(max(per_step.max() + 1 if len(per_step) else 0, after.max() if len(after) else 0))
