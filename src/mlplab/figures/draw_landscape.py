"""PNG figures of a loss landscape and of a learning-rate finder, drawn from the records of
:mod:`mlplab.figures.data_landscape` (never the store).

>>> import numpy as np
>>> from mlplab.figures.data_landscape import LineCurve, LineInfo
>>> a = np.linspace(0, 1, 5)
>>> fig = draw_lines((LineInfo("t", "initial", "final", a, (LineCurve("train", a),), ""),))
>>> [round(v) for v in fig.get_size_inches() * DPI]
[600, 420]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .data_landscape import LandscapeInfo, LineInfo, LrFindInfo, PlaneInfo
from .draw_run import (DPI, GUIDE_COLOR, TRAIN_COLOR, VAL_COLOR, new_figure, note, positive_log,
                       save_figure, styled)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "caption_of_figure", "draw_lines", "draw_slice", "draw_lr_find",
           "write_landscape_figures"]


@styled
def draw_lines(lines: Sequence[LineInfo]) -> "Figure":
    """The training loss along straight lines in weight space: from the initial to the final
    weights (left) and from the final weights to those of other seeds of the same
    configuration (right); a bump above the straight line between the ends is a barrier."""
    fig, axes = new_figure(6.0 * len(lines), 4.2, 1, len(lines))
    for ax, line in zip(axes[0], lines):
        # train and val on the left; the other seeds in colours after those two
        colors = [TRAIN_COLOR, VAL_COLOR] if line.start == "initial" else \
            [f"C{(i + 2) % 10}" for i in range(len(line.curves))]
        for curve, color in zip(line.curves, colors):
            if len(curve.values):
                ax.plot(line.alphas, curve.values, color=color, lw=1.6, label=curve.label)
        ax.set_xlabel(f"alpha  (0: {line.start}, 1: {line.end})")
        ax.set_ylabel("loss")
        ax.set_title(line.title + (f"\n{line.note}" if line.note and line.curves else ""))
        if line.curves:
            positive_log(ax, [c.values for c in line.curves], "losses")
            ax.legend(loc="best")
        else:
            note(ax, line.note or "nothing to draw")
    return fig


@styled
def draw_slice(plane: PlaneInfo) -> "Figure":
    """The training loss on a 2-D slice through the final weights along two random
    filter-normalised directions (Li et al. 2018; or the training path's two principal
    directions), log-scaled contours, with the training path (initial weights, then the
    weights at each boundary-snapshot epoch) projected onto the plane; the final weights are
    the centre."""
    from matplotlib.colors import LogNorm

    fig, axes = new_figure(6.4, 5.4, layout="constrained")       # its colorbar
    ax = axes[0, 0]
    loss = np.where(np.isfinite(plane.loss), plane.loss, np.nan)
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if len(finite) == 0:
        note(ax, "no finite loss on the slice")
        return fig
    lo, hi = float(finite.min()), float(finite.max())
    levels = np.geomspace(lo, hi, 25) if hi > lo * 1.0001 else None
    cs = ax.contourf(plane.u, plane.v, np.clip(loss, lo, hi), levels=levels, cmap="viridis",
                     norm=LogNorm(lo, hi) if levels is not None else None)
    ax.contour(plane.u, plane.v, np.clip(loss, lo, hi), levels=levels[::3] if levels is not None
               else None, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(cs, ax=ax, label="training loss", format="%.3g")
    ax.plot([0], [0], marker="*", ms=14, color="#ffd400", mec="black", label="final weights",
            ls="none")
    if plane.path is not None:
        p = plane.path
        ax.plot(p.u, p.v, color="white", lw=1.2, marker="o", ms=3.5, mec="black", mew=0.5,
                label="training path")
        ax.plot(p.u[:1], p.v[:1], marker="s", ms=7, color="#e8710a", mec="black", ls="none",
                label="initial weights")
        off = float(np.nanmax(p.off_plane)) if len(p.off_plane) else 0.0
        ax.text(0.01, 0.01, f"path epochs {p.epochs[1] if len(p.epochs) > 1 else '-'}.."
                f"{p.epochs[-1]}; up to {off:.0%} of a point's distance lies off the plane",
                transform=ax.transAxes, fontsize=7.5, color="white", va="bottom")
    else:
        note(ax, "no weight snapshots kept: no path", "upper right")
    unit = "filter-normalised" if plane.kind == "random" else "path PC, weight units"
    ax.set_xlabel(f"direction 1 ({unit})")
    ax.set_ylabel(f"direction 2 ({unit})")
    ax.set_title("Loss around the final weights")
    ax.grid(False)
    ax.legend(loc="upper left", fontsize=7.5)
    return fig


def caption_of_figure(name: str) -> str:
    """The caption of ``interpolation.png`` or ``slice.png``: its draw function's first
    paragraph."""
    draw = {"interpolation": draw_lines, "slice": draw_slice}[name]
    return " ".join((draw.__doc__ or "").strip().split("\n\n")[0].split())


def write_landscape_figures(info: LandscapeInfo, folder: Path) -> list[Path]:
    """``interpolation.png`` and ``slice.png`` in ``folder``."""
    return [save_figure(draw_lines((info.interpolation, info.barrier)),
                        folder / "interpolation.png"),
            save_figure(draw_slice(info.plane), folder / "slice.png")]


@styled
def draw_lr_find(info: LrFindInfo) -> "Figure":
    """Left: the final training loss of a short run at each fixed learning rate, median over
    seeds with its 95 % interval (each seed a dot), and the suggested lr with its interval
    over seeds. Right: the single-run exponential range test (Smith 2017) on the same
    configuration, smoothed loss against the lr it had at each step."""
    fig, axes = new_figure(12.0, 4.4, 1, 2)
    ax, rt = axes[0]
    for j in range(info.per_seed.shape[1] if info.per_seed.ndim == 2 else 0):
        ax.plot(info.lrs, info.per_seed[:, j], ls="none", marker=".", ms=3, color=GUIDE_COLOR,
                alpha=0.5)
    ax.fill_between(info.lrs, info.low, info.high, color=TRAIN_COLOR, alpha=0.2,
                    label="95% interval of the median")
    ax.plot(info.lrs, info.median, color=TRAIN_COLOR, marker="o", ms=4, label="median over seeds")
    for a in (ax, rt):
        a.axvspan(info.suggested_low, info.suggested_high, color=VAL_COLOR, alpha=0.12)
        a.axvline(info.suggested, color=VAL_COLOR, lw=1.5,
                  label=f"suggested lr {info.suggested:.3g} "
                        f"[{info.suggested_low:.3g}, {info.suggested_high:.3g}]")
        a.set_xscale("log")
        a.set_xlabel("learning rate")
    positive_log(ax, [info.median, info.per_seed.reshape(-1)], "losses")
    ax.set_ylabel("final training loss")
    ax.set_title("Fixed learning rates × seeds (one cohort)")
    ax.legend(loc="best")
    if len(info.range_lrs):
        rt.plot(info.range_lrs, info.range_loss, color=TRAIN_COLOR, lw=1.4,
                label="smoothed loss, one run")
        if info.range_suggested is not None:
            rt.axvline(info.range_suggested, color="black", ls="--", lw=1.2,
                       label=f"range test: {info.range_suggested:.3g} (min / 10)")
        positive_log(rt, [info.range_loss], "losses")
    rt.set_ylabel("training loss")
    rt.set_title("Exponential range test (Smith)")
    rt.legend(loc="best")
    if info.title:
        fig.suptitle(info.title)
    return fig
