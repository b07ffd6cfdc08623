"""The run store on a real SQLite file and real files: round trip, weights as safetensors
(never pickle), frozen records, atomic writes and safe run ids (SPEC §4)."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import sqlite3
import struct
from pathlib import Path

import pandas as pd
import pytest
import safetensors
import safetensors.torch
import torch

import mlplab
from mlplab.config import from_dict, to_dict
from mlplab.data import load_data
from mlplab.engine.reference import train
from mlplab.store import runfiles as runfiles_mod
from mlplab.store import store as store_mod
from mlplab.store.models import load_model
from mlplab.store.store import INDEX, Store, StoreError

CONFIG = {"name": "xor-test", "data": {"name": "xor", "n": 60, "noise": 0.2},
          "train": {"optimizer": "sgd", "lr": 1e-7, "epochs": 30, "seed": 2},
          "stopping": {"restarts": 1, "patience": 2, "min_delta": 1e-3},
          "probe": {"boundary_snapshots": 3}}


def _record(run_id: str, **train_overrides):
    raw = copy.deepcopy(CONFIG)
    raw["train"].update(train_overrides)
    return train(from_dict(raw), run_id=run_id)


@pytest.fixture(scope="module")
def rec():
    return _record("xor-a")


@pytest.fixture()
def written(tmp_path, rec):
    store = Store(tmp_path / "store")
    store.write_run(rec)
    return store


def _no_pickle(*args, **kwargs):
    raise AssertionError("pickle must never be loaded")


@pytest.fixture()
def pickle_forbidden(monkeypatch):
    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, _no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", _no_pickle)
    monkeypatch.setattr(torch, "load", _no_pickle)


def test_round_trip_through_a_real_sqlite_file(written, rec) -> None:
    index = written.root / INDEX
    with sqlite3.connect(index) as db:          # a real SQLite file with the documented tables
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"runs", "attempts", "configs", "sweeps"} <= tables
        assert db.execute("SELECT status FROM runs WHERE run_id='xor-a'").fetchone() == ("done",)
    reader = Store(written.root, readonly=True)
    (info,) = reader.runs()
    best = rec.best
    assert (info.run_id, info.name, info.status, info.source) == ("xor-a", "xor-test", "done", "engine")
    assert (info.best_attempt, info.n_attempts, info.restarts) == (rec.best_attempt, 2, 1)
    assert (info.end_reason, info.best_value, info.val_loss) == (best.end_reason, best.best_value,
                                                                 best.val_loss)
    assert (info.test_loss, info.test_acc, info.seed) == (best.test_loss, best.test_acc, 2)
    assert info.epochs == sum(a.epochs for a in rec.attempts)
    assert info.config == rec.config == json.loads(json.dumps(rec.config))
    assert reader.run("xor-a") == info
    attempts = reader.attempts("xor-a")
    assert [(a.attempt, a.seed, a.end_reason, a.epochs, a.best_epoch, a.steps) for a in attempts] \
        == [(a.attempt, a.seed, a.end_reason, a.epochs, a.best_epoch, a.steps) for a in rec.attempts]
    doc = reader.run_doc("xor-a")
    assert doc["config"] == rec.config and doc["info"] == json.loads(json.dumps(rec.info))
    pd.testing.assert_frame_equal(reader.metrics("xor-a"), rec.metrics.to_frame())


def test_a_new_index_appears_whole_and_never_over_another(written, monkeypatch) -> None:
    # a reader that opens the store while its first writer starts must find no index or one
    # with its tables (an index without them reads as damaged): the tables are made under
    # a temporary name, then linked into place
    seen = []
    real_link = store_mod.os.link

    def link(src, dst):
        with sqlite3.connect(src) as db:          # what a reader would find once it is there
            seen.append({r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")})
        assert not Path(dst).exists()             # and nothing at the index's name before
        return real_link(src, dst)

    monkeypatch.setattr(store_mod.os, "link", link)
    fresh = written.root.parent / "fresh"
    Store(fresh)
    assert len(seen) == 1 and {"runs", "attempts", "configs", "sweeps", "curves"} <= seen[0]
    assert [p.name for p in fresh.iterdir() if p.is_file()] == [INDEX]     # no temporary left
    assert [r.status for r in Store(fresh, readonly=True).runs()] == []
    monkeypatch.setattr(store_mod.os, "link", real_link)
    store_mod.create_index(written.root)          # over an index that holds a run: it stays
    assert [r.run_id for r in Store(written.root, readonly=True).runs()] == ["xor-a"]
    assert sorted(p.name for p in written.root.iterdir() if p.is_file()) == [INDEX]


def test_metrics_parquet_schema(written) -> None:
    frame = pd.read_parquet(written.run_dir("xor-a") / "metrics.parquet")
    assert list(frame.columns) == ["attempt", "step", "epoch", "scope", "layer", "metric", "value"]
    assert [str(t) for t in frame.dtypes[:3]] == ["int32", "int64", "int32"]
    assert str(frame.dtypes["value"]) == "float64"
    assert set(frame.scope) == {"step", "act", "epoch", "final"}


def test_weights_are_safetensors_and_nothing_is_unpickled(written, rec, pickle_forbidden) -> None:
    run_dir = written.run_dir("xor-a")
    assert len(rec.attempts) == 2                   # a restart: two attempts, one file each
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "attempt-0.safetensors", "attempt-1.safetensors", "config.json", "metrics.parquet", "run.json"]
    for a in rec.attempts:
        path = run_dir / f"attempt-{a.attempt}.safetensors"
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])             # safetensors: u64 header length + JSON
        header = json.loads(raw[8:8 + n])
        assert header["__metadata__"] == {"run_id": "xor-a", "attempt": str(a.attempt), "seed": str(a.seed)}
        loaded = safetensors.torch.load_file(path)
        assert {k.split("/", 1)[0] for k in loaded} == {"init", "best", "last", "boundary"}
        for which in ("init", "best", "last"):
            want = getattr(a, f"{which}_state")
            assert {k for k in loaded if k.startswith(which + "/")} == {f"{which}/{k}" for k in want}
            assert all(torch.equal(loaded[f"{which}/{k}"], want[k]) for k in want)
            stored = written.weights("xor-a", attempt=a.attempt, which=which)
            assert stored.keys() == want.keys() and all(torch.equal(stored[k], want[k]) for k in want)
            arrays = written.arrays("xor-a", attempt=a.attempt, which=which)
            assert all((arrays[k] == want[k].numpy()).all() for k in want)
        assert written.boundary("xor-a", a.attempt)["probs"].shape[0] >= 1
    for path in written.root.rglob("*"):       # no pickle or torch.save zip anywhere
        if path.is_file():
            head = path.read_bytes()[:2]
            assert head[:1] != b"\x80" and head != b"PK", path
    load_model(written.root)


def _as_older_layout(store: Store, run_id: str) -> None:
    """Rewrite a run's folder as runs were written before one file held an attempt's
    tensors (``attempt-<n>/{init,best,last,boundary}.safetensors``), its ``run.json`` and
    the index's digests naming those files."""
    from mlplab.store.check import check_store
    from mlplab.store.rows import file_digests

    folder = store.run_dir(run_id)
    for path in sorted(folder.glob("attempt-*.safetensors")):
        with safetensors.safe_open(str(path), "pt") as f:
            meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        (folder / path.stem).mkdir()
        for which in ("init", "best", "last", "boundary"):
            part = {k[len(which) + 1:]: t for k, t in tensors.items() if k.startswith(which + "/")}
            if part:
                safetensors.torch.save_file(part, folder / path.stem / f"{which}.safetensors", meta)
        path.unlink()
    record = json.loads((folder / "run.json").read_text())
    record["files"] = file_digests({str(p.relative_to(folder)): p.read_bytes()
                                    for p in folder.rglob("*") if p.is_file() and p.name != "run.json"})
    (folder / "run.json").write_text(json.dumps(record))
    with sqlite3.connect(store.root / INDEX) as db:
        db.execute("DELETE FROM digests WHERE run_id = ?", (run_id,))
        db.executemany("INSERT INTO digests VALUES (?, ?, ?, ?)",
                       [(run_id, n, f["size"], f["blake2b"]) for n, f in record["files"].items()])
    assert check_store(store.root).damaged == []


