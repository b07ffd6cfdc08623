"""The overview's store-level content: sweeps, metric vs a hyper-parameter, optimizer ×
initialisation over seeds, success rate per configuration, stage winners.

The records come from :mod:`mlplab.figures.data_store`. A finished run's files never change,
so its first-attempt curve and its attempts are read once and kept (keyed by the run
and its finish time): while a sweep runs, each poll reads only the new runs.

>>> GROUP_AUTO
'auto'
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from dash import html

from mlplab.figures import data_params as params
from mlplab.figures import data_store as fs
from mlplab.store.store import AttemptInfo, RunInfo, Store
from . import callbacks as cb
from . import layout, plots, plots_store, tables

GROUP_AUTO, GROUP_NONE = "auto", "none"
_lock = threading.Lock()
_curves: dict[tuple[str, str, str], tuple[Any, np.ndarray]] = {}
_attempts: dict[tuple[str, str], tuple[Any, list[AttemptInfo]]] = {}


def first_curves(store: Store, runs: Sequence[RunInfo], metric: str) -> dict[str, np.ndarray]:
    """Per run, the per-epoch ``metric`` of its first attempt (cached per finished run)."""
    out = {}
    for r in runs:
        key = (str(store.root), r.run_id, metric)
        with _lock:
            hit = _curves.get(key)
        if hit is None or hit[0] != r.finished:
            hit = (r.finished, fs.first_attempt_curve(store, r.run_id, metric))
            with _lock:
                _curves[key] = hit
        out[r.run_id] = hit[1]
    return out


def attempts_of(store: Store, runs: Sequence[RunInfo]) -> dict[str, list[AttemptInfo]]:
    """Per run, its attempts (cached per finished run)."""
    out = {}
    for r in runs:
        key = (str(store.root), r.run_id)
        with _lock:
            hit = _attempts.get(key)
        if hit is None or hit[0] != r.finished:
            hit = (r.finished, store.attempts(r.run_id))
            with _lock:
                _attempts[key] = hit
        out[r.run_id] = hit[1]
    return out


def default_metric(runs: Sequence[RunInfo]) -> str:
    """val_acc when every run monitors an accuracy, else val_loss (as the PNG report)."""
    monitors = {(r.config.get("stopping") or {}).get("monitor", "val_loss") for r in runs}
    return "val_acc" if monitors and all(m.endswith("acc") for m in monitors) else "val_loss"


def done_runs(runs: Sequence[RunInfo]) -> list[RunInfo]:
    """The finished runs of an mlplab config (the store figures draw only these)."""
    return [r for r in runs if r.status == "done" and r.config]


def store_figures(store: Store, runs: Sequence[RunInfo]) -> dict[str, go.Figure]:
    """The comparison, success and stage figures that apply to the store's runs."""
    runs = done_runs(runs)
    figs: dict[str, go.Figure] = {}
    if len(runs) > 1:
        metric = default_metric(runs)
        comparison = fs.comparison_info(runs, first_curves(store, runs, metric), metric)
        if comparison is not None and (len(comparison.lines) > 1 or len(comparison.panels) > 1):
            figs["fig-comparison"] = plots_store.comparison_figure(comparison)
    success = fs.success_info(runs, attempts_of(store, runs))
    if success is not None:
        figs["fig-success"] = plots_store.success_figure(success)
    for sweep in store.sweeps():
        stages = fs.stage_info(sweep, runs)
        if stages is not None:
            figs[f"fig-stages-{len(figs)}"] = plots_store.stage_figure(stages)
    return figs


@dataclass(frozen=True)
class StoreSnapshot:
    """What the overview's figures need from one state of the store."""

    runs: tuple[RunInfo, ...]           # every run (one query)
    sweeps: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]               # config keys that vary among the finished runs
    figures: dict[str, go.Figure]       # comparison, success, stages (those that apply)


@functools.lru_cache(maxsize=2)
def _snapshot(root: str, signature: str) -> StoreSnapshot:
    store = cb.open_store(root)
    every = store.runs()
    keys = fs.varying_keys([r.config for r in done_runs(every)])
    return StoreSnapshot(tuple(every), tuple(store.sweeps()), tuple(keys),
                         store_figures(store, every))


def snapshot(root: Path) -> StoreSnapshot:
    """The overview's data for the store as it is now; computed once per store change
    (a reload or a second browser costs nothing)."""
    return _snapshot(str(root), cb.store_signature(root))


def default_x(keys: Sequence[str]) -> str | None:
    """The x axis of the metric-vs-key plot at first: train.lr when it varies."""
    return "train.lr" if "train.lr" in keys else (keys[0] if keys else None)


def store_level(root: Path, group: str | None, metric: str | None, x_key: str | None = None) -> tuple:
    """Outputs of the overview's store callback: sweeps block, the choices of the
    metric-vs-key plot (lines by, metric), the other store figures, and the x-axis
    choices (the config keys that vary among the finished runs) and the chosen one."""
    snap = snapshot(root)
    runs = done_runs(snap.runs)
    per_sweep: dict[str, int] = {}
    for r in snap.runs:
        if r.sweep_id:
            per_sweep[r.sweep_id] = per_sweep.get(r.sweep_id, 0) + 1
    sweeps = tables.sweeps_block(snap.sweeps, per_sweep)
    groups = [{"label": "auto (optimizer if it varies)", "value": GROUP_AUTO},
              {"label": "none", "value": GROUP_NONE}] + [{"label": k, "value": k} for k in snap.keys]
    group = group if group in {g["value"] for g in groups} else GROUP_AUTO
    metric = metric if metric in fs.RUN_METRICS else default_metric(runs)
    x_key = x_key if x_key in snap.keys else default_x(snap.keys)
    cards = [layout.graph_card(name, fig, wide=True) for name, fig in snap.figures.items()]
    return (html.Div([html.H2("Sweeps"), html.Div(sweeps, className="card")]) if sweeps else None,
            groups, group, [{"label": m, "value": m} for m in fs.RUN_METRICS], metric,
            html.Div(cards, className="grid2") if cards else None,
            [{"label": k, "value": k} for k in snap.keys], x_key)


def param_figure(root: Path, group: str | None, metric: str | None,
                 x_key: str | None = "train.lr") -> go.Figure:
    """The metric at the kept weights against the config key ``x_key``, lines by ``group``."""
    return _param_figure(str(root), cb.store_signature(root), group, metric, x_key)


@functools.lru_cache(maxsize=16)
def _param_figure(root: str, signature: str, group: str | None, metric: str | None,
                  x_key: str | None) -> go.Figure:
    snap = _snapshot(root, signature)
    runs = done_runs(snap.runs)
    metric = metric if metric in fs.RUN_METRICS else default_metric(runs)
    x_key = x_key or default_x(snap.keys)
    if x_key is None:
        return plots.empty_figure(f"{metric} vs a hyper-parameter",
                                  "no config key varies among the finished runs")
    key = None if group == GROUP_NONE else (group or GROUP_AUTO)
    info = params.param_curve_info(runs, x_key, metric, key)
    if info is None:
        return plots.empty_figure(f"{metric} vs {x_key}",
                                  f"the finished runs use fewer than two values of {x_key}")
    return plots_store.param_curve_figure(info)
