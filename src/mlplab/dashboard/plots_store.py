"""Plotly drawings of the store-level figure data (:mod:`mlplab.figures.data_store`):
metric vs a hyper-parameter, optimizer × initialisation over seeds, success rate per
configuration, and the winners of each stage of a staged sweep. As the report's PNGs:
every configuration with its 95 % interval and its seeds as dots, the best starred and
those tied with it ringed or named, and the dataset's Bayes limit on an accuracy axis.

>>> short_axis_label("train.optimizer")
'optimizer'
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlplab.figures.data_limit import limit_label
from mlplab.figures.data_params import ParamCurveInfo
from mlplab.figures.data_store import ComparisonInfo, StageInfo, SuccessInfo
from mlplab.figures.data_ties import TIE_RULE, tie_words
from .plots import base_layout, finite_array, finite_list, mix_alpha, run_color, thin

LIMIT_COLOR = "#c92a2a"
TIE_COLOR = "#212529"
# Per-seed curves are drawn in the comparison while a panel holds at most this many.
MAX_SEED_CURVES = 60


def short_axis_label(key: str | None) -> str:
    return (key or "").split(".")[-1]


def bayes_line(fig: go.Figure, limit: float | None, axis: str = "y", **where: int) -> None:
    """The dataset's Bayes limit as a dotted, labelled line (nothing when there is none)."""
    if limit is None:
        return
    line = dict(color=LIMIT_COLOR, dash="dot", width=1.6)
    add = fig.add_hline if axis == "y" else fig.add_vline
    add(limit, line=line, annotation_text=limit_label(limit), annotation_font_color=LIMIT_COLOR,
        annotation_position="top right" if axis == "y" else "top left", name="bayes-limit", **where)


def _whisker(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[list, list]:
    """(plus, minus) error-bar lengths; an interval that misses its point (BCa can) gets 0."""
    up = np.clip(np.asarray(high, np.float64) - center, 0.0, None)
    down = np.clip(center - np.asarray(low, np.float64), 0.0, None)
    return finite_list(up), finite_list(down)


def tie_traces(x: list, y: list, tied: np.ndarray, best: np.ndarray, all_tied: bool,
               showlegend: bool = True, **where: int) -> list[go.Scatter]:
    """A star on the best point and a ring around each one tied with it (no rings when every
    point is tied: the title says so)."""
    y = np.asarray(y, dtype=object)
    pick = lambda mask: ([v for v, m in zip(x, mask) if m], [v for v, m in zip(y, mask) if m])  # noqa: E731
    bx, by = pick(np.asarray(best, bool))
    out = [go.Scatter(x=bx, y=by, mode="markers", name="★ best", legendgroup="ties",
                      showlegend=showlegend, hoverinfo="skip",
                      marker=dict(symbol="star-open", size=20, color=TIE_COLOR, line=dict(width=1.5)))]
    if not all_tied:
        rx, ry = pick(np.asarray(tied, bool) & ~np.asarray(best, bool))
        out.append(go.Scatter(x=rx, y=ry, mode="markers", name="○ tied with the best",
                              legendgroup="ties", showlegend=showlegend, hoverinfo="skip",
                              marker=dict(symbol="circle-open", size=17, color=TIE_COLOR,
                                          line=dict(width=1.5))))
    return out


def _x_values(info: ParamCurveInfo, x: np.ndarray) -> list:
    """Plotly x: the category labels for a categorical key, else the numbers."""
    if info.x_scale == "category":
        return [info.categories[int(i)] for i in x]
    return finite_list(x)


def param_curve_figure(info: ParamCurveInfo) -> go.Figure:
    """One point per run (seed) and, per group, the median over runs at each value of the
    hyper-parameter with its 95 % interval (a band, or whiskers for categories); the best
    median starred, those tied with it ringed; the Bayes limit on an accuracy axis."""
    fig = go.Figure()
    cat = info.x_scale == "category"
    key = short_axis_label(info.x_key)
    hover_x = f"{key} %{{x}}" if cat else f"{key} %{{x:.3g}}"
    all_tied = info.n_cells > 1 and info.n_tied >= info.n_cells
    for i, g in enumerate(info.groups):
        color = run_color(i)
        bad = int(np.sum(g.n_bad))
        label = g.label + (f" ({bad} without a value)" if bad else "")
        if not cat:     # a band between categories would suggest values in between
            band_x = finite_list(np.concatenate([g.grid_x, g.grid_x[::-1]]))
            band_y = finite_list(np.concatenate([g.ci_high, g.ci_low[::-1]]))
            fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=mix_alpha(color, 0.15),
                                     mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                                     legendgroup=g.label, name=f"{g.label}: 95 % interval"))
        plus, minus = _whisker(g.median, g.ci_low, g.ci_high)
        fig.add_trace(go.Scatter(x=_x_values(info, g.grid_x), y=finite_list(g.median),
                                 mode="markers" if cat else "lines+markers", offsetgroup=g.label,
                                 name=label, legendgroup=g.label, line=dict(color=color, width=2),
                                 marker=dict(size=9 if cat else 6, color=color),
                                 customdata=np.stack([finite_list(g.ci_low), finite_list(g.ci_high),
                                                      ["tied with the best" if t else "worse than the best"
                                                       for t in g.tied]], axis=1).tolist(),
                                 error_y=dict(type="data", symmetric=False, color=color, thickness=1.2,
                                              array=plus, arrayminus=minus) if cat else None,
                                 hovertemplate=f"{g.label}<br>{hover_x}<br>median %{{y:.4g}} "
                                               "[%{customdata[0]:.4g}, %{customdata[1]:.4g}]"
                                               "<br>%{customdata[2]}<extra></extra>"))
        for trace in tie_traces(_x_values(info, g.grid_x), finite_list(g.median), g.tied, g.best,
                                all_tied, showlegend=i == 0):
            fig.add_trace(trace.update(offsetgroup=g.label) if cat else trace)
        x, y = thin(g.x, g.value, 3000)
        fig.add_trace(go.Scatter(x=_x_values(info, x), y=finite_list(y), mode="markers",
                                 name=label, legendgroup=g.label, showlegend=False, offsetgroup=g.label,
                                 marker=dict(color=color, size=5, opacity=0.45),
                                 hovertemplate=f"{g.label}<br>{hover_x}<br>%{{y:.4g}}"
                                               "<extra>one seed</extra>"))
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
    bayes_line(fig, info.bayes_limit)
    by = f", by {short_axis_label(info.group_key)}" if info.group_key else ""
    band = "whiskers" if cat else "band"
    return base_layout(fig, f"{info.metric} vs {info.x_key} ({info.n_runs} runs{by}; line: median, "
                            f"{band}: 95 % interval)<br><span style='font-size:11px;color:#777'>"
                            f"{tie_words(info.n_tied, info.n_cells)}; {TIE_RULE}</span>", height=440)


