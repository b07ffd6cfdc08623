"""PNG figures of one run, drawn from the records of :mod:`mlplab.figures.data_run` (never the store).

Every ``draw_*`` function takes one ``*Info`` record and returns a matplotlib ``Figure``
(no pyplot, no global state); :func:`save_figure` writes it at :data:`DPI`, so a figure's
pixel size is ``figsize * DPI``. Layers keep one colour in every figure
(:func:`layer_colors`); restarts are shaded and marked the same way everywhere.

>>> import numpy as np
>>> from mlplab.figures.data_run import LossCurve, LossInfo
>>> c = LossCurve(0, np.arange(1.0, 4.0), np.array([1.0, .5, .2]), np.array([1.0, .6, .3]),
...               np.array([.5, .7, .9]), np.array([.5, .6, .8]))
>>> fig = draw_loss(LossInfo("val_loss", None, "epoch", (c,), (), False))
>>> [round(v) for v in fig.get_size_inches() * DPI]
[1100, 460]
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from .arrays import envelope
from .data_curvature import CurvatureInfo
from .data_run import ActivationInfo, InitDistInfo, LayerSeriesInfo, LossInfo
from .data_spans import AttemptSpan
from .draw_save import DPI
from .draw_save import save_figure as save_figure       # re-exported: where the figures' users look

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "figure.titlesize": 12.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#d9d9d9", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
    "legend.framealpha": 0.85, "legend.edgecolor": "#cccccc",
}
TRAIN_COLOR, VAL_COLOR, GUIDE_COLOR = "#1b4f8a", "#e0600f", "#6b6b6b"
# Class colours (TensorFlow Playground: orange for class 0, blue for class 1).
CLASS_COLORS = ("#e8710a", "#1a73e8", "#2e9e44", "#9c27b0", "#d81b60", "#00897b",
                "#795548", "#f4b400", "#5c6bc0", "#7cb342")
POSITIVE_COLOR, NEGATIVE_COLOR = "#1a73e8", "#e8710a"


def layer_colors(layers: Sequence[str]) -> dict[str, Any]:
    """The one colour of each layer, by its position in the run's layer list.

    >>> layer_colors(["layer1", "layer2"])["layer1"]
    '#1f77b4'
    """
    tab10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
             "#7f7f7f", "#bcbd22", "#17becf")
    if len(layers) <= len(tab10):
        return {name: tab10[i] for i, name in enumerate(layers)}
    from matplotlib import colormaps

    cmap = colormaps["turbo"]
    return {name: cmap(0.05 + 0.9 * i / (len(layers) - 1)) for i, name in enumerate(layers)}


def class_colors(n: int) -> list[Any]:
    """Colours of ``n`` classes (cycled past ten)."""
    return [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(n)]


def styled(draw: Callable[..., "Figure"]) -> Callable[..., "Figure"]:
    """Run a draw function under :data:`STYLE` without touching global settings."""
    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> "Figure":
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1,
               layout: str | None = None, **kwargs: Any) -> tuple["Figure", Any]:
    """A figure of ``width x height`` inches with a grid of axes, its margins fitted when
    saved (:func:`~mlplab.figures.draw_save.fit_layout`) unless ``layout`` names matplotlib's own."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def note(ax: "Axes", text: str, loc: str = "center") -> None:
    """A grey message inside an axes (for panels with nothing to draw)."""
    x, y, ha, va = {"center": (0.5, 0.5, "center", "center"),
                    "lower right": (0.98, 0.03, "right", "bottom"),
                    "upper right": (0.98, 0.97, "right", "top")}[loc]
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8.5, color=GUIDE_COLOR,
            wrap=True, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})


