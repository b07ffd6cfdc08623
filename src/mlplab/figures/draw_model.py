"""PNG figures of what the network computes: decision boundary, its evolution, and a
TensorFlow-Playground-like network diagram (records from :mod:`mlplab.figures.data_model`).

>>> import numpy as np
>>> probs = np.zeros((2, 2, 2)); probs[..., 1] = [[0.1, 0.9], [0.2, 0.8]]; probs[..., 0] = 1 - probs[..., 1]
>>> probability_image(probs).shape
(2, 2, 3)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .data_model import MAX_NODES, BoundaryInfo, NetworkInfo
from .draw_run import (GUIDE_COLOR, NEGATIVE_COLOR, POSITIVE_COLOR, class_colors, layer_colors,
                       new_figure, note, styled)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def probability_image(probs: np.ndarray) -> np.ndarray:
    """RGB ``[G, G, 3]``: each cell in the colour of its most likely class, paler the
    less sure the network is (white at chance)."""
    from matplotlib.colors import to_rgb

    c = probs.shape[-1]
    rgb = np.array([to_rgb(col) for col in class_colors(c)])           # [C, 3]
    top = probs.argmax(-1)                                             # [G, G]
    conf = (probs.max(-1) - 1.0 / c) / (1.0 - 1.0 / c)                 # 0 at chance, 1 when sure
    strength = (0.12 + 0.5 * np.clip(conf, 0, 1))[..., None]
    return (1 - strength) * 1.0 + strength * rgb[top]


def _draw_plane(ax: "Axes", info: BoundaryInfo, probs: np.ndarray, points: str = "both",
                small: bool = False) -> None:
    u, v = info.grid_u, info.grid_v
    extent = (u[0], u[-1], v[0], v[-1])
    ax.imshow(probability_image(probs), origin="lower", extent=extent, aspect="auto",
              interpolation="bilinear", zorder=0)
    c = probs.shape[-1]
    if c == 2:
        levels_of = [probs[..., 1]]
    else:    # where a class's probability ties the best other class
        levels_of = [probs[..., k] - np.delete(probs, k, axis=-1).max(-1) + 0.5 for k in range(c)]
    for field in levels_of:
        if np.nanmin(field) < 0.5 < np.nanmax(field):
            ax.contour(u, v, field, levels=[0.5], colors="#212529", linewidths=0.9 if small else 1.3)
    colors = class_colors(c)
    size = 9 if small else 26
    for k in range(c):
        tr = info.train_xy[info.train_y == k]
        if len(tr) and points in ("both", "train"):
            ax.scatter(tr[:, 0], tr[:, 1], s=size, color=colors[k], edgecolors="white",
                       linewidths=0.4 if small else 0.6, zorder=3,
                       label=None if small else f"class {info.class_names[k]} (train)")
        te = info.test_xy[info.test_y == k]
        if len(te) and points == "both":
            ax.scatter(te[:, 0], te[:, 1], s=size * 1.6, marker="^", color=colors[k],
                       edgecolors="black", linewidths=0.7, zorder=4,
                       label=None if small else f"class {info.class_names[k]} (test)")
    ax.set_xlim(u[0], u[-1])
    ax.set_ylim(v[0], v[-1])
    ax.grid(False)


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


@styled
def draw_boundary(info: BoundaryInfo) -> "Figure":
    """Class regions of the kept network over the input plane (paler = less sure), the
    0.5 contour, training points (dots) and test points (triangles), and the accuracy."""
    n_classes = info.probs.shape[-1]
    fig, axes = new_figure(7.6 if n_classes <= 3 else 8.4, 6.2)
    ax = axes[0][0]
    _draw_plane(ax, info, info.probs)
    ax.set_xlabel(info.axis_labels[0])
    ax.set_ylabel(info.axis_labels[1])
    if len(info.train_xy) or len(info.test_xy):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    else:
        note(ax, "the run's data could not be loaded: no points drawn", "lower right")
    title = (f"Decision boundary of the kept network (attempt {info.attempt})\n"
             f"train accuracy {_pct(info.train_acc)} · test accuracy {_pct(info.test_acc)}")
    ax.set_title(title)
    if info.plane_note:
        fig.supxlabel(info.plane_note + " (the accuracy uses all inputs)", fontsize=8,
                      color=GUIDE_COLOR)
    return fig


@styled
def draw_boundary_evolution(info: BoundaryInfo) -> "Figure":
    """Small multiples of the decision boundary at the stored snapshots of the kept
    attempt, training points on each."""
    s = len(info.snapshot_epochs)
    ncols = min(4, max(1, s))
    nrows = max(1, math.ceil(s / ncols))
    fig, axes = new_figure(2.75 * ncols + 0.2, 2.55 * nrows + 0.55, nrows, ncols,
                           sharex=True, sharey=True)
    for i, ax in enumerate(axes.ravel()):
        if i >= s:
            ax.set_axis_off()
            continue
        _draw_plane(ax, info, info.snapshots[i], points="train", small=True)
        ax.set_title(f"after epoch {info.snapshot_epochs[i] + 1}", fontsize=9)
        ax.tick_params(labelsize=7)
    if s == 0:
        note(axes[0][0], "no snapshots stored")
    for ax in axes[-1]:
        ax.set_xlabel(info.axis_labels[0], fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(info.axis_labels[1], fontsize=8)
    fig.suptitle(f"Decision boundary during training (attempt {info.attempt}, {s} snapshots)")
    return fig


def node_scale(m: np.ndarray, kind: str, n_classes: int = 2) -> np.ndarray:
    """Map a unit's values to [-1, 1] for the blue/orange colour scale: an output
    probability around chance (1/C), an input around its mid-range, a hidden unit
    around 0 by its largest magnitude.

    >>> node_scale(np.array([0.0, 0.2, 1.0]), "output", 5).tolist()
    [-1.0, 0.0, 1.0]
    """
    if kind == "output":
        chance = 1.0 / max(n_classes, 2)
        return np.clip(np.where(m < chance, (m - chance) / chance, (m - chance) / (1 - chance)), -1, 1)
    if kind == "input":
        lo, hi = np.nanmin(m), np.nanmax(m)
        return (m - (lo + hi) / 2) / max((hi - lo) / 2, 1e-12)
    scale = max(float(np.nanmax(np.abs(m))), 1e-12)
    return m / scale


@styled
def draw_network(info: NetworkInfo) -> "Figure":
    """Units in columns, each drawn as what it computes over the input plane (blue high,
    orange low), joined by lines whose width is |weight| and colour its sign."""
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("playground", [NEGATIVE_COLOR, "#ffffff", POSITIVE_COLOR])
    cols = len(info.layer_sizes)
    shown = [min(n, MAX_NODES) for n in info.layer_sizes]
    tallest = max(shown)
    fig, axes = new_figure(max(7.0, 2.5 * cols + 1.5), max(3.8, 0.74 * tallest + 1.7))
    ax = axes[0][0]
    half, gap = 0.32, 3.0
    ys = [np.arange(n)[::-1] - (n - 1) / 2 for n in shown]
    max_w = max((float(np.abs(w).max()) for w in info.weights if w.size), default=1.0) or 1.0
    colors = layer_colors(info.layers)
    for i, w in enumerate(info.weights):                # edges first, under the nodes
        for a in range(shown[i + 1]):
            for b in range(shown[i]):
                mag = abs(float(w[a, b])) / max_w
                ax.plot([i * gap + half, (i + 1) * gap - half], [ys[i][b], ys[i + 1][a]],
                        color=POSITIVE_COLOR if w[a, b] > 0 else NEGATIVE_COLOR,
                        lw=0.3 + 5.0 * mag, alpha=0.25 + 0.7 * mag, zorder=1,
                        solid_capstyle="round")
    for c in range(cols):
        kind = "input" if c == 0 else "output" if c == cols - 1 else "hidden"
        x = c * gap
        for j in range(shown[c]):
            y = ys[c][j]
            box = (x - half, x + half, y - half, y + half)
            if info.maps is not None and j < len(info.maps[c]):
                n_classes = 2 if info.output == "sigmoid" else info.layer_sizes[-1]
                ax.imshow(node_scale(info.maps[c][j], kind, n_classes), origin="lower", extent=box, cmap=cmap,
                          vmin=-1, vmax=1, zorder=3, interpolation="bilinear")
            ax.add_patch(_square(box))
            name = info.node_names[c][j]
            if kind == "input":
                ax.text(x - half - 0.12, y, name, ha="right", va="center", fontsize=9)
            elif kind == "output":
                ax.text(x + half + 0.12, y, name, ha="left", va="center", fontsize=9)
            if c > 0:
                ax.text(x, y - half - 0.04, f"b={info.biases[c - 1][j]:+.2f}", ha="center",
                        va="top", fontsize=6.5, color="#495057")
        if info.layer_sizes[c] > shown[c]:
            ax.text(x, ys[c][-1] - half - 0.35, f"+{info.layer_sizes[c] - shown[c]} more",
                    ha="center", va="top", fontsize=8, color=GUIDE_COLOR)
        header = ("input" if kind == "input" else
                  f"{info.layers[c - 1]} · {info.activation if kind == 'hidden' else info.output}")
        ax.text(x, (tallest - 1) / 2 + half + 0.45, f"{header}\n({info.layer_sizes[c]} unit{'s' * (info.layer_sizes[c] != 1)})",
                ha="center", va="bottom", fontsize=9, fontweight="bold",
                color="#212529" if c == 0 else colors.get(info.layers[c - 1], "#212529"))
    ax.set_xlim(-gap * 0.55, (cols - 1) * gap + gap * 0.55)
    ax.set_ylim(-(tallest - 1) / 2 - half - 0.8, (tallest - 1) / 2 + half + 1.25)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("Network of the kept weights: lines are weights (blue > 0, orange < 0, width ∝ |w|);\n"
                 "each square shows the unit's output over the input plane (blue high, orange low;"
                 " outputs: above / below chance)",
                 fontsize=10)
    return fig


def _square(box: tuple[float, float, float, float]) -> Any:
    from matplotlib.patches import Rectangle

    x0, x1, y0, y1 = box
    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="#343a40", lw=0.8, zorder=4)
