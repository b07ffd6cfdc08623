"""PNG figures of a set of runs, drawn from the records of :mod:`mlplab.figures.data_store`
and :mod:`mlplab.figures.data_params`: metric vs a hyper-parameter (learning rate, hidden
sizes, ...), optimizer × initialisation over seeds, success rate per configuration and
the stages of a staged sweep. Every configuration is drawn with its 95 % interval and every
seed as a dot; the best is a star, those tied with it ringed or named; an accuracy axis
carries the dataset's Bayes limit as a dotted line.

>>> import numpy as np
>>> from mlplab.figures.data_params import ParamCurveInfo, ParamGroup
>>> a = lambda *v: np.array(v, dtype=float)
>>> g = ParamGroup("all runs", a(0.01, 0.1), a(0.3, 0.1), a(0.01, 0.1), a(0.3, 0.1), a(0.3, 0.1),
...                a(0.3, 0.1), np.array([0, 0]), np.array([0, 0]), a(0.3, 0.1), a(0.3, 0.1),
...                np.array([True, True]), np.array([False, True]))
>>> info = ParamCurveInfo("val_loss", "train.lr", "log", (), None, (g,), 2)
>>> [round(v) for v in draw_param_curve(info).get_size_inches() * 100]
[900, 520]
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .data_limit import limit_label
from .data_params import ParamCurveInfo, ParamGroup
from .data_store import ComparisonInfo, StageInfo, SuccessInfo
from .data_ties import TIE_RULE, tie_words
from .draw_run import GUIDE_COLOR, new_figure, note, positive_log, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SERIES_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                 "#a6761d", "#666666", "#1f78b4", "#b15928")
LIMIT_COLOR = "#c92a2a"
TIE_COLOR = "#212529"
# Per-seed curves are drawn in the comparison while a panel holds at most this many.
MAX_SEED_CURVES = 60


def bayes_line(ax: "Axes", limit: float | None, axis: str = "y") -> None:
    """The dataset's Bayes limit as a dotted line across ``ax``, labelled at its end; nothing
    when there is none (user data, or not an accuracy)."""
    if limit is None:
        return
    if axis == "y":
        ax.axhline(limit, color=LIMIT_COLOR, ls=":", lw=1.6, zorder=1, gid="bayes-limit")
        ax.annotate(limit_label(limit), (1.0, limit), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, color=LIMIT_COLOR)
    else:
        ax.axvline(limit, color=LIMIT_COLOR, ls=":", lw=1.6, zorder=1, gid="bayes-limit")
        ax.annotate(limit_label(limit), (limit, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-3, -4), textcoords="offset points", ha="right", va="top",
                    fontsize=8, color=LIMIT_COLOR, rotation=90)


def mark_ties(ax: "Axes", x: np.ndarray, y: np.ndarray, tied: np.ndarray, best: np.ndarray,
              all_tied: bool) -> None:
    """A star on the best point, a ring around each one tied with it (no rings when every
    point is tied: the title says so instead)."""
    ok = np.isfinite(x) & np.isfinite(y)
    star = ok & best
    ring = ok & tied & ~best & (not all_tied)
    if star.any():          # an empty scatter draws nothing and costs an artist
        ax.scatter(x[star], y[star], s=230, marker="*", facecolors="none", edgecolors=TIE_COLOR,
                   linewidths=1.3, zorder=6)
    if ring.any():
        ax.scatter(x[ring], y[ring], s=150, marker="o", facecolors="none", edgecolors=TIE_COLOR,
                   linewidths=1.3, zorder=6)


def tie_legend(ax: "Axes", all_tied: bool) -> None:
    """Legend entries that explain the star and the rings."""
    ax.scatter([], [], s=120, marker="*", facecolors="none", edgecolors=TIE_COLOR, label="best")
    if not all_tied:
        ax.scatter([], [], s=80, marker="o", facecolors="none", edgecolors=TIE_COLOR,
                   label="tied with the best")


def _whisker(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``[2, N]`` error-bar lengths; an interval that misses its point (BCa can) gets 0 there."""
    return np.clip(np.nan_to_num(np.stack([center - low, high - center])), 0.0, None)


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
    its 95 % interval as a band per group (for categories: a dot with the interval as a
    whisker); the best median starred and the settings tied with it ringed (not
    distinguishable from it: a paired test over shared seeds, Holm-adjusted p ≥ 0.05); runs
    without a value marked at the top; for an accuracy, the dataset's Bayes limit as a dotted line."""
    from matplotlib.transforms import blended_transform_factory

    fig, axes = new_figure(9, 5.2)
    ax = axes[0][0]
    colors = series_colors([g.label for g in info.groups])
    rng = np.random.default_rng(0)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    every = np.concatenate([g.grid_x for g in info.groups])
    span = float(every.max() - every.min()) if len(every) else 1.0
    cat = info.x_scale == "category"
    all_tied = info.n_cells > 1 and info.n_tied >= info.n_cells
    for k, g in enumerate(info.groups):
        color = colors[g.label]
        finite = np.isfinite(g.value)
        # categories: groups side by side, intervals as whiskers (no line between unordered values)
        shift = (k - (len(info.groups) - 1) / 2) * min(0.5 / len(info.groups), 0.15) if cat else 0.0
        ax.scatter(_jitter(g, info.x_scale, span, rng)[finite] + shift, g.value[finite], s=14,
                   color=color, alpha=0.45, lw=0)
        name = g.label if info.group_key else "median over seeds"
        if cat:
            ax.errorbar(g.grid_x + shift, g.median, yerr=_whisker(g.median, g.ci_low, g.ci_high),
                        fmt="o", color=color, ms=6, lw=2, capsize=4, label=name)
        else:
            ax.fill_between(g.grid_x, g.ci_low, g.ci_high, color=color, alpha=0.18, lw=0)
            ax.plot(g.grid_x, g.median, "o-", color=color, lw=2, ms=5, label=name)
        mark_ties(ax, g.grid_x + shift, g.median, g.tied, g.best, all_tied)
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
    bayes_line(ax, info.bayes_limit)
    ax.set_xlabel(axis_name(info.x_key, info.x_scale))
    ax.set_ylabel(_metric_axis(info.metric) + (" (log scale)" if ax.get_yscale() == "log" else ""))
    if any(np.any(g.n_bad) for g in info.groups):
        ax.plot([], [], "x", color=GUIDE_COLOR, mew=2, label="diverged / failed (count)")
    tie_legend(ax, all_tied)
    ax.legend(title=_short_key(info.group_key) or None, loc="best", fontsize=8)
    shown = "dot with whisker: median, 95 % interval" if cat else "line: median, band: 95 % interval"
    ax.set_title(f"{info.metric} vs {info.x_key} ({info.n_runs} runs; small dots: seeds, {shown})\n"
                 f"{tie_words(info.n_tied, info.n_cells)}", fontsize=10)
    return fig


