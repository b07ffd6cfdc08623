"""The Dash application: layout, the callbacks (thin wrappers) and the run-data route.

Every callback unpacks its inputs and calls a plain function of
:mod:`mlplab.dashboard.callbacks` or :mod:`mlplab.dashboard.views`. Page URLs:

    /                   runs of the store (filter, sort, compare picks), sweeps, figures
    /run/<run-id>       one run: findings, attempts, every figure, configuration
    /compare?runs=a,b   overlaid curves of several runs
    /api/run/<run-id>   the run's index row and attempts as JSON

A path under ``/run/`` or ``/api/run/`` whose id is not a run of the store gets 404
before any file is read; the id is checked by :meth:`mlplab.store.store.Store.run_dir`.

What a hostile page or a crafted request could try is refused before Dash sees it: a
``Host`` header that is not the address the dashboard is bound to gets 403 on every route
(a page on another site that rebinds its DNS name to 127.0.0.1 sends its own name), a
component-suite path that climbs out of its package or names no registered file gets
404, and a callback input of the wrong type gets 400.

:func:`mlplab.dashboard.server.serve` runs the app; :func:`create_app` shows it answering.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import dash
import flask
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import DependencyException

from mlplab.store.store import StoreError
from . import callbacks as cb
from . import layout, overview, tables, views
from .theme import index_string

GUARDED_PREFIXES = ("/run/", "/api/run/")
NOT_FOUND_HTML = ("<!doctype html><title>mlplab: no such run</title>"
                  "<link rel='icon' href='data:,'>"
                  "<body style='font-family:system-ui,sans-serif;padding:40px'>"
                  "<h2>No such run in this store</h2><p><a href='/'>back to the runs</a></p>")
SUITES = "/_dash-component-suites/"
LOOPBACK_NAMES = ("localhost", "ip6-localhost")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
FOREIGN_HOST = "mlplab dashboard: the Host header does not name the address it listens on\n"


def create_app(dir: str | Path, host: str = "127.0.0.1", port: int | None = None) -> dash.Dash:
    """The dashboard of the store at ``dir`` (read-only); StoreError if it is not a store.

    ``host`` and ``port`` are where it will listen: a request whose ``Host`` header names
    another address gets 403 (see :func:`host_allowed`; ``port=None`` accepts any port).

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
    _refuse_foreign_hosts(app.server, host, port)
    _guard_component_suites(app)
    _guard_run_paths(app.server, root)
    _register(app, root)
    return app


