"""The dashboard's pages as Dash component trees (skeletons the callbacks fill in).

The shell holds what every page shares: the top bar, the URL, the live poll
(``tick`` -> ``signature``) and the runs picked for comparison.

>>> page = overview_page()
>>> page.id
'overview'
"""

from __future__ import annotations

from typing import Any, Sequence

from dash import dcc, html

from .callbacks import SORT_KEYS, TABLE_COLUMNS
from .plots import empty_figure

POLL_MS = 2000          # how often the browser asks whether the store changed
GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def app_shell(store_name: str, signature: str) -> html.Div:
    """The page frame: top bar, router target and the live-update plumbing."""
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Interval(id="tick", interval=POLL_MS, n_intervals=0),
        dcc.Store(id="signature", data=signature),
        dcc.Store(id="picked", data=[], storage_type="session"),
        html.Header([
            dcc.Link("mlplab", href="/", className="brand"),
            html.Span(store_name, className="store", title="the store this dashboard shows"),
            html.Nav([dcc.Link("Runs", href="/"),
                      dcc.Link("Compare", href="/compare", id="compare-link")]),
            html.Span(id="live-status", className="live"),
        ], className="topbar"),
        html.Main(id="page"),
    ])


def overview_page(filter_text: str = "") -> html.Div:
    """Runs table with filter, sort and pages; sweeps; figures across runs."""
    sort_options = [{"label": label, "value": key} for key, label in TABLE_COLUMNS] + \
                   [{"label": "created", "value": "created"}]
    assert {o["value"] for o in sort_options} == set(SORT_KEYS)
    return html.Div([
        html.Div(id="sweeps"),
        html.H2("Runs"),
        html.Div([
            html.Div([
                dcc.Input(id="filter", type="text", value=filter_text, debounce=True,
                          className="filter",
                          placeholder="filter: status=done  train.optimizer=adam  relu  (Enter)"),
                html.Label("sort"),
                dcc.Dropdown(id="sort", options=sort_options, value="created", clearable=False,
                             className="dd"),
                dcc.Checklist(id="descending", options=[{"label": " descending", "value": "desc"}],
                              value=[]),
            ], className="controls"),
            html.Div(id="table-error", className="error"),
            html.Div(id="table-info", className="muted"),
            html.Div(id="runs-table", className="table-wrap"),
            html.Div([html.Button("‹ previous", id="prev-page", n_clicks=0),
                      html.Span(id="page-label", className="muted"),
                      html.Button("next ›", id="next-page", n_clicks=0),
                      dcc.Store(id="table-page", data=0)], className="pager"),
        ], className="card"),
        html.H2("Across runs"),
        html.Div([
            html.Div([html.Label("x axis"),
                      dcc.Dropdown(id="param-x", clearable=False, className="dd-wide"),
                      html.Label("metric"),
                      dcc.Dropdown(id="lr-metric", clearable=False, className="dd"),
                      html.Label("lines by"),
                      dcc.Dropdown(id="lr-group", clearable=False, className="dd-wide")],
                     className="controls"),
            dcc.Graph(id="lr-graph", config=GRAPH_CONFIG,
                      figure=empty_figure("Metric vs hyper-parameter", "loading…")),
        ], className="card figure-card"),
        html.Div(id="store-figures"),
    ], id="overview")


def run_page(run_id: str) -> html.Div:
    """A run: filled by the ``run-body`` callback, re-drawn when the run changes."""
    return html.Div([dcc.Store(id="run-id", data=run_id), dcc.Store(id="run-version"),
                     dcc.Loading(html.Div(id="run-body"), type="dot", delay_show=300)],
                    id="run")


def compare_page(options: Sequence[str], selected: Sequence[str]) -> html.Div:
    """Pick runs; their loss and per-layer gradient-norm curves are overlaid."""
    return html.Div([
        html.H2("Compare runs"),
        html.Div([dcc.Dropdown(id="compare-runs", options=list(options), value=list(selected),
                               multi=True, placeholder="choose runs to overlay")],
                 className="card"),
        dcc.Loading(html.Div(id="compare-body"), type="dot", delay_show=300),
    ], id="compare")


def not_found_page(reason: str) -> html.Div:
    return html.Div([html.H2("Not found"), html.P(reason),
                     dcc.Link("back to the runs", href="/")], className="notfound", id="not-found")


def graph_card(graph_id: str, figure: Any, wide: bool = False) -> html.Div:
    """One interactive figure in a card."""
    style = {"gridColumn": "1 / -1"} if wide else None
    return html.Div(graph_in_card(graph_id, figure), className="card figure-card", style=style)


def graph_in_card(graph_id: str, figure: Any) -> dcc.Graph:
    """The interactive figure a card (:func:`graph_card`) holds."""
    return dcc.Graph(id=graph_id, figure=figure, config=GRAPH_CONFIG)


def importance_card(key: str) -> html.Div:
    """Where the importance chart goes: a card that says it is being computed, filled by
    its own callback (fired when this card appears; ``key`` is the store state it is of),
    so the overview's other figures do not wait for it."""
    pending = html.P("Hyper-parameter importance (fANOVA and PED-ANOVA, the seed included):"
                     " being computed…", className="muted")
    return html.Div([dcc.Store(id="importance-key", data=key),
                     html.Div(pending, id="importance-card", className="card figure-card")],
                    style={"gridColumn": "1 / -1"})


def section(title: str, *children: Any) -> html.Div:
    return html.Div([html.H2(title), *children])


def validation_layout(store_name: str) -> html.Div:
    """Every component any page can hold, so Dash can check the callbacks up front."""
    return html.Div([app_shell(store_name, ""), overview_page(), importance_card(""),
                     run_page(""), compare_page([], [])])
