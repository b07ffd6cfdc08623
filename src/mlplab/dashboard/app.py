"""The Dash application: layout, the callbacks (thin wrappers) and the run-data route.

Every callback unpacks its inputs and calls a plain function of
:mod:`mlplab.dashboard.callbacks` or :mod:`mlplab.dashboard.views`. Page URLs:

    /                   runs of the store (filter, sort, compare picks), sweeps, figures
    /run/<run-id>       one run: findings, attempts, every figure, configuration
    /compare?runs=a,b   overlaid curves of several runs
    /api/run/<run-id>   the run's index row and attempts as JSON

A path under ``/run/`` or ``/api/run/`` whose id is not a run of the store gets 404
before any file is read; the id is checked by :meth:`mlplab.store.store.Store.run_dir`.

:func:`mlplab.dashboard.server.serve` runs the app; :func:`create_app` shows it answering.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dash
import flask
from dash import ALL, Input, Output, State, ctx, html, no_update

from mlplab.store.store import StoreError
from . import callbacks as cb
from . import layout, overview, tables, views
from .theme import index_string

GUARDED_PREFIXES = ("/run/", "/api/run/")
NOT_FOUND_HTML = ("<!doctype html><title>mlplab: no such run</title>"
                  "<link rel='icon' href='data:,'>"
                  "<body style='font-family:system-ui,sans-serif;padding:40px'>"
                  "<h2>No such run in this store</h2><p><a href='/'>back to the runs</a></p>")


def create_app(dir: str | Path) -> dash.Dash:
    """The dashboard of the store at ``dir`` (read-only); StoreError if it is not a store.

    >>> import tempfile
    >>> from mlplab.store.store import Store
    >>> with tempfile.TemporaryDirectory() as out:
    ...     _ = Store(out)                       # an empty store
    ...     client = create_app(out).server.test_client()
    ...     client.get("/").status_code, client.get("/run/no-such-run").status_code
    (200, 404)
    """
    root = Path(dir)
    cb.open_store(root)                       # fail now, with the store's own message
    name = str(dir)
    app = dash.Dash(__name__, title=f"mlplab · {name}", serve_locally=True,
                    assets_folder=str(Path(__file__).parent / "static"),
                    update_title=None, suppress_callback_exceptions=False)
    app.index_string = index_string(name)
    app.layout = lambda: layout.app_shell(name, cb.store_signature(root))
    app.validation_layout = layout.validation_layout(name)
    _guard_run_paths(app.server, root)
    _register(app, root)
    return app


def _guard_run_paths(server: flask.Flask, root: Path) -> None:
    """404 for a run path whose id is malformed or not in the store; JSON run data."""

    def known(run_id: str) -> bool:
        try:
            cb.open_store(root).run(run_id)   # run_dir check first, then one indexed query
        except StoreError:
            return False
        return True

    @server.before_request
    def _check_run_id() -> Any:
        path = flask.request.path
        for prefix in GUARDED_PREFIXES:
            if path.startswith(prefix) and not known(path[len(prefix):]):
                return flask.Response(NOT_FOUND_HTML, status=404, mimetype="text/html")
        return None

    @server.route("/api/run/<run_id>")
    def _api_run(run_id: str) -> Any:
        return flask.jsonify(cb.run_summary(root, run_id))


def _register(app: dash.Dash, root: Path) -> None:
    """The callbacks: each one line of unpacking around a plain function."""

    @app.callback(Output("signature", "data"), Input("tick", "n_intervals"),
                  State("signature", "data"), prevent_initial_call=True)
    def poll(_n: int, known: str | None) -> Any:
        now = cb.store_signature(root)
        return no_update if now == known else now

    @app.callback(Output("live-status", "children"), Input("signature", "data"))
    def live_status(_sig: Any) -> Any:
        counts = cb.status_counts(root)
        text = " · ".join(f"{n} {status}" for status, n in counts.items() if n) or "no runs yet"
        return [html.Span(className="dot"), f"{text} · updated {time.strftime('%H:%M:%S')}"]

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def show_page(pathname: str | None, search: str | None) -> Any:
        return views.page_for(root, pathname, search)

    @app.callback(Output("table-page", "data"), Input("prev-page", "n_clicks"),
                  Input("next-page", "n_clicks"), Input("filter", "value"), Input("sort", "value"),
                  Input("descending", "value"), State("table-page", "data"))
    def turn_page(_p: int, _n: int, _f: Any, _s: Any, _d: Any, page: int) -> int:
        step = {"prev-page": -1, "next-page": 1}.get(str(ctx.triggered_id))
        return max(0, (page or 0) + step) if step else 0

    @app.callback(Output("runs-table", "children"), Output("table-info", "children"),
                  Output("table-error", "children"), Output("page-label", "children"),
                  Output("prev-page", "disabled"), Output("next-page", "disabled"),
                  Input("signature", "data"), Input("filter", "value"), Input("sort", "value"),
                  Input("descending", "value"), Input("table-page", "data"), State("picked", "data"))
    def runs_table(_sig: Any, text: str, sort: str, desc: list, page: int, picked: list) -> Any:
        view = cb.table_view(root, text, sort, bool(desc), page or 0)
        info = (f"{view.matched} of {view.total} runs" if view.matched != view.total
                else f"{view.total} runs")
        return (tables.runs_table(view.rows, picked or []), info, view.error,
                f"page {view.page + 1} of {view.n_pages}", view.page == 0,
                view.page >= view.n_pages - 1)

    @app.callback(Output("picked", "data"), Input({"type": "pick", "run": ALL}, "value"),
                  State({"type": "pick", "run": ALL}, "id"), State("picked", "data"),
                  prevent_initial_call=True)
    def pick(values: list, ids: list, picked: list) -> list[str]:
        return cb.merge_picked(picked, [i["run"] for i in ids], values)

    @app.callback(Output("compare-link", "href"), Output("compare-link", "children"),
                  Input("picked", "data"))
    def compare_link(picked: list | None) -> Any:
        picked = picked or []
        return cb.compare_href(picked), f"Compare ({len(picked)})" if picked else "Compare"

    @app.callback(Output("sweeps", "children"), Output("lr-group", "options"),
                  Output("lr-group", "value"), Output("lr-metric", "options"),
                  Output("lr-metric", "value"), Output("store-figures", "children"),
                  Output("param-x", "options"), Output("param-x", "value"),
                  Input("signature", "data"), State("lr-group", "value"), State("lr-metric", "value"),
                  State("param-x", "value"))
    def store_level(_sig: Any, group: str | None, metric: str | None, x_key: str | None) -> Any:
        return overview.store_level(root, group, metric, x_key)

    @app.callback(Output("lr-graph", "figure"), Input("param-x", "value"), Input("lr-group", "value"),
                  Input("lr-metric", "value"), Input("signature", "data"))
    def param_graph(x_key: str | None, group: str | None, metric: str | None, _sig: Any) -> Any:
        return overview.param_figure(root, group, metric, x_key)

    @app.callback(Output("run-version", "data"), Input("run-id", "data"),
                  Input("signature", "data"), State("run-version", "data"))
    def run_version(run_id: str, _sig: Any, known: str | None) -> Any:
        now = views.safe_run_version(root, run_id)
        return no_update if now == known else now

    @app.callback(Output("run-body", "children"), Input("run-version", "data"),
                  State("run-id", "data"))
    def run_body(_version: Any, run_id: str) -> Any:
        return views.run_body(root, run_id)

    @app.callback(Output("compare-body", "children"), Input("compare-runs", "value"),
                  Input("signature", "data"))
    def compare_body(run_ids: list | None, _sig: Any) -> Any:
        return views.compare_body(root, run_ids or [])
