"""``report.html``: one self-contained page per store or run, opened from disk (SPEC §7).

    build.py  what goes on the page: figures, findings, configuration, runs table
    jobs.py   which PNGs a run's and a store's report draw, and their headings
    html.py   the HTML itself: escaped text, embedded PNGs, tables, inline CSS
    sweep.py  a store's hyper-parameter section: parallel coordinates and importance
    figfiles.py  the PNG files: kept until their figure record changes, drawn two at a time
    kept.py   each half of a store's report kept for the next one (unchanged store: nothing computed)
"""

from __future__ import annotations

from .build import ReportSection as ReportSection
from .build import build_report as build_report

__all__ = ["ReportSection", "build_report"]