def test_runs_written_with_a_folder_of_files_an_attempt_read_as_before(written, rec) -> None:
    from mlplab.store.check import check_store, quick_damage

    before = {(a.attempt, w): written.weights("xor-a", a.attempt, w)
              for a in rec.attempts for w in ("init", "best", "last")}
    snapshots = written.boundary("xor-a", 1)
    _as_older_layout(written, "xor-a")
    folder = written.run_dir("xor-a")
    assert (folder / "attempt-1" / "best.safetensors").is_file()
    assert not list(folder.glob("attempt-*.safetensors"))
    for (attempt, which), want in before.items():
        got = written.weights("xor-a", attempt, which)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    got = written.boundary("xor-a", 1)
    assert all(torch.equal(got[k], snapshots[k]) for k in snapshots)
    assert isinstance(load_model(written.root, "xor-a"), torch.nn.Module)
    run = written.run("xor-a")
    assert quick_damage(folder, run) is None and check_store(written.root).damaged == []
    (folder / "attempt-1" / "best.safetensors").write_bytes(b"\xff" * 64)      # the kept attempt's
    assert quick_damage(folder, run).file == "attempt-1/best.safetensors"
    assert [d.file for d in check_store(written.root).damaged] == ["attempt-1/best.safetensors"]


def test_weights_numpy_lacks_are_read_as_float32_arrays(written, rec) -> None:
    path = written.run_dir("xor-a") / "attempt-1.safetensors"
    tensors = safetensors.torch.load_file(path)
    safetensors.torch.save_file({k: t.to(torch.bfloat16) if k.startswith("best/") else t
                                 for k, t in tensors.items()}, path)
    arrays = written.arrays("xor-a", 1, "best")          # bfloat16: read through torch
    want = {k: v.to(torch.bfloat16).float().numpy() for k, v in rec.attempts[1].best_state.items()}
    assert arrays.keys() == want.keys()
    assert all(arrays[k].dtype == want[k].dtype and (arrays[k] == want[k]).all() for k in want)
    assert written.arrays("xor-a", 1, "init")["0.weight"].dtype.name == "float32"


