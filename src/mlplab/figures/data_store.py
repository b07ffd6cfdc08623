"""Figure data for a set of runs (a store, a sweep, a seed study): plain frozen records.

Works on any runs of a store, not only on sweeps: a *configuration* is a run's config
without its seed (``train.seed``) and name, so the seeds of one configuration give its
spread (:mod:`mlplab.figures.data_configs`). Metric vs hyper-parameter curves are in
:mod:`mlplab.figures.data_params`; here: optimizer × init over seeds, success rate, stages,
and the bundle the report draws. Each of them carries, per configuration, every seed's value,
a 95 % interval and whether it is tied with the figure's best
(:mod:`mlplab.figures.data_ties`), and, for an accuracy, the dataset's Bayes limit
(:mod:`mlplab.figures.data_limit`).

>>> flatten({"train": {"lr": 0.1, "seed": 0}, "model": {"hidden": [4]}})
{'train.lr': 0.1, 'train.seed': 0, 'model.hidden': (4,)}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from mlplab.stats import success_rate
from mlplab.stats.ties import ties_with_best

from .arrays import frozen_array
from .data_configs import RUN_METRICS as RUN_METRICS
from .data_configs import SEED_KEYS as SEED_KEYS
from .data_configs import config_id as config_id
from .data_configs import config_label as config_label
from .data_configs import flatten as flatten
from .data_configs import metric_mode as metric_mode
from .data_configs import quartiles
from .data_configs import run_metric as run_metric
from .data_configs import short_value
from .data_configs import varying_keys as varying_keys
from .data_limit import accuracy_limit, runs_bayes_limit
from .data_params import ParamCurveInfo, seed_of, store_param_curves
from .data_ties import median_intervals

if TYPE_CHECKING:
    from mlplab.stats import BayesLimit, Rate
    from mlplab.store.store import AttemptInfo, RunInfo, Store

# Bar charts show at most this many configurations (the best ones).
MAX_BARS = 30
# The comparison draws at most this many panels.
MAX_PANELS = 6


# ----------------------------------------------------------------------------- optimizer x init


@dataclass(frozen=True)
class ComparisonCurve:
    line: str                 # value of the line key (e.g. the optimizer)
    panel: str                # value of the panel key (e.g. the init)
    label: str                # what the line is: value, chosen configuration, seeds
    epochs: np.ndarray        # [E] 1..E
    median: np.ndarray        # [E] over seeds
    q25: np.ndarray           # [E]
    q75: np.ndarray           # [E]
    n_seeds: int
    n_bad: int                # seeds whose curve ended non-finite (diverged)
    seed: np.ndarray          # [S] train.seed of each run drawn
    per_seed: np.ndarray      # [S, E] each seed's curve (a stopped run keeps its last value)
    final: np.ndarray         # [S] each seed's value at the last epoch (nan: diverged)
    final_median: float       # median of the finite final values
    final_low: float          # its 95 % interval (mlplab.stats.summarize)
    final_high: float
    tied: bool                # final values not distinguishable from the best curve's
    best: bool                # the curve with the best final median


@dataclass(frozen=True)
class ComparisonInfo:
    """Per (line, panel) cell, e.g. (optimizer, init): the median and quartiles over seeds
    of a per-epoch metric of the first attempt, for the cell's best configuration."""

    metric: str
    line_key: str
    panel_key: str
    panels: tuple[str, ...]
    lines: tuple[str, ...]
    curves: tuple[ComparisonCurve, ...]
    several_configs: bool     # some cell held several configurations; its best was drawn
    bayes_limit: float | None = None   # the dataset's best possible accuracy (accuracy metrics)


def seed_matrix(curves: Sequence[np.ndarray]) -> np.ndarray:
    """``[R, E]`` from per-run curves of different lengths: a run that stopped early keeps
    its last value (its final state) to the end; non-finite values become nan."""
    e = max((len(c) for c in curves), default=0)
    out = np.full((len(curves), e), math.nan)
    for i, c in enumerate(curves):
        c = np.where(np.isfinite(c), c, math.nan)
        if len(c):
            out[i, :len(c)] = c
            out[i, len(c):] = c[-1]
    return out


