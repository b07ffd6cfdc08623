"""How a figure becomes a PNG: its margins fitted to its labels, only the ticks in view
made, and one render at :data:`DPI`, so a PNG is exactly ``figsize * DPI`` pixels. Its short
cuts (one layout pass, no dry draw, minor ticks as one artist, legends placed once) draw
the very pixels matplotlib's ``tight_layout`` and ``savefig`` draw, in 0.5-0.6 of the CPU
(``tests/test_figures_save.py``, ``bench/draw_cost.py``).

Importing this module imports no matplotlib (a report whose PNGs are all current draws
nothing).

>>> from matplotlib.figure import Figure
>>> fig = Figure(figsize=(3, 2)); ax = fig.subplots(); _ = ax.semilogy([1, 2], [3e-7, 0.5])
>>> ax.yaxis.get_majorticklocs()            # a decade beyond the view on either side
array([1.e-08, 1.e-06, 1.e-04, 1.e-02, 1.e+00, 1.e+02])
>>> ticks_in_view(fig); ax.yaxis.get_majorticklocs()
array([1.e-06, 1.e-04, 1.e-02, 1.e+00])
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
# zlib level of the PNGs: 1 encodes them in two thirds of the time of matplotlib's 6; written
# as RGB (not RGBA), they are about as large as before (flat colours compress well anyway)
PNG_COMPRESSION = 1


def fit_layout(fig: "Figure") -> None:
    """Fit the margins to the labels in one measuring pass (tight layout), or by
    constrained layout where that cannot fit them (matplotlib warns) or the figure asked
    for it, run once here; the figure is left with no layout engine, since savefig draws a
    figure that has one once more without output (running the engine again) before it
    renders it."""
    import contextlib
    import warnings

    import matplotlib
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if fig.get_layout_engine() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            try:
                fig.tight_layout(pad=0.6, h_pad=0.8, w_pad=0.8)
            except UserWarning:
                with contextlib.suppress(RuntimeError):     # a colorbar made for no engine
                    fig.set_layout_engine("constrained")
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.execute(fig)
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)


def settle_legends(fig: "Figure", renderer: Any) -> None:
    """Pin every axes' legend where it is now: a legend at ``loc="best"`` searches all the
    axes' data for its place each time it is measured or drawn; pinned, the render does
    not search again. A legend anchored to a point (not a box) is left as it is."""
    for ax in fig.axes:
        legend = ax.get_legend()
        anchor = None if legend is None else legend.get_bbox_to_anchor()
        if legend is not None and legend.get_visible() and anchor.width > 0 and anchor.height > 0:
            box = legend.get_window_extent(renderer)              # placed as it would be
            legend.set_loc(((box.x0 - anchor.x0) / anchor.width, (box.y0 - anchor.y0) / anchor.height))


def ticks_in_view(fig: "Figure") -> None:
    """Let every axis of ``fig`` make only the ticks in its view. matplotlib makes a tick
    (five artists, the costliest part of a figure) for every location its locator returns
    and then shows those in view; a log axis's minor locator returns every 2..9 of whole
    decades beyond the view. Ticks labelled by position (``set_xticklabels``) are left as
    they are, since dropping one would shift the labels."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    in_view = in_view_locator()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for ticker in (axis.major, axis.minor):      # shared axes share these
                if not isinstance(ticker.locator, (FixedLocator, NullLocator, in_view)) \
                        and not isinstance(ticker.formatter, FixedFormatter):
                    ticker.locator = in_view(ticker.locator, axis)


@functools.cache
def in_view_locator() -> type:
    """The locator class of :func:`ticks_in_view` (made on first use, so that importing
    this module imports no matplotlib)."""
    from matplotlib.ticker import Locator

    class InViewLocator(Locator):
        """The locations of ``base`` inside the axis's view, with a margin of a millionth
        of it: a superset of those matplotlib shows (it allows 1e-10); kept while the
        view and the axes' place in the figure stay the same (what a locator depends on)."""

        def __init__(self, base: Any, axis: Any) -> None:
            self.base = base
            self.set_axis(axis)
            self._key: tuple[float, ...] = ()
            self._locs = np.zeros(0)

        def __call__(self) -> Any:
            # asked a dozen times a save (layout, labels, render) for the same answer
            key = (*self.axis.get_view_interval(), *self.axis.axes.bbox.bounds)
            if key != self._key:
                self._key, self._locs = key, self._in_view()
            return self._locs

        def _in_view(self) -> Any:
            locs = np.asarray(self.base(), dtype=np.float64)
            if not len(locs):
                return locs
            to_screen = self.axis.get_transform()
            lo, hi = sorted(to_screen.transform(np.asarray(self.axis.get_view_interval(), np.float64)))
            with np.errstate(invalid="ignore", divide="ignore"):
                t = to_screen.transform(locs)
            slack = 1e-6 * (hi - lo)
            return locs[~np.isfinite(t) | ((t >= lo - slack) & (t <= hi + slack))]

        def tick_values(self, vmin: float, vmax: float) -> Any:
            return self.base.tick_values(vmin, vmax)

        def nonsingular(self, v0: float, v1: float) -> tuple[float, float]:
            return self.base.nonsingular(v0, v1)

        def view_limits(self, vmin: float, vmax: float) -> tuple[float, float]:
            return self.base.view_limits(vmin, vmax)

    return InViewLocator


