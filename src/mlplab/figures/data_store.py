"""Figure data for a set of runs (a store, a sweep, a seed study): plain frozen records.

Works on any runs of a store, not only on sweeps: a *configuration* is a run's config
without its seed (``train.seed``) and name, so the seeds of one configuration give its
spread (:mod:`mlplab.figures.data_configs`). Metric vs hyper-parameter curves are in
:mod:`mlplab.figures.data_params`; here: optimizer × init over seeds, success rate, stages,
and the bundle the report draws.

>>> flatten({"train": {"lr": 0.1, "seed": 0}, "model": {"hidden": [4]}})
{'train.lr': 0.1, 'train.seed': 0, 'model.hidden': (4,)}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

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
from .data_params import ParamCurveInfo, store_param_curves

if TYPE_CHECKING:
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
                    panel_key: str = "model.init") -> ComparisonInfo | None:
    """``curves``: per run id, the metric per epoch of its first attempt. ``None`` when no
    run has a curve."""
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
    out = []
    for (line, panel), configs in cells.items():
        def final_median(group: list["RunInfo"]) -> float:
            m = seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])[:, -1]
            med = quartiles(m)[0]
            return sign * float(med) if np.isfinite(med) else math.inf

        group = min(configs.values(), key=final_median)
        matrix = seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])
        med, q25, q75 = quartiles(matrix, axis=0)
        extra = config_label(group[0].config, vary) if vary and len(configs) > 1 else ""
        bad = int(np.sum(~np.isfinite(matrix[:, -1])))
        label = f"{line}" + (f" ({extra})" if extra else "") + f", {len(group)} seed{'s' * (len(group) != 1)}"
        out.append(ComparisonCurve(line, panel, label, frozen_array(np.arange(1, matrix.shape[1] + 1)),
                                   frozen_array(med), frozen_array(q25), frozen_array(q75), len(group), bad))
    panels = tuple(sorted({c.panel for c in out}))[:MAX_PANELS]
    lines = tuple(sorted({c.line for c in out}))
    out = [c for c in out if c.panel in panels]
    out.sort(key=lambda c: (panels.index(c.panel), lines.index(c.line)))
    return ComparisonInfo(metric, line_key, panel_key, panels, lines, tuple(out),
                          any(len(v) > 1 for v in cells.values()))


# ----------------------------------------------------------------------------- success rate


@dataclass(frozen=True)
class SuccessBar:
    label: str
    n_runs: int
    first_try: int            # runs whose first attempt reached the target
    with_restarts: int        # runs that reached it with their restarts
    attempts_met: int         # attempts that reached it (the sweep's success rate)
    attempts: int


@dataclass(frozen=True)
class SuccessInfo:
    """Per configuration, how often the target was reached: on the first attempt, with
    restarts, and as a share of all attempts."""

    monitor: str
    targets: tuple[float, ...]        # the distinct targets of the runs
    bars: tuple[SuccessBar, ...]      # best first, at most MAX_BARS
    n_configs: int


def success_info(runs: Sequence["RunInfo"],
                 attempts: Mapping[str, Sequence["AttemptInfo"]]) -> SuccessInfo | None:
    """``None`` when no finished run has a ``stopping.target``."""
    runs = [r for r in runs if r.config and r.status == "done"
            and r.config.get("stopping", {}).get("target") is not None]
    if not runs:
        return None
    vary = varying_keys([r.config for r in runs])
    groups: dict[str, list["RunInfo"]] = {}
    for r in runs:
        groups.setdefault(config_id(r.config), []).append(r)
    bars = []
    for group in groups.values():
        att = [attempts.get(r.run_id, ()) for r in group]
        bars.append(SuccessBar(
            label=config_label(group[0].config, vary), n_runs=len(group),
            first_try=sum(bool(a) and a[0].target_met for a in att),
            with_restarts=sum(bool(r.target_met) for r in group),
            attempts_met=sum(x.target_met for a in att for x in a),
            attempts=sum(len(a) for a in att)))
    bars.sort(key=lambda b: (-b.with_restarts / b.n_runs, -b.first_try / b.n_runs, b.label))
    return SuccessInfo(runs[0].config["stopping"].get("monitor", "val_loss"),
                       tuple(sorted({float(r.config["stopping"]["target"]) for r in runs})),
                       tuple(bars[:MAX_BARS]), len(bars))


# ----------------------------------------------------------------------------- staged sweeps


@dataclass(frozen=True)
class StageCandidate:
    label: str                # the stage keys' values
    values: np.ndarray        # [seeds] the selected metric per seed
    score: float              # the sweep's statistic over seeds
    winner: bool


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


def stage_info(sweep: Mapping[str, Any], runs: Sequence["RunInfo"]) -> StageInfo | None:
    """From a sweep row (``Store.sweeps()``) whose summary has ``stages``; ``None`` if not."""
    summary = sweep.get("summary") or {}
    stages = summary.get("stages")
    if not stages:
        return None
    select = summary.get("select") or {}
    metric = select.get("metric", "val_loss")
    attr = "best_value" if metric == "best" else metric
    by_id = {r.run_id: r for r in runs}
    out = []
    for st in stages:
        keys = tuple(st.get("keys") or ())
        cands = []
        for e in summary.get("configs") or ():
            if e.get("stage") != st.get("stage"):
                continue
            params = e.get("params") or {}
            label = " ".join(f"{k.split('.')[-1]}={short_value(_tuple(params.get(k)))}" for k in keys
                             if k in params) or "(carried)"
            vals = [run_metric(by_id[r], attr) if r in by_id and attr in RUN_METRICS else math.nan
                    for r in e.get("run_ids") or ()]
            score = e.get("score")
            cands.append(StageCandidate(label, frozen_array(vals), math.nan if score is None else float(score),
                                        e.get("config_id") == st.get("config_id")))
        winner = st.get("winner") or {}
        out.append(StageResult(int(st.get("stage", len(out))), keys,
                               " ".join(f"{k.split('.')[-1]}={short_value(_tuple(v))}" for k, v in winner.items()),
                               math.nan if st.get("score") is None else float(st["score"]), tuple(cands)))
    return StageInfo(str(sweep.get("sweep_id", "")), str(sweep.get("name", "")), metric,
                     str(select.get("statistic", "median")), tuple(out))


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

    @property
    def lr_curve(self) -> ParamCurveInfo | None:
        """The metric against the learning rate, ``None`` when it does not vary."""
        return next((p for p in self.params if p.x_key == "train.lr"), None)


def first_attempt_curve(store: "Store", run_id: str, metric: str) -> np.ndarray:
    """The epoch series ``metric`` of a run's first attempt (only those rows are read)."""
    import pandas as pd

    path = store.run_dir(run_id) / "metrics.parquet"
    if not path.is_file():
        return np.zeros(0)
    rows = pd.read_parquet(path, engine="pyarrow", columns=["attempt", "epoch", "value"],
                           filters=[("scope", "==", "epoch"), ("metric", "==", metric),
                                    ("attempt", "==", 0)])
    return rows.sort_values("epoch")["value"].to_numpy(np.float64)


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


def load_store_figdata(store: "Store", metric: str | None = None) -> StoreFigureData:
    """Read the finished runs (and sweeps) of ``store`` and compute the store figures'
    data; ``metric`` defaults to :func:`default_metric` of the finished runs."""
    runs = [r for r in store.runs(status="done") if r.config]
    metric = default_metric(runs) if metric is None else metric
    curves = {r.run_id: first_attempt_curve(store, r.run_id, metric) for r in runs} if len(runs) > 1 else {}
    attempts = {r.run_id: store.attempts(r.run_id) for r in runs}
    stages = tuple(s for s in (stage_info(sw, runs) for sw in store.sweeps()) if s is not None)
    return StoreFigureData(
        n_runs=len(runs), metric=metric, params=store_param_curves(runs, metric),
        comparison=comparison_info(runs, curves, metric) if len(runs) > 1 else None,
        success=success_info(runs, attempts), stages=stages)