def comparison_info(runs: Sequence["RunInfo"], curves: Mapping[str, np.ndarray],
                    metric: str = "val_loss", line_key: str = "train.optimizer",
                    panel_key: str = "model.init",
                    limit: "BayesLimit | None" = None) -> ComparisonInfo | None:
    """``curves``: per run id, the metric per epoch of its first attempt. ``None`` when no
    run has a curve. Ties with the best are judged on the final values, over all panels."""
    runs = [r for r in runs if r.config and r.run_id in curves and len(curves[r.run_id])]
    if not runs:
        return None
    vary = varying_keys([r.config for r in runs], exclude=(*SEED_KEYS, line_key, panel_key))
    cells: dict[tuple[str, str], dict[str, list["RunInfo"]]] = {}
    for r in runs:
        flat = flatten(r.config)
        cell = (short_value(flat.get(line_key)), short_value(flat.get(panel_key)))
        cells.setdefault(cell, {}).setdefault(config_id(r.config), []).append(r)
    sign = 1.0 if metric_mode(metric) == "min" else -1.0
    drawn = []
    for (line, panel), configs in cells.items():
        def final_median(group: list["RunInfo"]) -> float:
            m = seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])[:, -1]
            med = quartiles(m)[0]
            return sign * float(med) if np.isfinite(med) else math.inf

        group = min(configs.values(), key=final_median)
        drawn.append((line, panel, configs, group,
                      seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])))
    seeds = [np.array([seed_of(flatten(r.config), i) for i, r in enumerate(group)]) for *_, group, _ in drawn]
    ties = ties_with_best([(s, m[:, -1]) for s, (*_, m) in zip(seeds, drawn)],
                          higher_is_better=sign < 0)
    finals = median_intervals([matrix[:, -1] for *_, matrix in drawn])
    out = []
    for k, (line, panel, configs, group, matrix) in enumerate(drawn):
        med, q25, q75 = quartiles(matrix, axis=0)
        extra = config_label(group[0].config, vary) if vary and len(configs) > 1 else ""
        bad = int(np.sum(~np.isfinite(matrix[:, -1])))
        label = f"{line}" + (f" ({extra})" if extra else "") + f", {len(group)} seed{'s' * (len(group) != 1)}"
        point, low, high = finals[k]
        out.append(ComparisonCurve(line, panel, label, frozen_array(np.arange(1, matrix.shape[1] + 1)),
                                   frozen_array(med), frozen_array(q25), frozen_array(q75), len(group), bad,
                                   frozen_array(seeds[k], np.int64), frozen_array(matrix),
                                   frozen_array(matrix[:, -1]), point, low, high,
                                   bool(ties.tied[k]), k == ties.best))
    panels = tuple(sorted({c.panel for c in out}))[:MAX_PANELS]
    lines = tuple(sorted({c.line for c in out}))
    out = [c for c in out if c.panel in panels]
    out.sort(key=lambda c: (panels.index(c.panel), lines.index(c.line)))
    return ComparisonInfo(metric, line_key, panel_key, panels, lines, tuple(out),
                          any(len(v) > 1 for v in cells.values()), accuracy_limit(metric, limit))


# ----------------------------------------------------------------------------- success rate


@dataclass(frozen=True)
class SuccessBar:
    label: str
    n_runs: int
    first_try: int            # runs whose first attempt reached the target
    with_restarts: int        # runs that reached it with their restarts
    attempts_met: int         # attempts that reached it (the sweep's success rate)
    attempts: int
    first_rate: "Rate"        # first_try / n_runs with its 95 % Wilson interval
    restarts_rate: "Rate"     # with_restarts / n_runs with its 95 % Wilson interval
    tied: bool                # its runs' successes (with restarts) not distinguishable from the best's
    best: bool                # the best configuration (the top bar)


@dataclass(frozen=True)
class SuccessInfo:
    """Per configuration, how often the target was reached: on the first attempt, with
    restarts, and as a share of all attempts."""

    monitor: str
    targets: tuple[float, ...]        # the distinct targets of the runs
    bars: tuple[SuccessBar, ...]      # best first, at most MAX_BARS
    n_configs: int
    n_tied: int = 1                   # configurations tied with the best (of all, not only shown)
    bayes_limit: float | None = None  # an accuracy target above it can only be met by chance


def target_runs(runs: Sequence["RunInfo"]) -> list["RunInfo"]:
    """The finished runs with a ``stopping.target``: those :func:`success_info` counts."""
    return [r for r in runs if r.config and r.status == "done"
            and isinstance(r.config.get("stopping", {}).get("target"), (int, float))]