def comparison_figure(info: ComparisonInfo) -> go.Figure:
    """Per panel (e.g. init) one line per value (e.g. optimizer): median over seeds of
    the per-epoch metric with each seed's curve thin; at the right each seed's final value
    as a dot and the 95 % interval of the final median as a whisker; the best starred,
    those tied with it ringed; the Bayes limit on an accuracy axis.

    Few plotly objects: per line of a panel its seed curves in one trace (gaps between
    them), its median, its final values and its final median; the ties one trace a panel."""
    n = len(info.panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{short_axis_label(info.panel_key)}"
                                                              f" = {p}" for p in info.panels],
                        shared_yaxes=True, horizontal_spacing=0.05, vertical_spacing=0.14)
    n_tied = sum(c.tied for c in info.curves)
    all_tied = len(info.curves) > 1 and n_tied == len(info.curves)
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    traces: list[dict] = []
    where: list[tuple[int, int]] = []              # (row, col) of each trace
    for k, panel in enumerate(info.panels):
        row, col = k // cols + 1, k % cols + 1
        curves = [c for c in info.curves if c.panel == panel]
        last = max((len(c.epochs) for c in curves), default=1)
        few = sum(c.n_seeds for c in curves) <= MAX_SEED_CURVES
        ends: list[tuple[float, float | None, bool, bool]] = []     # (x, final median, tied, best)
        for j, c in enumerate(curves):
            color = run_color(info.lines.index(c.line))
            if few and len(c.seed):
                parts = [thin(c.epochs, s_row) for s_row in c.per_seed]
                # one trace, a gap (NaN) between seeds
                xs = np.concatenate([np.append(finite_array(sx), np.nan) for sx, _ in parts])
                ys = np.concatenate([np.append(finite_array(sy), np.nan) for _, sy in parts])
                seeds = np.concatenate([np.full(len(sx) + 1, seed, np.int64)
                                        for (sx, _), seed in zip(parts, c.seed)])
                traces.append(dict(type="scatter", x=xs, y=ys, text=seeds, mode="lines",
                                   line=dict(color=mix_alpha(color, 0.3), width=1), showlegend=False,
                                   legendgroup=c.line, name=f"{c.line} seeds",
                                   hovertemplate=f"{c.line} seed %{{text}}<br>epoch %{{x}}<br>%{{y:.4g}}"
                                                 "<extra></extra>"))
                where.append((row, col))
            xs, ys = thin(c.epochs, c.median)
            traces.append(dict(type="scatter", x=finite_array(xs), y=finite_array(ys), mode="lines",
                               name=c.line, legendgroup=c.line, showlegend=c.line not in seen,
                               line=dict(color=color, width=2),
                               hovertemplate=f"{c.label}<br>epoch %{{x}}<br>median %{{y:.4g}}"
                                             f"{' · diverged: ' + str(c.n_bad) if c.n_bad else ''}"
                                             "<extra></extra>"))
            seen.add(c.line)
            x_end = last * (1.04 + 0.05 * j)
            ok = np.isfinite(c.final)
            traces.append(dict(type="scatter", mode="markers", showlegend=False, legendgroup=c.line,
                               x=finite_array(x_end + rng.uniform(-0.012, 0.012, ok.sum()) * last),
                               y=finite_array(c.final[ok]), name=f"{c.line}: final values",
                               marker=dict(color=color, size=5, opacity=0.55),
                               hovertemplate=f"{c.label}<br>one seed's final value %{{y:.4g}}"
                                             "<extra></extra>"))
            plus, minus = _whisker(np.array([c.final_median]), [c.final_low], [c.final_high])
            tie = " ★ best" if c.best else (" = best" if c.tied and not all_tied else "")
            traces.append(dict(type="scatter", x=[x_end], y=finite_list([c.final_median]),
                               mode="markers", showlegend=False, legendgroup=c.line,
                               name=f"{c.line}: final median", marker=dict(color=color, size=8),
                               error_y=dict(type="data", symmetric=False, array=plus,
                                            arrayminus=minus, color=color, thickness=1.6),
                               hovertemplate=f"{c.label}{tie}<br>final median %{{y:.4g}} "
                                             f"[{c.final_low:.4g}, {c.final_high:.4g}]"
                                             "<extra>95 % interval</extra>"))
            where += [(row, col)] * 3
            ends.append((x_end, finite_list([c.final_median])[0], bool(c.tied), bool(c.best)))
        for trace in tie_traces([e[0] for e in ends], [e[1] for e in ends],
                                np.array([e[2] for e in ends], bool),
                                np.array([e[3] for e in ends], bool), all_tied, showlegend=False):
            traces.append(trace)
            where.append((row, col))
    fig.add_traces(traces, rows=[r for r, _ in where], cols=[c for _, c in where])
    fig.update_xaxes(title_text="epoch (first attempt); right: final values", row=rows)
    fig.update_yaxes(title_text=info.metric, col=1)
    bayes_line(fig, info.bayes_limit)
    title = (f"{info.metric} per epoch: {short_axis_label(info.line_key)} × "
             f"{short_axis_label(info.panel_key)} (median over seeds; whisker: 95 % interval of the "
             f"final median)<br><span style='font-size:11px;color:#777'>★ best, ○ "
             f"{tie_words(n_tied, len(info.curves))}; {TIE_RULE}"
             + ("; cells with several configurations show their best one" if info.several_configs
                else "") + "</span>")
    fig = base_layout(fig, title, height=300 * rows + 150)
    fig.update_layout(margin=dict(t=110), legend=dict(orientation="v", x=1.01, xanchor="left", y=1,
                                                      yanchor="top", title=dict(
                                                          text=short_axis_label(info.line_key))))
    return fig


