"""Plotly drawings of the records that need the trained network (:mod:`mlplab.figures.data_model`):
the decision boundary, its evolution over training (a slider), the network diagram.

>>> mix("#ff0000", 0.5)
'rgb(255,128,128)'
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from mlplab.figures.data_model import MAX_NODES, BoundaryInfo, NetworkInfo
from .plots import base_layout, finite_list

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")
POSITIVE, NEGATIVE = "#2f6fdf", "#f28e2b"     # weight signs, as in TensorFlow Playground


def class_color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def mix(color: str, share: float) -> str:
    """``color`` blended with white: share 1 is the colour, 0 is white."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    m = lambda c: round(255 + (c - 255) * share)  # noqa: E731
    return f"rgb({m(r)},{m(g)},{m(b)})"


def _surface(info: BoundaryInfo, probs: np.ndarray, visible: bool = True) -> list[go.Heatmap]:
    """Heatmaps of class probabilities ``[G, G, C]``: P(class 1) for two classes, else
    each class's probability where it is the most likely one."""
    u, v = finite_list(info.grid_u), finite_list(info.grid_v)
    names = info.class_names
    if probs.shape[-1] == 2:
        c0, c1 = class_color(0), class_color(1)
        label = f"P({names[1] if len(names) > 1 else 1})"
        return [go.Heatmap(x=u, y=v, z=np.round(probs[..., 1], 4).tolist(), zmin=0, zmax=1,
                           colorscale=[[0, mix(c0, 0.75)], [0.5, "#ffffff"], [1, mix(c1, 0.75)]],
                           zsmooth="best",
                           colorbar=dict(title=dict(text=label, side="right"), thickness=12, len=0.5,
                                         x=1.02, xanchor="left", y=0, yanchor="bottom"),
                           visible=visible, hovertemplate=f"{label} %{{z:.2f}}<extra></extra>"),
                go.Contour(x=u, y=v, z=np.round(probs[..., 1], 4).tolist(), showscale=False,
                           contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                           line=dict(color="#333", width=1.5), hoverinfo="skip", visible=visible,
                           showlegend=False)]
    top = probs.argmax(-1)
    out = []
    for k in range(probs.shape[-1]):
        z = np.where(top == k, probs[..., k], np.nan)
        name = names[k] if k < len(names) else str(k)
        out.append(go.Heatmap(x=u, y=v, z=[finite_list(row) for row in np.round(z, 4)],
                              zmin=1.0 / probs.shape[-1], zmax=1, showscale=False, visible=visible,
                              colorscale=[[0, "#ffffff"], [1, mix(class_color(k), 0.8)]],
                              hovertemplate=f"{name}: P %{{z:.2f}}<extra></extra>"))
    return out