def test_a_kept_attempt_whose_file_lacks_its_best_weights_is_damaged(written, rec) -> None:
    from mlplab.store.check import check_store

    path = written.run_dir("xor-a") / "attempt-1.safetensors"
    tensors = safetensors.torch.load_file(path)
    safetensors.torch.save_file({k: t for k, t in tensors.items() if not k.startswith("best/")}, path)
    damaged = check_store(written.root).damaged
    assert [(d.file, d.reason) for d in damaged if "best" in d.reason] == \
        [("attempt-1.safetensors", "holds no best weights (best/...) of the kept attempt")]
    with pytest.raises(StoreError, match="no best weights for run 'xor-a' attempt 1"):
        written.weights("xor-a")


def test_load_model_reproduces_the_predictions(written, rec) -> None:
    net = mlplab.load_model(written.root, "xor-a")
    assert isinstance(net, torch.nn.Module) and not net.training
    data = load_data(from_dict(CONFIG).data)
    x = torch.as_tensor(data.x_test)
    w = rec.best.best_state                         # a hand-written forward of the kept weights
    hidden = torch.relu(x @ w["0.weight"].T + w["0.bias"])
    want = torch.sigmoid(hidden @ w["2.weight"].T + w["2.bias"])
    with torch.no_grad():
        torch.testing.assert_close(net(x), want)
    from_folder = load_model(written.run_dir("xor-a"))          # a run's folder works too
    with torch.no_grad():
        torch.testing.assert_close(from_folder(x), want)
    init = load_model(written.root, "xor-a", which="init")
    assert torch.equal(init[0].weight, rec.best.init_state["0.weight"])