def success_figure(info: SuccessInfo) -> go.Figure:
    """Share of runs reaching the target on the first try and with restarts (each with its
    95 % Wilson interval), and the share of all attempts that reached it, per configuration
    (best on top, "= best" on those tied with it)."""
    bars = list(reversed(info.bars))
    all_tied = info.n_configs > 1 and info.n_tied >= info.n_configs
    labels = [b.label + (" ★ best" if b.best else (" = best" if b.tied and not all_tied else ""))
              for b in bars]
    share = lambda num, den: [n / d if d else 0.0 for n, d in zip(num, den)]  # noqa: E731
    parts = (("first attempt", [b.first_try for b in bars], [b.n_runs for b in bars], "#9ecae1",
              [b.first_rate for b in bars]),
             ("with restarts", [b.with_restarts for b in bars], [b.n_runs for b in bars], "#2f6fdf",
              [b.restarts_rate for b in bars]),
             ("share of attempts", [b.attempts_met for b in bars], [b.attempts for b in bars], "#f28e2b",
              None))
    fig = go.Figure()
    for name, num, den, color, rates in parts:
        error = None
        if rates is not None:
            plus, minus = _whisker(np.array([r.rate for r in rates]), [r.ci_low for r in rates],
                                   [r.ci_high for r in rates])
            error = dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#343a40",
                         thickness=1)
        fig.add_trace(go.Bar(y=labels, x=share(num, den), orientation="h", name=name,
                             marker_color=color, customdata=np.stack([num, den], axis=1).tolist(),
                             error_x=error,
                             hovertemplate=f"%{{y}}<br>{name}: %{{x:.0%}} "
                                           "(%{customdata[0]} of %{customdata[1]})<extra></extra>"))
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%",
                     title_text="reached the target (whisker: 95 % Wilson interval)")
    targets = ", ".join(f"{t:g}" for t in info.targets)
    more = f", best {len(bars)} of {info.n_configs}" if info.n_configs > len(bars) else ""
    limit = "" if info.bayes_limit is None else f"; {limit_label(info.bayes_limit)}"
    fig = base_layout(fig, f"Success rate per configuration ({info.monitor} target {targets}{more}{limit})"
                           f"<br><span style='font-size:11px;color:#777'>"
                           f"{tie_words(info.n_tied, info.n_configs)}; {TIE_RULE}</span>",
                      height=max(300, 26 * len(bars) * 1.6 + 150))
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(automargin=True)
    return fig


