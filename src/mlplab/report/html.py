"""The HTML of ``report.html``: escaped text, embedded PNGs, tables, inline CSS and JS.

Nothing here loads anything from outside the page: figures are ``data:image/png``
URIs, the style and the table-sorting script are inline.

>>> "<b>" in text_html("a <b> tag")
False
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from mlplab.store.store import AttemptInfo

CSS = """
:root { --ink: #212529; --muted: #6c757d; --line: #dee2e6; --accent: #1a73e8; --bg: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
header { background: var(--bg); border-bottom: 1px solid var(--line); padding: 18px 28px 10px; }
header h1 { margin: 0 0 2px; font-size: 22px; }
header .sub { color: var(--muted); font-size: 13px; }
nav { margin-top: 8px; font-size: 13px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; white-space: nowrap; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 28px 60px; }
section { margin-top: 26px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; max-width: 900px; }
figcaption b { color: var(--ink); }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 24em; }
tr.best td { background: #e7f5ff; }
table.sortable th { cursor: pointer; user-select: none; background: var(--bg); position: sticky; top: 0; }
table.sortable th::after { content: " \\2195"; color: #adb5bd; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; color: var(--ink); }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; color: var(--ink); }
.scroll { max-height: 560px; overflow: auto; border: 1px solid var(--line); }
.wide { overflow-x: auto; }
pre { background: var(--bg); padding: 10px 12px; border-radius: 4px; overflow: auto; font-size: 12.5px; }
.finding { border-left: 4px solid var(--line); padding: 4px 12px; margin: 10px 0; }
.finding.severe { border-color: #e03131; } .finding.warning { border-color: #f08c00; }
.finding.info { border-color: #1c7ed6; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; text-transform: uppercase;
         padding: 1px 6px; border-radius: 3px; color: #fff; background: #868e96; margin-right: 6px; }
.severe .badge { background: #e03131; } .warning .badge { background: #f08c00; }
.info .badge { background: #1c7ed6; }
.hint { color: var(--muted); } .evidence { color: var(--muted); font-size: 12px; }
code { background: var(--bg); padding: 0 3px; border-radius: 3px; }
"""

# Sort a table by the clicked column: numbers numerically, text alphabetically, blanks last.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var nx = Number(x), ny = Number(y), r;
        r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: header with a table of contents, then the sections."""
    ids, seen = [], set()
    for t, _ in sections:
        a, i = anchor(t), 2
        base = a
        while a in seen:
            a, i = f"{base}-{i}", i + 1
        seen.add(a)
        ids.append(a)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, (t, _) in zip(ids, sections))
    body = "".join(section(t, h, a) for a, (t, h) in zip(ids, sections))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><link rel="icon" href="data:,">'
            f"<style>{CSS}</style></head><body>"
            f'<header><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}</div>'
            f"<nav>{nav}</nav></header><main>{body}</main><script>{SCRIPT}</script></body></html>\n")


def section(title: str, inner: str, anchor_id: str) -> str:
    return f'<section id="{esc(anchor_id)}"><h2>{esc(title)}</h2>{inner}</section>'


def text_html(text: str) -> str:
    """Plain text as HTML: paragraphs at blank lines, ``- `` lines as a list, indented
    blocks kept as typed."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines = block.split("\n")
        if all(l.startswith("- ") for l in lines if l.strip()):
            out.append("<ul>" + "".join(f"<li>{esc(l[2:])}</li>" for l in lines if l.strip()) + "</ul>")
        elif all(l.startswith(("    ", "\t")) for l in lines if l.strip()):
            out.append(f"<pre>{esc(chr(10).join(l[4:] if l.startswith('    ') else l[1:] for l in lines))}</pre>")
        elif block.strip():
            out.append(f"<p>{esc(' '.join(l.strip() for l in lines))}</p>")
    return "".join(out)


def caption_of(draw: Callable[..., Any]) -> str:
    """A figure's caption: the first paragraph of its draw function's docstring."""
    return " ".join((draw.__doc__ or "").strip().split("\n\n")[0].split())


def figure_html(path: Path, title: str, caption: str) -> str:
    """A PNG embedded as a data URI, with its caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cap = f"<b>{esc(title)}.</b> {esc(caption)}" if caption else f"<b>{esc(title)}</b>"
    return (f'<figure data-name="{esc(Path(path).stem)}"><img alt="{esc(title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{cap}</figcaption></figure>')


def _cell(v: Any, fmt: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '<td data-v=""></td>'
    if isinstance(v, bool):
        return f'<td data-v="{int(v)}">{"yes" if v else "no"}</td>'
    if isinstance(v, (int, float)):
        shown = format(v, fmt) if fmt else (f"{v:.4g}" if isinstance(v, float) else str(v))
        return f'<td class="num" data-v="{v!r}">{esc(shown)}</td>'
    return f'<td data-v="{esc(v)}">{esc(v)}</td>'


RUN_COLUMNS = (("run_id", "run"), ("config", "configuration"), ("status", "status"),
               ("best", "best monitored"), ("val_loss", "val loss"), ("val_acc", "val acc"),
               ("test_acc", "test acc"), ("restarts", "restarts"), ("end_reason", "ended by"),
               ("target_met", "target met"), ("wall_time", "wall s"))


def runs_table(rows: Sequence[Mapping[str, Any]], linked: Iterable[str], best_id: str | None) -> str:
    """The sortable runs table; a run with its own report links to it."""
    linked = set(linked)
    head = "".join(f"<th>{esc(label)}</th>" for _, label in RUN_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _ in RUN_COLUMNS:
            v = row.get(key)
            if key == "run_id" and v in linked:
                cells.append(f'<td data-v="{esc(v)}"><a href="runs/{esc(v)}/report.html">{esc(v)}</a></td>')
            else:
                cells.append(_cell(v, ".1f" if key == "wall_time" else ""))
        cls = ' class="best"' if row.get("run_id") == best_id else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = ('<p class="hint">Click a column to sort. The best run is highlighted; runs with a'
            " report of their own link to it.</p>")
    return (f'{note}<div class="scroll"><table class="sortable" id="runs-table"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")


def attempts_table(attempts: Sequence["AttemptInfo"], best_attempt: int | None) -> str:
    """One row per attempt (restarts included), the kept one highlighted."""
    cols = ("attempt", "seed", "end_reason", "epochs", "best_epoch", "best_value", "val_loss",
            "val_acc", "test_loss", "test_acc", "target_met", "wall_time")
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in cols)
    rows = []
    for a in attempts:
        cls = ' class="best"' if a.attempt == best_attempt else ""
        rows.append(f"<tr{cls}>" + "".join(_cell(getattr(a, c), ".2f" if c == "wall_time" else "")
                                           for c in cols) + "</tr>")
    kept = f" Attempt {best_attempt} is kept (highlighted)." if len(attempts) > 1 else ""
    return (f'<p class="hint">{len(attempts)} attempt{"s" * (len(attempts) != 1)}.{kept}</p>'
            f'<div class="wide"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def findings_html(findings: Sequence[Mapping[str, Any]] | None, attempts: Sequence["AttemptInfo"]) -> str:
    """The findings of diagnose, grouped by attempt."""
    if findings is None:
        return '<p class="hint">diagnose unavailable: this build of mlplab has no mlplab.diagnose.findings.</p>'
    if not findings:
        return "<p>No findings: nothing unusual in the recorded history.</p>"
    numbers = [a.attempt for a in attempts] or sorted({f.get("attempt") for f in findings})
    reasons = {a.attempt: a.end_reason for a in attempts}
    out = []
    for n in numbers:
        mine = [f for f in findings if f.get("attempt") == n]
        if len(numbers) > 1:
            out.append(f"<h3>Attempt {esc(n)} (ended by {esc(reasons.get(n, '?'))})</h3>")
            if not mine:
                out.append("<p>No findings in this attempt.</p>")
        out.extend(_finding_html(f) for f in mine)
    return "".join(out)


def _finding_html(f: Mapping[str, Any]) -> str:
    where = f" in {esc(f['layer'])}" if f.get("layer") else ""
    evidence = ", ".join(f"{esc(k)} = {v:.4g}" if isinstance(v, (int, float)) else f"{esc(k)} = {esc(v)}"
                         for k, v in (f.get("evidence") or {}).items())
    severity = esc(f.get("severity", ""))
    return (f'<div class="finding {severity}"><span class="badge">{severity}</span>'
            f'<b>{esc(str(f.get("kind", "")).replace("_", " "))}</b>{where}, from step '
            f'{esc(f.get("step", "?"))} (epoch {esc(f.get("epoch", "?"))})'
            f'<div>{esc(f.get("message", ""))}</div><div class="hint">hint: {esc(f.get("hint", ""))}</div>'
            + (f'<div class="evidence">evidence: {evidence}</div>' if evidence else "") + "</div>")


def config_block(config: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """The resolved configuration as YAML, and the run's data and layer facts."""
    import yaml

    facts = {k: info[k] for k in ("layer_sizes", "n_classes", "class_names", "feature_names", "n_train",
                                  "n_val", "n_test", "head", "optimizer_hyper") if k in info}
    text = yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False, default_flow_style=None)
    more = yaml.safe_dump(json.loads(json.dumps(facts)), sort_keys=False, default_flow_style=None)
    return (f"<p class='hint'>The resolved configuration (every default filled in):</p><pre>{esc(text)}</pre>"
            + (f"<p class='hint'>What the run found in its data and model:</p><pre>{esc(more)}</pre>"
               if facts else ""))
