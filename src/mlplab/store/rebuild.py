"""A lost or damaged index rebuilt from the run folders (``mlplab check STORE --repair``).

Every finished run's folder holds its index rows (``run.json``: :mod:`mlplab.store.rows`)
and each sweep its row, spec included (``sweeps/<id>.json``: :mod:`mlplab.store.sweepfiles`).
When ``mlplab.sqlite`` is missing, not a database or fails SQLite's integrity check, the
damaged file is renamed aside (never deleted: a corrupt file loses nothing) and a new
index is built from the intact folders: each run with its status, numbers, sweep id,
place in its sweep, attempts and digests, its epoch curves read again from
``metrics.parquet`` (:func:`mlplab.store.curves.epoch_curves`), and each sweep.

A folder written before ``run.json`` existed is indexed from what it has (its
``config.json``: name, config, seed; its attempt folders), without its numbers, and the
result names it. A sweep with runs but no file keeps no spec: its row says so, and
``mlplab sweep FILE --resume`` with the unchanged file restores it (the sweep id is a hash
of the file, so only that file resumes it).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     index_damage(Path(d)) is None
True
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplab import strictjson

from .curves import insert_curves
from .rows import FORMAT, config_hash, insert_record, parse_record
from .runfiles import RECORD, read_config_doc
from .store import INDEX, RUN_ID_RE, Store, create_index
from .sweepfiles import read_sweep_files

TABLES = ("sweeps", "configs", "runs", "attempts")
NO_SPEC = ("rebuilt from its runs' folders without its spec (no sweeps/<id>.json);"
           " mlplab sweep FILE --resume with the unchanged sweep file restores it")
_SWEEP_RUN_ID = re.compile(r"^(.+-[0-9a-f]{8})-[0-9a-f]{10}$")     # sweep.plan.run_id_for


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild found and did."""

    why: str                                  # what was wrong with the index
    moved_to: Path | None                     # the damaged index, kept aside
    runs: list[str] = field(default_factory=list)        # indexed from their run.json
    old: list[str] = field(default_factory=list)         # from config.json only (no run.json)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (folder or file, why)
    sweeps: list[str] = field(default_factory=list)
    sweeps_without_spec: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"why": self.why, "moved_to": None if self.moved_to is None else str(self.moved_to),
                "runs": len(self.runs) + len(self.old), "old_folders": self.old,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "sweeps": self.sweeps, "sweeps_without_spec": self.sweeps_without_spec}

    def text(self) -> str:
        lines = [f"index {INDEX}: {self.why}"]
        if self.moved_to is not None:
            lines.append(f"  kept aside as {self.moved_to.name}")
        lines.append(f"  rebuilt from the run folders: {len(self.runs) + len(self.old)} runs,"
                     f" {len(self.sweeps)} sweeps")
        if self.old:
            lines.append(f"  {len(self.old)} written before run.json, indexed from config.json"
                         " without their numbers or attempts: " + ", ".join(self.old[:10])
                         + (" ..." if len(self.old) > 10 else ""))
        lines += [f"  not indexed: {p}: {r}" for p, r in self.skipped]
        if self.sweeps_without_spec:
            lines.append("  sweeps without their spec (mlplab sweep FILE --resume with the"
                         " unchanged file restores it): " + ", ".join(self.sweeps_without_spec))
        return "\n".join(lines)


