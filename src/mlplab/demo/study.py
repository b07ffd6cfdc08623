"""The seed study (SPEC §9): ``mlplab demo`` re-asks the questions of the blog post that
started the project and answers each with mlplab's own measurements.

Six sections, each trained with the cohort engine into its own store under ``out``
(``out/<section>/``, each a store the dashboard can open), each turned into a
:class:`SectionResult` whose finding is generated from the numbers and whose claims are
judged together (Holm across the whole study, :mod:`mlplab.demo.claims`): each claim
*reproduces*, is *contradicted* or is *inconclusive* at the seeds run, and says its test,
n, the effect and its interval. One ``out/report.html`` has a section per finding and
``out/summary.json`` (strict JSON) the same numbers.

``mlplab demo`` is one call of :func:`run_demo` (``--quick``: ``quick=True``).
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlplab.config import ConfigError
from .claims import judge, section_verdict
from .trainer import QUICK, DemoScale, SectionResult, Trainer


def _fill(text: str, first: str, rest: str) -> str:
    # never break inside "Mann-Whitney" or a negative number
    return textwrap.fill(text, 100, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False, break_long_words=False)


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: Path
    sections: list[SectionResult]
    wall_time: float

    def summary(self) -> str:
        """The table printed at the end of ``mlplab demo``: per section its verdict and finding,
        then each claim with its verdict, test, n, effect and interval."""
        lines = [f"mlplab seed study  ({self.wall_time:.0f} s)  report: {self.report}"]
        for s in self.sections:
            lines += ["", f"{s.title}  [{s.verdict}]",
                      _fill(s.finding, "  ", "  ")]
            for j in s.judged:
                claim = (f"- claim: {j.statement} ({j.measure}; smallest effect of interest "
                         f"{j.sesoi:g}): {j.text}")
                lines.append(_fill(claim, "  ", "      "))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (``mlplab demo --json``)."""
        return {"out": str(self.out), "report": str(self.report), "wall_time": self.wall_time,
                "sections": [s.to_dict() for s in self.sections]}


def run_demo(out: str | Path = "runs/demo", quick: bool = False, quiet: bool = False,
             scale: DemoScale | None = None) -> DemoResult:
    """Run the whole seed study into ``out`` and write ``out/report.html``.

    ``scale`` sets the seeds and epochs of every section (default :class:`DemoScale`,
    ``quick``: :data:`QUICK`). Even at a scale of one or two seeds and three epochs the
    six sections, their stores, figures and report take about 15 s on two cores, so the
    example shows what each scale trains rather than running it:

    >>> from mlplab.demo.sections import planned_runs
    >>> planned_runs(DemoScale()), planned_runs(QUICK)
    (1014, 177)
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
    if any(p.exists() and not p.is_dir() for p in (out, *out.parents)):
        raise ConfigError("--out", str(out), "a folder for the study's stores and report (new or"
                          " existing), not a file")
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(out, sections.planned_runs(scale), quiet)
    try:
        results = [study(trainer, scale) for study in sections.STUDIES]
    finally:
        trainer.bar.close()
        torch.set_num_threads(threads)
    # every claim of the study at once, so the Holm adjustment covers the whole study
    judged = judge([c for s in results for c in s.claims])
    results = [replace(s, judged=[j for j in judged if j.section == s.key],
                       verdict=section_verdict([j.kind for j in judged if j.section == s.key]))
               for s in results]
    report = write_demo_report(out, results, time.perf_counter() - start, quick)
    return DemoResult(out, report, results, time.perf_counter() - start)

