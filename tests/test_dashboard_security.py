"""What a hostile page or a crafted request could try on the dashboard, and its memory bound.

A foreign ``Host`` header (DNS rebinding) gets 403 from a real server on loopback; a
callback input of the wrong type gets 400; a component-suite path that climbs out of its
package gets 404; the figure-data cache holds no more runs than its bound.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("dash")

from figstores import many_runs_store  # noqa: E402

from mlplab.dashboard import callbacks as cb  # noqa: E402
from mlplab.dashboard import create_app, overview, views  # noqa: E402
from mlplab.dashboard.app import host_allowed  # noqa: E402

N_RUNS = 20           # more than the figure-data cache keeps
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return many_runs_store(tmp_path_factory.mktemp("dashsec") / "store", n_runs=N_RUNS).root


@pytest.fixture(scope="module")
def client(root) -> Any:
    return create_app(root).server.test_client()


@pytest.fixture(autouse=True)
def _quiet_flask_errors() -> Iterator[None]:
    # a 500 would log its traceback; the assertions below name the status instead
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# -- Host header --------------------------------------------------------------------


@pytest.mark.parametrize("header, host, port, allowed", [
    ("127.0.0.1:8050", "127.0.0.1", 8050, True),
    ("localhost:8050", "127.0.0.1", 8050, True),
    ("[::1]:8050", "127.0.0.1", 8050, True),
    ("LOCALHOST:8050", "127.0.0.1", 8050, True),
    ("evil.example:8050", "127.0.0.1", 8050, False),
    ("127.0.0.1.evil.example:8050", "127.0.0.1", 8050, False),
    ("localhost:8051", "127.0.0.1", 8050, False),
    ("localhost:8050:1", "127.0.0.1", 8050, False),
    ("[::1", "::1", 8050, False),
    ("", "127.0.0.1", 8050, False),
    ("localhost", "127.0.0.1", None, True),            # the test client's Host
    ("192.168.1.5:8050", "192.168.1.5", 8050, True),   # an address the user chose
    ("localhost:8050", "192.168.1.5", 8050, False),    # not listening on loopback there
    ("evil.example:8050", "192.168.1.5", 8050, False),
    ("10.0.0.7:8050", "0.0.0.0", 8050, True),          # every address: any address ...
    ("evil.example:8050", "0.0.0.0", 8050, False),     # ... but no other name
])
def test_host_allowed(header, host, port, allowed):
    assert host_allowed(header, host, port) is allowed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, host: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_real_server_refuses_a_foreign_host_on_every_route(root):
    from werkzeug.serving import make_server

    port = _free_port()
    run_id = cb.open_store(root).runs()[0].run_id
    server = make_server(LOOPBACK, port, create_app(root, host=LOOPBACK, port=port).server,
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mine = f"{LOOPBACK}:{port}"
        paths = ["/", f"/run/{run_id}", f"/api/run/{run_id}", "/_dash-layout", "/_dash-dependencies"]
        for path in paths:
            assert _get(port, path, mine)[0] == 200, path
            assert _get(port, path, f"localhost:{port}")[0] == 200, path
            status, body = _get(port, path, f"rebound.example:{port}")
            assert status == 403 and b"Host" in body and len(body) < 200, path
        assert _get(port, "/", f"{LOOPBACK}:{port + 1}")[0] == 403
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


# -- crafted callback payloads --------------------------------------------------------


def _callback(client: Any, outputs: list[str], inputs: dict[str, Any],
              state: dict[str, Any] | None = None) -> Any:
    """POST one callback request as the Dash renderer sends it."""
    def props(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": k.split(".")[0], "property": k.split(".")[1], "value": v}
                for k, v in values.items()]
    outs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in outputs]
    body = {"output": outputs[0] if len(outputs) == 1 else ".." + "...".join(outputs) + "..",
            "outputs": outs[0] if len(outs) == 1 else outs, "inputs": props(inputs),
            "state": props(state or {}), "changedPropIds": [next(iter(inputs))]}
    return client.post("/_dash-update-component", json=body)


TABLE_OUT = ["runs-table.children", "table-info.children", "table-error.children",
             "page-label.children", "prev-page.disabled", "next-page.disabled"]
STORE_OUT = ["sweeps.children", "lr-group.options", "lr-group.value", "lr-metric.options",
             "lr-metric.value", "store-figures.children", "param-x.options", "param-x.value"]


def _table_inputs(**bad: Any) -> dict[str, Any]:
    good = {"signature.data": "s", "filter.value": "", "sort.value": "created",
            "descending.value": [], "table-page.data": 0}
    return {**good, **{k.replace("_", "."): v for k, v in bad.items()}}


CRAFTED = [
    ("page-filter-list", ["page.children"], {"url.pathname": ["/"], "url.search": ""}, {}),
    ("page-search-dict", ["page.children"], {"url.pathname": "/", "url.search": {"a": 1}}, {}),
    ("table-filter-list", TABLE_OUT, _table_inputs(filter_value=["train.lr=0.1"]), {"picked.data": []}),
    ("table-filter-dict", TABLE_OUT, _table_inputs(filter_value={"a": 1}), {"picked.data": []}),
    ("table-page-text", TABLE_OUT, _table_inputs(**{"table-page_data": "2"}), {"picked.data": []}),
    ("table-picked-int", TABLE_OUT, _table_inputs(), {"picked.data": 5}),
    ("turn-page-list", ["table-page.data"],
     {"prev-page.n_clicks": 1, "next-page.n_clicks": 0, "filter.value": "", "sort.value": "created",
      "descending.value": []}, {"table-page.data": [1]}),
    ("compare-link-true", ["compare-link.href", "compare-link.children"], {"picked.data": True}, {}),
    ("store-group-list", STORE_OUT, {"signature.data": "s"},
     {"lr-group.value": [1], "lr-metric.value": None, "param-x.value": None}),
    ("param-metric-dict", ["lr-graph.figure"],
     {"param-x.value": None, "lr-group.value": None, "lr-metric.value": {"a": 1}, "signature.data": "s"}, {}),
    ("run-body-id-list", ["run-body.children"], {"run-version.data": "v"}, {"run-id.data": ["x"]}),
    ("compare-runs-int", ["compare-body.children"], {"compare-runs.value": 5, "signature.data": "s"}, {}),
]


@pytest.mark.parametrize("outputs, inputs, state", [c[1:] for c in CRAFTED],
                         ids=[c[0] for c in CRAFTED])
def test_a_crafted_callback_input_gets_400(client, outputs, inputs, state):
    response = _callback(client, outputs, inputs, state)
    assert response.status_code == 400
    assert b"expected" in response.data


def test_a_pick_payload_whose_ids_do_not_match_gets_400(client):
    body = {"output": "picked.data", "outputs": {"id": "picked", "property": "data"},
            "inputs": [[{"id": {"type": "pick", "run": "a"}, "property": "value", "value": 3}]],
            "state": [[{"id": {"type": "pick", "run": "a"}, "property": "id",
                        "value": {"type": "pick", "run": "a"}}],
                      {"id": "picked", "property": "data", "value": []}],
            "changedPropIds": ['{"run":"a","type":"pick"}.value']}
    assert client.post("/_dash-update-component", json=body).status_code == 400


def test_a_filter_into_a_list_is_a_message_not_an_error(client):
    response = _callback(client, TABLE_OUT, _table_inputs(filter_value="model.hidden.0=4"),
                         {"picked.data": []})
    assert response.status_code == 200
    error = response.get_json()["response"]["table-error"]["children"]
    assert "model.hidden.0" in error and "train.lr" in error


def test_well_formed_callbacks_still_answer(client):
    response = _callback(client, TABLE_OUT, _table_inputs(filter_value="train.optimizer=adam"),
                         {"picked.data": []})
    assert response.status_code == 200
    assert response.get_json()["response"]["table-error"]["children"] == ""


# -- component suites --------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/_dash-component-suites/dash/../../../etc/passwd",
    "/_dash-component-suites/dash/%2e%2e/%2e%2e/mlplab/store/store.py",
    "/_dash-component-suites/dash/deps/..%2f..%2f__init__.py",
    "/_dash-component-suites//etc/passwd",
    "/_dash-component-suites/dash//etc/passwd",
    "/_dash-component-suites/os/path.py",
    "/_dash-component-suites/dash/deps/no-such-file.js",
    "/_dash-component-suites/dash/deps\\..\\__init__.py",
])
def test_component_suite_traversal_is_not_found(client, path):
    assert client.get(path).status_code == 404


def test_the_pages_component_suites_still_load(client):
    page = client.get("/").get_data(as_text=True)
    scripts = [part.split('"')[0] for part in page.split('src="')[1:]]
    suites = [s for s in scripts if s.startswith("/_dash-component-suites/")]
    assert suites
    for src in suites:
        assert client.get(src).status_code == 200, src


# -- memory --------------------------------------------------------------------------


def _caches() -> dict[str, Any]:
    return {f"{mod.__name__}.{name}": fn for mod in (views, overview)
            for name, fn in vars(mod).items() if hasattr(fn, "cache_info")}


def test_every_cache_has_a_bound_of_at_most_16():
    caches = _caches()
    assert "mlplab.dashboard.views._figdata" in caches
    for name, fn in caches.items():
        maxsize = fn.cache_info().maxsize
        assert maxsize is not None and maxsize <= 16, name


@pytest.mark.slow
def test_every_cache_holds_at_most_its_bound(root, client):
    run_ids = [r.run_id for r in cb.open_store(root).runs()]
    assert len(run_ids) > views.FIGDATA_CACHE_RUNS
    for run_id in run_ids[:2]:                       # a run page reads through the cache
        body = _callback(client, ["run-body.children"], {"run-version.data": "v"}, {"run-id.data": run_id})
        assert body.status_code == 200 and run_id in body.get_data(as_text=True)
    compare = _callback(client, ["compare-body.children"],
                        {"compare-runs.value": run_ids, "signature.data": "s"})
    assert compare.status_code == 200
    for name, fn in _caches().items():
        info = fn.cache_info()
        assert info.currsize <= info.maxsize, name
    assert views._figdata.cache_info().currsize == views.FIGDATA_CACHE_RUNS
