"""The seed study (SPEC §9): ``mlplab demo`` re-asks the questions of the blog post that
started the project and answers each with mlplab's own measurements.

Six sections, each trained with the cohort engine into its own store under ``out``
(``out/<section>/``, each a store the dashboard can open), each turned into a
:class:`SectionResult` whose one-line finding is generated from the numbers, and one
``out/report.html`` with a section per finding. Where the post's claim does not
reproduce, the finding says so.

``mlplab demo`` is one call of :func:`run_demo` (``--quick``: ``quick=True``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .trainer import QUICK, DemoScale, SectionResult, Trainer


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: Path
    sections: list[SectionResult]
    wall_time: float

    def summary(self) -> str:
        """The table printed at the end of ``mlplab demo``."""
        lines = [f"mlplab seed study  ({self.wall_time:.0f} s)  report: {self.report}", ""]
        width = max(len(s.title) for s in self.sections)
        for s in self.sections:
            mark = {True: "reproduces", False: "does NOT reproduce", None: ""}[s.reproduces]
            lines.append(f"{s.title.ljust(width)}  {s.finding}" + (f"  [{mark}]" if mark else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "report": str(self.report), "wall_time": self.wall_time,
                "sections": [{"key": s.key, "title": s.title, "finding": s.finding,
                              "reproduces": s.reproduces, "numbers": s.numbers,
                              "rows": s.rows, "store": str(s.store)} for s in self.sections]}


def run_demo(out: str | Path = "runs/demo", quick: bool = False, quiet: bool = False,
             scale: DemoScale | None = None) -> DemoResult:
    """Run the whole seed study into ``out`` and write ``out/report.html``.

    ``scale`` sets the seeds and epochs of every section (default :class:`DemoScale`,
    ``quick``: :data:`QUICK`). Even at a scale of one or two seeds and three epochs the
    six sections, their stores, figures and report take about 15 s on two cores, so the
    example shows what each scale trains rather than running it:

    >>> from mlplab.demo.sections import planned_runs
    >>> planned_runs(DemoScale()), planned_runs(QUICK)
    (886, 167)
    >>> QUICK.xor_seeds, QUICK.xor_epochs
    (16, 150)
    """
    import torch

    from . import sections
    from .page import write_demo_report

    start = time.perf_counter()
    scale = scale or (QUICK if quick else DemoScale())
    # The study's matrices are tiny ([K, 64, 16]): one intra-op thread avoids the
    # thread hand-off that costs more than the arithmetic (3x slower on 2 busy cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(out, sections.planned_runs(scale), quiet)
    try:
        results = [study(trainer, scale) for study in sections.STUDIES]
    finally:
        trainer.bar.close()
        torch.set_num_threads(threads)
    report = write_demo_report(out, results, time.perf_counter() - start, quick)
    return DemoResult(out, report, results, time.perf_counter() - start)