def stage_figure(info: StageInfo) -> go.Figure:
    """Per stage, every candidate's per-seed values and score with the 95 % interval of
    its median; the winner in green, "= winner" on those tied with it.

    Few plotly objects: per stage one trace of every candidate's seeds and one of the
    scores with their whiskers per colour (the winner's, the others')."""
    n = max(1, len(info.stages))
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.06,
                        subplot_titles=[f"stage {s.stage + 1}: {', '.join(map(short_axis_label, s.keys))}"
                                        f"<br>winner {s.winner_label}" for s in info.stages])
    traces: list[dict] = []
    cols: list[int] = []
    for k, stage in enumerate(info.stages, start=1):
        all_tied = len(stage.candidates) > 1 and all(c.tied for c in stage.candidates)
        labels = [c.label + (" = winner" if c.tied and not c.winner and not all_tied else "")
                  for c in stage.candidates]
        color = ["#1e8e3e" if c.winner else "#7f8c99" for c in stage.candidates]
        seeds = [(label, col, c) for label, col, c in zip(labels, color, stage.candidates)]
        traces.append(dict(type="scatter", mode="markers", showlegend=False,
                           x=[label for label, _, c in seeds for _ in c.values],
                           y=np.concatenate([finite_array(c.values) for *_, c in seeds]),
                           text=[c.label for *_, c in seeds for _ in c.values],
                           marker=dict(color=[col for _, col, c in seeds for _ in c.values],
                                       size=6, opacity=0.55),
                           hovertemplate="%{text}<br>one seed: %{y:.4g}<extra></extra>"))
        cols.append(k)
        for winner in (False, True):
            picked = [(label, c) for label, c in zip(labels, stage.candidates) if c.winner == winner]
            if not picked:
                continue
            tone = "#1e8e3e" if winner else "#7f8c99"
            score = np.array([c.score for _, c in picked], np.float64)
            plus, minus = _whisker(score, [c.ci_low for _, c in picked], [c.ci_high for _, c in picked])
            traces.append(dict(type="scatter", mode="markers", showlegend=False,
                               x=[label for label, _ in picked], y=finite_array(score),
                               marker=dict(symbol="line-ew-open", size=26, color=tone, line=dict(width=3)),
                               error_y=dict(type="data", symmetric=False, array=plus,
                                            arrayminus=minus, color=tone, thickness=1.5),
                               text=[f"{c.label}<br>{info.statistic}: {c.score:.4g} "
                                     f"[{c.ci_low:.4g}, {c.ci_high:.4g}]{' (winner)' if winner else ''}"
                                     for _, c in picked],
                               hovertemplate="%{text}<extra></extra>"))
            cols.append(k)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    fig.update_yaxes(title_text=f"{info.metric} ({info.statistic} over seeds: bar, 95 % interval)", col=1)
    fig.update_xaxes(tickangle=-30)
    bayes_line(fig, info.bayes_limit)
    fig = base_layout(fig, f"Staged sweep {info.name or info.sweep_id}: the winner of each stage"
                           f"<br><span style='font-size:11px;color:#777'>= winner: {TIE_RULE}</span>",
                      height=460)
    fig.update_layout(margin=dict(t=110))
    return fig