def test_boundary_probabilities_are_computed_from_the_stored_snapshot_weights(written, rec):
    from safetensors.torch import load_file, save_file

    from mlplab.model.boundary import plane_points
    from mlplab.model.loss import class_probabilities
    from mlplab.model.mlp import Head

    head = Head(**rec.info["head"])
    for a in rec.attempts:
        path = written.run_dir("xor-a") / f"attempt-{a.attempt}.safetensors"
        stored = {k[len("boundary/"):]: t for k, t in load_file(path).items() if k.startswith("boundary/")}
        assert "probs" not in stored and stored["epochs"].tolist()[-1] == a.epochs - 1
        size = sum(t.numel() * t.element_size() for t in stored.values())
        assert size < 4096                       # weights of 3 snapshots, not 3 x 48 x 48 probs
        last = {k[len("params."):]: v[-1] for k, v in stored.items() if k.startswith("params.")}
        assert all(torch.equal(last[k], a.last_state[k]) for k in a.last_state)
        packed = written.boundary("xor-a", a.attempt)
        points = torch.as_tensor(plane_points(packed["grid_u"], packed["grid_v"],
                                              packed["center"], packed["basis"]), dtype=torch.float32)
        for i in range(len(packed["epochs"])):   # each snapshot, as a hand-written forward
            w = {k[len("params."):]: v[i] for k, v in stored.items() if k.startswith("params.")}
            out = torch.sigmoid(torch.relu(points @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T
                                + w["2.bias"])
            want = class_probabilities(out, head)[:, 1:].reshape(48, 48, 1)
            torch.testing.assert_close(packed["probs"][i], want)
    # a file written before the weights were stored (in an attempt's folder, as then) holds
    # the probabilities: read as it is
    old = {k: v for k, v in stored.items() if not k.startswith("params.")}
    old["probs"] = torch.full((len(old["epochs"]), 48, 48, 1), 0.25, dtype=torch.float16)
    path.unlink()
    (path.parent / path.stem).mkdir()
    save_file(old, str(path.parent / path.stem / "boundary.safetensors"))
    assert torch.equal(written.boundary("xor-a", rec.attempts[-1].attempt)["probs"], old["probs"])
    doc_path = written.run_dir("xor-a") / "config.json"      # from a version without the key
    doc = json.loads(doc_path.read_text())
    del doc["config"]["model"]["negative_slope"]
    doc_path.write_text(json.dumps(doc))
    assert torch.equal(written.boundary("xor-a", rec.attempts[-1].attempt)["probs"], old["probs"])


def test_reading_errors(tmp_path, written) -> None:
    with pytest.raises(StoreError, match="no mlplab store"):
        Store(tmp_path / "nowhere", readonly=True)
    with pytest.raises(StoreError, match="no run 'nope'"):
        written.run("nope")
    with pytest.raises(StoreError, match="allowed init, best, last"):
        written.weights("xor-a", which="middle")
    with pytest.raises(StoreError, match="attempt 7"):
        written.weights("xor-a", attempt=7)
    written.write_run(_record("xor-b"))
    with pytest.raises(StoreError, match="2 runs; name one: xor-a, xor-b"):
        load_model(written.root)


def test_records_read_never_change_under_later_writes(written, rec) -> None:
    first, first_attempts = written.runs()[0], written.attempts("xor-a")
    snapshot, attempts_snapshot = copy.deepcopy(first), copy.deepcopy(first_attempts)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = "failed"  # type: ignore[misc]
    other = _record("xor-a", lr=0.5)               # the same id written again, and new runs
    written.write_run(other)
    written.write_run(_record("xor-c", seed=9))
    written.mark("xor-d", "d", rec.config, "running")
    assert first == snapshot and first_attempts == attempts_snapshot
    now = written.run("xor-a")
    assert now.best_value == other.best.best_value and now != first
    assert sorted(r.run_id for r in written.runs()) == ["xor-a", "xor-c", "xor-d"]


def test_runs_sharing_a_config_keep_their_own_names(tmp_path, rec) -> None:
    store = Store(tmp_path)
    store.write_run(rec)
    store.write_run(dataclasses.replace(rec, run_id="renamed", name="other-name"))
    names = {r.run_id: (r.name, r.config["name"]) for r in store.runs()}
    assert names == {"xor-a": ("xor-test", "xor-test"), "renamed": ("other-name", "other-name")}


def test_runs_read_together_share_their_configs_keys(tmp_path, rec) -> None:
    """Store.runs parses every row's config in one call, so a key is one string object for
    all runs (10,000 runs' configs: half the memory), and each run's values stay its own."""
    store = Store(tmp_path)
    store.write_run(rec)
    other = copy.deepcopy(rec.config)
    other["train"]["lr"] = 0.5
    store.write_run(dataclasses.replace(rec, run_id="other", config=other))
    a, b = store.runs()
    assert [k for k in a.config["train"]] == [k for k in b.config["train"]]
    assert all(x is y for x, y in zip(a.config["train"], b.config["train"]))
    assert (a.config["train"]["lr"], b.config["train"]["lr"]) == (rec.config["train"]["lr"], 0.5)
    assert store.run("other").config == b.config


def _crash(*args, **kwargs):
    raise OSError("disk full (simulated)")


_real_replace = store_mod.os.replace


def _crash_renaming_folders(src, dst):
    """os.replace that fails for the run folder's rename only (files still go through)."""
    if Path(src).is_dir():
        raise OSError("crash at rename (simulated)")
    return _real_replace(src, dst)


@pytest.mark.parametrize("where", ["first weights", "third file", "parquet", "rename", "index"])
def test_a_crash_mid_write_leaves_no_run_that_reads_as_complete(tmp_path, rec, monkeypatch,
                                                                where: str) -> None:
    store = Store(tmp_path)
    store.mark("xor-a", rec.name, rec.config, "running")
    real_write = runfiles_mod.write_files

    def write_two_then_crash(files, folder):
        real_write(dict(list(files.items())[:2]), folder)
        assert len(list(folder.rglob("*.*"))) == 2           # the crash comes mid-folder
        raise OSError("disk full (simulated)")

    if where == "first weights":         # encoding fails
        monkeypatch.setattr(runfiles_mod, "safetensors_bytes", _crash)
    elif where == "third file":          # writing fails after two files
        monkeypatch.setattr(store_mod, "write_files", write_two_then_crash)
    elif where == "parquet":
        monkeypatch.setattr("mlplab.metrics.parquet_bytes", _crash)
    elif where == "rename":
        monkeypatch.setattr(store_mod.os, "replace", _crash_renaming_folders)
    else:
        monkeypatch.setattr(Store, "_index_runs", _crash)
    with pytest.raises(OSError, match="simulated"):
        store.write_run(rec)
    monkeypatch.undo()
    assert Store(tmp_path, readonly=True).run("xor-a").status == "running"
    assert Store(tmp_path).runs(status="done") == []
    leftovers = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert leftovers == (["xor-a"] if where == "index" else [])   # no temp folder is left
    store.write_run(rec)                                            # and a retry completes it
    assert store.run("xor-a").status == "done"


def test_a_crash_while_replacing_a_done_run_unmarks_it(tmp_path, rec, monkeypatch) -> None:
    store = Store(tmp_path)
    store.write_run(rec)
    monkeypatch.setattr(store_mod.os, "replace", _crash_renaming_folders)
    with pytest.raises(OSError, match="simulated"):
        store.write_run(rec)
    monkeypatch.undo()
    assert not store.run_dir("xor-a").exists()     # the old files went before the crash ...
    assert store.run("xor-a").status != "done"     # ... so it must not read as complete


def test_a_leftover_temp_folder_is_ignored_by_readers(written, rec) -> None:
    tmp = written.root / "runs" / ".xor-a.k2j4h1"
    (tmp / "attempt-0").mkdir(parents=True)
    (tmp / "config.json").write_text("{half a fil")
    taken = written.new_run_id("stray", rec.config)
    (written.root / "runs" / taken).mkdir()          # a folder the index does not know
    assert [r.run_id for r in Store(written.root, readonly=True).runs()] == ["xor-a"]
    assert written.new_run_id("stray", rec.config) == taken + "-2"   # never reused
    assert isinstance(load_model(written.root), torch.nn.Module)


def test_new_run_ids_are_unique(tmp_path, rec) -> None:
    store = Store(tmp_path)
    cfg = to_dict(from_dict(CONFIG))
    first = store.new_run_id("My run!", cfg)
    store.mark(first, "My run!", cfg, "running")
    second = store.new_run_id("My run!", cfg)
    assert first.startswith("My-run-") and second == first + "-2"
    assert store_mod.RUN_ID_RE.match(first)


@pytest.mark.parametrize("run_id", ["../../etc/passwd", "..", "../x", "a/b", "/etc/passwd",
                                    ".hidden", "", "a\\b", "x" * 200, "run..id"])
def test_run_ids_cannot_leave_the_store(written, run_id: str) -> None:
    for call in (written.run_dir, written.run, written.run_doc, written.weights,
                 written.metrics, lambda r: load_model(written.root, r)):
        with pytest.raises(StoreError, match="invalid run id"):
            call(run_id)


def test_store_error_is_a_value_error_with_a_plain_message(tmp_path) -> None:
    assert issubclass(StoreError, ValueError)
    assert Path(tmp_path / "fresh").exists() is False
    Store(tmp_path / "fresh")
    assert (tmp_path / "fresh" / INDEX).is_file() and Store(tmp_path / "fresh").runs() == []


def test_odd_store_paths(tmp_path, rec) -> None:
    odd = tmp_path / "my runs #1 ?50%"
    Store(odd).write_run(rec)
    assert [r.run_id for r in Store(odd, readonly=True).runs()] == ["xor-a"]
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="is a file"):
        Store(tmp_path / "file")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / INDEX).write_bytes(b"this is not sqlite at all" * 100)
    for readonly in (True, False):
        with pytest.raises(StoreError, match="not an mlplab store index"):
            Store(tmp_path / "junk", readonly=readonly)


