"""Figure data for a set of runs (a store, a sweep, a seed study): plain frozen records.

Works on any runs of a store, not only on sweeps: a *configuration* is a run's config
without its seed (``train.seed``) and name, so the seeds of one configuration give its
spread. Labels name only the config keys that vary among the runs.

>>> flatten({"train": {"lr": 0.1, "seed": 0}, "model": {"hidden": [4]}})
{'train.lr': 0.1, 'train.seed': 0, 'model.hidden': (4,)}
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .figdata import frozen_array

if TYPE_CHECKING:
    from .store import AttemptInfo, RunInfo, Store

# Keys that never define a configuration: the seed repeats one, the name only labels it.
SEED_KEYS = ("train.seed", "name")
RUN_METRICS = ("val_loss", "val_acc", "test_loss", "test_acc", "train_loss", "best_value")
# Bar charts show at most this many configurations (the best ones).
MAX_BARS = 30
# The comparison draws at most this many panels.
MAX_PANELS = 6


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested config; lists become tuples (hashable)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        # configs come from JSON, so a plain dict check suffices (and is ~10x cheaper
        # than the typing.Mapping ABC check on a 1000-run store)
        if isinstance(v, dict) and k != "layer_init":
            out.update(flatten(v, key + "."))
        elif k == "sweep":
            continue
        else:
            out[key] = tuple(v) if isinstance(v, list) else (json.dumps(v, sort_keys=True)
                                                             if isinstance(v, dict) else v)
    return out


def varying_keys(configs: Sequence[Mapping[str, Any]], exclude: Sequence[str] = SEED_KEYS) -> list[str]:
    """Dotted keys whose value differs among ``configs`` (in first-seen order)."""
    flat = [flatten(c) for c in configs]
    keys: dict[str, None] = {}
    for f in flat:
        keys.update(dict.fromkeys(f))
    return [k for k in keys if k not in exclude
            and len({repr(f.get(k)) for f in flat}) > 1]


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "-".join(map(str, v)) or "()"
    return str(v)


def config_label(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``lr=0.01 optimizer=adam`` from the values of ``keys`` (last dotted part)."""
    flat = flatten(config)
    return " ".join(f"{k.split('.')[-1]}={_short(flat.get(k))}" for k in keys) or "all runs"


def config_id(config: Mapping[str, Any]) -> str:
    """The configuration a run repeats: its config without seed and name."""
    flat = flatten(config)
    return json.dumps({k: repr(v) for k, v in sorted(flat.items()) if k not in SEED_KEYS})


def run_metric(run: "RunInfo", metric: str) -> float:
    """A run's value of ``metric`` (one of RUN_METRICS) at its kept weights; nan if none."""
    if metric not in RUN_METRICS:
        raise ValueError(f"metric={metric!r}: allowed {', '.join(RUN_METRICS)}")
    v = getattr(run, metric)
    return math.nan if v is None else float(v)


def metric_mode(metric: str) -> str:
    return "max" if metric.endswith("acc") else "min"


