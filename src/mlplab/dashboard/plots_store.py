"""Plotly drawings of the store-level figure data (:mod:`mlplab.figures.data_store`):
metric vs a hyper-parameter, optimizer × initialisation over seeds, success rate per
configuration, and the winners of each stage of a staged sweep.

>>> short_axis_label("train.optimizer")
'optimizer'
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlplab.figures.data_params import ParamCurveInfo
from mlplab.figures.data_store import ComparisonInfo, StageInfo, SuccessInfo
from .plots import base_layout, finite_list, mix_alpha, run_color, thin


def short_axis_label(key: str | None) -> str:
    return (key or "").split(".")[-1]


def _x_values(info: ParamCurveInfo, x: np.ndarray) -> list:
    """Plotly x: the category labels for a categorical key, else the numbers."""
    if info.x_scale == "category":
        return [info.categories[int(i)] for i in x]
    return finite_list(x)


def param_curve_figure(info: ParamCurveInfo) -> go.Figure:
    """One point per run and, per group, the median over runs at each value of the
    hyper-parameter with quartiles."""
    fig = go.Figure()
    cat = info.x_scale == "category"
    key = short_axis_label(info.x_key)
    hover_x = f"{key} %{{x}}" if cat else f"{key} %{{x:.3g}}"
    for i, g in enumerate(info.groups):
        color = run_color(i)
        bad = int(np.sum(g.n_bad))
        label = g.label + (f" ({bad} without a value)" if bad else "")
        if not cat:     # a band between categories would suggest values in between
            band_x = finite_list(np.concatenate([g.grid_x, g.grid_x[::-1]]))
            band_y = finite_list(np.concatenate([g.q75, g.q25[::-1]]))
            fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=mix_alpha(color, 0.15),
                                     mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                                     legendgroup=g.label))
        fig.add_trace(go.Scatter(x=_x_values(info, g.grid_x), y=finite_list(g.median),
                                 mode="markers" if cat else "lines+markers", offsetgroup=g.label,
                                 name=label, legendgroup=g.label, line=dict(color=color, width=2),
                                 marker=dict(size=9 if cat else 6, color=color),
                                 error_y=dict(type="data", symmetric=False, color=color, thickness=1.2,
                                              array=finite_list(g.q75 - g.median),
                                              arrayminus=finite_list(g.median - g.q25)) if cat else None,
                                 hovertemplate=f"{g.label}<br>{hover_x}<br>median %{{y:.4g}}"
                                               "<extra></extra>"))
        x, y = thin(g.x, g.value, 3000)
        fig.add_trace(go.Scatter(x=_x_values(info, x), y=finite_list(y), mode="markers",
                                 name=label, legendgroup=g.label, showlegend=False, offsetgroup=g.label,
                                 marker=dict(color=color, size=5, opacity=0.45),
                                 hovertemplate=f"{g.label}<br>{hover_x}<br>%{{y:.4g}}"
                                               "<extra>one run</extra>"))
    if cat:     # groups side by side within a category
        fig.update_layout(scattermode="group", scattergap=0.5)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(info.categories),
                         title_text=info.x_key)
    else:
        xs = np.unique(np.concatenate([g.grid_x for g in info.groups]))
        ticks = dict(tickvals=xs.tolist(), ticktext=[f"{v:g}" for v in xs]) if len(xs) <= 8 else \
            (dict(dtick=1, exponentformat="power") if info.x_scale == "log" else {})
        fig.update_xaxes(type=info.x_scale, title_text=info.x_key + (" (log scale)" if info.x_scale == "log"
                                                                    else ""), **ticks)
    fig.update_yaxes(title_text=f"{info.metric} at the kept weights")
    by = f", by {short_axis_label(info.group_key)}" if info.group_key else ""
    band = "bars" if cat else "band"
    return base_layout(fig, f"{info.metric} vs {info.x_key} ({info.n_runs} runs{by}; "
                            f"line: median, {band}: quartiles)", height=420)


def comparison_figure(info: ComparisonInfo) -> go.Figure:
    """Per panel (e.g. init) one line per value (e.g. optimizer): median over seeds of
    the per-epoch metric, quartiles as a band."""
    n = len(info.panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{short_axis_label(info.panel_key)}"
                                                              f" = {p}" for p in info.panels],
                        shared_yaxes=True, horizontal_spacing=0.05, vertical_spacing=0.14)
    seen: set[str] = set()
    for c in info.curves:
        k = info.panels.index(c.panel)
        row, col = k // cols + 1, k % cols + 1
        color = run_color(info.lines.index(c.line))
        x = c.epochs
        fig.add_trace(go.Scatter(x=finite_list(np.concatenate([x, x[::-1]])),
                                 y=finite_list(np.concatenate([c.q75, c.q25[::-1]])), fill="toself",
                                 fillcolor=mix_alpha(color, 0.15), mode="lines", line=dict(width=0),
                                 hoverinfo="skip", showlegend=False, legendgroup=c.line), row=row, col=col)
        xs, ys = thin(x, c.median)
        fig.add_trace(go.Scatter(x=finite_list(xs), y=finite_list(ys), mode="lines",
                                 name=c.line, legendgroup=c.line, showlegend=c.line not in seen,
                                 line=dict(color=color, width=2),
                                 hovertemplate=f"{c.label}<br>epoch %{{x}}<br>median %{{y:.4g}}"
                                               f"{' · diverged: ' + str(c.n_bad) if c.n_bad else ''}"
                                               "<extra></extra>"), row=row, col=col)
        seen.add(c.line)
    fig.update_xaxes(title_text="epoch (first attempt)", row=rows)
    fig.update_yaxes(title_text=info.metric, col=1)
    title = (f"{info.metric} per epoch: {short_axis_label(info.line_key)} × "
             f"{short_axis_label(info.panel_key)} (median and quartiles over seeds)")
    if info.several_configs:
        title += "<br><span style='font-size:11px;color:#777'>cells with several configurations"\
                 " show their best one</span>"
    fig = base_layout(fig, title, height=300 * rows + 140)
    fig.update_layout(margin=dict(t=96), legend=dict(orientation="v", x=1.01, xanchor="left", y=1,
                                                     yanchor="top", title=dict(
                                                         text=short_axis_label(info.line_key))))
    return fig


def success_figure(info: SuccessInfo) -> go.Figure:
    """Share of runs reaching the target on the first try and with restarts, and the
    share of all attempts that reached it, per configuration (best on top)."""
    bars = list(reversed(info.bars))
    labels = [b.label for b in bars]
    share = lambda num, den: [n / d if d else 0.0 for n, d in zip(num, den)]  # noqa: E731
    parts = (("first attempt", [b.first_try for b in bars], [b.n_runs for b in bars], "#9ecae1"),
             ("with restarts", [b.with_restarts for b in bars], [b.n_runs for b in bars], "#2f6fdf"),
             ("share of attempts", [b.attempts_met for b in bars], [b.attempts for b in bars], "#f28e2b"))
    fig = go.Figure()
    for name, num, den, color in parts:
        fig.add_trace(go.Bar(y=labels, x=share(num, den), orientation="h", name=name,
                             marker_color=color, customdata=np.stack([num, den], axis=1).tolist(),
                             hovertemplate=f"%{{y}}<br>{name}: %{{x:.0%}} "
                                           "(%{customdata[0]} of %{customdata[1]})<extra></extra>"))
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%", title_text="reached the target")
    targets = ", ".join(f"{t:g}" for t in info.targets)
    more = f", best {len(bars)} of {info.n_configs}" if info.n_configs > len(bars) else ""
    fig = base_layout(fig, f"Success rate per configuration ({info.monitor} target {targets}{more})",
                      height=max(300, 26 * len(bars) * 1.6 + 140))
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(automargin=True)
    return fig


def stage_figure(info: StageInfo) -> go.Figure:
    """Per stage, every candidate's per-seed values and score; the winner in green."""
    n = max(1, len(info.stages))
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.06,
                        subplot_titles=[f"stage {s.stage + 1}: {', '.join(map(short_axis_label, s.keys))}"
                                        f"<br>winner {s.winner_label}" for s in info.stages])
    for k, stage in enumerate(info.stages, start=1):
        for cand in stage.candidates:
            color = "#1e8e3e" if cand.winner else "#7f8c99"
            fig.add_trace(go.Scatter(x=[cand.label] * len(cand.values), y=finite_list(cand.values),
                                     mode="markers", showlegend=False,
                                     marker=dict(color=color, size=6, opacity=0.55),
                                     hovertemplate=f"{cand.label}<br>one seed: %{{y:.4g}}<extra></extra>"),
                          row=1, col=k)
            fig.add_trace(go.Scatter(x=[cand.label], y=finite_list([cand.score]), mode="markers",
                                     showlegend=False, marker=dict(symbol="line-ew-open", size=26,
                                                                   color=color, line=dict(width=3)),
                                     hovertemplate=f"{cand.label}<br>{info.statistic}: %{{y:.4g}}"
                                                   f"{' (winner)' if cand.winner else ''}<extra></extra>"),
                          row=1, col=k)
    fig.update_yaxes(title_text=f"{info.metric} ({info.statistic} over seeds: bar)", col=1)
    fig.update_xaxes(tickangle=-30)
    fig = base_layout(fig, f"Staged sweep {info.name or info.sweep_id}: the winner of each stage",
                      height=440)
    fig.update_layout(margin=dict(t=100))
    return fig