def textless_ticks(fig: "Figure") -> list[tuple[Any, tuple[bool, bool], Any]]:
    """Turn off, before the layout, the minor ticks of every axis that shows neither
    text nor a grid line for them (a log axis's 2..9 of each decade, dozens an axis, each
    a tick of five artists); :func:`mark_textless_ticks` draws them back after the layout
    as one line of markers an axis and side. Only where major ticks are drawn in the view,
    at least as long: the layout counts the longest tick into the axes' extent. Returns
    what that needs: ``(axis, (tick1 on, tick2 on), a minor tick)`` each."""
    from matplotlib.ticker import NullFormatter, NullLocator

    taken = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if (not ax.axison or not axis.get_visible() or isinstance(axis.minor.locator, NullLocator)
                    or isinstance(axis.major.locator, NullLocator) or not len(axis.get_majorticklocs())):
                continue
            tick, major = axis.get_minor_ticks(1)[0], axis.get_major_ticks(1)[0]
            sides = (tick.tick1line.get_visible(), tick.tick2line.get_visible())
            textless = (isinstance(axis.minor.formatter, NullFormatter)
                        or not (tick.label1.get_visible() or tick.label2.get_visible()))
            shorter = all(not on or (m.get_visible() and m.get_marker() == t.get_marker()
                                     and m.get_markersize() >= t.get_markersize())
                          for on, t, m in zip(sides, (tick.tick1line, tick.tick2line),
                                              (major.tick1line, major.tick2line)))
            if textless and shorter and any(sides) and not tick.gridline.get_visible():
                taken.append((axis, sides, tick))
    for axis, _, _ in taken:
        axis.set_tick_params(which="minor", tick1On=False, tick2On=False, label1On=False,
                             label2On=False, gridOn=False)
    return taken


def mark_textless_ticks(taken: Sequence[tuple[Any, tuple[bool, bool], Any]]) -> None:
    """Draw the minor ticks :func:`textless_ticks` turned off as one line of tick markers
    an axis and side, styled as its ticks, where matplotlib would put them in the final
    layout (a log locator's depend on the axis's length): in the view, not on a major one."""
    from matplotlib.lines import Line2D

    for axis, sides, tick in taken:
        locs = np.asarray(axis.get_minorticklocs(), np.float64)      # without those on a major
        to_screen = axis.get_transform()
        lo, hi = sorted(to_screen.transform(np.asarray(axis.get_view_interval(), np.float64)))
        t = to_screen.transform(locs) if len(locs) else locs
        slack = 1e-10 * (hi - lo)                    # matplotlib's own test of a tick in view
        locs = locs[(t >= lo - slack) & (t <= hi + slack)]
        for line, on in zip((tick.tick1line, tick.tick2line), sides):
            if not on or not len(locs):
                continue
            at = np.full(len(locs), (line.get_xdata() if axis.axis_name == "y" else line.get_ydata())[0])
            mark = Line2D(*((at, locs) if axis.axis_name == "y" else (locs, at)))
            mark.update_from(line)                   # style and transform (data x axes)
            mark.set_visible(True)
            mark.set_zorder(axis.get_zorder())
            mark.set_in_layout(False)
            axis.axes.add_artist(mark)
            mark.set_clip_on(False)                  # ticks lie outside the axes


def save_figure(fig: "Figure", path: str | Path) -> Path:
    """Write ``fig`` as a PNG of exactly ``figsize * DPI`` pixels, its margins fitted by
    :func:`fit_layout`, only its ticks in view made (:func:`ticks_in_view`), its minor
    ticks without text drawn as one artist an axis (:func:`textless_ticks`) and its
    legends placed once (:func:`settle_legends`); RGB when it is opaque (every figure
    here: a white face), else RGBA. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_dpi() != DPI:
        fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)                   # one renderer for layout and render
    ticks_in_view(fig)
    textless = textless_ticks(fig)
    fit_layout(fig)
    mark_textless_ticks(textless)
    settle_legends(fig, canvas.get_renderer())
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())                                   # [H, W, 4]
    image = Image.fromarray(rgba[..., :3] if rgba[..., 3].min() == 255 else rgba)
    image.save(path, format="png", compress_level=PNG_COMPRESSION, dpi=(DPI, DPI))
    return path


__all__ = ["DPI", "PNG_COMPRESSION", "fit_layout", "settle_legends", "ticks_in_view", "textless_ticks",
           "mark_textless_ticks", "save_figure"]
