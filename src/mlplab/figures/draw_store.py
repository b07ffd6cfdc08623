"""PNG figures of a set of runs, drawn from the records of :mod:`mlplab.figures.data_store`
and :mod:`mlplab.figures.data_params`: metric vs a hyper-parameter (learning rate, hidden
sizes, ...), optimizer × initialisation over seeds, success rate per configuration and
the stages of a staged sweep.

>>> import numpy as np
>>> from mlplab.figures.data_params import ParamCurveInfo, ParamGroup
>>> a = lambda *v: np.array(v, dtype=float)
>>> g = ParamGroup("all runs", a(0.01, 0.1), a(0.3, 0.1), a(0.01, 0.1), a(0.3, 0.1), a(0.3, 0.1),
...                a(0.3, 0.1), np.array([0, 0]))
>>> info = ParamCurveInfo("val_loss", "train.lr", "log", (), None, (g,), 2)
>>> [round(v) for v in draw_param_curve(info).get_size_inches() * 100]
[900, 520]
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .data_params import ParamCurveInfo, ParamGroup
from .data_store import ComparisonInfo, StageInfo, SuccessInfo
from .draw_run import GUIDE_COLOR, new_figure, note, positive_log, styled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SERIES_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                 "#a6761d", "#666666", "#1f78b4", "#b15928")


def series_colors(labels: Sequence[str]) -> dict[str, str]:
    """Colours of the compared groups (optimizers, ...), distinct from the layer palette."""
    return {label: SERIES_COLORS[i % len(SERIES_COLORS)] for i, label in enumerate(labels)}


def _short_key(key: str | None) -> str:
    return (key or "").split(".")[-1]


def _metric_axis(metric: str) -> str:
    return f"{metric} at the kept weights"


def axis_name(key: str, scale: str) -> str:
    """An x-axis label for a config key: ``train.lr (log scale)``."""
    return key + {"log": " (log scale)", "category": ""}.get(scale, "")


def _jitter(g: ParamGroup, scale: str, span: float, rng: np.random.Generator) -> np.ndarray:
    """The runs' x, moved a little so the seeds of one x sit side by side."""
    if scale == "log":
        return g.x * 10 ** rng.uniform(-0.025, 0.025, len(g.x))
    width = 0.04 if scale == "category" else 0.012 * span
    return g.x + rng.uniform(-width, width, len(g.x))