def run_folders(root: Path) -> list[Path]:
    """The store's run folders (temporary ones a writer is filling left out)."""
    runs = root / "runs"
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def index_damage(root: Path) -> str | None:
    """Why the index of the store at ``root`` cannot be used, or None: missing while run
    folders exist, not a database, missing a table, or failing SQLite's integrity check."""
    path = root / INDEX
    if not path.exists():
        return "missing" if run_folders(root) else None
    try:
        db = sqlite3.connect(path, timeout=30)     # read-write: a hot journal rolls back first
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in TABLES if t not in tables]
            if missing:
                return f"has no {', '.join(missing)} table (emptied or truncated)"
            problems = [r[0] for r in db.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                return "fails SQLite's integrity check: " + "; ".join(problems)
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        if type(e) is not sqlite3.DatabaseError:        # locked, read-only, ...: not damage
            raise
        return f"{e}"
    return None


def move_aside(root: Path) -> Path:
    """Rename the index (and its journal) to ``mlplab.sqlite.damaged-<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target, n = root / f"{INDEX}.damaged-{stamp}", 2
    while target.exists():
        target, n = root / f"{INDEX}.damaged-{stamp}-{n}", n + 1
    journal = root / f"{INDEX}-journal"
    if journal.exists():
        os.replace(journal, target.with_name(target.name + "-journal"))
    os.replace(root / INDEX, target)
    return target


def _curves(folder: Path) -> dict:
    """The run's epoch curves, read again from its ``metrics.parquet`` (none if it does not read)."""
    import pyarrow.parquet as pq

    from .curves import epoch_curves

    try:
        return epoch_curves(pq.read_table(folder / "metrics.parquet"))
    except Exception:  # noqa: BLE001 - a damaged file: check names it, the run keeps no curves
        return {}


def _old_record(folder: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """A record for a folder written before ``run.json``: what its files say."""
    config = doc["config"]
    attempts = sorted({int(n) for p in folder.glob("attempt-*")      # files, or older folders
                       if (n := p.name[len("attempt-"):].removesuffix(".safetensors")).isdigit()})
    from_id = _SWEEP_RUN_ID.match(folder.name)
    written = (folder / "config.json").stat().st_mtime
    run: dict[str, Any] = dict.fromkeys(
        ("wall_time", "best_attempt", "restarts", "end_reason", "target_met", "epochs",
         "best_value", "val_loss", "val_acc", "test_loss", "test_acc", "train_loss", "error"))
    run.update(run_id=folder.name, sweep_id=from_id.group(1) if from_id else None,
               name=doc.get("name") or config.get("name") or folder.name,
               config_hash=config_hash(config), status="done",
               source=doc.get("source") or "engine",
               seed=(config.get("train") or {}).get("seed"), created=written, finished=written,
               n_attempts=len(attempts) or None, summary={},
               error=f"indexed from its files when the index was rebuilt (no {RECORD}: written"
                     " before mlplab kept one): its numbers and attempts are unknown")
    return {"format": FORMAT, "run": run, "attempts": [], "files": {}}


def _read_folder(folder: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """``(record, config, why)`` of a run folder: its record (None: not indexable), its
    config (None: unreadable), and why it is only partly read (None: fully)."""
    config, why = None, None
    try:
        doc = read_config_doc(folder)
        config = doc["config"]
    except (OSError, ValueError) as e:
        doc, why = None, f"config.json: {type(e).__name__}: {e}"
    try:
        record = parse_record((folder / RECORD).read_text())
        if record["run"]["run_id"] != folder.name:
            raise ValueError(f"it names run {record['run']['run_id']!r}")
        return record, config, why
    except FileNotFoundError:
        if doc is None:
            return None, None, why
        return _old_record(folder, doc), config, "old"
    except (OSError, ValueError) as e:
        if doc is None:
            return None, None, f"{RECORD}: {type(e).__name__}: {e}; {why}"
        return _old_record(folder, doc), config, f"{RECORD}: {type(e).__name__}: {e}"


def index_folders(store: Store, skip: set[str] = frozenset()) -> RebuildResult:
    """Index every run folder of ``store`` not in ``skip`` (run ids the index has), in one
    transaction; the result lists them (``why`` and ``moved_to`` empty)."""
    entries, runs, old, skipped = [], [], [], []
    for folder in run_folders(store.root):
        if folder.name in skip:
            continue
        if not RUN_ID_RE.match(folder.name):
            skipped.append((f"runs/{folder.name}", "not a run id"))
            continue
        record, config, why = _read_folder(folder)
        if record is None:
            skipped.append((f"runs/{folder.name}", why or "unreadable"))
            continue
        if why is not None and why != "old":      # a file unreadable: indexed as damaged
            record["run"].update(status="damaged", error=why)
        (old if why == "old" else runs).append(folder.name)
        entries.append((record, config, _curves(folder)))
    with store.transaction() as db:
        for record, config, curves in entries:
            insert_record(db, record, config)
            insert_curves(db, record["run"]["run_id"], curves)
    return RebuildResult("", None, runs, old, skipped)


def recover_sweeps(store: Store) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Put back each sweep the index lacks: from its file in ``sweeps/``, else a row
    without its spec for the sweep id of an indexed run. Returns (sweep ids put back,
    those without their spec, ``(file, reason)`` of each unreadable sweep file)."""
    known = {s["sweep_id"] for s in store.sweeps()}
    rows, bad = read_sweep_files(store.root)
    rows = [r for r in rows if r["sweep_id"] not in known]
    have = known | {r["sweep_id"] for r in rows}
    created: dict[str, float] = {}
    for r in store.runs():
        if r.sweep_id is not None and r.sweep_id not in have:
            created[r.sweep_id] = min(created.get(r.sweep_id, r.created), r.created)
    lost = [{"sweep_id": s, "name": None, "strategy": None, "config": None,
             "status": "interrupted", "created": c, "finished": None,
             "summary": {"rebuilt": NO_SPEC}} for s, c in sorted(created.items())]
    with store.transaction() as db:
        db.executemany("INSERT OR REPLACE INTO sweeps VALUES (?,?,?,?,?,?,?,?)",
                       [(r["sweep_id"], r.get("name"), r.get("strategy"),
                         None if r.get("config") is None else json.dumps(r["config"]),
                         r.get("status"), r.get("created"), r.get("finished"),
                         strictjson.dumps(r.get("summary") or {})) for r in rows + lost])
    return sorted(r["sweep_id"] for r in rows + lost), sorted(created), bad


def rebuild_index(root: str | Path, why: str) -> RebuildResult:
    """Move the damaged index at ``root`` aside (if there is one) and build a new one from
    the run folders and sweep files (``why``: what was wrong, from :func:`index_damage`)."""
    root = Path(root)
    moved = move_aside(root) if (root / INDEX).exists() else None
    create_index(root)
    store = Store(root)
    found = index_folders(store)
    sweeps, no_spec, bad = recover_sweeps(store)
    return RebuildResult(why, moved, found.runs, found.old, found.skipped + bad, sweeps, no_spec)
