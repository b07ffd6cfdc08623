"""The seed study (SPEC §9): ``mlplab demo`` re-asks the questions of the blog post that
started the project and answers each with measurements.

    study.py     ``run_demo``: the six sections in turn, the result and its summary
    trainer.py   the scale, the trainer of a section's cohorts, the post's configurations
    sections.py  the six studies, each trains, measures and words its finding
    figures.py   the study's own figures
    page.py      its ``report.html``
"""

from __future__ import annotations

from .study import run_demo as run_demo

__all__ = ["run_demo"]