@styled
def draw_param_curve(info: ParamCurveInfo) -> "Figure":
    """Every run as a dot at its value of the hyper-parameter (log x for a learning-rate
    like key, categories for names and hidden sizes), the median over seeds as a line and
    the quartiles as a band per group (for categories: a dot with quartile bars); runs
    without a value marked at the top."""
    from matplotlib.transforms import blended_transform_factory

    fig, axes = new_figure(9, 5.2)
    ax = axes[0][0]
    colors = series_colors([g.label for g in info.groups])
    rng = np.random.default_rng(0)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    every = np.concatenate([g.grid_x for g in info.groups])
    span = float(every.max() - every.min()) if len(every) else 1.0
    cat = info.x_scale == "category"
    for k, g in enumerate(info.groups):
        color = colors[g.label]
        finite = np.isfinite(g.value)
        # categories: groups side by side, quartiles as bars (no line between unordered values)
        shift = (k - (len(info.groups) - 1) / 2) * min(0.5 / len(info.groups), 0.15) if cat else 0.0
        ax.scatter(_jitter(g, info.x_scale, span, rng)[finite] + shift, g.value[finite], s=16,
                   color=color, alpha=0.45, lw=0)
        name = g.label if info.group_key else "median over seeds"
        if cat:
            ax.errorbar(g.grid_x + shift, g.median, yerr=[g.median - g.q25, g.q75 - g.median], fmt="o",
                        color=color, ms=6, lw=2, capsize=4, label=name)
        else:
            ax.fill_between(g.grid_x, g.q25, g.q75, color=color, alpha=0.18, lw=0)
            ax.plot(g.grid_x, g.median, "o-", color=color, lw=2, ms=5, label=name)
        for x, n in zip(g.grid_x + shift, g.n_bad):
            if n:
                ax.plot(x, 0.97, "x", color=color, ms=8, mew=2, transform=trans, clip_on=False)
                ax.text(x, 0.93, f"{n}", color=color, fontsize=8, ha="center", va="top",
                        transform=trans)
    if info.x_scale == "log":
        positive_log(ax, [g.x for g in info.groups], info.x_key, axis="x")
    elif info.x_scale == "category":
        n = len(info.categories)
        ax.set_xticks(range(n))
        longest = max((len(c) for c in info.categories), default=0)
        ax.set_xticklabels(info.categories, rotation=30 if n * longest > 60 else 0,
                           ha="right" if n * longest > 60 else "center")
        ax.set_xlim(-0.5, n - 0.5)
        ax.grid(axis="x", visible=False)
    if not info.metric.endswith("acc"):
        positive_log(ax, [g.value for g in info.groups], info.metric)
    ax.set_xlabel(axis_name(info.x_key, info.x_scale))
    ax.set_ylabel(_metric_axis(info.metric) + (" (log scale)" if ax.get_yscale() == "log" else ""))
    if any(np.any(g.n_bad) for g in info.groups):
        ax.plot([], [], "x", color=GUIDE_COLOR, mew=2, label="diverged / failed (count)")
    ax.legend(title=_short_key(info.group_key) or None, loc="best")
    shown = "dot with bars: median and quartiles" if cat else "line: median over seeds, band: quartiles"
    ax.set_title(f"{info.metric} vs {info.x_key} ({info.n_runs} runs; small dots: runs, {shown})")
    return fig


