"""HTML tables and blocks of the dashboard: runs, attempts, findings, configuration.

Plain functions from records to Dash components; nothing here reads the store.

>>> fmt(0.123456), fmt(None), fmt(float("nan")), fmt(3)
('0.1235', '–', 'nan', '3')
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence
from urllib.parse import urlencode

from dash import dcc, html

from mlplab.store.store import AttemptInfo
from .callbacks import TABLE_COLUMNS

NUMERIC = {"best", "val_loss", "val_acc", "test_acc", "test_loss", "restarts", "wall_time",
           "epochs", "steps", "best_epoch", "best_value", "train_loss", "seed", "attempt"}


def fmt(v: Any) -> str:
    """A table cell: 4 significant digits, '–' for missing."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _cell(key: str, v: Any) -> html.Td:
    cls = "num" if key in NUMERIC else None
    if key == "status":
        return html.Td(html.Span(fmt(v), className=f"badge status-{v}"))
    return html.Td(fmt(v), className=cls)


def runs_table(rows: Sequence[dict[str, Any]], picked: Iterable[str] = ()) -> html.Table:
    """The runs table: a compare checkbox, the run id as a link, then the columns."""
    picked = set(picked)
    head = html.Tr([html.Th("cmp", title="select runs to compare")] +
                   [html.Th(label, className="num" if key in NUMERIC else None)
                    for key, label in TABLE_COLUMNS])
    body = []
    for row in rows:
        rid = row["run_id"]
        pick = dcc.Checklist(id={"type": "pick", "run": rid}, options=[{"label": "", "value": rid}],
                             value=[rid] if rid in picked else [], className="pick")
        cells = [html.Td(pick),
                 html.Td(dcc.Link(rid, href=f"/run/{rid}", className="run-link"))]
        cells += [_cell(key, row.get(key)) for key, _ in TABLE_COLUMNS[1:]]
        body.append(html.Tr(cells, className="failed" if row.get("status") == "failed" else None))
    return html.Table([html.Thead(head), html.Tbody(body)], className="table runs-table")


ATTEMPT_COLUMNS = (("attempt", "attempt"), ("seed", "seed"), ("end_reason", "ended by"),
                   ("epochs", "epochs"), ("steps", "steps"), ("best_epoch", "best epoch"),
                   ("best_value", "best"), ("val_loss", "val loss"), ("val_acc", "val acc"),
                   ("test_acc", "test acc"), ("target_met", "target met"),
                   ("wall_time", "time s"))

END_REASONS = {
    "plateau": "no improvement for `patience` epochs",
    "diverged": "the loss became NaN or infinite",
    "target": "the target was reached",
    "max_epochs": "ran all epochs",
    "closed": "the user's loop closed the probe",
}


def attempts_table(attempts: Sequence[AttemptInfo], best_attempt: int | None) -> html.Table:
    """One row per attempt with why it ended; the kept attempt is highlighted."""
    head = html.Tr([html.Th(label, className="num" if key in NUMERIC else None)
                    for key, label in ATTEMPT_COLUMNS])
    body = []
    for a in attempts:
        cells = []
        for key, _ in ATTEMPT_COLUMNS:
            v = getattr(a, key)
            if key == "end_reason":
                cells.append(html.Td(fmt(v), title=END_REASONS.get(v, "")))
            else:
                cells.append(_cell(key, v))
        kept = a.attempt == best_attempt
        body.append(html.Tr(cells, className="kept" if kept else None,
                            title="the kept attempt" if kept else None))
    return html.Table([html.Thead(head), html.Tbody(body)], className="table")


def findings_list(findings: Sequence[dict[str, Any]] | None, note: str = "") -> html.Div:
    """The findings of ``diagnose`` (dicts from ``Finding.to_dict()``), or a note."""
    if findings is None:
        return html.Div(note or "diagnose is not available.", className="muted")
    if not findings:
        return html.Div("No problems found.", className="ok-note")
    items = []
    for f in findings:
        kind = str(f.get("kind") or f.get("name") or f.get("code") or "finding")
        where = [f"{k} {f[k]}" for k in ("layer", "attempt", "step", "epoch")
                 if f.get(k) not in (None, "")]
        message = f.get("message") or f.get("text") or ""
        hint = f.get("hint") or ""
        severity = str(f.get("severity") or "warning")
        items.append(html.Li([
            html.Span(kind.replace("_", " "), className=f"badge sev-{severity}"),
            html.Span(" · ".join(where), className="where") if where else None,
            html.Div(message, className="message"),
            html.Div(hint, className="hint") if hint else None]))
    return html.Ul(items, className="findings")


def config_block(config: dict[str, Any]) -> html.Pre:
    """The resolved configuration as YAML."""
    import yaml

    return html.Pre(yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=88),
                    className="config")


def key_values(pairs: Sequence[tuple[str, Any]]) -> html.Div:
    """A row of small labelled values (the run's summary line)."""
    return html.Div([html.Div([html.Div(k, className="kv-key"), html.Div(fmt(v), className="kv-value")],
                              className="kv") for k, v in pairs], className="kvs")


def sweeps_block(sweeps: Sequence[dict[str, Any]], runs_per_sweep: dict[str, int]) -> html.Div | None:
    """One line per sweep of the store: name, strategy, status and runs written."""
    if not sweeps:
        return None
    rows = [html.Tr([html.Td(s.get("name") or s["sweep_id"]), html.Td(s.get("strategy") or "–"),
                     html.Td(html.Span(s.get("status") or "–", className=f"badge status-{s.get('status')}")),
                     html.Td(str(runs_per_sweep.get(s["sweep_id"], 0)), className="num"),
                     html.Td(dcc.Link("show its runs", href="/?" + urlencode(
                         {"filter": f"sweep_id={s['sweep_id']}"})))])
            for s in sweeps]
    head = html.Tr([html.Th("sweep"), html.Th("strategy"), html.Th("status"),
                    html.Th("runs", className="num"), html.Th("")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table sweeps")
