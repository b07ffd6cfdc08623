"""The dashboard in real headless Chromium, served by ``python -m mlplab dashboard`` on a
free loopback port: overview, a run's interactive figures, compare, live updates, and
404 for run ids that try to leave the store. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from realparts import (WatchedPage, import_or_skip, process_group_alive, serve_subprocess,
                       stop_process)
from test_dashboard import _config, _write, build_store

pytestmark = pytest.mark.slow        # a browser and a served dashboard

import_or_skip("dash")

WAIT_MS = 60_000          # page loads on a busy 2-core machine import torch on first use
LIVE_WAIT_MS = 30_000     # a new run must show up within this (the page polls every 2 s)

# Points drawn per graph: x values of traces plus cells of heatmaps.
POINTS_PER_GRAPH = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    g => [g.parentElement.id, g.data.reduce((n, t) => n + (t.x ? t.x.length : 0)
                                            + (t.z ? t.z.length : 0), 0)])"""


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[dict[str, Any], str]]:
    built = build_store(tmp_path_factory.mktemp("dashboard-browser") / "store")
    proc, url = serve_subprocess([sys.executable, "-m", "mlplab", "dashboard",
                                  str(built["store"].root), "--port", "{port}"])
    try:
        yield built, url
    finally:
        stop_process(proc)
        assert not process_group_alive(proc.pid)


def _rows(page: Any) -> int:
    return page.locator(".runs-table tbody tr").count()


def _wait_rows(page: Any, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('.runs-table tbody tr').length === {n}",
                           timeout=WAIT_MS)


def _graph(page: Any, graph_id: str, expr: str) -> Any:
    return page.evaluate(f"() => {{ const g = document.querySelector('#{graph_id} .js-plotly-plot');"
                         f" return {expr}; }}")


def _screenshot(page: Any, path: Path) -> None:
    page.evaluate("window.scrollTo(0, 0)")      # the sticky top bar stays on top
    page.screenshot(path=str(path), full_page=True)


