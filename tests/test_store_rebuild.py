"""A lost or damaged index is rebuilt from the run folders, and damage that keeps a file's
size is caught by its digest: real sweeps, real SQLite files damaged three ways, real
flipped bytes, and the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import mlplab
from mlplab.cli import main
from mlplab.store import Store

SWEEP = {"name": "rb", "data": {"name": "xor", "n": 40}, "train": {"epochs": 3},
         "probe": {"boundary_snapshots": 0},
         "sweep": {"strategy": "grid", "grid": {"train.lr": [0.05, 0.3]}, "seeds": 2}}
INDEX_DAMAGE = ("deleted", "truncated", "bytes in its middle")


def mlplab_cmd(*args: str) -> subprocess.CompletedProcess:
    """The console script, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "mlplab", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    """A sweep file and its finished store (4 sweep runs), plus one plain train run."""
    root = tmp_path_factory.mktemp("made")
    sweep_file, store = root / "rb.yaml", root / "store"
    sweep_file.write_text(yaml.safe_dump(SWEEP))
    done = mlplab_cmd("sweep", str(sweep_file), "--out", str(store), "--workers", "1",
                      "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    assert main(["train", "--dataset", "xor", "--n", "40", "--epochs", "3", "--out", str(store),
                 "--quiet", "--no-report", "--name", "solo"]) == 0
    return sweep_file, store


@pytest.fixture()
def store(made, tmp_path) -> Path:
    shutil.copytree(made[1], tmp_path / "store")
    return tmp_path / "store"


