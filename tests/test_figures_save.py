"""save_figure's short cuts (ticks only in view, textless minor ticks as one artist an
axis, legends pinned after the layout, the layout run once, RGB PNGs) draw the very pixels
matplotlib's own savefig draws of the same figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from mlplab.figures.draw_run import DPI, positive_log, save_figure, styled
from mlplab.figures.draw_save import ticks_in_view


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def matplotlib_png(fig: Figure, path: Path) -> Path:
    """The figure as matplotlib writes it: tight layout unless it has an engine, savefig."""
    if fig.get_layout_engine() is None:
        fig.tight_layout(pad=0.6, h_pad=0.8, w_pad=0.8)
    fig.savefig(path, dpi=DPI, format="png")
    return path


@styled
def log_panels(loc: str = "best") -> Figure:
    """Two panels sharing a log y axis over seven decades (dozens of minor ticks), a
    legend placed by 'best', a linear panel with a fixed legend."""
    fig = Figure(figsize=(9, 4), dpi=DPI)
    axes = fig.subplots(1, 3, sharey=False)
    x = np.arange(1, 301)
    for k, ax in enumerate(axes[:2]):
        ax.plot(x, 0.3 * np.exp(-x / (20 + 30 * k)) + 1e-7, label="val loss")
        ax.plot(x, 0.2 * np.exp(-x / (15 + 10 * k)) + 3e-7, label="train loss")
        positive_log(ax, [l.get_ydata() for l in ax.lines], "losses")
        ax.legend(loc=loc)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("loss (log scale)")
    axes[2].plot(x, np.sin(x / 30), label="sine")
    axes[2].legend(loc="lower left")
    axes[2].set_xlim(-5, 290)                     # the locator's first and last ticks outside
    fig.suptitle("Seven decades")
    return fig


@styled
def with_colorbar() -> Figure:
    """Constrained layout (a colorbar), as the parallel-coordinates figure has."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = Figure(figsize=(7, 4), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for c in range(12):
        ax.plot([0, 1, 2], np.random.default_rng(c).uniform(size=3), color=colormaps["viridis"](c / 11))
    fig.colorbar(ScalarMappable(Normalize(0, 1), colormaps["viridis"]), ax=ax, label="median")
    ax.set_title("twelve lines")
    return fig


@styled
def category_labels() -> Figure:
    """Tick labels set by position, the view cutting off the first tick."""
    fig = Figure(figsize=(5, 3), dpi=DPI)
    ax = fig.subplots()
    ax.bar(range(5), [3, 1, 4, 1, 5])
    ax.set_xticks(range(5), ["adam", "sgd", "momentum", "rmsprop", "adagrad"])
    ax.set_xlim(0.5, 4.5)
    return fig


@pytest.mark.parametrize("make", [log_panels, with_colorbar, category_labels])
def test_save_figure_draws_the_pixels_matplotlib_draws(make: Callable[[], Figure], tmp_path: Path) -> None:
    ours = pixels(save_figure(make(), tmp_path / "ours.png"))
    theirs = pixels(matplotlib_png(make(), tmp_path / "theirs.png"))
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs), f"{(ours != theirs).any(-1).sum()} pixels differ"


def test_the_log_axes_minor_ticks_are_drawn(tmp_path: Path) -> None:
    """The short cut draws the minor ticks (not leaves them out): without any minor
    ticks, the PNG differs from matplotlib's."""
    from matplotlib.ticker import NullLocator

    bare = log_panels()
    for ax in bare.axes[:2]:
        ax.yaxis.set_minor_locator(NullLocator())
    theirs = pixels(matplotlib_png(log_panels(), tmp_path / "theirs.png"))
    assert not np.array_equal(pixels(matplotlib_png(bare, tmp_path / "bare.png")), theirs)
    assert np.array_equal(pixels(save_figure(log_panels(), tmp_path / "ours.png")), theirs)


def test_an_opaque_figure_is_written_rgb_a_transparent_one_rgba(tmp_path: Path) -> None:
    with Image.open(save_figure(log_panels(), tmp_path / "opaque.png")) as im:
        assert im.mode == "RGB" and im.size == (900, 400)
    fig = Figure(figsize=(3, 2), dpi=DPI, facecolor="none")
    fig.subplots().plot([0, 1], [0, 1])
    with Image.open(save_figure(fig, tmp_path / "clear.png")) as im:
        assert im.mode == "RGBA" and np.asarray(im)[..., 3].min() == 0


def test_positional_labels_keep_their_ticks() -> None:
    fig = category_labels()
    before = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ticks_in_view(fig)
    assert list(fig.axes[0].get_xticks()) == [0, 1, 2, 3, 4]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == before


def test_ticks_outside_the_view_are_not_made() -> None:
    fig = log_panels()
    ax: Any = fig.axes[2]
    assert min(ax.get_xticks()) < ax.get_xlim()[0]          # matplotlib's locator reaches out
    ticks_in_view(fig)
    lo, hi = ax.get_xlim()
    assert all(lo <= t <= hi for t in ax.get_xticks())


def test_drawing_keeps_earlier_objects_out_of_full_collections() -> None:
    import gc

    from mlplab.report.figfiles import objects_kept_out_of_gc

    before = gc.get_freeze_count()
    with objects_kept_out_of_gc():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before