def test_a_run_written_from_encoded_files_equals_one_written_from_its_record(tmp_path, rec) -> None:
    # a sweep's worker encodes the folder and sends a slim record; the driver writes bytes
    direct, encoded = Store(tmp_path / "a"), Store(tmp_path / "b")
    direct.write_run(rec)
    slim = runfiles_mod.slim(rec)
    assert len(slim.metrics) == 0 and all(not a.best_state for a in slim.attempts)
    encoded.write_run(slim, files=runfiles_mod.encode_run(rec))
    names = lambda s: sorted(str(p.relative_to(s.run_dir(rec.run_id)))  # noqa: E731
                             for p in s.run_dir(rec.run_id).rglob("*") if p.is_file())
    assert names(direct) == names(encoded) and "attempt-1.safetensors" in names(direct)
    for name in names(direct):
        a, b = direct.run_dir(rec.run_id) / name, encoded.run_dir(rec.run_id) / name
        if name.endswith(".safetensors"):     # the header's key order may differ
            with safetensors.safe_open(str(a), "pt") as fa, safetensors.safe_open(str(b), "pt") as fb:
                assert fa.metadata() == fb.metadata() and sorted(fa.keys()) == sorted(fb.keys())
                assert all(torch.equal(fa.get_tensor(k), fb.get_tensor(k)) for k in fa.keys())
        elif name == "run.json":              # the same record but for the time it was written
            ra, rb = (json.loads(p.read_text()) for p in (a, b))
            for r in (ra, rb):
                r["run"].update(created=0, finished=0)
                r["files"] = {k: v for k, v in r["files"].items() if not k.endswith(".safetensors")}
            assert ra == rb
        else:
            assert a.read_bytes() == b.read_bytes(), name
    assert dataclasses.replace(direct.run(rec.run_id), created=0, finished=0) == \
        dataclasses.replace(encoded.run(rec.run_id), created=0, finished=0)
    pd.testing.assert_frame_equal(encoded.metrics(rec.run_id), rec.metrics.to_frame())


