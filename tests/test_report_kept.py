"""The report of an unchanged store takes each half from the store's cache (no figure data
computed, neither torch nor Optuna imported) and writes the same page; damage, a changed
PNG or a new best run is never hidden by what was kept."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.report.build import FINDINGS_KIND, RUN_KIND, STORE_KIND, build_report
from mlplab.report.kept import code_version, recall, run_inputs
from mlplab.store.store import Store

import figstores

_REPORT = """import json, sys
from mlplab.report.build import build_report
build_report(sys.argv[1])
print(json.dumps(sorted(m for m in ("torch", "optuna", "sklearn", "matplotlib", "scipy")
                        if m in sys.modules)))
"""


def report_in_a_process(store: Path) -> list[str]:
    """Report ``store`` in a fresh process; the heavy modules it imported."""
    out = subprocess.run([sys.executable, "-c", _REPORT, str(store)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def page_text(store: Path) -> str:
    """``report.html`` without the time it was written."""
    return re.sub(r"written \d{4}-\d\d-\d\d \d\d:\d\d", "", (store / "report.html").read_text())


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    src = figstores.built(tmp_path_factory, "many")
    copy = Path(shutil.copytree(src, tmp_path / "store"))
    for folder in [copy / "figures", copy / "cache", *copy.glob("runs/*/figures")]:
        shutil.rmtree(folder, ignore_errors=True)
    return copy


def test_an_unchanged_store_is_reported_from_what_was_kept(store: Path) -> None:
    assert "torch" in report_in_a_process(store)           # drawn from nothing: the network
    first = page_text(store)
    assert {p.name.split("-")[0] for p in (store / "cache").glob("report_*.json")} == \
        {RUN_KIND, STORE_KIND, FINDINGS_KIND}
    assert report_in_a_process(store) == []                # again: nothing computed or drawn
    assert page_text(store) == first


def test_a_changed_png_is_drawn_again_not_taken_from_the_cache(store: Path) -> None:
    build_report(store)
    best = next((store / "runs").glob("*/figures/loss.png"))
    best.write_bytes(best.read_bytes()[:-1] + b"\0")       # same size, one byte changed
    run_id = best.parent.parent.name
    inputs = run_inputs(store, run_id, Store(store).run(run_id).config)
    assert recall(store, RUN_KIND, inputs) is None
    assert "torch" in report_in_a_process(store)            # the run's figure data again
    assert recall(store, RUN_KIND, inputs) is not None      # kept anew


def test_damage_to_the_kept_best_run_is_found_and_shown(store: Path) -> None:
    build_report(store)
    html = (store / "report.html").read_text()
    best = re.search(r"Best run: <b>([^<]+)</b>", html).group(1)
    weights = store / "runs" / best / "attempt-0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF                                         # a flipped byte in a tensor
    weights.write_bytes(bytes(data))
    report_in_a_process(store)
    html = (store / "report.html").read_text()
    assert "Damaged runs" in html and f"{best}: attempt-0.safetensors" in html
    assert re.search(r"Best run: <b>([^<]+)</b>", html).group(1) != best


def test_the_code_version_is_one_digest_per_source() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", code_version()) and code_version() == code_version()


_PROBE_DATA = """import sys
from mlplab.figures.data_run import load_run_figdata
from mlplab.store.store import Store
store = Store(sys.argv[1], readonly=True)
data = load_run_figdata(store, store.runs()[0].run_id)
print(data.init is not None and data.network is None, "torch" in sys.modules)
"""


def test_the_figure_data_of_a_probe_run_reads_its_weights_without_torch(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    store = figstores.built(tmp_path_factory, "probe")
    out = subprocess.run([sys.executable, "-c", _PROBE_DATA, str(store)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]      # its initial weights drawn, no torch
    s = Store(store, readonly=True)
    run_id = s.runs()[0].run_id
    arrays, tensors = s.arrays(run_id, 0, "init"), s.weights(run_id, 0, "init")
    assert arrays.keys() == tensors.keys()
    assert all((arrays[k] == tensors[k].numpy()).all() for k in arrays)


def test_a_malformed_kept_entry_is_computed_again_not_an_error(store: Path) -> None:
    build_report(store)
    first = page_text(store)
    entries = sorted((store / "cache").glob("report_*.json"))
    for path in entries:                     # well-formed entries whose values make no sense
        doc = json.loads(path.read_text())
        doc["value"] = {"figures": [[1]], "importance": None} if "store" in path.name else 7
        path.write_text(json.dumps(doc))
    build_report(store)
    assert page_text(store) == first
    assert all(json.loads(p.read_text())["value"] != 7 for p in entries)    # kept anew