def _quartiles(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles over the finite values along ``axis`` (nan where none)."""
    v = np.where(np.isfinite(values), values, np.nan)
    if v.shape[axis] == 0:
        nan = np.full(np.delete(np.array(v.shape), axis), math.nan)
        return nan, nan, nan
    with warnings.catch_warnings():   # an all-nan column is expected: its quartiles are nan
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(v, [50, 25, 75], axis=axis)
    return q[0], q[1], q[2]


# ----------------------------------------------------------------------------- metric vs lr


@dataclass(frozen=True)
class LrGroup:
    label: str
    lr: np.ndarray            # [R] per run
    value: np.ndarray         # [R] per run (nan: diverged or failed)
    grid_lr: np.ndarray       # [L] distinct learning rates
    median: np.ndarray        # [L] over the finite values at each lr
    q25: np.ndarray           # [L]
    q75: np.ndarray           # [L]
    n_bad: np.ndarray         # [L] runs without a finite value


@dataclass(frozen=True)
class LrCurveInfo:
    """A metric at the kept weights against the learning rate, per group."""

    metric: str
    group_key: str | None
    groups: tuple[LrGroup, ...]
    n_runs: int


def lr_curve_info(runs: Sequence["RunInfo"], metric: str = "val_loss",
                  group_key: str | None = "auto") -> LrCurveInfo | None:
    """``None`` unless the runs use at least two learning rates. ``group_key="auto"``
    groups by optimizer when that varies."""
    runs = [r for r in runs if r.config and r.status == "done"]
    lrs = [float(r.config["train"]["lr"]) for r in runs]
    if len(set(lrs)) < 2:
        return None
    if group_key == "auto":
        group_key = "train.optimizer" if "train.optimizer" in varying_keys([r.config for r in runs]) else None
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        label = _short(flatten(r.config).get(group_key)) if group_key else "all runs"
        groups.setdefault(label, []).append(i)
    out = []
    for label, idx in groups.items():
        lr = np.array([lrs[i] for i in idx])
        value = np.array([run_metric(runs[i], metric) for i in idx])
        grid = np.unique(lr)
        stats = [_quartiles(value[lr == g]) for g in grid]
        out.append(LrGroup(label, frozen_array(lr), frozen_array(value), frozen_array(grid),
                           *(frozen_array([s[k] for s in stats]) for k in range(3)),
                           frozen_array([int(np.sum(~np.isfinite(value[lr == g]))) for g in grid], np.int64)))
    return LrCurveInfo(metric, group_key, tuple(out), len(runs))


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
        cell = (_short(flat.get(line_key)), _short(flat.get(panel_key)))
        cells.setdefault(cell, {}).setdefault(config_id(r.config), []).append(r)
    sign = 1.0 if metric_mode(metric) == "min" else -1.0
    out = []
    for (line, panel), configs in cells.items():
        def final_median(group: list["RunInfo"]) -> float:
            m = seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])[:, -1]
            med = _quartiles(m)[0]
            return sign * float(med) if np.isfinite(med) else math.inf

        group = min(configs.values(), key=final_median)
        matrix = seed_matrix([np.asarray(curves[r.run_id], np.float64) for r in group])
        med, q25, q75 = _quartiles(matrix, axis=0)
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
            label = " ".join(f"{k.split('.')[-1]}={_short(_tuple(params.get(k)))}" for k in keys
                             if k in params) or "(carried)"
            vals = [run_metric(by_id[r], attr) if r in by_id and attr in RUN_METRICS else math.nan
                    for r in e.get("run_ids") or ()]
            score = e.get("score")
            cands.append(StageCandidate(label, frozen_array(vals), math.nan if score is None else float(score),
                                        e.get("config_id") == st.get("config_id")))
        winner = st.get("winner") or {}
        out.append(StageResult(int(st.get("stage", len(out))), keys,
                               " ".join(f"{k.split('.')[-1]}={_short(_tuple(v))}" for k, v in winner.items()),
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
    lr_curve: LrCurveInfo | None
    comparison: ComparisonInfo | None
    success: SuccessInfo | None
    stages: tuple[StageInfo, ...]


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


def load_store_figdata(store: "Store", metric: str | None = None) -> StoreFigureData:
    """Read the finished runs (and sweeps) of ``store`` and compute the store figures'
    data; ``metric`` defaults to val_acc when the runs monitor an accuracy, else val_loss."""
    runs = [r for r in store.runs(status="done") if r.config]
    if metric is None:
        monitors = {r.config.get("stopping", {}).get("monitor", "val_loss") for r in runs}
        metric = "val_acc" if monitors and all(m.endswith("acc") for m in monitors) else "val_loss"
    curves = {r.run_id: first_attempt_curve(store, r.run_id, metric) for r in runs} if len(runs) > 1 else {}
    attempts = {r.run_id: store.attempts(r.run_id) for r in runs}
    stages = tuple(s for s in (stage_info(sw, runs) for sw in store.sweeps()) if s is not None)
    return StoreFigureData(
        n_runs=len(runs), lr_curve=lr_curve_info(runs, metric),
        comparison=comparison_info(runs, curves, metric) if len(runs) > 1 else None,
        success=success_info(runs, attempts), stages=stages)
