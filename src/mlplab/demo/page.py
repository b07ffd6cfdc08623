"""``out/report.html`` of the seed study: one section per finding, with its sentence, the
numbers behind it, whether the post's claim reproduced, and its figures (embedded, so
the file opens from disk offline).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from mlplab.report.html import esc, figure_html, page
from mlplab.strictjson import dumps
from .trainer import SectionResult

CLAIMS = {
    "xor_seeds": "the 2-4-1 XOR net sometimes never learns, depending on its initialisation",
    "init": "Xavier/He initialisation beats a plain normal(1.0); all-zero weights never learn",
    "optimizers": "Adam converges faster than SGD with momentum",
    "depth": "one hidden layer is not enough for the overlapping 5-class mixture; two are",
    "length": "on circles within circles, more epochs help",
    "staged": None,
}


def _value(v: Any, column: str = "") -> str:
    if isinstance(v, float) and column in ("success_rate", "reached"):
        return f"{100 * v:.0f}%"
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


def _section_html(s: SectionResult, out: Path) -> str:
    claim = CLAIMS.get(s.key)
    verdict = ""
    if claim and s.reproduces is not None:
        verdict = (f"<p><b>The post's claim</b> ({esc(claim)}) "
                   + ("<b>reproduces</b> here." if s.reproduces else
                      "<b>does not reproduce</b> here.") + "</p>")
    store = ""
    if s.store is not None:
        rel = os.path.relpath(s.store, out)
        store = (f"<p class=\"sub\">Runs in the store <code>{esc(rel)}</code> "
                 f"(<code>mlplab runs</code>, <code>mlplab dashboard</code> open it).</p>")
    figures = "".join(figure_html(p, s.title, "") for p in s.figures if p.is_file())
    return f"<p>{esc(s.finding)}</p>{verdict}{_rows_table(s.rows)}{figures}{store}"


def write_demo_report(out: Path, sections: Sequence[SectionResult], wall_time: float,
                      quick: bool) -> Path:
    """Write ``out/report.html`` and ``out/summary.json`` atomically; returns the report."""
    parts = [(s.title, _section_html(s, out)) for s in sections]
    summary_rows = "".join(
        f'<tr><td>{esc(s.title)}</td><td class="wrap">{esc(s.finding)}</td><td>'
        f"{'' if s.reproduces is None else ('yes' if s.reproduces else 'no')}</td></tr>"
        for s in sections)
    parts.insert(0, ("Summary", '<table class="runs"><thead><tr><th>study</th><th>finding</th>'
                     f"<th>post's claim reproduces</th></tr></thead><tbody>{summary_rows}"
                     "</tbody></table>"))
    subtitle = (f"{'quick ' if quick else ''}seed study, {wall_time:.0f} s; every sentence is "
                "generated from the measured runs")
    doc = page("mlplab seed study", subtitle, parts)
    data = {"wall_time": wall_time, "quick": quick,
            "sections": [{"key": s.key, "title": s.title, "finding": s.finding,
                          "reproduces": s.reproduces, "numbers": s.numbers} for s in sections]}
    for name, text in (("report.html", doc), ("summary.json", dumps(data, indent=2))):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, out / name)
    return out / "report.html"
