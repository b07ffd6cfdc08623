"""Plotly overlays of several runs' figure data (the compare page).

One colour per run; within a run the same record fields the single-run figures draw
(:class:`mlplab.figures.data_run.LossInfo`, the ``grad_norm`` :class:`LayerSeriesInfo`).
``loss_overlay([load_run_figdata(store, "a"), load_run_figdata(store, "b")])`` draws
two runs' losses in one figure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlplab.figures.data_run import LayerSeriesInfo, RunFigureData
from .plots import base_layout, decades, finite_list, run_color, thin


def _label(data: RunFigureData) -> str:
    return data.run_id if len(data.run_id) <= 40 else data.run_id[:37] + "…"


def loss_overlay(runs: Sequence[RunFigureData]) -> go.Figure:
    """Val loss (solid) and train loss (dotted) of every attempt of each run."""
    fig = go.Figure()
    per_step = any(r.loss.per_step for r in runs)
    for i, data in enumerate(runs):
        color, name = run_color(i), _label(data)
        first = True
        for curve in data.loss.curves:
            for part, y, dash in (("val loss", curve.val_loss, "solid"),
                                  ("train loss", curve.train_loss, "dot")):
                if not np.isfinite(y).any():
                    continue
                x, yy = thin(curve.x, y)
                fig.add_trace(go.Scatter(
                    x=finite_list(x), y=finite_list(yy), mode="lines", name=name,
                    legendgroup=data.run_id, showlegend=first, line=dict(color=color, dash=dash,
                                                                          width=1.8),
                    hovertemplate=f"{name}<br>{part} (attempt {curve.attempt}) %{{y:.4g}}"
                                  "<br>x %{x}<extra></extra>"))
                first = False
    fig.update_yaxes(title_text="loss (val solid, train dotted)")
    fig.update_xaxes(title_text="step (all attempts)" if per_step else
                     "epoch (all attempts, end to end)")
    return _legend_right(base_layout(fig, "Loss of the selected runs", height=420))


def _legend_right(fig: go.Figure) -> go.Figure:
    """Run ids can be long: list them beside the plot, not over it."""
    fig.update_layout(legend=dict(orientation="v", x=1.01, xanchor="left", y=1, yanchor="top",
                                  title=dict(text="run")))
    return fig


def _grad(data: RunFigureData) -> LayerSeriesInfo | None:
    return next((s for s in data.series if s.family == "grad_norm"), None)


def grad_norm_overlay(runs: Sequence[RunFigureData]) -> go.Figure:
    """Weight-gradient L2 norm per layer (one panel each), one colour per run, log y."""
    layers: list[str] = []
    for data in runs:
        series = _grad(data)
        for layer in (series.layers if series else ()):
            if layer not in layers:
                layers.append(layer)
    cols = max(1, len(layers))
    fig = make_subplots(rows=1, cols=cols, subplot_titles=layers or None, shared_yaxes=True,
                        horizontal_spacing=0.04)
    for i, data in enumerate(runs):
        series = _grad(data)
        if series is None:
            continue
        color, name, first = run_color(i), _label(data), True
        for c in series.curves:
            if c.part != "w":
                continue
            y = c.y_smooth if c.y_smooth is not None else c.y
            x, yy = thin(c.x, y)
            fig.add_trace(go.Scatter(
                x=finite_list(x), y=finite_list(yy), mode="lines", name=name,
                legendgroup=data.run_id, showlegend=first, line=dict(color=color, width=1.5),
                hovertemplate=f"{name}<br>{c.layer} ‖∇w‖ %{{y:.3g}}<br>step %{{x}}<extra></extra>"),
                row=1, col=layers.index(c.layer) + 1)
            first = False
    ys = [c.y for data in runs for c in (_grad(data).curves if _grad(data) else ()) if c.part == "w"]
    fig.update_yaxes(type="log", exponentformat="power", dtick=1 if decades(ys) > 2 else None)
    fig.update_yaxes(title_text="‖∇w‖ (L2, log scale)", col=1)
    fig.update_xaxes(title_text="step")
    return _legend_right(base_layout(fig, "Weight-gradient norm per layer of the selected runs",
                                     height=400))