def success_info(runs: Sequence["RunInfo"], attempts: Mapping[str, Sequence["AttemptInfo"]],
                 limit: "BayesLimit | None" = None) -> SuccessInfo | None:
    """``None`` when no finished run has a ``stopping.target``. Configurations are ranked by
    their success with restarts (then on the first attempt)."""
    runs = target_runs(runs)
    if not runs:
        return None
    vary = varying_keys([r.config for r in runs])
    groups: dict[str, list["RunInfo"]] = {}
    for r in runs:
        groups.setdefault(config_id(r.config), []).append(r)
    counted = []
    for group in groups.values():
        att = [attempts.get(r.run_id, ()) for r in group]
        first = sum(bool(a) and a[0].target_met for a in att)
        met = sum(bool(r.target_met) for r in group)
        counted.append((group, first, met, sum(x.target_met for a in att for x in a), sum(len(a) for a in att)))
    counted.sort(key=lambda c: (-c[2] / len(c[0]), -c[1] / len(c[0]), config_label(c[0][0].config, vary)))
    # ties on each seed's outcome (reached the target with restarts: 1, else 0), paired by seed
    ties = ties_with_best([([seed_of(flatten(r.config), i) for i, r in enumerate(group)],
                            [float(bool(r.target_met)) for r in group]) for group, *_ in counted],
                          higher_is_better=True, best=0)
    bars = [SuccessBar(config_label(group[0].config, vary), len(group), first, met, att_met, att_n,
                       success_rate(first, len(group)), success_rate(met, len(group)),
                       bool(ties.tied[k]), k == 0)
            for k, (group, first, met, att_met, att_n) in enumerate(counted[:MAX_BARS])]
    monitor = runs[0].config["stopping"].get("monitor", "val_loss")
    return SuccessInfo(monitor, tuple(sorted({float(r.config["stopping"]["target"]) for r in runs})),
                       tuple(bars), len(counted), int(ties.tied.sum()), accuracy_limit(monitor, limit))


# ----------------------------------------------------------------------------- staged sweeps


@dataclass(frozen=True)
class StageCandidate:
    label: str                # the stage keys' values
    values: np.ndarray        # [seeds] the selected metric per seed
    score: float              # the sweep's statistic over seeds
    winner: bool
    seed: np.ndarray          # [seeds] train.seed of each value
    ci_low: float             # 95 % interval of the median (the mean when the sweep selects by it)
    ci_high: float
    tied: bool                # not distinguishable from the stage's winner (Holm within the stage)


@dataclass(frozen=True)
class StageResult:
    stage: int
    keys: tuple[str, ...]
    winner_label: str
    score: float
    candidates: tuple[StageCandidate, ...]


@dataclass(frozen=True)
class StageInfo:
    """The path of a staged sweep: per stage its candidates and the winner handed on."""

    sweep_id: str
    name: str
    metric: str
    statistic: str
    stages: tuple[StageResult, ...]
    bayes_limit: float | None = None  # the dataset's best possible accuracy (accuracy metrics)


def stage_info(sweep: Mapping[str, Any], runs: Sequence["RunInfo"],
               limit: "BayesLimit | None" = None) -> StageInfo | None:
    """From a sweep row (``Store.sweeps()``) whose summary has ``stages``; ``None`` if not."""
    summary = sweep.get("summary") or {}
    stages = summary.get("stages")
    if not stages:
        return None
    select = summary.get("select") or {}
    metric = select.get("metric", "val_loss")
    statistic = str(select.get("statistic", "median"))
    higher = select.get("mode", metric_mode(metric)) == "max"
    attr = "best_value" if metric == "best" else metric
    by_id = {r.run_id: r for r in runs}
    out = []
    for st in stages:
        keys = tuple(st.get("keys") or ())
        found = []
        for e in summary.get("configs") or ():
            if e.get("stage") != st.get("stage"):
                continue
            params = e.get("params") or {}
            label = " ".join(f"{k.split('.')[-1]}={short_value(_tuple(params.get(k)))}" for k in keys
                             if k in params) or "(carried)"
            ids = list(e.get("run_ids") or ())
            vals = [run_metric(by_id[r], attr) if r in by_id and attr in RUN_METRICS else math.nan
                    for r in ids]
            seeds = [seed_of(flatten(by_id[r].config), i) if r in by_id else -1 - i
                     for i, r in enumerate(ids)]
            score = e.get("score")
            found.append((label, vals, seeds, math.nan if score is None else float(score),
                          e.get("config_id") == st.get("config_id")))
        winner_at = next((k for k, c in enumerate(found) if c[4]), None)
        ties = ties_with_best([(c[2], c[1]) for c in found], higher_is_better=higher, best=winner_at)
        cands = []
        cis = median_intervals([c[1] for c in found], "mean" if statistic == "mean" else "median")
        for k, (label, vals, seeds, score, winner) in enumerate(found):
            _, low, high = cis[k]
            cands.append(StageCandidate(label, frozen_array(vals), score, winner,
                                        frozen_array(seeds, np.int64), low, high, bool(ties.tied[k])))
        winner = st.get("winner") or {}
        out.append(StageResult(int(st.get("stage", len(out))), keys,
                               " ".join(f"{k.split('.')[-1]}={short_value(_tuple(v))}" for k, v in winner.items()),
                               math.nan if st.get("score") is None else float(st["score"]), tuple(cands)))
    return StageInfo(str(sweep.get("sweep_id", "")), str(sweep.get("name", "")), metric,
                     statistic, tuple(out), accuracy_limit(attr, limit))


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


