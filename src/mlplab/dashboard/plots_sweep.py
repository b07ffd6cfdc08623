"""Plotly drawings of a sweep's hyper-parameters, from the report's records
(:mod:`mlplab.figures.data_parallel`, :mod:`mlplab.figures.data_importance`): the
interactive parallel coordinates (drag along an axis to keep a range of it) and the
importance of each swept key and of the seed, by fANOVA and PED-ANOVA.

>>> sweep_figures([], "val_loss")
{}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from mlplab.figures.data_importance import SEED_FACTOR, ImportanceInfo, importance_info
from mlplab.figures.data_parallel import ParallelInfo, parallel_info
from .plots import base_layout, empty_figure

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo

EVALUATOR_COLORS = ("#1b9e77", "#d95f02", "#7570b3")


def parallel_figure(info: ParallelInfo) -> go.Figure:
    """One line per configuration across an axis per swept key and one for the metric,
    coloured by the median over its seeds of the metric."""
    keep = np.isfinite(info.median)
    dims = []
    for a in info.axes:
        v = np.asarray(a.values, np.float64)[keep]
        if a.kind == "category":
            dims.append(dict(label=a.key, values=v, tickvals=list(range(len(a.ticks))),
                             ticktext=list(a.ticks),
                             range=[-0.2, max(len(a.ticks) - 1, 1) + 0.2]))
        elif a.kind == "log":
            distinct = sorted(set(v.tolist()))
            dims.append(dict(label=f"{a.key} (log)", values=np.log10(v),
                             tickvals=np.log10(distinct).tolist(),
                             ticktext=[f"{x:.3g}" for x in distinct]))
        else:
            dims.append(dict(label=a.key, values=v))
    dims.append(dict(label=f"median {info.metric}", values=info.median[keep]))
    scale = "Viridis_r" if info.mode == "min" else "Viridis"
    fig = go.Figure(go.Parcoords(dimensions=dims, line=dict(
        color=info.median[keep], colorscale=scale, showscale=True,
        colorbar=dict(title=dict(text=f"median {info.metric}", side="right")))))
    left = int((~keep).sum())
    note = f"; {left} with no finite {info.metric} left out" if left else ""
    base_layout(fig, f"Parallel coordinates: {int(keep.sum())} configurations, "
                     f"{int(info.n_seeds[keep].sum())} runs{note} (drag along an axis to filter)",
                height=440)
    fig.update_layout(margin=dict(l=120, r=40, t=90, b=30))   # room for category labels
    return fig


def importance_figure(info: ImportanceInfo) -> go.Figure:
    """Each swept key's and the seed's share of the variance of the metric, per evaluator."""
    title = f"Hyper-parameter importance for {info.metric} (the seed included)"
    if not info.shares:
        return empty_figure(title, f"no importance: {info.reason}")
    labels = [f"{f} (the initialisation)" if f == SEED_FACTOR else f for f in info.factors]
    fig = go.Figure()
    for j, (name, shares) in enumerate(zip(info.evaluators, info.shares)):
        fig.add_bar(y=labels, x=list(shares), orientation="h", name=name,
                    marker=dict(color=EVALUATOR_COLORS[j % len(EVALUATOR_COLORS)],
                                pattern=dict(shape=["/" if f == SEED_FACTOR else ""
                                                    for f in info.factors])),
                    text=[f"{100 * s:.0f}%" for s in shares], textposition="outside",
                    hovertemplate="%{y}: %{x:.1%} by " + name + "<extra></extra>")
    top = max(max(s) for s in info.shares)
    dropped = f", {info.n_dropped} without a finite value left out" if info.n_dropped else ""
    base_layout(fig, f"{title}: {info.n_runs} runs{dropped}",
                height=140 + 46 * len(labels) * len(info.shares))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title=f"share of the variance of {info.metric}", tickformat=".0%",
                     # room for the labels at the bars' ends
                     range=[0, top * 1.12 + 0.04 if math.isfinite(top) else 1.1])
    fig.update_yaxes(autorange="reversed")
    return fig


def sweep_figures(runs: Sequence["RunInfo"], metric: str) -> dict[str, go.Figure]:
    """The overview's parallel coordinates of the finished ``runs`` when a key varies (the
    importance chart, which comes with it, has a callback of its own:
    :func:`store_importance_figure`)."""
    runs = [r for r in runs if r.status == "done" and r.config]
    parallel = parallel_info(runs, metric) if len(runs) > 1 else None
    return {} if parallel is None else {"fig-parallel": parallel_figure(parallel)}


def store_importance_figure(root: Path, runs: Sequence["RunInfo"], metric: str) -> go.Figure:
    """The importance chart (or why there is none) of the finished ``runs`` of the store
    at ``root``, from the store's cache when the report has filled it; the dashboard
    never writes the store, so a value it computes stays in its own memory."""
    runs = [r for r in runs if r.status == "done" and r.config]
    return importance_figure(importance_info(runs, metric, root, write=False))


__all__ = ["importance_figure", "parallel_figure", "store_importance_figure", "sweep_figures"]
