"""Plotly drawings of the figure-data records of one run (:mod:`mlplab.figures.data_run`).

Each function takes one frozen ``*Info`` record, the same the PNG figures draw, and
returns a ``plotly.graph_objects.Figure``; nothing here reads the store or computes
a measurement. Long series are thinned for the browser (drawing, not data).

>>> import numpy as np
>>> thin(np.arange(10.0), np.arange(10.0), max_points=4)[0].tolist()
[0.0, 3.0, 6.0, 9.0]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from mlplab.figures.data_curvature import CurvatureInfo
from mlplab.figures.data_run import ActivationInfo, InitDistInfo, LayerSeriesInfo, LossInfo
from mlplab.figures.data_spans import AttemptSpan

MAX_POINTS = 1500        # per drawn curve; the browser stays quick with many runs
TRAIN, VAL = "#1f77b4", "#ff7f0e"
# one colour per layer (layer1, layer2, ...), the same in every figure
LAYER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
              "#7f7f7f", "#bcbd22", "#17becf")
# every figure's template, loaded (from plotly's JSON, about 0.3 s) when the dashboard is
# imported rather than inside the first visitor's request
TEMPLATE = pio.templates["plotly_white"]
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12.5)


def layer_color(layer: str, layers: Sequence[str]) -> str:
    """The colour of ``layer``: its position in ``layers`` (the run's layer order)."""
    i = list(layers).index(layer) if layer in layers else len(layers)
    return LAYER_COLORS[i % len(LAYER_COLORS)]


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def mix_alpha(color: str, alpha: float) -> str:
    """``#rrggbb`` as ``rgba(...)`` with opacity ``alpha`` (for bands).

    >>> mix_alpha("#ff0000", 0.5)
    'rgba(255,0,0,0.5)'
    """
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th point (first and last kept) so a curve has at most ``max_points``."""
    n = len(x)
    if n <= max_points:
        return np.asarray(x), np.asarray(y)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return np.asarray(x)[idx], np.asarray(y)[idx]


def finite_list(a: np.ndarray) -> list:
    """JSON-safe values: nan/inf become gaps (None)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, np.float64)]


def finite_array(a: Any) -> np.ndarray:
    """float64 values, nan/inf as NaN (a gap: plotly's JSON writes it null). Plotly checks
    a numpy array in one step where it walks a list element by element (most of the cost
    of building a figure of many points).

    >>> finite_array([1.0, float("inf")])
    array([ 1., nan])
    """
    x = np.array(a, dtype=np.float64)
    x[~np.isfinite(x)] = np.nan
    return x


def decades(arrays: Sequence[np.ndarray]) -> float:
    """How many powers of ten the positive finite values span (for log-axis ticks)."""
    vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays]) if arrays else np.zeros(0)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return float(np.log10(vals.max() / vals.min())) if len(vals) else 0.0


def base_layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
                      height=height, margin=dict(l=60, r=20, t=48, b=46), font=FONT,
                      template=TEMPLATE, hovermode="closest", uirevision="keep",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return fig


def mark_attempts(fig: go.Figure, spans: Sequence[AttemptSpan], per_step: bool,
                  rows: Sequence[int] = (1,)) -> None:
    """A dotted line where each restart began, labelled with why the attempt before ended."""
    for prev, span in zip(spans, spans[1:]):
        x = (span.start_step if per_step else span.start_epoch + 0.5)
        for row in rows:
            kw = dict(row=row, col=1) if len(rows) > 1 or row != 1 else {}
            fig.add_vline(x=x, line=dict(color="#888", width=1, dash="dot"), **kw)
        fig.add_annotation(x=x, y=1, yref="paper", text=f"restart {span.attempt}<br>"
                           f"<span style='color:#888'>({prev.end_reason})</span>",
                           showarrow=False, xanchor="left", yanchor="top", font=dict(size=10.5),
                           bgcolor="rgba(255,255,255,0.8)")