# ----------------------------------------------------------------------------- bundle


@dataclass(frozen=True)
class StoreFigureData:
    """Everything the store-level figures draw (each ``None`` when it does not apply)."""

    n_runs: int
    metric: str                           # what the comparison and the param curves show
    params: tuple[ParamCurveInfo, ...]    # metric vs train.lr (first, when it varies) and others
    comparison: ComparisonInfo | None
    success: SuccessInfo | None
    stages: tuple[StageInfo, ...]
    bayes: "BayesLimit | None" = None     # the dataset's Bayes limit (None: user data, or several)

    @property
    def lr_curve(self) -> ParamCurveInfo | None:
        """The metric against the learning rate, ``None`` when it does not vary."""
        return next((p for p in self.params if p.x_key == "train.lr"), None)


def first_attempt_curve(store: "Store", run_id: str, metric: str) -> np.ndarray:
    """The epoch series ``metric`` of a run's first attempt read from its
    ``metrics.parquet`` (only those rows are read); a missing or damaged file gives none
    (that run drops out of the curves, not the view: ``mlplab check`` names it)."""
    import pandas as pd

    path = store.run_dir(run_id) / "metrics.parquet"
    if not path.is_file():
        return np.zeros(0)
    try:
        rows = pd.read_parquet(path, engine="pyarrow", columns=["attempt", "epoch", "value"],
                               filters=[("scope", "==", "epoch"), ("metric", "==", metric),
                                        ("attempt", "==", 0)])
    except (OSError, ValueError):           # pyarrow's ArrowInvalid is a ValueError
        return np.zeros(0)
    return rows.sort_values("epoch")["value"].to_numpy(np.float64)


def first_attempt_curves(store: "Store", run_ids: Sequence[str], metric: str) -> dict[str, np.ndarray]:
    """Per run id, :func:`first_attempt_curve`: from the index where the run's writer kept
    it (:meth:`mlplab.store.store.Store.curves`, one query for all), else (a run of an
    older store) from its ``metrics.parquet``."""
    kept = store.curves(metric)
    return {r: kept[r] if r in kept else first_attempt_curve(store, r, metric) for r in run_ids}


def default_metric(runs: Sequence["RunInfo"]) -> str:
    """The metric the store figures show unless asked for another: val_acc when every run
    monitors an accuracy, else val_loss. The report and the dashboard both use this rule.

    >>> from types import SimpleNamespace as Run
    >>> default_metric([Run(config={"stopping": {"monitor": "val_acc"}})])
    'val_acc'
    >>> default_metric([Run(config={"stopping": {"monitor": "val_acc"}}), Run(config={})])
    'val_loss'
    """
    monitors = {(r.config.get("stopping") or {}).get("monitor", "val_loss") for r in runs}
    return "val_acc" if monitors and all(m.endswith("acc") for m in monitors) else "val_loss"


def load_store_figdata(store: "Store", metric: str | None = None,
                       runs: Sequence["RunInfo"] | None = None,
                       param_keys: Sequence[str] | None = None) -> StoreFigureData:
    """Read the finished runs (and sweeps) of ``store`` and compute the store figures'
    data; ``metric`` defaults to :func:`default_metric` of the finished runs; ``runs``:
    the store's runs when the caller has read them already; ``param_keys``: only these of
    the metric-vs-key curves (:func:`store_param_curves`). The epoch curves come from the
    index (:mod:`mlplab.store.curves`), not from every run's files."""
    runs = [r for r in (store.runs(status="done") if runs is None else runs)
            if r.config and r.status == "done"]
    metric = default_metric(runs) if metric is None else metric
    curves = first_attempt_curves(store, [r.run_id for r in runs], metric) if len(runs) > 1 else {}
    # every attempt of the store is read only when the success figure has runs to count
    every = store.all_attempts() if target_runs(runs) else {}
    attempts = {r.run_id: every.get(r.run_id, []) for r in runs}
    limit = runs_bayes_limit(runs)
    stages = tuple(s for s in (stage_info(sw, runs, limit) for sw in store.sweeps()) if s is not None)
    return StoreFigureData(
        n_runs=len(runs), metric=metric, params=store_param_curves(runs, metric, limit, param_keys),
        comparison=comparison_info(runs, curves, metric, limit=limit) if len(runs) > 1 else None,
        success=success_info(runs, attempts, limit), stages=stages, bayes=limit)