def _split_host(header: str) -> tuple[str, str] | None:
    """``"[::1]:8050"`` -> ("::1", "8050"), ``"localhost"`` -> ("localhost", ""); None if
    the header is not a name or address with an optional port."""
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        return name, rest[1:]
    name, _, port = header.partition(":")
    return None if ":" in port else (name, port)


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (only this machine can reach it);
    an IPv6 address with or without brackets.

    >>> [is_loopback(h) for h in ("127.0.0.1", "LOCALHOST", "[::1]", "0.0.0.0")]
    [True, True, True, False]
    """
    name = host.strip("[]").lower()
    ip = _ip(name)
    return name in LOOPBACK_NAMES or (ip is not None and ip.is_loopback)


def host_allowed(header: str, host: str, port: int | None) -> bool:
    """Whether a request's ``Host`` header names the address the dashboard listens on:
    the bound ``host`` itself, any loopback name when bound to loopback, any address (but
    no other name) when bound to all of them; and the bound port.

    >>> host_allowed("127.0.0.1:8050", "127.0.0.1", 8050), host_allowed("localhost:8050", "127.0.0.1", 8050)
    (True, True)
    >>> host_allowed("evil.example:8050", "127.0.0.1", 8050), host_allowed("localhost:9", "127.0.0.1", 8050)
    (False, False)
    >>> host_allowed("[::1]:8050", "::1", 8050), host_allowed("192.168.1.5:80", "0.0.0.0", 80)
    (True, True)
    """
    split = _split_host(header.strip().lower())
    if split is None:
        return False
    name, have_port = split
    if port is not None and have_port != str(port) and not (port == 80 and have_port == ""):
        return False
    bound = host.strip("[]").lower()
    if name == bound:
        return True
    if bound in WILDCARD_HOSTS:       # a rebound DNS name is refused; a bare address is not
        return is_loopback(name) or _ip(name) is not None
    return is_loopback(bound) and is_loopback(name)


def _refuse_foreign_hosts(server: flask.Flask, host: str, port: int | None) -> None:
    """403 for every route when the Host header names another address (DNS rebinding)."""

    @server.before_request
    def _check_host() -> Any:
        if host_allowed(flask.request.headers.get("Host", ""), host, port):
            return None
        return flask.Response(FOREIGN_HOST, status=403, mimetype="text/plain")


def _guard_component_suites(app: dash.Dash) -> None:
    """404 for a component-suite path that climbs out of its package (``..``, an empty or
    absolute part) or names no file Dash registered."""

    def not_found(_e: Exception | None = None) -> flask.Response:
        return flask.Response("no such file\n", status=404, mimetype="text/plain")

    @app.server.before_request
    def _check_suite_path() -> Any:
        path = flask.request.path         # already percent-decoded: %2e%2e is ..
        if not path.startswith(SUITES):
            return None
        package, _, rest = path[len(SUITES):].partition("/")
        parts = rest.split("/")
        if (package not in app.registered_paths or "\\" in path
                or any(p in ("", ".", "..") for p in parts)):
            return not_found()
        return None

    app.server.register_error_handler(DependencyException, not_found)


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
    """The callbacks: each one line of unpacking around a plain function. An input of the
    wrong type (:class:`mlplab.dashboard.callbacks.BadInput`) answers 400, not 500."""
    app.server.register_error_handler(
        cb.BadInput, lambda e: flask.Response(f"{e}\n", status=400, mimetype="text/plain"))

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
    def show_page(pathname: Any, search: Any) -> Any:
        return views.page_for(root, cb.text_input(pathname, "url.pathname"),
                              cb.text_input(search, "url.search"))

    @app.callback(Output("table-page", "data"), Input("prev-page", "n_clicks"),
                  Input("next-page", "n_clicks"), Input("filter", "value"), Input("sort", "value"),
                  Input("descending", "value"), State("table-page", "data"))
    def turn_page(_p: int, _n: int, _f: Any, _s: Any, _d: Any, page: Any) -> int:
        page = cb.int_input(page, "table-page")
        step = {"prev-page": -1, "next-page": 1}.get(str(ctx.triggered_id))
        return max(0, (page or 0) + step) if step else 0

    @app.callback(Output("runs-table", "children"), Output("table-info", "children"),
                  Output("table-error", "children"), Output("page-label", "children"),
                  Output("prev-page", "disabled"), Output("next-page", "disabled"),
                  Input("signature", "data"), Input("filter", "value"), Input("sort", "value"),
                  Input("descending", "value"), Input("table-page", "data"), State("picked", "data"))
    def runs_table(_sig: Any, text: Any, sort: Any, desc: Any, page: Any, picked: Any) -> Any:
        text, sort = cb.text_input(text, "filter"), cb.text_input(sort, "sort")
        desc, picked = cb.texts_input(desc, "descending"), cb.texts_input(picked, "picked")
        view = cb.table_view(root, text, sort, bool(desc), cb.int_input(page, "table-page") or 0)
        info = (f"{view.matched} of {view.total} runs" if view.matched != view.total
                else f"{view.total} runs")
        return (tables.runs_table(view.rows, picked), info, view.error,
                f"page {view.page + 1} of {view.n_pages}", view.page == 0,
                view.page >= view.n_pages - 1)

    @app.callback(Output("picked", "data"), Input({"type": "pick", "run": ALL}, "value"),
                  State({"type": "pick", "run": ALL}, "id"), State("picked", "data"),
                  prevent_initial_call=True)
    def pick(values: Any, ids: Any, picked: Any) -> list[str]:
        if not (isinstance(values, list) and isinstance(ids, list) and len(values) == len(ids)
                and all(isinstance(i, dict) and isinstance(i.get("run"), str) for i in ids)):
            raise cb.BadInput("pick: the boxes' values and ids do not match")
        return cb.merge_picked(cb.texts_input(picked, "picked"), [i["run"] for i in ids],
                               [cb.texts_input(v, "pick") for v in values])

    @app.callback(Output("compare-link", "href"), Output("compare-link", "children"),
                  Input("picked", "data"))
    def compare_link(picked: Any) -> Any:
        picked = cb.texts_input(picked, "picked")
        return cb.compare_href(picked), f"Compare ({len(picked)})" if picked else "Compare"

    @app.callback(Output("sweeps", "children"), Output("lr-group", "options"),
                  Output("lr-group", "value"), Output("lr-metric", "options"),
                  Output("lr-metric", "value"), Output("store-figures", "children"),
                  Output("param-x", "options"), Output("param-x", "value"),
                  Input("signature", "data"), State("lr-group", "value"), State("lr-metric", "value"),
                  State("param-x", "value"))
    def store_level(_sig: Any, group: Any, metric: Any, x_key: Any) -> Any:
        return overview.store_level(root, cb.text_input(group, "lr-group"),
                                    cb.text_input(metric, "lr-metric"), cb.text_input(x_key, "param-x"))

    @app.callback(Output("importance-card", "children"), Input("importance-key", "data"))
    def importance(_key: Any) -> Any:
        return layout.graph_in_card("fig-importance", overview.importance_figure(root))

    @app.callback(Output("lr-graph", "figure"), Input("param-x", "value"), Input("lr-group", "value"),
                  Input("lr-metric", "value"), Input("signature", "data"))
    def param_graph(x_key: Any, group: Any, metric: Any, _sig: Any) -> Any:
        return overview.param_figure(root, cb.text_input(group, "lr-group"),
                                     cb.text_input(metric, "lr-metric"), cb.text_input(x_key, "param-x"))

    @app.callback(Output("run-version", "data"), Input("run-id", "data"),
                  Input("signature", "data"), State("run-version", "data"))
    def run_version(run_id: Any, _sig: Any, known: Any) -> Any:
        now = views.safe_run_version(root, cb.text_input(run_id, "run-id"))
        return no_update if now == known else now

    @app.callback(Output("run-body", "children"), Input("run-version", "data"),
                  State("run-id", "data"))
    def run_body(_version: Any, run_id: Any) -> Any:
        return views.run_body(root, cb.text_input(run_id, "run-id"))

    @app.callback(Output("compare-body", "children"), Input("compare-runs", "value"),
                  Input("signature", "data"))
    def compare_body(run_ids: Any, _sig: Any) -> Any:
        return views.compare_body(root, cb.texts_input(run_ids, "compare-runs"))
