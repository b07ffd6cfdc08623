"""The HTML a notebook shows for a store, a sweep or a run: the report's sections
(:mod:`mlplab.report.html`, :mod:`mlplab.report.build`, :mod:`mlplab.report.sweep`) as one
block, its style scoped to the block so the notebook's own page keeps its look.

Figures are drawn into a temporary folder, embedded as ``data:`` URIs and the folder
removed: the block is self-contained and nothing is written into the store.

>>> scoped_css("body { margin: 0; } td, th { padding: 1px; }", ".x")
'.x { margin: 0; } .x td, .x th { padding: 1px; }'
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from mlplab.report.build import (best_run, draw_all, run_figure_jobs, run_findings, run_sections,
                                 title_of)
from mlplab.report.html import CSS, SCRIPT, anchor, esc, figure_html, runs_table, section
from mlplab.report.sweep import hyperparameter_section

# The views (mlplab.notebook.views) call these; they are typed Any here so that this module
# need not import them back.

SCOPE = "mlplab-nb"


def scoped_css(css: str, scope: str = f".{SCOPE}") -> str:
    """``css`` with every rule limited to the elements inside ``scope`` (``:root`` and
    ``body`` become the scope itself)."""
    out = []
    for rule in css.split("}"):
        if "{" not in rule:
            continue
        selectors, body = rule.split("{", 1)
        scoped = [scope if s.strip() in (":root", "body") else f"{scope} {s.strip()}"
                  for s in selectors.split(",")]
        out.append(f"{', '.join(scoped)} {{{body}}}")
    return " ".join(out)


def block(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The report's sections inside one ``<div>`` with the report's style, scoped."""
    body = "".join(section(t, h, f"{SCOPE}-{anchor(t)}") for t, h in sections)
    return (f'<div class="{SCOPE}"><style>{scoped_css(CSS)}</style>'
            f'<header><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}</div></header>'
            f"<main>{body}</main><script>{SCRIPT}</script></div>")


def _run_body(view: Any, run_id: str, out: Path, heading: str = "") -> list[tuple[str, str]]:
    from mlplab.figures.data_run import load_run_figdata

    store = view.store
    files = draw_all(run_figure_jobs(load_run_figdata(store, run_id)), out)
    return run_sections(store, store.run(run_id), files, run_findings(store.root, run_id), heading)


def runs_html(view: Any) -> str:
    """A store or a sweep: its figures of the runs together, the hyper-parameter section,
    the runs table and the best run's sections, as the store's report shows them."""
    from mlplab.store.table import run_row

    runs = view.run_infos()
    done = view.done()
    best = best_run(runs)
    sections = []
    with tempfile.TemporaryDirectory(prefix="mlplab-nb-") as tmp:
        if len(done) > 1:
            files = draw_all(view.summary_jobs(), Path(tmp) / "together")
            if files:
                sections.append(("Figures of the runs together",
                                 "".join(figure_html(f.path, title_of(f.name), f.caption)
                                         for f in files)))
            sections.append(hyperparameter_section(done, Path(tmp) / "together",
                                                    store_root=view.store.root, write_cache=False))
        sections.append((f"Runs ({len(runs)})", runs_table([run_row(r) for r in runs], (),
                                                           best.run_id if best else None)))
        if best is not None:
            heading = "Best run: " + best.run_id if len(done) > 1 else "Run " + best.run_id
            sections += _run_body(view, best.run_id, Path(tmp) / "best", heading)
        return block(f"mlplab {view.label()}: {view.store.root.resolve().name}",
                     f"{len(runs)} runs, {len(done)} finished", sections)


def run_html(view: Any) -> str:
    """One run: the sections of its report (summary, findings, figures, configuration)."""
    info = view.store.run(view.run_id)
    if info.status != "done":
        return block(f"mlplab run {view.run_id}", info.status,
                     [("Run", f"<p>Run {esc(view.run_id)} is {esc(info.status)}: no figures"
                              " until it is done.</p>")])
    with tempfile.TemporaryDirectory(prefix="mlplab-nb-") as tmp:
        return block(f"mlplab run {view.run_id}", f"store {view.store.root.resolve().name}",
                     _run_body(view, view.run_id, Path(tmp)))


__all__ = ["block", "runs_html", "run_html", "scoped_css"]