@styled
def draw_comparison(info: ComparisonInfo) -> "Figure":
    """Per panel value (e.g. initialisation) one line per compared value (e.g. optimizer):
    the median over seeds of the metric per epoch, and the quartiles as a band."""
    n = len(info.panels)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(4.7 * ncols + 0.4, 3.9 * nrows + 0.9, nrows, ncols, sharey=True)
    from matplotlib.ticker import MaxNLocator

    colors = series_colors(list(info.lines))
    log = not info.metric.endswith("acc")
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        panel = info.panels[i]
        curves = [c for c in info.curves if c.panel == panel]
        for c in curves:
            color = colors[c.line]
            ax.fill_between(c.epochs, c.q25, c.q75, color=color, alpha=0.18, lw=0)
            bad = f"; {c.n_bad} diverged" if c.n_bad else ""
            ax.plot(c.epochs, c.median, color=color, lw=1.9, label=c.label + bad)
        if log and curves:
            positive_log(ax, [c.median for c in curves] + [c.q25 for c in curves], info.metric)
        ax.set_title(f"{_short_key(info.panel_key)} = {panel}")
        ax.set_xlabel("epoch (first attempt)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i % ncols == 0:
            ax.set_ylabel(info.metric + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.legend(loc="best", fontsize=7.5)
    fig.suptitle(f"{info.metric} per epoch: {_short_key(info.line_key)} × "
                 f"{_short_key(info.panel_key)} (line: median over seeds, band: quartiles)")
    foot = "A seed that stopped early keeps its last value until the last seed of its configuration stops."
    if info.several_configs:
        foot += (f" Where a cell holds several configurations, the one with the best final median"
                 f" {info.metric} is drawn (named in the legend).")
    width = fig.get_size_inches()[0]
    fig.supxlabel(textwrap.fill(foot, int(width * 15)), fontsize=8, color=GUIDE_COLOR)
    return fig


@styled
def draw_success(info: SuccessInfo) -> "Figure":
    """Per configuration, the share of runs whose first attempt reached the target and
    the share that reached it with restarts; counts written beside the bars."""
    n = len(info.bars)
    fig, axes = new_figure(11, 1.5 + 0.42 * n)
    ax = axes[0][0]
    y = np.arange(n)[::-1]
    first = np.array([100 * b.first_try / b.n_runs for b in info.bars])
    restarts = np.array([100 * b.with_restarts / b.n_runs for b in info.bars])
    ax.barh(y, 100, height=0.84, color="#f1f3f5", lw=0)          # the 100% track
    ax.barh(y + 0.19, restarts, height=0.38, color="#2b8a3e", label="with restarts")
    ax.barh(y - 0.19, first, height=0.38, color="#a9d6b4", label="first attempt")
    for yi, b in zip(y, info.bars):
        ax.text(102, yi, f"first {b.first_try}/{b.n_runs} · with restarts {b.with_restarts}/{b.n_runs}"
                f" · attempts {b.attempts_met}/{b.attempts}", va="center", fontsize=8, color="#343a40")
    ax.set_yticks(y)
    ax.set_yticklabels([b.label for b in info.bars], fontsize=8.5 if n < 20 else 7.5)
    ax.set_xlim(0, 160)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.spines["bottom"].set_bounds(0, 100)
    ax.set_xlabel("% of runs (seeds) reaching the target")
    ax.grid(axis="y", visible=False)
    fig.legend(loc="outside lower center", ncols=2)
    sign = "≥" if info.monitor.endswith("acc") else "≤"
    targets = ", ".join(f"{t:g}" for t in info.targets)
    shown = f" (best {n} of {info.n_configs})" if info.n_configs > n else ""
    ax.set_title(f"Success rate per configuration{shown}: {info.monitor} {sign} {targets}")
    return fig


@styled
def draw_stages(info: StageInfo) -> "Figure":
    """One panel per stage: every candidate's seeds (dots) and score (diamond), the
    winner handed on to the next stage in green."""
    n = len(info.stages)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    most = max((len(s.candidates) for s in info.stages), default=1)
    fig, axes = new_figure(4.6 * ncols + 0.6, nrows * (0.45 * max(most, 2) + 1.7) + 0.6,
                           nrows, ncols)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        st = info.stages[i]
        y = np.arange(len(st.candidates))[::-1]
        for yi, c in zip(y, st.candidates):
            color = "#2b8a3e" if c.winner else "#495057"
            if c.winner:
                ax.axhspan(yi - 0.42, yi + 0.42, color="#d3f9d8", lw=0, zorder=0)
            vals = c.values[np.isfinite(c.values)]
            ax.scatter(vals, np.full(len(vals), yi), s=18, color=color, alpha=0.55, zorder=3, lw=0,
                       label="a seed" if yi == y[0] else None)
            if math.isfinite(c.score):
                ax.scatter([c.score], [yi], s=70, marker="D", color=color, edgecolors="white",
                           zorder=4, label=f"{info.statistic} (score)" if yi == y[0] else None)
        ax.set_yticks(y)
        ax.set_yticklabels([c.label for c in st.candidates], fontsize=8.5)
        ax.set_ylim(-0.6, len(st.candidates) - 0.4)
        for tick, c in zip(ax.get_yticklabels(), st.candidates):
            if c.winner:
                tick.set_color("#2b8a3e")
                tick.set_fontweight("bold")
        values = np.concatenate([c.values for c in st.candidates]) if st.candidates else np.zeros(0)
        finite = values[np.isfinite(values) & (values > 0)]
        if len(finite) and finite.max() / finite.min() > 30:
            positive_log(ax, [finite], info.metric, axis="x")
        if not st.candidates:
            note(ax, f"winner: {st.winner_label}\nscore {st.score:.4g}")
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(info.metric)
        keys = ", ".join(_short_key(k) for k in st.keys) or "?"
        ax.set_title(f"stage {st.stage + 1} sweeps {keys}\nwinner: {st.winner_label}"
                     f" (score {st.score:.3g})", fontsize=9.5)
        if i == 0:
            ax.legend(loc="best", fontsize=7.5)
    fig.suptitle(f"Staged sweep '{info.name}': each stage's candidates and the winner it hands on"
                 f" ({info.statistic} {info.metric} over seeds)")
    return fig
