"""The overview's store-level content: sweeps, metric vs a hyper-parameter, optimizer ×
initialisation over seeds, success rate per configuration, stage winners.

The figure data is the report's: :func:`mlplab.figures.data_store.load_store_figdata`
for the comparison, success and stage records (and the default metric), and
:func:`mlplab.figures.data_params.param_curve_info` for the metric against the key the
reader picks. Both are computed once per state of the store's index (a reload, a second
browser or a poll with nothing new costs nothing): the data of the last two states and
the last 16 metric-vs-key figures are kept. The importance chart, which can take seconds
to compute when the store's cache does not hold it, is filled in by a callback of its own
(:func:`importance_figure`) after the rest of the overview shows.

>>> GROUP_AUTO
'auto'
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
from dash import html

from mlplab.figures.data_configs import RUN_METRICS, varying_keys
from mlplab.figures.data_params import param_curve_info
from mlplab.figures.data_store import StoreFigureData, load_store_figdata
from mlplab.store.store import RunInfo
from mlplab.store.table import gc_paused
from . import callbacks as cb
from . import layout, plots, plots_store, plots_sweep, tables

GROUP_AUTO, GROUP_NONE = "auto", "none"


def done_runs(runs: Sequence[RunInfo]) -> list[RunInfo]:
    """The finished runs of an mlplab config (the store figures draw only these)."""
    return [r for r in runs if r.status == "done" and r.config]


def store_figures(data: StoreFigureData) -> dict[str, go.Figure]:
    """The comparison, success and stage figures of the store's figure data that apply
    (a comparison of one line in one panel shows nothing the runs table does not)."""
    figs: dict[str, go.Figure] = {}
    comparison = data.comparison
    if comparison is not None and (len(comparison.lines) > 1 or len(comparison.panels) > 1):
        figs["fig-comparison"] = plots_store.comparison_figure(comparison)
    if data.success is not None:
        figs["fig-success"] = plots_store.success_figure(data.success)
    for stages in data.stages:
        figs[f"fig-stages-{len(figs)}"] = plots_store.stage_figure(stages)
    return figs


@dataclass(frozen=True)
class StoreSnapshot:
    """What the overview's figures need from one state of the store."""

    runs: tuple[RunInfo, ...]           # every run (one query)
    sweeps: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]               # config keys that vary among the finished runs
    figdata: StoreFigureData            # what the report's store figures draw
    figures: dict[str, go.Figure]       # comparison, success, stages, parallel (those that apply)
    signature: str                      # the index's stamp this is of


# keyed by the index's stamp: the store as it is now and the one before, no more
@functools.lru_cache(maxsize=2)
def _snapshot(root: str, signature: str) -> StoreSnapshot:
    with gc_paused():                # many long-lived objects: see gc_paused
        return _build_snapshot(root, signature)


def _build_snapshot(root: str, signature: str) -> StoreSnapshot:
    store = cb.open_store(root)
    every = list(cb.runs_at(root, signature))
    keys = varying_keys([r.config for r in done_runs(every)])
    # the metric-vs-key curve of the key shown first only: each costs an interval per
    # configuration and value, and the others are computed when picked
    figdata = load_store_figdata(store, runs=every, param_keys=[default_x(keys)])
    figures = {**store_figures(figdata), **plots_sweep.sweep_figures(every, figdata.metric)}
    return StoreSnapshot(tuple(every), tuple(store.sweeps()), tuple(keys), figdata, figures,
                         signature)


def snapshot(root: Path) -> StoreSnapshot:
    """The overview's data for the store as it is now; computed once per store change
    (a reload or a second browser costs nothing)."""
    return _snapshot(str(root), cb.store_signature(root))


def store_figdata(root: Path) -> StoreFigureData:
    """The store figures' data the overview draws: ``load_store_figdata`` of the store as
    it is now (cached with the snapshot), with the metric-vs-key curve of the key shown
    first (:func:`default_x`) only."""
    return snapshot(root).figdata