def _points(info: BoundaryInfo) -> list[go.Scatter]:
    traces = []
    for part, xy, y, symbol in (("train", info.train_xy, info.train_y, "circle"),
                                ("test", info.test_xy, info.test_y, "diamond")):
        for k in np.unique(y).tolist():
            sel = y == k
            name = info.class_names[k] if k < len(info.class_names) else str(k)
            traces.append(go.Scatter(
                x=finite_list(xy[sel, 0]), y=finite_list(xy[sel, 1]), mode="markers",
                name=f"{part} · {name}", legendgroup=f"{part}{k}",
                marker=dict(symbol=symbol, size=6 if part == "train" else 8, color=class_color(k),
                            line=dict(width=1, color="#222" if part == "test" else "#fff")),
                hovertemplate=f"{part}, class {name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    return traces


def _axes(fig: go.Figure, info: BoundaryInfo) -> None:
    fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"))
    # equal scales; the plot area shrinks to the grid instead of the range growing
    fig.update_xaxes(title_text=info.axis_labels[0], range=[info.grid_u[0], info.grid_u[-1]],
                     showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(title_text=info.axis_labels[1], range=[info.grid_v[0], info.grid_v[-1]],
                     showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")


def _pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.0%}"


def boundary_figure(info: BoundaryInfo) -> go.Figure:
    """The kept network's class probabilities with the train (●) and test (◆) points."""
    fig = go.Figure(_surface(info, info.probs) + _points(info))
    title = (f"Decision boundary of the kept weights (attempt {info.attempt})<br>"
             f"<span style='font-size:12px'>train acc {_pct(info.train_acc)}"
             f" · test acc {_pct(info.test_acc)}</span>")
    if info.plane_note:
        title += f"<span style='font-size:11px;color:#777'> · {info.plane_note}</span>"
    fig = base_layout(fig, title, height=460)
    _axes(fig, info)
    return fig


def boundary_evolution_figure(info: BoundaryInfo) -> go.Figure:
    """The boundary at each stored snapshot epoch, chosen with a slider (the last shown)."""
    snaps = info.snapshots
    if len(snaps) == 0:
        fig = go.Figure()
        fig.add_annotation(text="no boundary snapshots stored", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False)
        return base_layout(fig, "Decision boundary during training", height=260)
    last = len(snaps) - 1
    surfaces = [_surface(info, snaps[i], visible=i == last) for i in range(len(snaps))]
    per = len(surfaces[0])
    points = _points(info)
    traces = [t for s in surfaces for t in s] + points
    steps = []
    for i, epoch in enumerate(info.snapshot_epochs[:len(snaps)]):
        visible = [j // per == i for j in range(per * len(snaps))] + [True] * len(points)
        steps.append(dict(method="restyle", args=[{"visible": visible}], label=str(epoch + 1)))
    fig = base_layout(go.Figure(traces), f"Decision boundary during training (attempt {info.attempt})",
                      height=500)
    _axes(fig, info)
    fig.update_layout(sliders=[dict(active=last, steps=steps, pad=dict(t=42, b=6),
                                    currentvalue=dict(prefix="epoch ", font=dict(size=13)))],
                      margin=dict(b=20))
    return fig


def network_figure(info: NetworkInfo) -> go.Figure:
    """Units as dots (colour: bias), weights as lines (width: |w|, colour: sign)."""
    cols = len(info.layer_sizes)
    pos: list[list[tuple[float, float]]] = []
    for c, n in enumerate(info.layer_sizes):
        shown = min(n, MAX_NODES)
        pos.append([(float(c), (shown - 1) / 2.0 - r) for r in range(shown)])
    wmax = max((float(np.abs(w).max()) for w in info.weights if w.size), default=1.0) or 1.0
    buckets: dict[tuple[bool, int], tuple[list, list]] = {}
    mid_x, mid_y, mid_text = [], [], []
    for li, w in enumerate(info.weights):
        for o in range(min(w.shape[0], MAX_NODES)):
            for i in range(min(w.shape[1], MAX_NODES)):
                (x0, y0), (x1, y1) = pos[li][i], pos[li + 1][o]
                key = (bool(w[o, i] >= 0), min(4, int(5 * abs(w[o, i]) / wmax)))
                xs, ys = buckets.setdefault(key, ([], []))
                xs += [x0, x1, None]
                ys += [y0, y1, None]
                mid_x.append(x0 + 0.5 * (x1 - x0))
                mid_y.append(y0 + 0.5 * (y1 - y0))
                mid_text.append(f"{info.node_names[li][i]} → {info.node_names[li + 1][o]}"
                                f"<br>w = {w[o, i]:.3g}")
    fig = go.Figure()
    for (positive, level), (xs, ys) in sorted(buckets.items()):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=POSITIVE if positive else NEGATIVE,
                                           width=0.6 + 1.6 * level), opacity=0.75))
    fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", marker=dict(size=6, opacity=0),
                             text=mid_text, hovertemplate="%{text}<extra></extra>",
                             showlegend=False))
    for c in range(cols):
        bias = info.biases[c - 1] if c > 0 else None
        names = info.node_names[c]
        xs = [p[0] for p in pos[c]]
        ys = [p[1] for p in pos[c]]
        colors = [0.0] * len(xs) if bias is None else [float(b) for b in bias[:len(xs)]]
        text = [names[r] + ("" if bias is None else f"<br>bias {colors[r]:.3g}")
                for r in range(len(xs))]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers+text", text=[names[r] for r in range(len(xs))],
            textposition="top center", hovertext=text, hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False, marker=dict(size=22, color=colors, cmid=0, line=dict(width=1.5, color="#333"),
                                          colorscale=[[0, NEGATIVE], [0.5, "#ffffff"], [1, POSITIVE]])))
        if info.layer_sizes[c] > MAX_NODES:
            fig.add_annotation(x=c, y=min(ys) - 0.8, text=f"+{info.layer_sizes[c] - MAX_NODES} more",
                               showarrow=False, font=dict(size=11, color="#777"))
    labels = ["inputs"] + [f"{l} ({info.activation})" for l in info.layers[:-1]] + \
             [f"{info.layers[-1]} ({info.output})" if info.layers else "outputs"]
    fig.update_xaxes(tickvals=list(range(cols)), ticktext=labels, showgrid=False, zeroline=False,
                     range=[-0.4, cols - 0.6])
    top = max((len(p) - 1) / 2.0 for p in pos)
    fig.update_yaxes(visible=False, range=[-top - 0.9, top + 0.6])
    size = " – ".join(str(s) for s in info.layer_sizes)
    fig = base_layout(fig, f"Network {size}: line width |w|, blue positive, orange negative",
                      height=max(320, 46 * min(MAX_NODES, max(info.layer_sizes)) + 120))
    return fig