def test_run_folders_have_the_modes_of_the_rest_of_the_store(tmp_path):
    import os

    from mlplab.config import from_dict
    from mlplab.run import run_config

    old = os.umask(0o022)
    try:
        run_config(from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 2},
                              "probe": {"boundary_snapshots": 0}}), tmp_path / "s",
                   report=False, quiet=True)
    finally:
        os.umask(old)
    (run,) = (tmp_path / "s" / "runs").iterdir()
    assert run.stat().st_mode & 0o777 == (tmp_path / "s" / "runs").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "bfloat16"])
def test_safetensors_bytes_are_safetensors_torch_save(dtype: str) -> None:
    """The numpy writer (bfloat16: the torch writer) writes what torch's would: the same
    header (as JSON: safetensors orders the metadata as its hash map does) and data."""
    import json

    import torch

    def parts(raw: bytes) -> tuple[dict, bytes]:
        (n,) = struct.unpack("<Q", raw[:8])
        return json.loads(raw[8:8 + n]), raw[8 + n:]

    stacked = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    grad = dtype not in ("int64", "bool")
    state = {"b.weight": stacked[1].to(getattr(torch, dtype)),      # a view into a stack
             "a.bias": torch.ones(3, dtype=getattr(torch, dtype)).requires_grad_(grad)}
    meta = {"run_id": "r", "attempt": "0", "seed": "1"}
    expect = safetensors.torch.save({k: v.detach().contiguous() for k, v in state.items()},
                                    metadata=meta)
    got = runfiles_mod.safetensors_bytes(state, meta)
    assert len(got) == len(expect) and parts(got) == parts(expect)
    loaded = safetensors.torch.load(got)
    assert all(torch.equal(loaded[k], v.detach()) for k, v in state.items())
