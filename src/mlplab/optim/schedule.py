"""Learning-rate schedules, per epoch, as pure functions of the epoch and a small state.

The same rules serve the one-model engine and the cohort: the closed-form schedules are
:func:`lr_scale` of the epoch; reduce-on-plateau keeps a :class:`PlateauLRState` of
``[K]`` tensors, one row per model (the one-model engine's K is 1), and
:func:`plateau_step` is its one rule.

>>> from mlplab.config import ScheduleConfig
>>> lr_scale(ScheduleConfig(name="step", step_size=10, gamma=0.5), epoch=25, epochs=100)
0.25
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from mlplab.config import ScheduleConfig

# a val loss counts as better when below best * (1 - PLATEAU_THRESHOLD), the relative
# threshold of torch.optim.lr_scheduler.ReduceLROnPlateau's default
PLATEAU_THRESHOLD = 1e-4


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


class PlateauLRState(NamedTuple):
    """reduce-on-plateau for K models: best val loss, epochs since it improved, current
    multiplier of the base lr."""

    best: torch.Tensor     # [K] float64, inf before the first epoch
    since: torch.Tensor    # [K] long
    scale: torch.Tensor    # [K] float64


def plateau_init(k: int, device: torch.device | str = "cpu") -> PlateauLRState:
    """The state of K models before their first epoch."""
    return PlateauLRState(torch.full((k,), math.inf, dtype=torch.float64, device=device),
                          torch.zeros(k, dtype=torch.long, device=device),
                          torch.ones(k, dtype=torch.float64, device=device))


def plateau_floor(cfg: ScheduleConfig, base_lr: torch.Tensor) -> torch.Tensor:
    """The least multiplier, ``min_lr / base_lr`` (0 where the base lr is 0): ``[K]``."""
    return torch.where(base_lr > 0, cfg.min_lr / base_lr, 0.0)


def plateau_step(state: PlateauLRState, val_loss: torch.Tensor, cfg: ScheduleConfig,
                 floor: torch.Tensor, active: torch.Tensor | None = None) -> PlateauLRState:
    """Fold one epoch's val loss ``[K]`` in; cut the lr by ``factor`` (not below ``floor``)
    after ``patience`` epochs without improvement, as ``ReduceLROnPlateau``. Models where
    ``active`` (``[K]`` bool) is False keep their state. No host sync.

    >>> from mlplab.config import ScheduleConfig
    >>> cfg = ScheduleConfig(name="plateau", patience=1, factor=0.5)
    >>> s = plateau_init(1)
    >>> for v in [1.0, 1.0, 1.0]:
    ...     s = plateau_step(s, torch.tensor([v]), cfg, torch.zeros(1))
    >>> s.scale.tolist(), s.since.tolist()
    ([0.5], [0])
    """
    best, since, scale = state
    val = val_loss.to(torch.float64)
    better = val < best * (1 - PLATEAU_THRESHOLD)
    new_since = torch.where(better, 0, since + 1)
    cut = ~better & (new_since > cfg.patience)
    new = PlateauLRState(torch.where(better, val, best), torch.where(cut, 0, new_since),
                         torch.where(cut, torch.maximum(scale * cfg.factor, floor), scale))
    if active is None:
        return new
    return PlateauLRState(*(torch.where(active, n, o) for n, o in zip(new, state)))


def plateau_reset(state: PlateauLRState, mask: torch.Tensor) -> PlateauLRState:
    """The state with the models where ``mask`` (``[K]`` bool) holds set back to
    :func:`plateau_init`'s (a restart)."""
    return PlateauLRState(state.best.masked_fill(mask, math.inf),
                          state.since.masked_fill(mask, 0), state.scale.masked_fill(mask, 1.0))