def positive_log(ax: "Axes", values: Sequence[np.ndarray], what: str = "values",
                 axis: str = "y") -> bool:
    """Put ``axis`` on a log scale with plain tick labels (0.02, 0.05, 0.1) when any value
    is positive and finite; otherwise keep it linear and say why."""
    pos = [np.asarray(v, np.float64) for v in values]
    pos = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in pos]) if pos else np.zeros(0)
    if len(pos) == 0:
        if values and any(np.any(np.isfinite(v)) for v in values):
            note(ax, f"all {what} are zero: linear scale", "upper right")
        return False
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    span = pos.max() / pos.min()
    if span < 1e3:      # few decades: label 1-2-5 steps (or every step) as plain numbers
        subs = tuple(range(1, 10)) if span < 4 else (1.0, 2.0, 5.0)
        target.set_major_locator(LogLocator(subs=subs))
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:               # decades as 10⁻³ in plain text: mathtext's parser costs more than the rest
        target.set_major_formatter(FuncFormatter(power_of_ten))
    target.set_minor_formatter(NullFormatter())
    return True


def power_of_ten(v: float, _: Any = None) -> str:
    """A tick label on a log axis: ``10⁻³`` for a power of ten, else the plain number.

    >>> power_of_ten(0.001), power_of_ten(100.0), power_of_ten(0.5)
    ('10⁻³', '10²', '0.5')
    """
    e = round(math.log10(v)) if v > 0 else 0
    if v > 0 and math.isclose(v, 10.0 ** e, rel_tol=1e-9):
        return "10" + str(e).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{v:g}"


def integer_ticks(ax: "Axes") -> None:
    """Whole-number ticks on the x axis (epochs and steps)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def mark_attempts(ax: "Axes", spans: Sequence[AttemptSpan], per_step: bool,
                  label_top: bool = True) -> None:
    """Shade every other attempt, draw a dashed line at each restart and label attempts."""
    if len(spans) < 2:
        return
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, s in enumerate(spans):
        lo = s.start_step if per_step else s.start_epoch + 0.5
        hi = lo + (s.steps if per_step else s.epochs)
        if i % 2 == 1:
            ax.axvspan(lo, hi, color="#f1f3f5", zorder=0, lw=0)
        if i > 0:
            ax.axvline(lo, color=GUIDE_COLOR, ls="--", lw=0.9, zorder=1,
                       label="restart (fresh init)" if i == 1 else None)
        if label_top and len(spans) <= 8:
            text = f"attempt {s.attempt}" + (" · kept" if s.kept else "")
            ax.text((lo + hi) / 2, 0.995, text, transform=trans, ha="center", va="top",
                    fontsize=7.5, color=GUIDE_COLOR, clip_on=True, zorder=7,
                    bbox=dict(facecolor="white", alpha=0.75, lw=0, pad=1.0))   # over bands


def _legend(ax: "Axes", **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(**{"loc": "best", **kwargs})


# ----------------------------------------------------------------------------- loss


REASONS = {"plateau": "plateau", "diverged": "diverged", "target": "target met",
           "max_epochs": "last epoch", "closed": "closed"}


def _loss_panel(ax: "Axes", info: LossInfo, kind: str) -> None:
    """Train and val curves of ``kind`` ("loss" or "acc") for every attempt, with each
    attempt's stopping point and the kept weights marked on the monitored curve."""
    monitor_is_acc = info.monitor.endswith("acc")
    marks = (kind == "acc") == monitor_is_acc and not info.per_step
    for j, c in enumerate(info.curves):
        first = j == 0
        train, val = (c.train_loss, c.val_loss) if kind == "loss" else (c.train_acc, c.val_acc)
        ax.plot(c.x, train, color=TRAIN_COLOR, lw=1.4,
                label=(f"train {kind}" if not info.per_step else "loss per step") if first else None)
        if np.any(np.isfinite(val)):
            ax.plot(c.x, val, color=VAL_COLOR, lw=1.4, label=f"val {kind}" if first else None)
        span = next((s for s in info.spans if s.attempt == c.attempt), None)
        monitored = val if info.monitor.startswith("val") else train
        finite = np.flatnonzero(np.isfinite(monitored))
        if not marks or span is None or not len(finite):
            continue
        end = finite[-1]
        ax.plot(c.x[end], monitored[end], "X", color="#343a40", ms=7, zorder=5,
                label="stopping point" if first else None)
        ax.annotate(REASONS.get(span.end_reason, span.end_reason), (c.x[end], monitored[end]),
                    textcoords="offset points", xytext=(5, 7), fontsize=7.5, color="#343a40",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1})
        if span.kept and 0 <= span.best_epoch < len(c.x) and np.isfinite(monitored[span.best_epoch]):
            ax.plot(c.x[span.best_epoch], monitored[span.best_epoch], "*", color="#c92a2a", ms=13,
                    zorder=6, label=f"kept weights (best {info.monitor} {monitored[span.best_epoch]:.4g})")
    if info.target is not None and (kind == "acc") == monitor_is_acc:
        ax.axhline(info.target, color="#2b8a3e", ls=":", lw=1.3, label=f"target {info.target:g}")
    mark_attempts(ax, info.spans, info.per_step)
    ax.set_xlabel(info.x_label)
    integer_ticks(ax)


