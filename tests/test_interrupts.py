"""A run or sweep ended by a signal never stays `running`: SIGTERM and SIGINT unwind as
Ctrl-C does (marked interrupted, workers stopped, finished runs kept), and a run whose
process died by SIGKILL reads as interrupted (its pid is recorded with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlplab.store import Store

pytestmark = pytest.mark.slow

LONG = ["--dataset", "xor", "--hidden", "8", "--epochs", "100000", "--batch-size", "8",
        "--patience", "100000", "--no-report", "--quiet"]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlplab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(what, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if what():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def _statuses(out: Path) -> list[str]:
    if not (out / "mlplab.sqlite").exists():
        return []
    return [r.status for r in Store(out, readonly=True).runs()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_train_marks_its_run_interrupted(tmp_path: Path, sig: int):
    out = tmp_path / "store"
    proc = _start(["train", *LONG, "--out", str(out)])
    try:
        _wait_for(lambda: _statuses(out) == ["running"])
        time.sleep(1.0)                                # into the training loop
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig and "interrupted" in err and "Traceback" not in err
    assert _statuses(out) == ["interrupted"]


def test_a_killed_train_reads_as_interrupted_not_running(tmp_path: Path):
    out = tmp_path / "store"
    proc = _start(["train", *LONG, "--out", str(out)])
    try:
        _wait_for(lambda: _statuses(out) == ["running"])
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert _statuses(out) == ["interrupted"]
    rows = json.loads(subprocess.run([sys.executable, "-m", "mlplab", "runs", str(out), "--json"],
                                     capture_output=True, text=True, timeout=60).stdout)
    assert [r["status"] for r in rows] == ["interrupted"]


def test_a_terminated_sweep_is_interrupted_and_resumes(tmp_path: Path):
    f, out = tmp_path / "s.yaml", tmp_path / "store"
    f.write_text(yaml.safe_dump({
        "name": "term", "data": {"name": "xor", "n": 40},
        "train": {"epochs": 3000, "batch_size": 0}, "stopping": {"restarts": 0, "patience": 5000},
        "probe": {"boundary_snapshots": 0},
        "sweep": {"grid": {"model.hidden": [[w] for w in range(2, 8)]}}}))
    proc = _start(["sweep", str(f), "--out", str(out), "--workers", "1", "--no-report", "--quiet"])
    try:
        _wait_for(lambda: "done" in _statuses(out), 240)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "leaked" not in err and "Traceback" not in err, err
    store = Store(out, readonly=True)
    assert [s["status"] for s in store.sweeps()] == ["interrupted"]
    assert "running" not in _statuses(out) and "pending" not in _statuses(out)
    done = {r.run_id for r in store.runs(status="done")}
    resumed = subprocess.run([sys.executable, "-m", "mlplab", "sweep", str(f), "--out", str(out),
                              "--workers", "1", "--resume", "--no-report", "--quiet"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = Store(out, readonly=True)
    assert _statuses(out) == ["done"] * 6 and done <= {r.run_id for r in after.runs(status="done")}