def loss_figure(info: LossInfo) -> go.Figure:
    """Train and val loss (top) and accuracy (bottom) of every attempt, end to end."""
    has_acc = any(np.isfinite(c.val_acc).any() or np.isfinite(c.train_acc).any() for c in info.curves)
    fig = make_subplots(rows=2 if has_acc else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.64, 0.36] if has_acc else None, vertical_spacing=0.06)
    first = True
    for curve in info.curves:
        series = [("train loss", curve.train_loss, TRAIN, "solid", 1),
                  ("val loss", curve.val_loss, VAL, "solid", 1)]
        if has_acc:
            series += [("train acc", curve.train_acc, TRAIN, "dot", 2),
                       ("val acc", curve.val_acc, VAL, "dot", 2)]
        for name, y, color, dash, row in series:
            if not np.isfinite(y).any():
                continue
            x, y = thin(curve.x, y)
            fig.add_trace(go.Scatter(x=finite_list(x), y=finite_list(y), name=name, legendgroup=name,
                                     showlegend=first, mode="lines",
                                     line=dict(color=color, dash=dash, width=1.8),
                                     hovertemplate=f"attempt {curve.attempt}<br>{name} %{{y:.4g}}"
                                                   "<br>x %{x}<extra></extra>"), row=row, col=1)
        first = False
    for span in info.spans:         # the best epoch of each attempt
        if span.best_epoch < 0 or info.per_step or not math.isfinite(span.best_value):
            continue
        row = 2 if has_acc and info.monitor.endswith("acc") else 1
        fig.add_trace(go.Scatter(
            x=[span.start_epoch + span.best_epoch + 1], y=[span.best_value], mode="markers",
            name="best (kept)" if span.kept else "best", legendgroup="best" + str(span.kept),
            marker=dict(symbol="star", size=13 if span.kept else 9,
                        color="#2ca02c" if span.kept else "#999", line=dict(width=1, color="#333")),
            hovertemplate=f"attempt {span.attempt}: best {info.monitor} %{{y:.4g}}"
                          f"<br>ended by {span.end_reason}<extra></extra>"), row=row, col=1)
    if info.target is not None:
        fig.add_hline(y=info.target, line=dict(color="#2ca02c", dash="dash", width=1),
                      annotation_text=f"target {info.target:g}", row=1, col=1)
    mark_attempts(fig, info.spans, info.per_step)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    if has_acc:
        fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text=info.x_label, row=2 if has_acc else 1, col=1)
    return base_layout(fig, "Loss and accuracy (every attempt)", height=440 if has_acc else 360)


