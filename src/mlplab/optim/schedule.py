"""Learning-rate schedules, per epoch, as pure functions of the epoch and a small state.

The same rules serve the one-model engine and the cohort (where ``scale`` may be a
``[K]`` tensor); ``reduce-on-plateau`` keeps :class:`PlateauLRState`.

>>> from mlplab.config import ScheduleConfig
>>> lr_scale(ScheduleConfig(name="step", step_size=10, gamma=0.5), epoch=25, epochs=100)
0.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlplab.config import ScheduleConfig


def lr_scale(cfg: ScheduleConfig, epoch: int, epochs: int, base_lr: float = 1.0) -> float:
    """Multiplier of the base lr at ``epoch`` (0-based) for the closed-form schedules."""
    if cfg.name == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.name == "exponential":
        return cfg.gamma ** epoch
    if cfg.name == "cosine":
        floor = cfg.min_lr / base_lr if base_lr > 0 else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))
    return 1.0


@dataclass(frozen=True)
class PlateauLRState:
    """reduce-on-plateau: best val loss, epochs since it improved, current multiplier."""

    best: float = math.inf
    since: int = 0
    scale: float = 1.0


def plateau_step(state: PlateauLRState, val_loss: float, cfg: ScheduleConfig,
                 base_lr: float) -> PlateauLRState:
    """Fold one epoch's val loss in; cut the lr by ``factor`` after ``patience`` bad epochs
    (relative threshold 1e-4, like ``torch.optim.lr_scheduler.ReduceLROnPlateau``)."""
    if val_loss < state.best * (1 - 1e-4):
        return PlateauLRState(val_loss, 0, state.scale)
    since = state.since + 1
    if since > cfg.patience:
        floor = cfg.min_lr / base_lr if base_lr > 0 else 0.0
        return PlateauLRState(state.best, 0, max(state.scale * cfg.factor, floor))
    return PlateauLRState(state.best, since, state.scale)