@styled
def draw_loss(info: LossInfo) -> "Figure":
    """Loss (log y) and accuracy, train and val, every attempt end to end; restarts
    dashed, each attempt's stopping point and the kept attempt's best epoch marked."""
    has_acc = any(np.any(np.isfinite(v)) for c in info.curves for v in (c.train_acc, c.val_acc))
    fig, axes = new_figure(11 if has_acc else 7.5, 4.6, 1, 2 if has_acc else 1)
    ax_loss = axes[0][0]
    _loss_panel(ax_loss, info, "loss")
    positive_log(ax_loss, [v for c in info.curves for v in (c.train_loss, c.val_loss)], "losses")
    ax_loss.set_ylabel("loss" + (" (log scale)" if ax_loss.get_yscale() == "log" else ""))
    ax_loss.set_title("Loss")
    _legend(ax_loss)
    if has_acc:
        ax_acc = axes[0][1]
        _loss_panel(ax_acc, info, "acc")
        ax_acc.set_ylim(-0.02, 1.05)
        ax_acc.set_ylabel("accuracy")
        ax_acc.set_title("Accuracy")
        _legend(ax_acc, loc="lower right")
    n = len(info.spans)
    kept = next((s for s in info.spans if s.kept), None)
    if n > 1:
        title = (f"Training curves: {n} attempts ({n - 1} restart{'s' * (n != 2)}"
                 + (f", attempt {kept.attempt} kept)" if kept is not None else ")"))
    elif info.per_step:
        title = "Training loss per step"
    else:
        title = "Training curves: loss" + (" and accuracy" if has_acc else "") + " per epoch"
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- per-layer series


