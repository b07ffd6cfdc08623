"""The seed study (SPEC §9): ``mlplab demo`` re-asks the questions of the blog post that
started the project and answers each with measurements.

    study.py     the scale, the trainer, the run and its summary
    sections.py  the six studies, each trains, measures and words its finding
    figures.py   the study's own figures
    page.py      its ``report.html``
"""

from __future__ import annotations

from .study import run_demo as run_demo

__all__ = ["run_demo"]