def damage_index(store: Path, how: str) -> None:
    """The three kinds of damage an index file meets: gone, cut short, garbage inside."""
    index = store / "mlplab.sqlite"
    raw = index.read_bytes()
    if how == "deleted":
        index.unlink()
    elif how == "truncated":
        index.write_bytes(raw[: len(raw) // 2])
    else:                         # its middle half: the tables' pages (runs, attempts, ...)
        at, n = len(raw) // 4, len(raw) // 2
        index.write_bytes(raw[:at] + (b"\xa5garbage" * n)[:n] + raw[at + n:])


def listed(store: Path) -> dict[str, dict]:
    """``mlplab runs --json`` by run id."""
    out = mlplab_cmd("runs", str(store), "--json")
    assert out.returncode == 0, out.stderr
    return {r["run_id"]: r for r in json.loads(out.stdout)}


def snapshot(store: Path) -> dict:
    """What the index says of the store, as comparable values."""
    s = Store(store, readonly=True)
    return {"runs": {r.run_id: r for r in s.runs()},
            "attempts": s.all_attempts(),
            "curves": {k: v.tolist() for k, v in s.curves("val_loss").items()},
            "sweeps": s.sweeps()}


def run_folders(store: Path) -> list[Path]:
    return sorted(p for p in (store / "runs").iterdir() if p.is_dir())


def file_times(store: Path) -> dict[str, int]:
    return {str(f.relative_to(store)): f.stat().st_mtime_ns
            for f in (store / "runs").rglob("*") if f.is_file()}


@pytest.mark.parametrize("how", INDEX_DAMAGE)
def test_check_repair_rebuilds_a_damaged_index_as_it_was(store: Path, how: str, capsys):
    before = snapshot(store)
    weights = {r: Store(store, readonly=True).weights(r) for r in before["runs"]}
    damage_index(store, how)
    code = main(["runs", str(store)])             # every other command: exit 2, names the file
    err = capsys.readouterr().err
    assert code == 2 and "mlplab.sqlite" in err and "mlplab check --repair" in err, err
    assert main(["check", str(store)]) == 2 and "--repair" in capsys.readouterr().err
    # a command that writes starts no new index over the run folders (a resumed sweep
    # would train them all again)
    assert main(["train", "--dataset", "xor", "--n", "40", "--epochs", "1", "--quiet",
                 "--no-report", "--out", str(store)]) == 2
    assert "mlplab check --repair" in capsys.readouterr().err
    if how == "deleted":
        assert not (store / "mlplab.sqlite").exists()

    assert main(["check", str(store), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt from the run folders: 5 runs, 1 sweeps" in out, out
    aside = sorted(store.glob("mlplab.sqlite.damaged-*"))
    if how == "deleted":
        assert aside == []
    else:                                          # kept, never deleted
        assert len(aside) == 1 and "kept aside as " + aside[0].name in out
    after = snapshot(store)
    assert after == before
    for run_id, state in weights.items():
        net = mlplab.load_model(store, run_id)
        assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert main(["check", str(store)]) == 0       # the rebuilt index is whole


@pytest.mark.slow
@pytest.mark.parametrize("how", INDEX_DAMAGE)
def test_the_console_script_rebuilds_and_a_resumed_sweep_trains_nothing(made, store: Path, how):
    sweep_file = made[0]
    before, times = listed(store), file_times(store)
    damage_index(store, how)
    broken = mlplab_cmd("runs", str(store))
    assert broken.returncode == 2 and "mlplab.sqlite" in broken.stderr, broken.stderr
    assert "Traceback" not in broken.stderr
    repaired = mlplab_cmd("check", str(store), "--repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["index"]["runs"] == 5
    assert listed(store) == before
    resumed = mlplab_cmd("sweep", str(sweep_file), "--out", str(store), "--resume", "--quiet",
                         "--no-report", "--workers", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["timing"]["train_s"] == 0
    assert file_times(store) == times               # nothing trained, nothing rewritten
    assert listed(store) == before


def test_a_sweep_whose_file_is_lost_is_rebuilt_without_its_spec_and_a_resume_restores_it(
        made, store: Path, capsys):
    sweep_file = made[0]
    (sweep_id,) = [s["sweep_id"] for s in Store(store, readonly=True).sweeps()]
    spec = Store(store, readonly=True).sweeps()[0]["config"]
    shutil.rmtree(store / "sweeps")
    damage_index(store, "deleted")
    assert main(["check", str(store), "--repair"]) == 0
    assert f"sweeps without their spec (mlplab sweep FILE --resume with the unchanged file" \
           f" restores it): {sweep_id}" in capsys.readouterr().out
    (row,) = Store(store, readonly=True).sweeps()
    assert row["sweep_id"] == sweep_id and row["config"] == {} and row["status"] == "interrupted"
    assert "--resume" in row["summary"]["rebuilt"]
    times = file_times(store)
    from mlplab.sweep import run_sweep

    result = run_sweep(sweep_file, out=store, resume=True, quiet=True, report=False, workers=1)
    assert result.data["timing"]["train_s"] == 0 and file_times(store) == times
    (row,) = Store(store, readonly=True).sweeps()
    assert row["config"] == spec and row["status"] == "done"


def test_folders_written_before_run_json_are_indexed_from_what_they_have(store: Path, capsys):
    old = run_folders(store)[0]
    (old / "run.json").unlink()
    damage_index(store, "deleted")
    assert main(["check", str(store), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "1 written before run.json, indexed from config.json without their numbers" \
           f" or attempts: {old.name}" in out, out
    s = Store(store, readonly=True)
    info = s.run(old.name)
    assert info.status == "done" and info.config["train"]["lr"] in (0.05, 0.3)
    assert info.sweep_id == s.sweeps()[0]["sweep_id"]       # read from the run id
    assert old.name in s.curves("val_loss")                  # derived from metrics.parquet
    assert mlplab.load_model(store, old.name) is not None


def test_run_folders_an_intact_index_lacks_are_indexed(store: Path, capsys):
    import sqlite3

    before = snapshot(store)
    lost = run_folders(store)[0].name          # its rows lost (an older copy of the index)
    with sqlite3.connect(store / "mlplab.sqlite") as db:
        for table in ("runs", "attempts", "curves", "digests"):
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", (lost,))
    assert lost not in snapshot(store)["runs"]
    assert main(["check", str(store), "--repair"]) == 0
    assert "run folders or sweeps it lacked indexed" in capsys.readouterr().out
    assert snapshot(store) == before
    assert main(["check", str(store), "--repair"]) == 0      # once only
    assert "lacked" not in capsys.readouterr().out


def flip_inside_tensor_data(path: Path) -> None:
    """One bit of the file's tensor data flipped: the header and the size unchanged."""
    raw = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    raw[header + (len(raw) - header) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_flipped_bit_inside_a_tensor_is_named_by_check_report_and_run_page(store: Path, capsys):
    from safetensors.torch import load_file

    run = run_folders(store)[0]
    best = run / "attempt-0.safetensors"
    size = best.stat().st_size
    flip_inside_tensor_data(best)
    assert best.stat().st_size == size and load_file(str(best))     # still parses
    assert main(["check", str(store), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["damaged"] == [{"run_id": run.name, "file": "attempt-0.safetensors",
                                  "reason": "content changed since written"}]

    from mlplab.report import build_report

    html = build_report(store).read_text()
    assert "Damaged runs" in html and f"{run.name}: attempt-0.safetensors: content" \
           " changed since written" in html
    info = Store(store, readonly=True).run(run.name)
    assert info.status == "damaged" and "content changed since written" in info.error


def test_the_dashboard_run_page_names_a_changed_file(store: Path):
    from realparts import import_or_skip

    import_or_skip("dash")
    from mlplab.dashboard import views

    run = run_folders(store)[1]
    config = run / "config.json"
    config.write_text(config.read_text().replace('"epochs": 3', '"epochs": 4'))   # still parses
    text = str(views.run_body(store, run.name))
    assert "damaged" in text and "config.json: content changed since written" in text


def test_a_damaged_run_json_is_named(store: Path, capsys):
    run = run_folders(store)[2]
    (run / "run.json").write_text("{not json")
    assert main(["check", str(store), "--json"]) == 1
    named = {(d["run_id"], d["file"]) for d in json.loads(capsys.readouterr().out)["damaged"]}
    assert named == {(run.name, "run.json")}


def test_damaged_run_folders_are_rebuilt_as_damaged_naming_the_file(store: Path, capsys):
    from test_store_check import _damage

    a, b, c, d = _damage(store)
    (d / "run.json").write_text("[]")
    damage_index(store, "bytes in its middle")
    assert main(["check", str(store), "--repair"]) == 0
    out = capsys.readouterr().out
    runs = {r.run_id: r for r in Store(store, readonly=True).runs()}
    assert {k for k, r in runs.items() if r.status == "damaged"} == {a.name, b.name, c.name, d.name}
    assert runs[a.name].error.startswith("metrics.parquet: ")
    assert runs[b.name].error.startswith("attempt-0.safetensors: ")
    assert runs[c.name].error.startswith("config.json: FileNotFoundError")
    assert runs[d.name].error.startswith("run.json: ValueError: not a run record")
    assert runs[d.name].config["train"]["lr"] in (0.05, 0.3)     # from its config.json
    assert [r.status for k, r in runs.items() if k not in (a.name, b.name, c.name, d.name)] == ["done"]
    assert "marked damaged" in out and main(["check", str(store)]) == 0
