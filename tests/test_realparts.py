"""Smoke tests of the real parts: a loopback server seen in Chromium, a local Ray cluster
(tests/realray.py) that is stopped by id, and dies with the process that started it."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from realparts import (
    STOP_TIMEOUT_S,
    ProcessInfo,
    WatchedPage,
    import_or_skip,
    is_running,
    process_group_alive,
    process_tree,
    require_or_skip,
    serve_subprocess,
    start_process,
    stop_process,
)
from realray import local_ray_cluster

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>realparts</title><link rel="icon" href="data:,"></head>
<body><h1 id="greeting"></h1>
<script>document.getElementById("greeting").textContent = "hello from " + (40 + 2);</script>
</body></html>
"""


@pytest.mark.slow
def test_served_page_renders_in_chromium_without_errors(browser_page: WatchedPage, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    proc, url = serve_subprocess(
        [sys.executable, "-m", "http.server", "--bind", "{host}", "{port}"], cwd=site
    )
    try:
        assert url.startswith("http://127.0.0.1:")
        page = browser_page.page
        page.goto(url)
        page.wait_for_selector("#greeting:has-text('hello from 42')")
        assert page.title() == "realparts"
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert browser_page.errors == []
    finally:
        stop_process(proc)
    assert proc.returncode is not None
    assert not process_group_alive(proc.pid)


@pytest.mark.slow
def test_page_errors_are_recorded(browser_page: WatchedPage):
    # the error record must be able to fail a test, or "no errors" proves nothing
    browser_page.page.set_content(
        "<script>console.error('seen'); setTimeout(() => { throw new Error('boom'); });</script>"
    )
    browser_page.page.wait_for_timeout(200)
    assert any("seen" in error for error in browser_page.console_errors)
    assert any("boom" in error for error in browser_page.page_errors)


@pytest.mark.slow
def test_local_ray_cluster_runs_a_task_and_is_stopped_by_pid():
    import ray

    with local_ray_cluster() as cluster:
        assert cluster.address.startswith("127.0.0.1:")
        ray.init(address=cluster.address, log_to_driver=False)
        try:

            @ray.remote
            def answer() -> int:
                return 42

            assert ray.get(answer.remote(), timeout=60) == 42
            # while it runs: the head, its services and the raylet's workers, which
            # live in sessions of their own
            pid = cluster.proc.pid
            started = process_tree(pid)
            assert pid in {info.pid for info in started}
            assert any(info.pgid != pid for info in started)
        finally:
            ray.shutdown()
        started += process_tree(pid)  # workers the raylet started meanwhile
    assert cluster.proc.returncode is not None
    assert not process_group_alive(pid)
    assert [info for info in started if is_running(info)] == []


# A test session that starts a two-node cluster, says which processes it has, and waits
# to be killed (as a CI timeout kills pytest: no teardown runs).
KILLED_STARTER = """
import dataclasses, json, time
from realparts import process_tree
from realray import local_ray_cluster

with local_ray_cluster(num_cpus=1, nodes=2) as cluster:
    tree = [info for proc in (cluster.proc, *cluster.workers) for info in process_tree(proc.pid)]
    print(json.dumps({"temp_dir": cluster.temp_dir,
                      "processes": [dataclasses.astuple(info) for info in tree]}), flush=True)
    time.sleep(600)
"""


def _said(proc, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        lines = [line for line in proc.log_tail(100_000).splitlines() if line.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        time.sleep(0.5)
    raise AssertionError(f"the starter said nothing in {timeout} s:\n{proc.log_tail()}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the processes in /proc")
def test_a_ray_cluster_dies_with_the_process_that_started_it():
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    starter = start_process([sys.executable, "-c", KILLED_STARTER],
                            env={**os.environ, "PYTHONPATH": path})
    cluster: list[ProcessInfo] = []
    try:
        said = _said(starter, timeout=180)
        cluster = [ProcessInfo(*fields) for fields in said["processes"]]
        assert {"gcs_server", "raylet"} <= {Path(os.readlink(f"/proc/{info.pid}/exe")).name
                                            for info in cluster}
        assert len({info.pgid for info in cluster}) >= 2       # the head and the second node
        os.kill(starter.pid, signal.SIGKILL)    # no teardown runs
        starter.wait(timeout=10)
        temp_dir = Path(said["temp_dir"])

        def left() -> list[object]:       # what the watchdogs have yet to stop or remove
            running: list[object] = [info for info in cluster if is_running(info)]
            return running + ([temp_dir] if temp_dir.exists() else [])

        deadline = time.monotonic() + 3 * STOP_TIMEOUT_S       # the watchdogs' SIGTERM, then SIGKILL
        while left() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left() == []
    finally:
        for info in cluster:     # whatever the watchdogs missed, so a failure leaks nothing
            if is_running(info):
                os.kill(info.pid, signal.SIGKILL)
        stop_process(starter)


def test_missing_part_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is required when CI=true"):
        require_or_skip("chromium", "not on PATH")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium is missing: not on PATH"):
        require_or_skip("chromium", "not on PATH")
    # a package the tests import (dash): the same rule, not pytest.importorskip's skip
    with pytest.raises(pytest.skip.Exception, match="no_such_package is missing"):
        import_or_skip("no_such_package")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no_such_package is required when CI"):
        import_or_skip("no_such_package")
