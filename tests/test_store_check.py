"""Damaged files are found and named, never crash a command: `mlplab check` verifies every
finished run's files on real corrupted files, `--repair` marks the damaged runs, and a
damaged index names its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.config import from_dict
from mlplab.run import run_config
from mlplab.store import Store


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    cfg = from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3},
                     "probe": {"boundary_snapshots": 0}})
    run_config(cfg, tmp_path / "s", seeds=4, report=False, quiet=True)
    return tmp_path / "s"


def _runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "runs").iterdir() if p.is_dir())


def _damage(store: Path) -> list[Path]:
    """Three kinds of damage to the first three runs; the fourth stays intact."""
    a, b, c, d = _runs(store)[:4]
    metrics = a / "metrics.parquet"
    metrics.write_bytes(metrics.read_bytes()[: metrics.stat().st_size // 2])      # truncated
    (b / "attempt-0.safetensors").write_bytes(b"\xff" * 64)                      # garbage
    (c / "config.json").unlink()                                                  # gone
    return [a, b, c, d]


def test_a_clean_store_checks_clean(store: Path, capsys):
    assert main(["check", str(store)]) == 0
    assert "4 finished runs checked" in capsys.readouterr().out


def test_each_kind_of_damage_is_named_and_repair_marks_only_those_runs(store: Path, capsys):
    a, b, c, d = _damage(store)
    assert main(["check", str(store), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    named = {(x["run_id"], x["file"]) for x in report["damaged"]}
    assert named == {(a.name, "metrics.parquet"), (b.name, "attempt-0.safetensors"),
                     (c.name, "config.json")}
    assert main(["check", str(store), "--repair"]) == 0
    assert "marked damaged" in capsys.readouterr().out
    runs = {r.run_id: r for r in Store(store, readonly=True).runs()}
    assert {k for k, r in runs.items() if r.status == "damaged"} == {a.name, b.name, c.name}
    assert runs[d.name].status == "done"
    assert "metrics.parquet" in runs[a.name].error and "attempt-0.safetensors" in runs[b.name].error
    assert main(["runs", str(store)]) == 0                   # the rest still lists
    assert main(["check", str(store)]) == 0                  # nothing left marked done and broken


def test_runs_lists_a_damaged_run_as_damaged_before_any_check(store: Path, capsys):
    a, b, c, d = _damage(store)
    assert main(["runs", str(store), "--json"]) == 0
    rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {k for k, r in rows.items() if r["status"] == "damaged"} == {a.name, b.name, c.name}
    assert rows[a.name]["error"].startswith("metrics.parquet: truncated")
    assert rows[b.name]["error"].startswith("attempt-0.safetensors: truncated or not")
    assert rows[c.name]["error"].startswith("config.json: missing")
    assert rows[d.name]["status"] == "done" and rows[d.name]["error"] is None
    assert main(["runs", str(store), "--json", "--filter", "status=done"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [d.name]
    # a glance only: the index is untouched until `mlplab check --repair`
    assert {r.status for r in Store(store, readonly=True).runs()} == {"done"}


def test_a_damaged_index_names_its_file(store: Path, capsys):
    index = store / "mlplab.sqlite"
    raw = bytearray(index.read_bytes())
    raw[100:4000] = b"\x00garbage" * ((4000 - 100) // 8) + b"\x00" * ((4000 - 100) % 8)
    index.write_bytes(bytes(raw))
    code = main(["runs", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and "mlplab.sqlite" in err, err
    assert "damaged" in err or "not an mlplab store index" in err, err
    assert "Traceback" not in err


def test_the_report_leaves_a_damaged_run_out_and_names_it(store: Path):
    from mlplab.report import build_report

    a = _runs(store)[0]
    (a / "metrics.parquet").write_bytes(b"PAR1 not really")
    html = build_report(store).read_text()
    assert "Damaged runs" in html and f"{a.name}: metrics.parquet" in html
    assert Store(store, readonly=True).run(a.name).status == "damaged"


def test_runs_the_caller_wrote_itself_are_not_read_back(store: Path):
    """A sweep's driver hands its report the runs it wrote moments ago (check_store's
    ``written``): those are not read again; every other finished run is."""
    from mlplab.store.check import check_store

    a, b, c, d = _damage(store)
    result = check_store(store, written={a.name, d.name})
    assert {x.run_id for x in result.damaged} == {b.name, c.name}
    assert result.checked == 2
    assert {x.run_id for x in check_store(store).damaged} == {a.name, b.name, c.name}
    runs = Store(store, readonly=True).runs()        # as the report read them just before
    given = check_store(store, repair=True, written={a.name, d.name}, runs=runs)
    assert {x.run_id for x in given.damaged} == {b.name, c.name} and given.checked == 2
    assert check_store(store, written={r.run_id for r in runs}, runs=runs).checked == 0
    marked = {r.run_id for r in Store(store, readonly=True).runs() if r.status == "damaged"}
    assert marked == {b.name, c.name}


def test_the_dashboard_overview_survives_a_damaged_run(store: Path):
    from realparts import import_or_skip

    import_or_skip("dash")
    from mlplab.dashboard import create_app

    (_runs(store)[0] / "metrics.parquet").write_bytes(b"PAR1 not really")
    client = create_app(store).server.test_client()
    assert client.get("/").status_code == 200
    from mlplab.figures import load_store_figdata

    assert load_store_figdata(Store(store, readonly=True)).n_runs == 4     # still listed


def test_the_dashboard_run_page_of_a_damaged_run_says_so(store: Path):
    from realparts import import_or_skip

    import_or_skip("dash")
    from mlplab.dashboard import views

    a = _runs(store)[0]
    (a / "metrics.parquet").write_bytes(b"PAR1 nope")
    text = str(views.run_body(store, a.name))
    assert "damaged" in text and "metrics.parquet" in text