def test_overview_run_and_compare_in_chromium(browser_page: WatchedPage, served, tmp_path: Path):
    built, url = served
    page = browser_page.page
    page.set_viewport_size({"width": 1400, "height": 900})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    store = built["store"]

    # overview: every run in the table, the live line, the store figures
    page.goto(url)
    _wait_rows(page, len(store.runs()))
    done = sum(r.status == "done" for r in store.runs(status="done"))
    page.wait_for_selector(f"#live-status:has-text('{done} done')", timeout=WAIT_MS)
    page.wait_for_selector("#fig-success .js-plotly-plot", timeout=WAIT_MS)
    # the parallel coordinates draw one line per configuration; the importance its bars
    page.wait_for_selector("#fig-parallel .parcoords .axis", timeout=WAIT_MS)
    page.wait_for_selector("#fig-importance .js-plotly-plot", timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('#lr-graph .js-plotly-plot').data.length > 0",
                           timeout=WAIT_MS)
    _screenshot(page, tmp_path / "overview.png")

    # metric vs another hyper-parameter: pick the x axis, the plot follows
    assert "vs train.lr" in page.evaluate("document.querySelector('#lr-graph .js-plotly-plot').layout.title.text")
    page.click("#param-x")
    page.get_by_role("option", name="model.activation", exact=True).click()
    page.wait_for_function("(document.querySelector('#lr-graph .js-plotly-plot').layout.title.text || '')"
                           ".includes('vs model.activation')", timeout=WAIT_MS)
    xs = page.evaluate("document.querySelector('#lr-graph .js-plotly-plot').data.flatMap(t => t.x)")
    assert {"relu", "tanh"} <= set(xs)

    # filter then sort, done by the server
    page.fill("#filter", "train.optimizer=adam")
    page.press("#filter", "Enter")
    adam = [r.run_id for r in store.runs() if r.config["train"]["optimizer"] == "adam"]
    _wait_rows(page, len(adam))
    assert sorted(page.locator(".runs-table a.run-link").all_inner_texts()) == sorted(adam)
    page.fill("#filter", "")
    page.press("#filter", "Enter")
    _wait_rows(page, len(store.runs()))

    # a run: every figure drawn with data, the boundary slider moves
    run_id = built["sweep_runs"][2]
    page.click(f"a.run-link:text-is('{run_id}')")
    page.wait_for_url(f"**/run/{run_id}")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 10",
                           timeout=WAIT_MS)
    points = dict(page.evaluate(POINTS_PER_GRAPH))
    assert len(points) >= 10 and all(n > 0 for n in points.values()), points
    info = store.run(run_id)
    val_points = _graph(page, "fig-loss", "g.data.filter(t => t.name === 'val loss')"
                                          ".reduce((n, t) => n + t.x.length, 0)")
    assert val_points == info.epochs
    n_steps = _graph(page, "fig-boundary_evolution", "g.layout.sliders[0].steps.length")
    assert n_steps >= 2
    shown = "g.data.map(t => t.visible)"
    before = _graph(page, "fig-boundary_evolution", shown)
    rail = page.locator("#fig-boundary_evolution .slider-rail-touch-rect")
    rail.click(position={"x": 2, "y": 5})
    # the slider's `active` changes first; the restyle it triggers lands a moment later
    page.wait_for_function("(() => { const g = document.querySelector('#fig-boundary_evolution"
                           " .js-plotly-plot'); return g.layout.sliders[0].active === 0"
                           " && g.data[0].visible === true; })()", timeout=WAIT_MS)
    after = _graph(page, "fig-boundary_evolution", shown)
    assert after != before and after[0] is True
    assert page.locator("h3:text-is('Attempts')").count() == 1
    _screenshot(page, tmp_path / "run.png")

    # compare two runs picked in the table
    page.click("nav >> text=Runs")
    _wait_rows(page, len(store.runs()))
    pair = [built["sweep_runs"][0], built["gauss"]]
    for rid in pair:
        page.locator(f"tr:has(a.run-link:text-is('{rid}')) input[type=checkbox]").check()
    page.wait_for_selector("#compare-link:has-text('Compare (2)')", timeout=WAIT_MS)
    page.click("#compare-link")
    page.wait_for_selector("#compare-grad .js-plotly-plot", timeout=WAIT_MS)
    groups = _graph(page, "compare-loss", "[...new Set(g.data.map(t => t.legendgroup))]")
    assert sorted(groups) == sorted(pair)
    assert sorted(_graph(page, "compare-grad", "[...new Set(g.data.map(t => t.legendgroup))]")) \
        == sorted(pair)
    _screenshot(page, tmp_path / "compare.png")

    assert browser_page.errors == []
    assert requested and all(u.startswith(url) for u in requested), \
        [u for u in requested if not u.startswith(url)]
    for shot in ("overview", "run", "compare"):
        assert (tmp_path / f"{shot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_live_new_runs_and_finished_runs_appear_without_reload(browser_page: WatchedPage, served):
    built, url = served
    store, page = built["store"], browser_page.page
    page.goto(url)
    _wait_rows(page, len(store.runs()))
    page.evaluate("window.__notReloaded = true")
    new_id = _write(store, "live-new", _config("live", **{"train.epochs": 3}))
    page.wait_for_selector(f"a.run-link:text-is('{new_id}')", timeout=LIVE_WAIT_MS)
    _wait_rows(page, len(store.runs()))

    # a running run's page fills in when the run is written
    running = built["running"]
    page.click(f"a.run-link:text-is('{running}')")
    page.wait_for_selector("text=not finished", timeout=WAIT_MS)
    assert page.locator(".js-plotly-plot").count() == 0
    _write(store, running, _config("later", **{"train.seed": 7, "train.epochs": 4}))
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 10",
                           timeout=LIVE_WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    assert browser_page.errors == []


@pytest.mark.parametrize("path", ["run/../../etc/passwd", "run/..%2F..%2Fetc%2Fpasswd",
                                  "api/run/..%2F..%2Fetc%2Fpasswd", "run/..%2Fmlplab.sqlite",
                                  "api/run/%2Fetc%2Fpasswd", "run/no-such-run"])
def test_run_ids_outside_the_store_get_404(served, path):
    _, url = served
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(url + path, timeout=30).read()
    assert e.value.code == 404
    assert b"root:" not in e.value.read()


def test_chromium_gets_404_for_a_traversal_url(browser_page: WatchedPage, served):
    _, url = served
    response = browser_page.page.goto(url + "run/..%2F..%2Fetc%2Fpasswd")
    assert response is not None and response.status == 404
    assert "root:" not in browser_page.page.content()