def layer_series_figure(info: LayerSeriesInfo) -> go.Figure:
    """Weights (top) and biases (bottom): one line per layer and attempt, colour by layer."""
    parts = [p for p in ("w", "b") if any(c.part == p for c in info.curves)] or ["w"]
    fig = make_subplots(rows=len(parts), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    seen: set[str] = set()
    for c in info.curves:
        if c.part not in parts:
            continue
        row = parts.index(c.part) + 1
        color = layer_color(c.layer, info.layers)
        what = f"{c.layer} {'weight' if c.part == 'w' else 'bias'}"
        smooth = c.y_smooth is not None
        x, y = thin(c.x, c.y)
        fig.add_trace(go.Scatter(x=finite_list(x), y=finite_list(y), name=c.layer,
                                 legendgroup=c.layer, showlegend=c.layer not in seen and not smooth,
                                 mode="lines", opacity=0.3 if smooth else 1.0,
                                 line=dict(color=color, width=1 if smooth else 1.6),
                                 hovertemplate=f"{what} (attempt {c.attempt})<br>step %{{x}}"
                                               "<br>%{y:.3g}<extra></extra>"), row=row, col=1)
        if smooth:
            xs, ys = thin(c.x, c.y_smooth)
            fig.add_trace(go.Scatter(x=finite_list(xs), y=finite_list(ys), name=c.layer,
                                     legendgroup=c.layer, showlegend=c.layer not in seen,
                                     mode="lines", line=dict(color=color, width=2),
                                     hovertemplate=f"{what} rolling median<br>step %{{x}}"
                                                   "<br>%{y:.3g}<extra></extra>"), row=row, col=1)
        seen.add(c.layer)
    for row, part in enumerate(parts, start=1):
        if info.reference is not None:
            label = dict(annotation_text=f"{info.reference:g} rule of thumb") if row == 1 else {}
            fig.add_hline(y=info.reference, line=dict(color="#888", dash="dash", width=1),
                          row=row, col=1, **label)
        ys = [c.y for c in info.curves if c.part == part]
        fig.update_yaxes(title_text=info.y_labels[0 if part == "w" else 1],
                         type="log" if info.log_y else "linear",
                         exponentformat="power" if info.log_y else "B",
                         dtick=1 if info.log_y and decades(ys) > 2 else None, row=row, col=1)
    mark_attempts(fig, info.spans, per_step=True, rows=tuple(range(1, len(parts) + 1)))
    fig.update_xaxes(title_text="step (all attempts)", row=len(parts), col=1)
    title = info.title + (f" ({info.undefined} undefined points left out)" if info.undefined else "")
    return base_layout(fig, title, height=440 if len(parts) == 2 else 340)


SHARES = {"dead": (("dead", "dead share", "solid"),),
          "saturated": (("saturated", "saturated share", "solid"),),
          "both": (("dead", "dead share", "solid"), ("saturated", "saturated share", "dash")),
          None: ()}


def activation_figure(info: ActivationInfo) -> go.Figure:
    """Dead and/or saturated share of units (top, as the activation calls for) and the
    pre-activation mean ± std (bottom), per hidden layer."""
    shares = SHARES.get(info.kind, ())
    rows = 2 if shares else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    stats_row = rows
    seen: set[str] = set()
    for c in info.curves:
        color = layer_color(c.layer, info.layers)
        for field, label, dash in shares:
            x, share = thin(c.x, getattr(c, field))
            fig.add_trace(go.Scatter(x=finite_list(x), y=finite_list(share), name=c.layer,
                                     legendgroup=c.layer, showlegend=c.layer not in seen,
                                     mode="lines", line=dict(color=color, width=1.8, dash=dash),
                                     hovertemplate=f"{c.layer}: {label} %{{y:.0%}}<br>step %{{x}}"
                                                   "<extra></extra>"), row=1, col=1)
            seen.add(c.layer)
        x, mean = thin(c.x, c.mean)
        _, std = thin(c.x, c.std)
        band_x = finite_list(np.concatenate([x, x[::-1]]))
        band_y = finite_list(np.concatenate([mean + std, (mean - std)[::-1]]))
        fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=mix_alpha(color, 0.15),
                                 mode="lines", line=dict(width=0), hoverinfo="skip",
                                 showlegend=False, legendgroup=c.layer), row=stats_row, col=1)
        fig.add_trace(go.Scatter(x=finite_list(x), y=finite_list(mean), name=c.layer,
                                 legendgroup=c.layer, showlegend=c.layer not in seen, mode="lines",
                                 line=dict(color=color, width=1.4),
                                 hovertemplate=f"{c.layer}: mean %{{y:.3g}}<br>step %{{x}}"
                                               "<extra></extra>"), row=stats_row, col=1)
        seen.add(c.layer)
    mark_attempts(fig, info.spans, per_step=True, rows=tuple(range(1, rows + 1)))
    if shares:
        fig.update_yaxes(title_text=shares[0][1] if len(shares) == 1 else "share of units",
                         range=[-0.02, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title_text="pre-act. mean ± std", row=stats_row, col=1)
    fig.update_xaxes(title_text="step (all attempts)", row=stats_row, col=1)
    what = {"dead": "Dead ReLU units", "saturated": f"Saturated {info.activation} units",
            "both": "Dead (solid) and saturated (dashed) units"}.get(
        info.kind or "", f"Pre-activations ({info.activation or 'no activation'}: no dead or "
                         "saturated units to count)")
    return base_layout(fig, f"{what} per hidden layer", height=420 if rows == 2 else 320)


def init_figure(info: InitDistInfo) -> go.Figure:
    """A box of initial weights per layer, with the scheme's bound or ±std as ticks."""
    fig = go.Figure()
    for i, (layer, w) in enumerate(zip(info.layers, info.weights)):
        color = layer_color(layer, info.layers)
        shape = info.shapes[i]
        label = f"{layer}<br>" + (f"{shape[1]}→{shape[0]}" if len(shape) == 2 else
                                  "×".join(map(str, shape)))
        fig.add_trace(go.Box(y=finite_list(w), name=label, marker_color=color, boxpoints=
                             "all" if len(w) <= 400 else "outliers", jitter=0.4, pointpos=0,
                             marker=dict(size=3, opacity=0.5), line=dict(width=1.5),
                             hovertemplate=f"{layer}<br>%{{y:.3g}}<extra></extra>"))
        spread, kind = info.expected[i], info.expected_kind[i]
        if spread is not None:
            fig.add_trace(go.Scatter(
                x=[label, label], y=[-spread, spread], mode="markers", showlegend=False,
                marker=dict(symbol="line-ew-open", size=34, color="#444", line=dict(width=2)),
                hovertemplate=f"{info.schemes[i]}: ±{kind} {spread:.3g}<extra></extra>"))
    fig.update_yaxes(title_text="initial weight value")
    schemes = ", ".join(dict.fromkeys(s for s in info.schemes if s)) or "unknown scheme"
    fig = base_layout(fig, f"Initial weights per layer (attempt {info.attempt}; {schemes})")
    fig.update_layout(showlegend=False)
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A titled figure saying why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=13, color="#888"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, title, height=260)


def curvature_figure(info: "CurvatureInfo") -> go.Figure:
    """Sharpness, lr x sharpness with the stability bound as a line, and the Hessian trace."""
    rows = (("sharpness", "sharpness"), ("stability", "lr × sharpness"),
            ("hess_trace", "Hessian trace"))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, (metric, label) in enumerate(rows, start=1):
        for c in info.curves:
            y = getattr(c, metric)
            fig.add_trace(go.Scatter(x=finite_list(c.x), y=finite_list(y), mode="lines+markers",
                                     name=f"{label} (attempt {c.attempt})", showlegend=False,
                                     connectgaps=True, marker=dict(size=3),
                                     hovertemplate=f"{label} (attempt {c.attempt})<br>step "
                                                   "%{x}<br>%{y:.4g}<extra></extra>"),
                          row=row, col=1)
        fig.update_yaxes(title_text=label, row=row, col=1)
    if info.bound is not None:
        fig.add_hline(y=info.bound, line=dict(color="#d93025", dash="dash", width=1), row=2,
                      col=1, annotation_text=f"stability bound {info.bound:.3g}")
    mark_attempts(fig, info.spans, per_step=True, rows=(1, 2, 3))
    fig.update_xaxes(title_text="step (all attempts)", row=3, col=1)
    return base_layout(fig, "Curvature of the loss on the probe batch", height=560)
