"""PNG figures of a sweep's hyper-parameters, drawn from the records of
:mod:`mlplab.figures.data_parallel` and :mod:`mlplab.figures.data_importance`: the
parallel coordinates (one line per configuration, coloured by the median over seeds of
the metric) and the importance chart (each swept key's and the seed's share of the
variance, by fANOVA and PED-ANOVA side by side).

>>> import numpy as np
>>> from mlplab.figures.data_importance import ImportanceInfo
>>> info = ImportanceInfo("val_loss", ("train.lr", "model.init", "train.seed"), ("fANOVA",),
...                       ((0.5, 0.1, 0.4),), 30, 0)
>>> [round(v) for v in draw_importance(info).get_size_inches() * 100]
[900, 285]
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from .data_importance import SEED_FACTOR, ImportanceInfo
from .data_parallel import ParallelInfo
from .draw_run import GUIDE_COLOR, new_figure, note, styled
from .draw_store import SERIES_COLORS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAN_COLOR = "#adb5bd"
# A numeric axis labels each of its values up to this many, else only its ends.
MAX_TICKS = 6


def _unit(values: np.ndarray, kind: str, n_ticks: int = 0) -> np.ndarray:
    """Values mapped to [0, 1] along their axis (log10 first on a log axis; a category
    axis by its position among ``n_ticks``)."""
    v = np.asarray(values, np.float64)
    if kind == "category":
        return v / max(n_ticks - 1, 1)
    if kind == "log":
        v = np.log10(v)
    lo, hi = np.nanmin(v), np.nanmax(v)
    return np.full_like(v, 0.5) if not hi > lo else (v - lo) / (hi - lo)


@styled
def draw_parallel(info: ParallelInfo) -> "Figure":
    """Parallel coordinates of the sweep: one line per configuration across an axis for
    each swept key and one for the metric, coloured by the median over its seeds of the
    metric (grey: no seed finished with a finite value). Numbers are on their own scale
    (log where they span a decade), categories at evenly spaced ticks."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    names = [a.key for a in info.axes] + [info.metric]
    fig, axes = new_figure(max(6.0, 1.9 * len(names) + 1.5), 4.6, layout="constrained")  # its colorbar
    ax = axes[0, 0]
    cols = [_unit(a.values, a.kind, len(a.ticks)) for a in info.axes]
    finite = np.isfinite(info.median)
    cols.append(_unit(np.where(finite, info.median, np.nan), "linear"))
    ys = np.stack(cols, axis=1)                             # [C, A]
    x = np.arange(len(names))
    cmap = colormaps["viridis_r" if info.mode == "min" else "viridis"]
    norm = (Normalize(np.nanmin(info.median[finite]), np.nanmax(info.median[finite]))
            if finite.any() else Normalize(0, 1))
    order = np.argsort(np.where(finite, info.median, -np.inf if info.mode == "min" else np.inf))
    order = order[::-1] if info.mode == "min" else order   # the best drawn last, on top
    # one artist for each run of lines of one kind, in the drawing order (hundreds of
    # plot calls cost a Line2D each); styled as plot styles a line
    for nan_run, run in itertools.groupby(order, key=lambda c: not finite[c]):
        run = list(run)
        if nan_run:
            ax.add_collection(LineCollection([np.column_stack([x[:-1], ys[c, :-1]]) for c in run],
                                             colors=NAN_COLOR, linewidths=1.0, linestyles="--",
                                             alpha=0.8, capstyle="butt", joinstyle="round"),
                              autolim=False)
        else:
            ax.add_collection(LineCollection([np.column_stack([x, ys[c]]) for c in run],
                                             colors=[cmap(norm(info.median[c])) for c in run],
                                             linewidths=1.6, alpha=0.85, capstyle="projecting",
                                             joinstyle="round"), autolim=False)
    for i, a in enumerate(info.axes):
        ax.axvline(i, color=GUIDE_COLOR, lw=0.8, zorder=0)
        if a.kind == "category":
            ticks = [(j / max(len(a.ticks) - 1, 1), t) for j, t in enumerate(a.ticks)]
        else:   # each value when there are few, else the ends
            at = {float(v): float(u) for v, u in zip(a.values, cols[i])}
            shown = sorted(at) if len(at) <= MAX_TICKS else [min(at), max(at)]
            ticks = [(at[v], f"{v:.3g}") for v in shown]
        for y, t in ticks:
            ax.annotate(t, (i, y), xytext=(4, 0), textcoords="offset points", fontsize=8,
                        va="center",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
    ax.axvline(len(info.axes), color=GUIDE_COLOR, lw=0.8, zorder=0)
    if finite.any():
        lo, hi = float(np.min(info.median[finite])), float(np.max(info.median[finite]))
        for y, v in ((0.0, lo), (1.0, hi)) if hi > lo else ((0.5, lo),):
            ax.annotate(f"{v:.3g}", (len(info.axes), y), xytext=(4, 0), textcoords="offset points",
                        fontsize=8, va="center")
    ax.set_xticks(x, [n + (" (log)" if i < len(info.axes) and info.axes[i].kind == "log" else "")
                      for i, n in enumerate(names)], fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(names) - 0.6)
    ax.set_ylim(-0.06, 1.06)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=f"median {info.metric} over seeds")
    ax.set_title(f"{info.n_configs} configurations, {int(info.n_seeds.sum())} runs"
                 f" (best: {'lowest' if info.mode == 'min' else 'highest'} {info.metric},"
                 " drawn on top)")
    if not finite.all():
        note(ax, f"{int((~finite).sum())} configuration(s) with no finite {info.metric}:"
                 " grey dashes",
             "lower right")
    return fig


@styled
def draw_importance(info: ImportanceInfo) -> "Figure":
    """How much of the variance of the metric over the runs each swept key explains, and
    how much the seed alone (the initialisation) explains, by Optuna's fANOVA and
    PED-ANOVA (each evaluator's shares sum to 1)."""
    k, e = len(info.factors), max(len(info.evaluators), 1)
    fig, axes = new_figure(9.0, max(2.4, 0.55 * k * e + 1.2))
    ax = axes[0, 0]
    if not info.shares:
        note(ax, f"no importance: {info.reason}")
        ax.set_axis_off()
        return fig
    height = 0.8 / e
    y = np.arange(k)[::-1].astype(float)                    # the first factor on top
    for j, (name, shares) in enumerate(zip(info.evaluators, info.shares)):
        pos = y + 0.4 - height * (j + 0.5)
        bars = ax.barh(pos, shares, height * 0.92, color=SERIES_COLORS[j], label=name)
        for f, bar, s in zip(info.factors, bars, shares):
            if f == SEED_FACTOR:
                bar.set_hatch("///")
                bar.set_edgecolor("white")
            ax.annotate(f"{100 * s:.0f}%", (s, bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y, [f"{f} (the initialisation)" if f == SEED_FACTOR else f for f in info.factors])
    top = max((max(s) for s in info.shares), default=1.0)
    ax.set_xlim(0, min(1.0, top * 1.15 + 0.05) if math.isfinite(top) else 1.0)
    ax.set_xlabel(f"share of the variance of {info.metric}")
    ax.legend(loc="lower right", fontsize=8)
    dropped = f"; {info.n_dropped} with no finite value left out" if info.n_dropped else ""
    ax.set_title(f"Importance over {info.n_runs} runs{dropped}")
    return fig


__all__ = ["draw_parallel", "draw_importance"]
