"""Figure data of the hyper-parameter importance chart: per swept key, and for the seed,
the share of a metric's variance that Optuna's fANOVA and PED-ANOVA give it
(:func:`mlplab.stats.importance.param_importances`).

The seed is one more factor, so the chart shows how much of the spread the
initialisation alone explains. The chart needs at least two swept keys (seed aside);
otherwise :attr:`ImportanceInfo.reason` says why there is none.

The evaluation takes seconds (minutes on ten thousand runs), so given the store's folder
it is computed once per state of the finished runs and kept in the store
(:mod:`mlplab.store.cache`), keyed by the digest of exactly what it depends on: the runs'
ids, factor values and metric values, the evaluators' settings and :data:`VERSION`. The
report written after a sweep fills it; the dashboard (which never writes the store) and
the notebook read it.

>>> from types import SimpleNamespace as Run
>>> runs = [Run(config={"train": {"lr": lr, "seed": 0}}, val_loss=0.2) for lr in (0.1, 0.3)]
>>> info = importance_info(runs, "val_loss")
>>> info.shares, info.reason
((), 'only train.lr varies among the finished runs; importance needs at least two swept keys')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .data_configs import flatten, metric_mode, run_metric, varying_keys

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo

SEED_FACTOR = "train.seed"
MIN_KEYS = 2
MIN_RUNS = 8
VERSION = 1            # of the importance computation: a change here invalidates every cached entry
CACHE_KIND = "importance"


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


def importance_info(runs: Sequence["RunInfo"], metric: str, store_root: str | Path | None = None,
                    *, write: bool = True) -> ImportanceInfo:
    """The importance of each swept key and of the seed for ``metric`` (one of
    ``RUN_METRICS``) over the finished ``runs``; without a chart (empty ``shares``) when
    fewer than two keys vary, fewer than 8 runs have a finite value, or Optuna is missing.

    ``store_root``: the store the runs come from; the value is read from its cache when
    an entry for exactly these inputs is there, else computed and (unless ``write`` is
    False, as in the dashboard) stored for the next reader.
    """
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
    if len(kept) < MIN_RUNS:
        return ImportanceInfo(metric, tuple(factors), (), (), len(kept), dropped,
                              f"only {len(kept)} runs have a finite {metric}; importance needs"
                              f" {MIN_RUNS} or more")
    columns = {k: [flat[i].get(k) for i in kept] for k in factors}
    y = [values[i] for i in kept]
    minimize = metric_mode(metric) == "min"
    digest = None
    if store_root is not None:
        from mlplab.store.cache import digest_of, read_entry

        digest = digest_of(_inputs(metric, [runs[i].run_id for i in kept], columns, y, minimize,
                                   dropped))
        cached = _from_entry(read_entry(store_root, CACHE_KIND, digest), metric, factors,
                             len(kept), dropped)
        if cached is not None:
            return cached
    try:
        from mlplab.stats.importance import EVALUATORS, param_importances
        shares = param_importances(columns, y, minimize=minimize, unordered=[SEED_FACTOR])
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing not in ("optuna", "sklearn"):
            raise
        return ImportanceInfo(metric, tuple(factors), (), (), len(kept), dropped,
                              f"{'Optuna' if missing == 'optuna' else 'scikit-learn'} is not"
                              " installed (pip install 'mlplab[optuna]')")
    info = ImportanceInfo(metric, tuple(factors), EVALUATORS,
                          tuple(tuple(shares[e][k] for k in factors) for e in EVALUATORS),
                          len(kept), dropped)
    if digest is not None and write:
        from mlplab.store.cache import write_entry

        write_entry(store_root, CACHE_KIND, digest,
                    {"factors": list(info.factors), "evaluators": list(info.evaluators),
                     "shares": [list(row) for row in info.shares], "n_runs": info.n_runs,
                     "n_dropped": info.n_dropped})
    return info


def _inputs(metric: str, run_ids: list[str], columns: dict[str, list[Any]], y: list[float],
            minimize: bool, dropped: int) -> dict[str, Any]:
    """Everything the importance of these runs depends on, for its cache key: values as
    ``repr`` (exact for floats, and a 1 and a 1.0 stay apart as the evaluators keep them)."""
    from importlib.metadata import PackageNotFoundError, version

    from mlplab.stats import importance

    try:
        optuna = version("optuna")
    except PackageNotFoundError:
        optuna = None
    return {"version": VERSION, "metric": metric, "minimize": minimize, "run_ids": run_ids,
            "factors": {k: [repr(v) for v in col] for k, col in columns.items()},
            "values": [repr(float(v)) for v in y], "n_dropped": dropped,
            "unordered": [SEED_FACTOR], "evaluators": list(importance.EVALUATORS),
            "fanova_seed": importance.FANOVA_SEED, "max_categories": importance.MAX_CATEGORIES,
            "optuna": optuna}


def _from_entry(value: Any, metric: str, factors: list[str], n_runs: int,
                n_dropped: int) -> ImportanceInfo | None:
    """The cached importance, or None when the entry is missing or not what these inputs
    give (another shape, a share that is not a number between 0 and 1)."""
    from mlplab.stats.importance import EVALUATORS

    if not isinstance(value, dict):
        return None
    shares = value.get("shares")
    if not (value.get("factors") == factors and value.get("evaluators") == list(EVALUATORS)
            and value.get("n_runs") == n_runs and value.get("n_dropped") == n_dropped
            and isinstance(shares, list) and len(shares) == len(EVALUATORS)
            and all(isinstance(row, list) and len(row) == len(factors) for row in shares)
            and all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 <= s <= 1
                    for row in shares for s in row)):
        return None
    return ImportanceInfo(metric, tuple(factors), EVALUATORS,
                          tuple(tuple(float(s) for s in row) for row in shares), n_runs, n_dropped)


__all__ = ["ImportanceInfo", "importance_info", "SEED_FACTOR", "VERSION"]
