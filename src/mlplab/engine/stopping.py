"""Early stopping: plateau detection, targets and why an attempt ended (SPEC §6).

One rule, in two forms with the same semantics: :class:`PlateauState` with
:func:`observe` for one model (floats), and :func:`observe_batched` for a cohort
(``[K]`` tensors, no host sync). Why an attempt ends is one table, :data:`END_REASONS`,
in precedence order; :func:`end_reason` and the cohort's :func:`end_codes` both take the
first reason that holds.

>>> from mlplab.config import RunConfig, StoppingConfig
>>> cfg = StoppingConfig(patience=2, min_delta=0.1)
>>> s = PlateauState()
>>> for epoch, v in enumerate([1.0, 0.95, 0.97, 0.99]):
...     s = observe(s, epoch, v, cfg)
>>> s.best, s.best_epoch, is_plateau(s, cfg)
(1.0, 0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mlplab.config import RunConfig, StoppingConfig

if TYPE_CHECKING:
    import torch

    from mlplab.data import Dataset

# Why an attempt ends, in precedence order: when several hold after one epoch the first
# wins. A cohort keeps them on the device as codes: 1 + the index here, 0 while training.
END_REASONS = ("diverged", "target", "plateau", "max_epochs")
# the reasons after which a fresh initialisation may follow
RESTART_REASONS = ("plateau", "diverged")


def auto_target(cfg: RunConfig, data: "Dataset") -> float | None:
    """What ``stopping.target: auto`` means for ``cfg`` on ``data``: with an accuracy
    monitor on generated data, the data's Bayes limit less the binomial noise of the
    monitored split (its 95 % half-width on that many points) and less the limit's own
    error, so an attempt within noise of the best any classifier can do has met its target
    and is not restarted; with a loss monitor, or the user's own data, no target.

    >>> from mlplab.config import from_dict
    >>> from mlplab.data import load_data
    >>> cfg = from_dict({"data": {"name": "gaussians", "k": 2, "spread": 1.0, "n": 1000},
    ...                  "stopping": {"monitor": "val_acc"}})
    >>> round(auto_target(cfg, load_data(cfg.data)), 3)       # Bayes 0.841, 200 val points
    0.79
    >>> auto_target(from_dict({"data": {"name": "xor"}}), load_data(cfg.data)) is None
    True
    """
    from mlplab.stats import accuracy_noise, data_bayes_limit

    monitor = cfg.stopping.monitor
    limit = data_bayes_limit(cfg.data) if monitor.endswith("acc") else None
    if limit is None:
        return None
    m = len(data.y_train) if monitor == "train_acc" or data.val_is_train else len(data.y_val)
    noise = accuracy_noise(limit.accuracy, m).halfwidth if m > 0 else 0.0
    return max(limit.accuracy - noise - 1.96 * limit.stderr, 0.0)


def sets_target(cfg: RunConfig) -> bool:
    """Whether runs of ``cfg`` train towards a target: a number, or ``auto`` with an
    accuracy monitor on generated data (what :func:`auto_target` resolves to a number).

    >>> from mlplab.config import from_dict
    >>> sets_target(from_dict({})), sets_target(from_dict({"stopping": {"monitor": "val_acc"}}))
    (False, True)
    """
    from mlplab.data import GENERATORS

    if cfg.stopping.target == "auto":
        return cfg.stopping.monitor.endswith("acc") and cfg.data.name in GENERATORS
    return has_target(cfg.stopping)


def has_target(cfg: StoppingConfig) -> bool:
    """Whether there is a number to reach (None, and ``auto`` not yet resolved by
    :func:`resolve_target`, are none)."""
    return isinstance(cfg.target, (int, float)) and not isinstance(cfg.target, bool)


def resolve_target(cfg: RunConfig, data: "Dataset") -> RunConfig:
    """``cfg`` with ``stopping.target: auto`` replaced by :func:`auto_target` (a number or
    None); what both engines train with and store. Other targets are kept."""
    if cfg.stopping.target != "auto":
        return cfg
    return replace(cfg, stopping=replace(cfg.stopping, target=auto_target(cfg, data)))


def reason_of(code: int) -> str:
    """The reason a cohort's end code stands for (``""``: still training).

    >>> [reason_of(c) for c in range(len(END_REASONS) + 1)]
    ['', 'diverged', 'target', 'plateau', 'max_epochs']
    """
    return END_REASONS[code - 1] if code > 0 else ""


def monitor_mode(cfg: StoppingConfig) -> str:
    """``min`` or ``max``: ``auto`` minimises losses and maximises accuracies."""
    if cfg.mode != "auto":
        return cfg.mode
    return "max" if cfg.monitor.endswith("acc") else "min"


@dataclass(frozen=True)
class PlateauState:
    """Best monitored value so far, the epoch it was seen and epochs since then."""

    best: float = math.nan
    best_epoch: int = -1
    since: int = 0


def _improves(value: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(best):
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


def observe(state: PlateauState, epoch: int, value: float, cfg: StoppingConfig) -> PlateauState:
    """Fold one epoch's monitored value into the state.

    An epoch that first meets ``target`` counts as the best even when it improves by
    less than ``min_delta``, so the attempt that ends on ``target`` keeps those weights.
    """
    first_hit = target_met(value, cfg) and not target_met(state.best, cfg)
    if first_hit or _improves(value, state.best, monitor_mode(cfg), cfg.min_delta):
        return PlateauState(value, epoch, 0)
    return PlateauState(state.best, state.best_epoch, state.since + 1)


def is_plateau(state: "PlateauState | BatchedPlateauState", cfg: StoppingConfig
               ) -> "bool | torch.Tensor":
    """No improvement by ``min_delta`` for ``patience`` epochs (for K models: a ``[K]``
    bool mask)."""
    return state.since >= cfg.patience


# Finiteness as ``x - x``: 0 where x is finite, NaN at NaN or ±inf. One form for a float
# and a [K] tensor (there two kernels, where torch.isfinite runs four).


def diverged(loss: "float | torch.Tensor") -> "bool | torch.Tensor":
    """The training loss is NaN or ±inf (for K models: a ``[K]`` bool mask).

    >>> diverged(1.0), diverged(math.inf), diverged(math.nan)
    (False, True, True)
    """
    return (loss - loss) != 0


def target_met(value: "float | torch.Tensor", cfg: StoppingConfig) -> "bool | torch.Tensor":
    """Whether ``value`` of the monitored metric reaches ``cfg.target`` (for K models, a
    ``[K]`` bool mask: :func:`target_met_batched` also where there is no target)."""
    if not has_target(cfg):
        return False
    met = value <= cfg.target if monitor_mode(cfg) == "min" else value >= cfg.target
    return met & ((value - value) == 0)


def end_reason(value: float, loss: float, state: PlateauState, cfg: StoppingConfig,
               epoch: int, epochs: int) -> str | None:
    """Why the attempt ends after ``epoch`` (0-based), or None to go on."""
    holds = {"diverged": diverged(loss), "target": target_met(value, cfg),
             "plateau": is_plateau(state, cfg), "max_epochs": epoch + 1 >= epochs}
    return next((r for r in END_REASONS if holds[r]), None)


def should_restart(reason: str, attempt: int, cfg: StoppingConfig) -> bool:
    """A fresh initialisation follows a plateau or divergence while restarts remain."""
    return reason in RESTART_REASONS and attempt < cfg.restarts


@dataclass(frozen=True)
class BatchedPlateauState:
    """:class:`PlateauState` for K models: ``[K]`` tensors."""

    best: "torch.Tensor"         # [K] float, nan before the first observation
    best_epoch: "torch.Tensor"   # [K] long
    since: "torch.Tensor"        # [K] long


def init_batched(k: int, device: "torch.device | str" = "cpu") -> BatchedPlateauState:
    import torch

    return BatchedPlateauState(torch.full((k,), math.nan, dtype=torch.float64, device=device),
                               torch.full((k,), -1, dtype=torch.long, device=device),
                               torch.zeros(k, dtype=torch.long, device=device))


def observe_batched(state: BatchedPlateauState, epoch: "torch.Tensor", value: "torch.Tensor",
                    cfg: StoppingConfig, active: "torch.Tensor") -> BatchedPlateauState:
    """Vectorised :func:`observe`; models where ``active`` is False keep their state.

    ``epoch``: ``[K]`` long (per-model epoch within its attempt); ``value``: ``[K]``.
    """
    return observe_batched_mask(state, epoch, value, cfg, active)[0]


def observe_batched_mask(state: BatchedPlateauState, epoch: "torch.Tensor",
                         value: "torch.Tensor", cfg: StoppingConfig, active: "torch.Tensor"
                         ) -> tuple[BatchedPlateauState, "torch.Tensor"]:
    """:func:`observe_batched` and the ``[K]`` bool mask of models whose best this epoch
    is (active and improved): a few fused ops, as the cohort runs it once an epoch."""
    import torch

    value = value.to(state.best.dtype)
    # improvement by min_delta; before the first observation (best NaN) any non-NaN value
    if monitor_mode(cfg) == "min":
        beats = value < state.best - cfg.min_delta
    else:
        beats = value > state.best + cfg.min_delta
    better = torch.where(torch.isnan(state.best), value == value, beats)
    if has_target(cfg):
        better |= target_met_batched(value, cfg) & ~target_met_batched(state.best, cfg)
    better &= active
    # since: 0 where better, +1 where active, unchanged where inactive
    since = (state.since + active).masked_fill_(better, 0)
    return BatchedPlateauState(torch.where(better, value, state.best),
                               torch.where(better, epoch, state.best_epoch), since), better


def end_codes(holds: dict[str, "torch.Tensor | None"]) -> "torch.Tensor":
    """:func:`end_reason` for K models: ``holds`` maps each reason of :data:`END_REASONS` to
    the ``[K]`` bool mask of models where it holds (None or absent: holds nowhere, a check
    the caller knows cannot hold yet; at least one mask given). Returns the ``[K]`` long
    codes (1 + the reason's index, 0: going on), the first reason that holds winning.

    >>> import torch
    >>> end_codes({"target": torch.tensor([True, False, False]),
    ...            "max_epochs": torch.tensor([True, True, False])}).tolist()
    [2, 4, 0]
    """
    import torch

    code = None
    # marked from the last reason to the first, so that earlier reasons overwrite later ones
    for i in range(len(END_REASONS), 0, -1):
        where = holds.get(END_REASONS[i - 1])
        if where is None:
            continue
        code = torch.where(where, i, 0) if code is None else code.masked_fill_(where, i)
    if code is None:
        raise ValueError("end_codes: no reason's mask given")
    return code


def target_met_batched(value: "torch.Tensor", cfg: StoppingConfig) -> "torch.Tensor":
    """:func:`target_met` of ``[K]`` values, a ``[K]`` bool mask also without a target."""
    import torch

    if not has_target(cfg):
        return torch.zeros_like(value, dtype=torch.bool)
    return target_met(value, cfg)