def default_x(keys: Sequence[str]) -> str | None:
    """The x axis of the metric-vs-key plot at first: train.lr when it varies."""
    return "train.lr" if "train.lr" in keys else (keys[0] if keys else None)


def store_level(root: Path, group: str | None, metric: str | None, x_key: str | None = None) -> tuple:
    """Outputs of the overview's store callback: sweeps block, the choices of the
    metric-vs-key plot (lines by, metric), the other store figures, and the x-axis
    choices (the config keys that vary among the finished runs) and the chosen one."""
    snap = snapshot(root)
    per_sweep: dict[str, int] = {}
    for r in snap.runs:
        if r.sweep_id:
            per_sweep[r.sweep_id] = per_sweep.get(r.sweep_id, 0) + 1
    sweeps = tables.sweeps_block(snap.sweeps, per_sweep)
    groups = [{"label": "auto (optimizer if it varies)", "value": GROUP_AUTO},
              {"label": "none", "value": GROUP_NONE}] + [{"label": k, "value": k} for k in snap.keys]
    group = group if group in {g["value"] for g in groups} else GROUP_AUTO
    metric = metric if metric in RUN_METRICS else snap.figdata.metric
    x_key = x_key if x_key in snap.keys else default_x(snap.keys)
    cards = [layout.graph_card(name, fig, wide=True) for name, fig in snap.figures.items()]
    if "fig-parallel" in snap.figures:      # the importance of the same runs, filled in later
        cards.append(layout.importance_card(snap.signature))
    return (html.Div([html.H2("Sweeps"), html.Div(sweeps, className="card")]) if sweeps else None,
            groups, group, [{"label": m, "value": m} for m in RUN_METRICS], metric,
            html.Div(cards, className="grid2") if cards else None,
            [{"label": k, "value": k} for k in snap.keys], x_key)


# one importance computation at a time: a second browser waits for the first one's result
_IMPORTANCE_LOCK = threading.Lock()


def importance_figure(root: Path) -> go.Figure:
    """The importance chart of the store's finished runs as they are now (the overview's
    default metric): from the store's cache, else computed once per store change."""
    signature = cb.store_signature(root)
    with _IMPORTANCE_LOCK:
        return _importance_figure(str(root), signature)


@functools.lru_cache(maxsize=2)
def _importance_figure(root: str, signature: str) -> go.Figure:
    snap = _snapshot(root, signature)
    return plots_sweep.store_importance_figure(Path(root), snap.runs, snap.figdata.metric)


def param_figure(root: Path, group: str | None, metric: str | None,
                 x_key: str | None = "train.lr") -> go.Figure:
    """The metric at the kept weights against the config key ``x_key``, lines by ``group``."""
    return _param_figure(str(root), cb.store_signature(root), group, metric, x_key)


@functools.lru_cache(maxsize=16)
def _param_figure(root: str, signature: str, group: str | None, metric: str | None,
                  x_key: str | None) -> go.Figure:
    snap = _snapshot(root, signature)
    runs = done_runs(snap.runs)
    metric = metric if metric in RUN_METRICS else snap.figdata.metric
    x_key = x_key or default_x(snap.keys)
    if x_key is None:
        return plots.empty_figure(f"{metric} vs a hyper-parameter",
                                  "no config key varies among the finished runs")
    key = None if group == GROUP_NONE else (group or GROUP_AUTO)
    # the report's own curves (the snapshot's figure data) when they are the ones asked for
    info = next((p for p in snap.figdata.params if key == GROUP_AUTO and p.x_key == x_key
                 and p.metric == metric), None) or param_curve_info(runs, x_key, metric, key,
                                                                     limit=snap.figdata.bayes)
    if info is None:
        return plots.empty_figure(f"{metric} vs {x_key}",
                                  f"the finished runs use fewer than two values of {x_key}")
    return plots_store.param_curve_figure(info)
