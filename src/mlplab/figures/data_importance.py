"""Figure data of the hyper-parameter importance chart: per swept key, and for the seed,
the share of a metric's variance that Optuna's fANOVA and PED-ANOVA give it
(:func:`mlplab.stats.importance.param_importances`).

The seed is one more factor, so the chart shows how much of the spread the
initialisation alone explains. The chart needs at least two swept keys (seed aside);
otherwise :attr:`ImportanceInfo.reason` says why there is none.

>>> from types import SimpleNamespace as Run
>>> runs = [Run(config={"train": {"lr": lr, "seed": 0}}, val_loss=0.2) for lr in (0.1, 0.3)]
>>> info = importance_info(runs, "val_loss")
>>> info.shares, info.reason
((), 'only train.lr varies among the finished runs; importance needs at least two swept keys')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .data_configs import flatten, metric_mode, run_metric, varying_keys

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo

SEED_FACTOR = "train.seed"
MIN_KEYS = 2


@dataclass(frozen=True)
class ImportanceInfo:
    """Each factor's share of the variance of ``metric`` over the runs, per evaluator."""

    metric: str
    factors: tuple[str, ...]                     # swept keys, then train.seed when it varies
    evaluators: tuple[str, ...]                  # e.g. ("fANOVA", "PED-ANOVA")
    shares: tuple[tuple[float, ...], ...]        # [evaluator][factor], each row sums to 1
    n_runs: int                                  # runs with a finite metric (the trials)
    n_dropped: int                               # finished runs left out: metric not finite
    reason: str = ""                             # why there is no chart ("" when there is one)

    def share(self, evaluator: str, factor: str) -> float:
        return self.shares[self.evaluators.index(evaluator)][self.factors.index(factor)]


def importance_info(runs: Sequence["RunInfo"], metric: str) -> ImportanceInfo:
    """The importance of each swept key and of the seed for ``metric`` (one of
    ``RUN_METRICS``) over the finished ``runs``; without a chart (empty ``shares``) when
    fewer than two keys vary, fewer than 8 runs have a finite value, or Optuna is missing."""
    runs = [r for r in runs if r.config]
    keys = varying_keys([r.config for r in runs])
    if len(keys) < MIN_KEYS:
        what = f"only {keys[0]} varies" if keys else "no key but the seed varies"
        return ImportanceInfo(metric, tuple(keys), (), (), 0, 0,
                              f"{what} among the finished runs; importance needs at least two"
                              " swept keys")
    flat = [flatten(r.config) for r in runs]
    factors = keys + ([SEED_FACTOR] if len({repr(f.get(SEED_FACTOR)) for f in flat}) > 1 else [])
    values = [run_metric(r, metric) for r in runs]
    kept = [i for i, v in enumerate(values) if math.isfinite(v)]
    dropped = len(runs) - len(kept)
    if len(kept) < 8:
        return ImportanceInfo(metric, tuple(factors), (), (), len(kept), dropped,
                              f"only {len(kept)} runs have a finite {metric}; importance needs"
                              " 8 or more")
    try:
        from mlplab.stats.importance import EVALUATORS, param_importances
        shares = param_importances({k: [flat[i].get(k) for i in kept] for k in factors},
                                   [values[i] for i in kept], minimize=metric_mode(metric) == "min",
                                   unordered=[SEED_FACTOR])
    except ImportError as e:
        if (e.name or "").split(".")[0] != "optuna":
            raise
        return ImportanceInfo(metric, tuple(factors), (), (), len(kept), dropped,
                              "Optuna is not installed (pip install 'mlplab[optuna]')")
    return ImportanceInfo(metric, tuple(factors), EVALUATORS,
                          tuple(tuple(shares[e][k] for k in factors) for e in EVALUATORS),
                          len(kept), dropped)


__all__ = ["ImportanceInfo", "importance_info", "SEED_FACTOR"]
