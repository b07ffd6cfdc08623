"""How a figure becomes a PNG: its margins fitted to its labels, only the ticks in view
made, and one render at :data:`DPI`, so a PNG is exactly ``figsize * DPI`` pixels.

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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
# zlib level of the PNGs: 1 writes them about three times as fast as the default 6 and
# makes them 5-25 % larger (flat colours and lines compress well at any level)
PNG_COMPRESSION = 1


def fit_layout(fig: "Figure") -> None:
    """Fit the margins to the labels in one measuring pass (tight layout; constrained
    layout measures twice and draws once more, most of a figure's cost); constrained
    layout where that cannot fit them (matplotlib warns) or the figure asked for it."""
    import contextlib
    import warnings

    import matplotlib

    if fig.get_layout_engine() is not None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            fig.tight_layout(pad=0.6, h_pad=0.8, w_pad=0.8)
        except UserWarning:
            with contextlib.suppress(RuntimeError):     # a colorbar made for no engine
                fig.set_layout_engine("constrained")
            return
    # tight_layout leaves a placeholder engine, and savefig draws a figure that has an
    # engine once more (without output) before it renders it: a fifth of the cost
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)


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
        of it: a superset of those matplotlib shows (it allows 1e-10)."""

        def __init__(self, base: Any, axis: Any) -> None:
            self.base = base
            self.set_axis(axis)

        def __call__(self) -> Any:
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


def save_figure(fig: "Figure", path: str | Path) -> Path:
    """Write ``fig`` as a PNG of exactly ``figsize * DPI`` pixels, its margins fitted by
    :func:`fit_layout` and only its ticks in view made (:func:`ticks_in_view`); returns
    the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ticks_in_view(fig)
    fit_layout(fig)
    fig.savefig(path, dpi=DPI, format="png", pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path


__all__ = ["DPI", "PNG_COMPRESSION", "fit_layout", "ticks_in_view", "save_figure"]