def tie_suffix(best: bool, tied: bool, all_tied: bool) -> str:
    """What a legend or tick label adds for the best and for those tied with it.

    >>> tie_suffix(True, True, False), tie_suffix(False, True, False), tie_suffix(False, True, True)
    (' ★ best', ' = best', '')
    """
    return " ★ best" if best else (" = best" if tied and not all_tied else "")


@styled
def draw_comparison(info: ComparisonInfo) -> "Figure":
    """Per panel value (e.g. initialisation) one line per compared value (e.g. optimizer):
    the median over seeds of the metric per epoch, each seed's curve thin; at the right, each
    seed's final value as a dot and the 95 % interval of the final median as a whisker. The
    best final median is starred, "= best" marks lines tied with it (Holm-adjusted p ≥ 0.05
    of a paired test over shared seeds); an accuracy shows the dataset's Bayes limit."""
    n = len(info.panels)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(4.7 * ncols + 0.4, 3.9 * nrows + 0.9, nrows, ncols, sharey=True)
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    colors = series_colors(list(info.lines))
    log = not info.metric.endswith("acc")
    n_tied = sum(c.tied for c in info.curves)
    all_tied = len(info.curves) > 1 and n_tied == len(info.curves)
    rng = np.random.default_rng(0)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        panel = info.panels[i]
        curves = [c for c in info.curves if c.panel == panel]
        last = max((len(c.epochs) for c in curves), default=1)
        thin = sum(c.n_seeds for c in curves) <= MAX_SEED_CURVES
        for j, c in enumerate(curves):
            color = colors[c.line]
            if thin:     # one artist for the seeds of a line
                ax.add_collection(LineCollection([np.column_stack([c.epochs, row]) for row in c.per_seed],
                                                 colors=color, linewidths=0.6, alpha=0.3))
            bad = f"; {c.n_bad} diverged" if c.n_bad else ""
            ax.plot(c.epochs, c.median, color=color, lw=1.9,
                    label=c.label + bad + tie_suffix(c.best, c.tied, all_tied))
            # the final values beside the curves, one column per line
            x_end = last * (1.04 + 0.05 * j)
            ok = np.isfinite(c.final)
            ax.scatter(x_end + rng.uniform(-0.012, 0.012, ok.sum()) * last, c.final[ok], s=12,
                       color=color, alpha=0.55, lw=0, zorder=4)
            if math.isfinite(c.final_median):
                ax.errorbar([x_end], [c.final_median],
                            yerr=_whisker(np.array([c.final_median]), np.array([c.final_low]),
                                          np.array([c.final_high])),
                            fmt="o", color=color, ms=5, lw=1.8, capsize=3, zorder=5)
                mark_ties(ax, np.array([x_end]), np.array([c.final_median]), np.array([c.tied]),
                          np.array([c.best]), all_tied)
        if log and curves:
            positive_log(ax, [c.median for c in curves] + [c.final for c in curves], info.metric)
        bayes_line(ax, info.bayes_limit)
        ax.set_title(f"{_short_key(info.panel_key)} = {panel}")
        ax.set_xlabel("epoch (first attempt); right: final values")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i % ncols == 0:
            ax.set_ylabel(info.metric + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.legend(loc="best", fontsize=7.5)
    width = fig.get_size_inches()[0]
    fig.suptitle(textwrap.fill(f"{info.metric} per epoch: {_short_key(info.line_key)} × "
                               f"{_short_key(info.panel_key)} (line: median over seeds; whisker: 95 %"
                               f" interval of the final median; {tie_words(n_tied, len(info.curves))})",
                               int(width * 11)), fontsize=10.5)
    foot = ("A seed that stopped early keeps its last value until the last seed of its configuration"
            f" stops. ★ best final median; \"= best\": {TIE_RULE}.")
    if info.several_configs:
        foot += (f" Where a cell holds several configurations, the one with the best final median"
                 f" {info.metric} is drawn (named in the legend).")
    fig.supxlabel(textwrap.fill(foot, int(width * 15)), fontsize=8, color=GUIDE_COLOR)
    return fig


def _rate_whisker(rates: Sequence[Any]) -> np.ndarray:
    """``[2, N]`` percent error bars of Wilson intervals."""
    rate = np.array([100 * r.rate for r in rates])
    return _whisker(rate, np.array([100 * r.ci_low for r in rates]), np.array([100 * r.ci_high for r in rates]))


@styled
def draw_success(info: SuccessInfo) -> "Figure":
    """Per configuration, the share of runs whose first attempt reached the target and
    the share that reached it with restarts, each with its 95 % Wilson interval; counts
    written beside the bars. The best configuration is starred and "= best" marks those
    whose successes are not distinguishable from its (paired over seeds, Holm-adjusted
    p ≥ 0.05); an accuracy target is set against the dataset's Bayes limit."""
    n = len(info.bars)
    fig, axes = new_figure(11, 1.5 + 0.42 * n, layout="constrained")   # the legend sits below
    ax = axes[0][0]
    y = np.arange(n)[::-1]
    first = np.array([100 * b.first_try / b.n_runs for b in info.bars])
    restarts = np.array([100 * b.with_restarts / b.n_runs for b in info.bars])
    ax.barh(y, 100, height=0.84, color="#f1f3f5", lw=0)          # the 100% track
    whiskers = dict(ecolor="#343a40", capsize=2.5, error_kw=dict(lw=1))
    ax.barh(y + 0.19, restarts, height=0.38, color="#2b8a3e", label="with restarts",
            xerr=_rate_whisker([b.restarts_rate for b in info.bars]), **whiskers)
    ax.barh(y - 0.19, first, height=0.38, color="#a9d6b4", label="first attempt",
            xerr=_rate_whisker([b.first_rate for b in info.bars]), **whiskers)
    for yi, b in zip(y, info.bars):
        ax.text(102, yi, f"first {b.first_try}/{b.n_runs} · with restarts {b.with_restarts}/{b.n_runs}"
                f" · attempts {b.attempts_met}/{b.attempts}", va="center", fontsize=8, color="#343a40")
    all_tied = info.n_configs > 1 and info.n_tied >= info.n_configs
    ax.set_yticks(y)
    ax.set_yticklabels([b.label + tie_suffix(b.best, b.tied, all_tied) for b in info.bars],
                       fontsize=8.5 if n < 20 else 7.5)
    for tick, b in zip(ax.get_yticklabels(), info.bars):
        if b.tied and not all_tied:
            tick.set_fontweight("bold")
    ax.set_xlim(0, 160)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.spines["bottom"].set_bounds(0, 100)
    ax.set_xlabel("% of runs (seeds) reaching the target; whisker: 95 % Wilson interval")
    ax.grid(axis="y", visible=False)
    fig.legend(loc="outside lower center", ncols=2)
    sign = "≥" if info.monitor.endswith("acc") else "≤"
    targets = ", ".join(f"{t:g}" for t in info.targets)
    shown = f" (best {n} of {info.n_configs})" if info.n_configs > n else ""
    limit = ""
    if info.bayes_limit is not None:
        above = any(t > info.bayes_limit for t in info.targets)
        limit = f"; {limit_label(info.bayes_limit)}" + (": a target above it is met only by luck"
                                                         if above else "")
    marked = "" if all_tied else " (bold, \"= best\")"
    ax.set_title(f"Success rate per configuration{shown}: {info.monitor} {sign} {targets}{limit}\n"
                 f"{tie_words(info.n_tied, info.n_configs)}{marked}", fontsize=10)
    return fig


@styled
def draw_stages(info: StageInfo) -> "Figure":
    """One panel per stage: every candidate's seeds (dots), its score (diamond) with the 95 %
    interval of its median (whisker), the winner handed on to the next stage in green and the
    candidates tied with it (not distinguishable: paired over seeds, Holm-adjusted p ≥ 0.05)
    marked "= winner"; for an accuracy, the dataset's Bayes limit as a dotted line."""
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
        all_tied = len(st.candidates) > 1 and all(c.tied for c in st.candidates)
        for yi, c in zip(y, st.candidates):
            color = "#2b8a3e" if c.winner else "#495057"
            if c.winner:
                ax.axhspan(yi - 0.42, yi + 0.42, color="#d3f9d8", lw=0, zorder=0)
            vals = c.values[np.isfinite(c.values)]
            ax.scatter(vals, np.full(len(vals), yi), s=18, color=color, alpha=0.55, zorder=3, lw=0,
                       label="a seed" if yi == y[0] else None)
            if math.isfinite(c.ci_low):
                ax.plot([c.ci_low, c.ci_high], [yi - 0.22, yi - 0.22], color=color, lw=2,
                        solid_capstyle="butt", zorder=3,
                        label="95 % interval" if yi == y[0] else None)
            if math.isfinite(c.score):
                ax.scatter([c.score], [yi], s=70, marker="D", color=color, edgecolors="white",
                           zorder=4, label=f"{info.statistic} (score)" if yi == y[0] else None)
        ax.set_yticks(y)
        ax.set_yticklabels([c.label + (" = winner" if c.tied and not c.winner and not all_tied else "")
                            for c in st.candidates], fontsize=8.5)
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
        bayes_line(ax, info.bayes_limit, axis="x")
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(info.metric)
        keys = ", ".join(_short_key(k) for k in st.keys) or "?"
        tied = sum(c.tied for c in st.candidates)
        chars = int(ax.get_position().width * fig.get_size_inches()[0] * 13)   # ~13 a inch at 9 pt
        ax.set_title("\n".join([f"stage {st.stage + 1} sweeps {keys}",
                                textwrap.fill(f"winner: {st.winner_label} (score {st.score:.3g})", chars),
                                textwrap.fill(tie_words(tied, len(st.candidates)), chars)]), fontsize=9)
        if i == 0:
            ax.legend(loc="best", fontsize=7.5)
    fig.suptitle(f"Staged sweep '{info.name}': each stage's candidates and the winner it hands on"
                 f" ({info.statistic} {info.metric} over seeds)")
    return fig
