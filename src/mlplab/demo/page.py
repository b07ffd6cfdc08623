"""``out/report.html`` of the seed study: one section per finding, with its sentence, the
verdict on each claim (its test, n, the effect and its interval), the numbers behind it and
its figures (embedded, so the file opens from disk offline); and ``out/summary.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mlplab.report.html import esc, figure_html, page
from mlplab.store.atomic import write_atomic
from mlplab.strictjson import dumps
from .trainer import SectionResult

def _value(v: Any, column: str = "") -> str:
    if isinstance(v, float) and column in ("success_rate", "reached"):
        return f"{100 * v:.0f}%"
    if isinstance(v, tuple) and len(v) == 2 and column == "success_ci":
        return f"{100 * (v[0] or 0):.0f} to {100 * (v[1] or 0):.0f}%"
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"{v[0]:.4g} to {v[1]:.4g}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple) and len(v) == 3 and all(isinstance(x, float) for x in v):
        return "never" if v[1] != v[1] else f"{v[1]:.3g} [{v[0]:.3g}, {v[2]:.3g}]"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items())
    return str(v)


def _rows_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{esc(_value(r.get(c, ''), c))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _claims_html(s: SectionResult) -> str:
    items = "".join(f"<li><b>{esc(j.kind)}</b>: {esc(j.statement)} <span class=\"sub\">"
                    f"({esc(j.measure)}; smallest effect of interest {j.sesoi:g}; {esc(j.test)})"
                    f"</span><br>{esc(j.text)}</li>" for j in s.judged)
    return f"<p><b>Verdict: {esc(s.verdict or '')}</b></p><ul>{items}</ul>" if items else ""


def _section_html(s: SectionResult, out: Path) -> str:
    store = ""
    if s.store is not None:
        rel = os.path.relpath(s.store, out)
        store = (f"<p class=\"sub\">Runs in the store <code>{esc(rel)}</code> "
                 f"(<code>mlplab runs</code>, <code>mlplab dashboard</code> open it).</p>")
    figures = "".join(figure_html(p, s.title, "") for p in s.figures if p.is_file())
    return f"<p>{esc(s.finding)}</p>{_claims_html(s)}{_rows_table(s.rows)}{figures}{store}"


def write_demo_report(out: Path, sections: Sequence[SectionResult], wall_time: float,
                      quick: bool) -> Path:
    """Write ``out/report.html`` and ``out/summary.json`` atomically; returns the report."""
    parts = [(s.title, _section_html(s, out)) for s in sections]
    summary_rows = "".join(
        f'<tr><td>{esc(s.title)}</td><td><b>{esc(s.verdict or "")}</b></td><td class="wrap">'
        + "<br>".join(f"<i>{esc(j.statement)}</i>: {esc(j.text)}" for j in s.judged)
        + "</td></tr>" for s in sections)
    parts.insert(0, ("Summary", '<table class="runs"><thead><tr><th>study</th><th>verdict</th>'
                     f"<th>claims: test, n, effect and 95% interval</th></tr></thead><tbody>"
                     f"{summary_rows}</tbody></table>"))
    subtitle = (f"{'quick ' if quick else ''}seed study, {wall_time:.0f} s; every sentence is "
                "generated from the measured runs; verdicts are Holm-adjusted across the study")
    doc = page("mlplab seed study", subtitle, parts)
    data = {"wall_time": wall_time, "quick": quick, "sections": [s.to_dict() for s in sections]}
    for name, text in (("report.html", doc), ("summary.json", dumps(data, indent=2))):
        write_atomic(out / name, text)
    return out / "report.html"
