"""Plotly drawings of a run's loss landscape (:class:`mlplab.figures.data_landscape.LandscapeInfo`,
the record the PNGs draw): the interpolation lines and the 2-D slice with the training path.
Nothing here reads the store."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlplab.figures.data_landscape import LandscapeInfo
from .plots import TRAIN, VAL, base_layout, finite_list, run_color


def lines_figure(info: LandscapeInfo) -> go.Figure:
    """Loss from the initial to the final weights, and from the final weights to other
    seeds' (log scale)."""
    left, right = info.interpolation, info.barrier
    fig = make_subplots(rows=1, cols=2, subplot_titles=(left.title, right.title))
    for col, line in ((1, left), (2, right)):
        for i, curve in enumerate(line.curves):
            # other seeds: colours after the train and val ones
            color = (TRAIN, VAL)[i] if line is left and i < 2 else run_color(i + 2)
            fig.add_trace(go.Scatter(x=finite_list(line.alphas), y=finite_list(curve.values),
                                     name=curve.label, mode="lines", line=dict(color=color)),
                          row=1, col=col)
        fig.update_xaxes(title_text=f"alpha (0: {line.start}, 1: {line.end})", row=1, col=col)
        fig.update_yaxes(type="log", title_text="training loss" if col == 1 else None,
                         row=1, col=col)
    base_layout(fig, "Loss along straight lines" + (f" · {right.note}" if right.note else ""),
                height=440)
    # below the panels: above them the legend would cover the panels' titles
    fig.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=-0.22, yanchor="top"),
                      margin=dict(t=70, b=110))
    return fig


def slice_figure(info: LandscapeInfo) -> go.Figure:
    """Log10 training loss on the filter-normalised 2-D slice, the training path on it."""
    p = info.plane
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(p.loss) & (p.loss > 0), np.log10(p.loss), np.nan)
    fig = go.Figure(go.Contour(x=finite_list(p.u), y=finite_list(p.v),
                               z=[finite_list(row) for row in z],
                               colorscale="Viridis", ncontours=25,
                               colorbar=dict(title="log10 loss"), name="loss"))
    if p.path is not None:
        labels = ["initial" if e < 0 else f"epoch {e}" for e in p.path.epochs]
        fig.add_trace(go.Scatter(x=finite_list(p.path.u), y=finite_list(p.path.v), text=labels,
                                 mode="lines+markers", name="training path",
                                 line=dict(color="white"), marker=dict(size=6)))
    fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", name="final weights",
                             marker=dict(symbol="star", size=14, color="#ffd400")))
    unit = "filter-normalised" if p.kind == "random" else "path PC, weight units"
    fig.update_xaxes(title_text=f"direction 1 ({unit})")
    fig.update_yaxes(title_text=f"direction 2 ({unit})")
    return base_layout(fig, "Loss around the final weights", height=460)


def landscape_figures(info: LandscapeInfo | None) -> dict[str, go.Figure]:
    """The run page's landscape figures by name (none when the run has no landscape)."""
    if info is None:
        return {}
    return {"landscape_lines": lines_figure(info), "landscape_slice": slice_figure(info)}