def _layer_label(layer: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(layer, layer)


@styled
def draw_layer_series(info: LayerSeriesInfo, labels: Mapping[str, str] | None = None) -> "Figure":
    """One line per layer (its colour), weights left and biases right, restarts marked;
    long noisy series are drawn faintly with their rolling median on top."""
    fig, axes = new_figure(11, 4.4, 1, 2, sharex=True)
    colors = layer_colors(info.layers)
    per_step = True
    for ax, part, name in ((axes[0][0], "w", "weights"), (axes[0][1], "b", "biases")):
        curves = [c for c in info.curves if c.part == part]
        seen: set[str] = set()
        for c in curves:
            color = colors.get(c.layer, GUIDE_COLOR)
            label = _layer_label(c.layer, labels) if c.layer not in seen else None
            seen.add(c.layer)
            if c.y_smooth is not None:
                ax.plot(*envelope(c.x, c.y), color=color, lw=0.7, alpha=0.28)
                ax.plot(c.x, c.y_smooth, color=color, lw=1.7, label=label)
            else:
                ax.plot(c.x, c.y, color=color, lw=1.3, label=label)
        if not curves:
            note(ax, f"no {name} recorded")
        if info.reference is not None and curves:
            ax.axhline(info.reference, color=GUIDE_COLOR, ls=":", lw=1.2,
                       label=f"{info.reference:g} (rule of thumb)")
        if info.log_y and curves:
            positive_log(ax, [c.y for c in curves], "values")
        mark_attempts(ax, info.spans, per_step)
        integer_ticks(ax)
        ax.set_title(name.capitalize())
        ax.set_xlabel("step (all attempts)" if len(info.spans) > 1 else "step")
        ax.set_ylabel(info.y_labels[part == "b"])
        _legend(ax)
    if info.undefined:
        note(axes[0][1], f"{info.undefined} undefined ratio(s) left out\n(update of a zero bias)",
             "lower right")
    smooth = any(c.y_smooth is not None for c in info.curves)
    fig.suptitle(info.title + (" (faint: every step; bold: rolling median)" if smooth else ""))
    return fig


# ----------------------------------------------------------------------------- initial weights


@styled
def draw_init_dist(info: InitDistInfo, labels: Mapping[str, str] | None = None) -> "Figure":
    """A box per layer of the initial weights, every weight as a dot, and the scheme's
    bound (uniform) or ±1 std (normal) as dashed marks."""
    n = len(info.layers)
    fig, axes = new_figure(max(6.5, 1.5 * n + 3.5), 4.8)
    ax = axes[0][0]
    colors = layer_colors(info.layers)
    rng = np.random.default_rng(0)
    pos = np.arange(1, n + 1)
    box = ax.boxplot([np.asarray(w) for w in info.weights], positions=pos, widths=0.5,
                     patch_artist=True, showfliers=False, medianprops={"color": "black"})
    for patch, layer in zip(box["boxes"], info.layers):
        patch.set_facecolor(colors[layer])
        patch.set_alpha(0.35)
        patch.set_edgecolor(colors[layer])
    shown_expected = False
    for p, layer, w, exp, kind in zip(pos, info.layers, info.weights, info.expected, info.expected_kind):
        sample = w if len(w) <= 2000 else rng.choice(w, 2000, replace=False)
        jitter = rng.uniform(-0.18, 0.18, len(sample))
        ax.scatter(p + jitter, sample, s=10 if len(sample) < 200 else 3, color=colors[layer],
                   alpha=0.8 if len(sample) < 200 else 0.35, lw=0, zorder=3)
        if exp is not None:
            for sign in (1, -1):
                ax.hlines(sign * exp, p - 0.34, p + 0.34, colors="#212529", linestyles="--", lw=1.1,
                          zorder=4, label=None if shown_expected else
                          "scheme's bound (uniform) or ±1 std (normal)")
                shown_expected = True
    ax.set_xticks(pos)
    ax.set_xticklabels([f"{_layer_label(l, labels)}\n" + (f"{s[1]}→{s[0]}" if len(s) == 2 else
                                                             "×".join(map(str, s)))
                        + (f" · {scheme}" if scheme else "")
                        for l, s, scheme in zip(info.layers, info.shapes, info.schemes)])
    for tick, layer in zip(ax.get_xticklabels(), info.layers):
        tick.set_color(colors[layer])
    ax.axhline(0, color=GUIDE_COLOR, lw=0.8)
    reach = max([float(np.abs(w).max()) for w in info.weights if w.size] +
                [e for e in info.expected if e is not None] + [1e-6])
    ax.set_ylim(-1.12 * reach, 1.4 * reach)            # room for the legend above the boxes
    ax.set_ylabel("initial weight value")
    ax.set_xlabel("layer (fan-in → fan-out · init scheme)" if any(info.schemes) else
                  "layer (weight shape)")
    _legend(ax, loc="upper right")
    ax.set_title(f"Initial weight distribution per layer (attempt {info.attempt}; biases not shown)")
    ax.tick_params(axis="x", labelsize=8.5 if n > 5 else 9)
    return fig


# ----------------------------------------------------------------------------- activations


@styled
def draw_activations(info: ActivationInfo, labels: Mapping[str, str] | None = None) -> "Figure":
    """Share of dead (ReLU) or saturated (sigmoid/tanh) units per hidden layer, and the
    pre-activation mean ± std per hidden layer, on the probe batch."""
    fig, axes = new_figure(11, 4.4, 1, 2, sharex=True)
    ax_share, ax_pre = axes[0]
    colors = layer_colors(info.layers)
    seen: set[str] = set()
    for c in info.curves:
        color = colors.get(c.layer, GUIDE_COLOR)
        label = _layer_label(c.layer, labels) if c.layer not in seen else None
        seen.add(c.layer)
        if info.kind in ("dead", "both"):
            ax_share.plot(c.x, 100 * c.dead, color=color, lw=1.5, label=label, drawstyle="steps-post")
        if info.kind in ("saturated", "both"):
            ax_share.plot(c.x, 100 * c.saturated, color=color, lw=1.5, drawstyle="steps-post",
                          ls="--" if info.kind == "both" else "-",
                          label=label if info.kind == "saturated" else None)
        ax_pre.plot(c.x, c.mean, color=color, lw=1.4, label=label)
        ax_pre.fill_between(c.x, c.mean - c.std, c.mean + c.std, color=color, alpha=0.15, lw=0)
    if not info.curves:
        note(ax_share, "no activation statistics recorded (a linear model has no hidden layer)")
        note(ax_pre, "no activation statistics recorded")
    elif info.kind is None:
        note(ax_share, f"dead / saturated shares are defined for relu, sigmoid and tanh;\n"
                       f"this network uses {info.activation or 'another activation'}")
    else:
        ax_share.set_ylim(-3, 110)                    # room for the attempt labels
    for ax in (ax_share, ax_pre):
        mark_attempts(ax, info.spans, True)
        integer_ticks(ax)
        ax.set_xlabel("step (all attempts)" if len(info.spans) > 1 else "step")
        _legend(ax)
    what = {"dead": "dead units (ReLU output 0 on the whole probe batch)",
            "saturated": "saturated units (output within 1% of a bound on ≥95% of the batch)",
            "both": "dead (solid, ReLU) and saturated (dashed, sigmoid/tanh) units"}
    ax_share.set_title(what.get(info.kind or "", "dead / saturated units").capitalize(), fontsize=10)
    ax_share.set_ylabel("% of the layer's units")
    ax_pre.set_title("Pre-activations: mean (line) ± std (band)", fontsize=10)
    ax_pre.set_ylabel("pre-activation value")
    fig.suptitle(f"Hidden units per layer ({info.activation}, on the fixed probe batch)" if info.activation
                 else "Hidden units per layer (on each recorded step's batch)")
    return fig


# ----------------------------------------------------------------------------- curvature


@styled
def draw_curvature(info: "CurvatureInfo") -> "Figure":
    """Sharpness; lr x sharpness with the optimizer's stability bound as a line; the
    Hessian trace; the gradient noise scale. One line per attempt, restarts marked."""
    fig, axes = new_figure(11, 7.6, 2, 2, sharex=True)
    panels = ((axes[0][0], "sharpness", "top Hessian eigenvalue λ_max", "Sharpness"),
              (axes[0][1], "stability", "lr × sharpness", "lr × sharpness (stability)"),
              (axes[1][0], "hess_trace", "tr H (Hutchinson)", "Hessian trace"),
              (axes[1][1], "grad_noise_scale", "B_simple = tr Σ / |G|²",
               "Gradient noise scale (log scale)"))
    for ax, metric, ylabel, title in panels:
        drawn = []
        for c in info.curves:
            y = getattr(c, metric)
            ok = np.isfinite(y)
            if ok.any():
                ax.plot(c.x[ok], y[ok], lw=1.4, marker="." if ok.sum() < 60 else None,
                        color="#1a73e8", alpha=1.0 if c.attempt == info.curves[-1].attempt else 0.6)
                drawn.append(y[ok])
        if not drawn:
            note(ax, f"no {metric} recorded")
        if metric == "stability" and info.bound is not None:
            ax.axhline(info.bound, color="#d93025", ls="--", lw=1.3,
                       label=f"stability bound {info.bound:.3g}")
            _legend(ax)
        if metric == "grad_noise_scale" and drawn:
            positive_log(ax, drawn, "noise scales")
        mark_attempts(ax, info.spans, True)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("step (all attempts)" if len(info.spans) > 1 else "step")
    fig.suptitle("Curvature of the loss on the probe batch")
    return fig
