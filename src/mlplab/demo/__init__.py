"""The seed study (SPEC §9): ``mlplab demo`` re-asks the questions of the blog post that
started the project and answers each with measurements.

    study.py     ``run_demo``: the six sections in turn, their claims judged together, the summary
    claims.py    the claims of the post and their three-valued verdicts (Holm across the study)
    trainer.py   the scale, the trainer of a section's cohorts, the post's configurations
    sections.py  XOR, initialisation, optimizers, training length: train, measure, state claims
    depth.py     the depth x width grid against the mixture's Bayes limit
    staged.py    the staged sweep and a check of its pick on fresh seeds
    figures.py   the study's own figures
    page.py      its ``report.html``
"""

from __future__ import annotations

from .study import run_demo as run_demo

__all__ = ["run_demo"]
