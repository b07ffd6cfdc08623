"""The index's tables, and a finished run's rows in them as one record, kept twice: in
the index, and in the run's folder as ``run.json`` (strict JSON), written with the other
files before the index rows.

The record holds the run's row (status, sweep id, its place in the sweep, timing, the
kept attempt's numbers), its attempts' rows and each file's size and digest
(:func:`mlplab.store.runfiles.digest`). The index's rows are inserted from it
(:func:`insert_record`), at write time and when a lost or damaged index is rebuilt from
the run folders (:mod:`mlplab.store.rebuild`), so the two cannot disagree; ``mlplab check``
compares each file with its digest, which finds damage that keeps a file's size and
parses.

>>> from mlplab.metrics import MetricsLog
>>> from mlplab.record import AttemptRecord, RunRecord
>>> rec = RunRecord("r1", "r", {"train": {"seed": 0}}, [AttemptRecord(0, 0, "plateau", 1, 1,
...                 0, 0.5)], 0, MetricsLog(), {})
>>> doc = run_record(rec, "s-1", {"stage": 0}, {"config.json": b"{}"}, now=100.0)
>>> doc["run"]["status"], doc["run"]["sweep_id"], doc["run"]["val_loss"], doc["files"]
('done', 's-1', None, {'config.json': {'size': 2, 'blake2b': '...'}})
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import TYPE_CHECKING, Any, Mapping

from mlplab import strictjson

from .runfiles import RECORD, RunFiles, digest

if TYPE_CHECKING:
    from mlplab.record import RunRecord

FORMAT = 1          # of run.json: a reader refuses a newer one rather than misread it

SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY, name TEXT, strategy TEXT, config_json TEXT,
    status TEXT, created REAL, finished REAL, summary_json TEXT);
CREATE TABLE IF NOT EXISTS configs (config_hash TEXT PRIMARY KEY, config_json TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, sweep_id TEXT, name TEXT, config_hash TEXT, status TEXT,
    source TEXT, seed INTEGER, created REAL, finished REAL, wall_time REAL,
    best_attempt INTEGER, n_attempts INTEGER, restarts INTEGER, end_reason TEXT,
    target_met INTEGER, epochs INTEGER, best_value REAL, val_loss REAL, val_acc REAL,
    test_loss REAL, test_acc REAL, train_loss REAL, error TEXT, summary_json TEXT);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT, attempt INTEGER, seed INTEGER, end_reason TEXT, epochs INTEGER,
    steps INTEGER, best_epoch INTEGER, best_value REAL, val_loss REAL, val_acc REAL,
    test_loss REAL, test_acc REAL, train_loss REAL, target_met INTEGER, wall_time REAL,
    PRIMARY KEY (run_id, attempt));
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep_id);
CREATE TABLE IF NOT EXISTS digests (
    run_id TEXT, file TEXT, size INTEGER, blake2b TEXT, PRIMARY KEY (run_id, file));
"""       # the index's tables but the curves (curves.py)

RUN_COLUMNS = ("run_id", "sweep_id", "name", "config_hash", "status", "source", "seed",
               "created", "finished", "wall_time", "best_attempt", "n_attempts", "restarts",
               "end_reason", "target_met", "epochs", "best_value", "val_loss", "val_acc",
               "test_loss", "test_acc", "train_loss", "error")
