"""The seed study end to end: ``mlplab demo --quick`` through the installed console script;
every section is in the report and its numbers agree with what is in the stores."""

from __future__ import annotations

import html as htmllib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlplab.store.store import Store

pytestmark = pytest.mark.slow        # the whole demo, through the console script

SECTIONS = ("xor_seeds", "init", "optimizers", "depth", "length", "staged")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    exe = Path(sys.executable).with_name("mlplab")
    proc = subprocess.run([str(exe), "demo", "--quick", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, proc.stdout


def _section(summary: dict, key: str) -> dict:
    return next(s for s in summary["sections"] if s["key"] == key)


def _epoch_series(store: Store, run_id: str, metric: str) -> np.ndarray:
    f = store.metrics(run_id)
    rows = f[(f["scope"] == "epoch") & (f["metric"] == metric) & (f["attempt"] == 0)]
    return rows.sort_values("epoch")["value"].to_numpy()


def test_every_section_is_in_the_report_and_the_printed_table(demo):
    out, summary, stdout = demo
    html = htmllib.unescape((out / "report.html").read_text())
    assert [s["key"] for s in summary["sections"]] == list(SECTIONS)
    for s in summary["sections"]:
        assert f"<h2>{s['title']}</h2>" in html
        assert s["finding"] in html
        assert s["title"] in stdout
    assert "report.html" in stdout
    assert not re.search(r"(src|href)=\"https?://", html)
    assert html.count("data:image/png;base64,") >= 6


def test_xor_failure_count_agrees_with_the_store(demo):
    out, summary, _ = demo
    numbers = _section(summary, "xor_seeds")["numbers"]
    runs = Store(out / "xor_seeds", readonly=True).runs(status="done")
    assert len(runs) == numbers["runs"]
    failed = [r for r in runs if r.val_acc < 1.0]
    assert len(failed) == numbers["failed"]
    assert numbers["fail_share"] == pytest.approx(len(failed) / len(runs))
    assert f"{len(failed)} of {len(runs)}" in _section(summary, "xor_seeds")["finding"]


def test_init_success_rates_agree_with_the_store(demo):
    out, summary, _ = demo
    store = Store(out / "init", readonly=True)
    for row in _section(summary, "init")["numbers"]["rows"]:
        target = float(row["target"].split(">=")[1])
        runs = [r for r in store.runs(status="done")
                if r.config["data"]["name"] == row["dataset"] and r.config["model"]["init"] == row["init"]]
        assert len(runs) == row["runs"]
        reached = [bool((_epoch_series(store, r.run_id, "val_acc") >= target).any()) for r in runs]
        assert row["success_rate"] == pytest.approx(np.mean(reached))


def test_depth_and_length_numbers_agree_with_the_store(demo):
    out, summary, _ = demo
    depth = Store(out / "depth", readonly=True).runs(status="done")
    by_layers: dict[int, list[float]] = {}
    for r in depth:
        by_layers.setdefault(len(r.config["model"]["hidden"]), []).append(r.test_acc)
    measured = _section(summary, "depth")["numbers"]["test_acc"]
    assert sorted(map(sorted, measured.values())) == sorted(map(sorted, by_layers.values()))

    store = Store(out / "length", readonly=True)
    curves = np.stack([_epoch_series(store, r.run_id, "val_acc") for r in store.runs(status="done")])
    for epochs, median in _section(summary, "length")["numbers"]["median_val_acc"].items():
        assert median == pytest.approx(float(np.median(curves[:, int(epochs) - 1])))


def test_optimizer_and_staged_numbers_agree_with_the_store(demo):
    out, summary, _ = demo
    numbers = _section(summary, "optimizers")["numbers"]
    runs = Store(out / "optimizers", readonly=True).runs(status="done")
    for row in numbers["rows"]:
        finals = [r.val_acc for r in runs if r.name == f"best-{row['optimizer']}"]
        assert finals and row["val_acc_median"] == pytest.approx(float(np.median(finals)))
        assert row["best_lr"] == numbers["best_lr"][row["optimizer"]]
    staged = _section(summary, "staged")["numbers"]
    runs = Store(out / "staged", readonly=True).runs(status="done")
    assert staged["runs"] == len(runs)
    assert staged["restarts"] == sum(r.restarts for r in runs)
    assert len(staged["stages"]) == 3