ATTEMPT_COLUMNS = ("attempt", "seed", "end_reason", "epochs", "steps", "best_epoch",
                   "best_value", "val_loss", "val_acc", "test_loss", "test_acc", "train_loss",
                   "target_met", "wall_time")


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable hash of a config dict (the name is not part of it)."""
    body = {k: v for k, v in config.items() if k not in ("name", "sweep")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _clean(v: Any) -> Any:
    """JSON/SQLite-safe number: NaN and inf become None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_record(rec: "RunRecord", sweep_id: str | None, summary: Mapping[str, Any],
               files: RunFiles, now: float) -> dict[str, Any]:
    """The record of ``rec`` finished at ``now``, its folder being ``files``."""
    best = rec.best
    run = {"run_id": rec.run_id, "sweep_id": sweep_id, "name": rec.name,
           "config_hash": config_hash(rec.config), "status": "done", "source": rec.source,
           "seed": rec.config["train"]["seed"], "created": now - rec.wall_time,
           "finished": now, "wall_time": rec.wall_time, "best_attempt": rec.best_attempt,
           "n_attempts": len(rec.attempts), "restarts": len(rec.attempts) - 1,
           "end_reason": best.end_reason, "target_met": int(any(a.target_met for a in rec.attempts)),
           "epochs": sum(a.epochs for a in rec.attempts), "best_value": best.best_value,
           "val_loss": best.val_loss, "val_acc": best.val_acc, "test_loss": best.test_loss,
           "test_acc": best.test_acc, "train_loss": best.train_loss, "error": None,
           "summary": dict(summary)}
    attempts = [{k: getattr(a, k) for k in ATTEMPT_COLUMNS} for a in rec.attempts]
    for a in attempts:
        a["target_met"] = int(a["target_met"])
    return strictjson.jsonable({"format": FORMAT, "run": {k: _clean(v) for k, v in run.items()},
                                "attempts": attempts, "files": file_digests(files)})


def file_digests(files: RunFiles) -> dict[str, dict[str, Any]]:
    """Each file's size and digest, by its path in the run's folder."""
    return {name: {"size": len(content), "blake2b": digest(content)}
            for name, content in sorted(files.items()) if name != RECORD}


def with_record(files: RunFiles, record: Mapping[str, Any]) -> RunFiles:
    """``files`` and the record as ``run.json``."""
    # one line: json's C encoder (an indented dump is Python's, ~0.15 ms a run in the driver)
    return {**files, RECORD: strictjson.dumps(record).encode()}


def parse_record(text: str | bytes) -> dict[str, Any]:
    """A ``run.json`` read back; ``ValueError`` saying what is wrong when it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("run"), dict) \
            or not isinstance(doc.get("attempts"), list) or not isinstance(doc.get("files"), dict):
        raise ValueError("not a run record (run, attempts and files expected)")
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}; this mlplab reads format {FORMAT}")
    missing = [k for k in RUN_COLUMNS if k not in doc["run"]]
    if missing:
        raise ValueError(f"its run lacks {', '.join(missing)}")
    return doc


def insert_record(db: sqlite3.Connection, record: Mapping[str, Any],
                  config: Mapping[str, Any] | None) -> None:
    """Replace the run's rows in the index by ``record``'s (inside the caller's
    transaction); ``config``: the run's resolved config (its ``config.json``; None when
    that file is unreadable, and its hash then names no config)."""
    run = record["run"]
    run_id = run["run_id"]
    if config is not None:
        db.execute("INSERT OR IGNORE INTO configs VALUES (?, ?)", (run["config_hash"], json.dumps(config)))
    for table in ("attempts", "runs", "digests"):
        db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    db.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}, summary_json)"
               f" VALUES ({', '.join('?' * (len(RUN_COLUMNS) + 1))})",
               [run[k] for k in RUN_COLUMNS] + [strictjson.dumps(run.get("summary") or {})])
    db.executemany(f"INSERT INTO attempts (run_id, {', '.join(ATTEMPT_COLUMNS)})"
                   f" VALUES ({', '.join('?' * (len(ATTEMPT_COLUMNS) + 1))})",
                   [[run_id] + [a.get(k) for k in ATTEMPT_COLUMNS] for a in record["attempts"]])
    db.executemany("INSERT INTO digests VALUES (?, ?, ?, ?)",
                   [(run_id, name, f["size"], f["blake2b"]) for name, f in record["files"].items()])


def read_digests(db: sqlite3.Connection) -> dict[str, dict[str, dict[str, Any]]]:
    """Per run id, each file's recorded size and digest; runs written before digests were
    recorded (and an index older than the table) have none."""
    try:
        rows = db.execute("SELECT run_id, file, size, blake2b FROM digests").fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run_id, name, size, value in rows:
        out.setdefault(run_id, {})[name] = {"size": size, "blake2b": value}
    return out
