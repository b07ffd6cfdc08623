"""The run store: a directory with a SQLite index, safetensors weights and Parquet series.

    DIR/mlplab.sqlite                         index (sweeps, runs, attempts, configs, epoch curves)
    DIR/runs/<run-id>/config.json             resolved config + run info
    DIR/runs/<run-id>/metrics.parquet         the series (mlplab.metrics)
    DIR/runs/<run-id>/attempt-<n>.safetensors weights (init/, best/, last/), boundary/ snapshots
    DIR/runs/<run-id>/run.json                its index rows and each file's digest (rows.py)
    DIR/sweeps/<sweep-id>.json                a sweep's row, its spec included

A run is written into a temporary folder and renamed into place, then indexed in one
transaction, so a crash never leaves a half-written run marked ``done``. Records read
from the store are frozen and never change under later writes. The run folders and sweep
files hold everything the index does: ``mlplab check --repair`` rebuilds a lost or
damaged index from them (:mod:`mlplab.store.rebuild`). Runs written before an attempt's tensors were one file keep
them in ``attempt-<n>/{init,best,last,boundary}.safetensors``, read as well
(:func:`mlplab.store.runfiles.read_tensors`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as root:
...     Store(root).runs()
[]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from mlplab import strictjson

from .curves import SCHEMA as CURVES_SCHEMA
from .curves import Curves, insert_curves, read_curves
from .info import AttemptInfo, RunInfo
from .owners import UNFINISHED, folder_mode, owner_gone, this_process
from .rows import SCHEMA as _SCHEMA
from .rows import config_hash as config_hash
from .rows import insert_record, run_record, with_record
from .runfiles import RunFiles, encode_with_curves, read_tensors, write_files
from .sweepfiles import write_sweep_file

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

    from mlplab.record import RunRecord

INDEX = "mlplab.sqlite"
REPAIR_HINT = "mlplab check --repair rebuilds it from the run folders"
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("pending", "running", "done", "failed", "interrupted", "damaged")



def _loads_each(texts: Sequence[str | None]) -> list[dict[str, Any]]:
    """Each JSON object of ``texts`` (None or empty: ``{}``), parsed in one call: the
    parser then makes each distinct key once for all of them rather than once a row
    (10,000 runs' configs: about 35 MB less, in less time)."""
    return json.loads("[" + ",".join(t or "{}" for t in texts) + "]")


class StoreError(ValueError):
    """A store or run that does not exist or cannot be read."""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:48] or "run"


def _attempt_info(r: sqlite3.Row) -> AttemptInfo:
    d = {k: (math.nan if v is None and k not in ("end_reason",) else v) for k, v in dict(r).items()}
    d["target_met"] = bool(d["target_met"])
    return AttemptInfo(**d)


def create_index(root: Path) -> None:
    """A new index at ``root`` with empty tables (what a first write or a rebuild fills),
    whole or not at all: built under a temporary name and linked into place, so a reader
    never finds an index without its tables (which it would report as damaged), and an
    index another process made meanwhile is left as it is."""
    index = root / INDEX
    tmp = root / f".{INDEX}.new-{os.getpid()}"
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(_SCHEMA + CURVES_SCHEMA)
        try:
            os.link(tmp, index)
        except FileExistsError:
            pass                                    # made meanwhile: that one stands
    finally:
        tmp.unlink(missing_ok=True)


class Store:
    """A run store rooted at a directory (created on first write)."""

    def __init__(self, root: str | Path, readonly: bool = False):
        self.root = Path(root)
        self.readonly = readonly
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"'{self.root}' is a file; a store is a directory")
        index = self.root / INDEX
        lost = not (index.is_file() and index.stat().st_size) and any(
            not p.name.startswith(".") for p in (self.root / "runs").glob("*"))
        if lost:          # never a new index over run folders: it would hide them (or retrain)
            raise StoreError(f"'{self.root}' has run folders but "
                             f"{'an empty' if index.is_file() else 'no'} index {INDEX}; {REPAIR_HINT}")
        if readonly:
            if not index.is_file():
                raise StoreError(f"no mlplab store at '{self.root}' (no {INDEX})")
        else:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
            if not index.is_file():
                create_index(self.root)
        try:
            with self._connect() as db:
                if readonly:
                    if not db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'"
                                      ).fetchone()[0]:
                        raise StoreError(f"the index '{self.root / INDEX}' has no runs table"
                                         f" (emptied or truncated); {REPAIR_HINT}")
                else:
                    db.executescript(_SCHEMA + CURVES_SCHEMA)
        except sqlite3.DatabaseError as e:
            if "not a database" not in str(e):
                raise
            raise StoreError(f"'{self.root / INDEX}' is not an mlplab store index ({e});"
                             f" {REPAIR_HINT}") from None

    # -- connections -------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            uri = (self.root / INDEX).resolve().as_uri() + "?mode=ro"   # percent-encoded path
            db = sqlite3.connect(uri, uri=True, timeout=30)
        else:
            db = sqlite3.connect(self.root / INDEX, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            if not self.readonly:
                # a rollback journal, not WAL: a WAL database makes even read-only readers
                # (the dashboard) create -wal/-shm files in the store; writes are one short
                # transaction per finished unit, so readers wait at most that long
                db.execute("PRAGMA journal_mode=DELETE")
            with db:
                yield db
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError:     # locked, no such table, ...: as they are
                raise
            if "not a database" in str(e):
                raise StoreError(f"'{self.root / INDEX}' is not an mlplab store index ({e});"
                                 f" {REPAIR_HINT}") from None
            raise StoreError(f"the index '{self.root / INDEX}' is damaged ({e}); {REPAIR_HINT}"
                             f" (under '{self.root / 'runs'}'; the damaged file is kept aside)"
                             ) from None
        finally:
            db.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction on the index (the store's own modules: check, rebuild)."""
        return self._connect()

    # -- paths ---------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The run's folder; rejects ids that could leave the store."""
        if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id) or ".." in run_id:
            raise StoreError(f"invalid run id {run_id!r}: letters, digits, '_', '-', '.' only")
        return self.root / "runs" / run_id

    def new_run_id(self, name: str, config: dict[str, Any]) -> str:
        """A fresh id ``<name>-<hash>``; ``-2``, ``-3`` appended if taken."""
        base = f"{slug(name)}-{config_hash(config)[:8]}"
        taken = {r["run_id"] for r in self._query("SELECT run_id FROM runs WHERE run_id LIKE ?",
                                                  (base + "%",))}
        if base not in taken and not self.run_dir(base).exists():
            return base
        i = 2
        while f"{base}-{i}" in taken or self.run_dir(f"{base}-{i}").exists():
            i += 1
        return f"{base}-{i}"

    # -- writing ---------------------------------------------------------------------
    def mark(self, run_id: str, name: str, config: dict[str, Any], status: str,
             sweep_id: str | None = None, error: str | None = None, source: str = "engine") -> None:
        """Record a run as pending / running / failed without results."""
        self.mark_many([(run_id, name, config)], status, sweep_id, error, source)

    def mark_many(self, runs: "list[tuple[str, str, dict[str, Any]]]", status: str,
                  sweep_id: str | None = None, error: str | None = None, source: str = "engine") -> None:
        """:meth:`mark` for many ``(run_id, name, config)`` in one transaction. An unfinished
        run records the process that owns it (pid and host), so that a reader can tell a run
        whose process died from one still training (:func:`owner_gone`)."""
        assert status in STATUSES
        owner = json.dumps(this_process()) if status in UNFINISHED else None
        with self._connect() as db:
            for run_id, name, config in runs:
                h = config_hash(config)
                db.execute("INSERT OR IGNORE INTO configs VALUES (?, ?)", (h, json.dumps(config)))
                db.execute(
                    "INSERT INTO runs (run_id, sweep_id, name, config_hash, status, source, seed, created,"
                    " error, summary_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO"
                    " UPDATE SET status=excluded.status, error=excluded.error,"
                    " sweep_id=excluded.sweep_id, summary_json=excluded.summary_json",
                    (run_id, sweep_id, name, h, status, source, config["train"]["seed"], time.time(),
                     error, owner))

    def write_run(self, rec: "RunRecord", sweep_id: str | None = None,
                  summary: dict[str, Any] | None = None, files: "RunFiles | None" = None) -> Path:
        """Persist a finished run atomically and index it as ``done``. ``files``: its
        folder already encoded (:func:`mlplab.store.runfiles.encode_run`), else encoded here."""
        return self.write_runs([rec], sweep_id, {rec.run_id: summary or {}},
                               None if files is None else {rec.run_id: files})[0]

    def write_runs(self, records: "list[RunRecord]", sweep_id: str | None = None,
                   summaries: dict[str, dict[str, Any]] | None = None,
                   files: "dict[str, RunFiles] | None" = None,
                   curves: "dict[str, Curves] | None" = None) -> list[Path]:
        """Persist several finished runs as one unit: every run's files first, then one
        transaction indexes them all as ``done``, with their epoch curves
        (:mod:`mlplab.store.curves`; a crash in between leaves none done). ``files``:
        encoded folders by run id (a sweep's workers encode them), and ``curves`` their
        epoch curves; a run given neither is encoded here."""
        files, curves = dict(files or {}), dict(curves or {})
        for rec in records:
            if rec.run_id not in files:
                files[rec.run_id], curves[rec.run_id] = encode_with_curves(rec)
        now = time.time()       # each run's record (its index rows) goes into its folder too
        kept = {rec.run_id: run_record(rec, sweep_id, (summaries or {}).get(rec.run_id, {}),
                                       files[rec.run_id], now) for rec in records}
        paths = [self._write_files(rec, with_record(files[rec.run_id], kept[rec.run_id]))
                 for rec in records]
        self._index_runs(records, kept, curves)
        return paths

    def _index_runs(self, records: "list[RunRecord]", kept: dict[str, dict[str, Any]],
                    curves: "dict[str, Curves]") -> None:
        with self._connect() as db:
            for rec in records:
                self._insert_run(db, kept[rec.run_id], rec.config)
                insert_curves(db, rec.run_id, curves.get(rec.run_id, {}))

    def _write_files(self, rec: "RunRecord", files: "RunFiles") -> Path:
        """Write a run's folder into a temp folder and rename it into place."""
        final = self.run_dir(rec.run_id)
        tmp = Path(tempfile.mkdtemp(prefix=f".{rec.run_id}.", dir=self.root / "runs"))
        try:
            tmp.chmod(folder_mode())     # mkdtemp makes it 0700; the store's folders follow umask
            write_files(files, tmp)
            if final.exists():          # a re-run replaces its leftovers (or an older result)
                with self._connect() as db:   # the old files go: it no longer reads as done
                    db.execute("UPDATE runs SET status = 'running' WHERE run_id = ? AND status = 'done'",
                               (rec.run_id,))
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @staticmethod
    def _insert_run(db: sqlite3.Connection, record: dict[str, Any], config: dict[str, Any]) -> None:
        """Index a finished run from its record (:func:`mlplab.store.rows.run_record`)."""
        insert_record(db, record, config)

    # -- sweeps ------------------------------------------------------------------------
    def put_sweep(self, sweep_id: str, name: str, strategy: str, config: dict[str, Any],
                  status: str = "running", summary: dict[str, Any] | None = None) -> None:
        """Insert or update a sweep's row, and write it, spec included, to
        ``sweeps/<sweep-id>.json`` (what a rebuilt index recovers it from). A row rebuilt
        without its spec gets it back here: the sweep id is a hash of the spec, so the file
        that resumes the sweep is the one that started it."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO sweeps VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(sweep_id) DO UPDATE SET"
                " status=excluded.status, finished=excluded.finished, summary_json=excluded.summary_json,"
                " name=coalesce(sweeps.name, excluded.name),"
                " strategy=coalesce(sweeps.strategy, excluded.strategy),"
                " config_json=coalesce(sweeps.config_json, excluded.config_json)",
                (sweep_id, name, strategy, json.dumps(config), status, time.time(),
                 time.time() if status == "done" else None,
                 strictjson.dumps(summary or {})))
            row = dict(db.execute("SELECT * FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone())
        write_sweep_file(self.root, row)

    def sweeps(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM sweeps ORDER BY created")
        return [{**dict(r), "config": json.loads(r["config_json"] or "{}"),
                 "summary": json.loads(r["summary_json"] or "{}")} for r in rows]

    # -- reading -------------------------------------------------------------------------
    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        if not (self.root / INDEX).is_file():
            return []
        with self._connect() as db:
            return db.execute(sql, args).fetchall()

    def runs(self, sweep_id: str | None = None, status: str | None = None) -> list[RunInfo]:
        """All runs (optionally of one sweep / status), oldest first."""
        sql = ("SELECT runs.*, configs.config_json FROM runs LEFT JOIN configs"
               " USING (config_hash) WHERE 1=1")
        args: list[Any] = []
        if sweep_id is not None:
            sql += " AND sweep_id = ?"
            args.append(sweep_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return self._run_infos(self._query(sql + " ORDER BY created, run_id", tuple(args)))

    @staticmethod
    def _run_infos(rows: Sequence[sqlite3.Row]) -> list[RunInfo]:
        """The runs of index rows, their configs and summaries parsed in one call each."""
        configs = _loads_each([r["config_json"] for r in rows])
        summaries = _loads_each([r["summary_json"] for r in rows])
        return [Store._run_info(r, c, s) for r, c, s in zip(rows, configs, summaries)]

    @staticmethod
    def _run_info(r: sqlite3.Row, config: dict[str, Any], summary: dict[str, Any]) -> RunInfo:
        d = dict(r)
        del d["config_json"], d["summary_json"]
        if d["status"] in UNFINISHED and owner_gone(summary):
            d["status"] = "interrupted"          # killed (even by SIGKILL) before it finished
        d["target_met"] = None if d["target_met"] is None else bool(d["target_met"])
        if config:   # configs are shared by hash, which leaves the name out: use the run's
            config["name"] = d["name"]
        return RunInfo(**d, summary=summary, config=config)

    def run(self, run_id: str) -> RunInfo:
        self.run_dir(run_id)
        rows = self._query("SELECT runs.*, configs.config_json FROM runs LEFT JOIN configs"
                           " USING (config_hash) WHERE run_id = ?", (run_id,))
        if not rows:
            raise StoreError(f"no run '{run_id}' in store '{self.root}'")
        return self._run_infos(rows[:1])[0]

    def attempts(self, run_id: str) -> list[AttemptInfo]:
        rows = self._query("SELECT * FROM attempts WHERE run_id = ? ORDER BY attempt", (run_id,))
        return [_attempt_info(r) for r in rows]

    def all_attempts(self) -> dict[str, list[AttemptInfo]]:
        """Every run's attempts by run id, in one query (a store figure needs them all)."""
        out: dict[str, list[AttemptInfo]] = {}
        for r in self._query("SELECT * FROM attempts ORDER BY run_id, attempt"):
            out.setdefault(r["run_id"], []).append(_attempt_info(r))
        return out

    def curves(self, metric: str, attempt: int = 0) -> dict[str, "np.ndarray"]:
        """Per run id, the epoch curve of ``metric`` the run's writer kept in the index
        (:mod:`mlplab.store.curves`); runs indexed without one are absent."""
        if not (self.root / INDEX).is_file():
            return {}
        with self._connect() as db:
            return read_curves(db, metric, attempt)

    def run_doc(self, run_id: str) -> dict[str, Any]:
        """The run's ``config.json``: resolved config and info."""
        path = self.run_dir(run_id) / "config.json"
        if not path.is_file():
            raise StoreError(f"run '{run_id}' has no finished files in '{self.root}'")
        return json.loads(path.read_text())

    def metrics(self, run_id: str) -> "pd.DataFrame":
        from mlplab.metrics import read_metrics

        return read_metrics(self.run_dir(run_id) / "metrics.parquet")

    def weights(self, run_id: str, attempt: int | None = None,
                which: str = "best") -> dict[str, "torch.Tensor"]:
        """A state dict from safetensors (never pickle); default: the kept attempt."""
        return self._tensors(run_id, attempt, which, "pt")

    def arrays(self, run_id: str, attempt: int | None = None,
               which: str = "best") -> dict[str, "np.ndarray"]:
        """:meth:`weights` as numpy arrays, read without torch (a figure of the weights);
        a dtype numpy lacks (bfloat16) is read through torch, as float32."""
        try:
            return self._tensors(run_id, attempt, which, "np")
        except (TypeError, ValueError):
            return {k: v.float().numpy() for k, v in self.weights(run_id, attempt, which).items()}

    def _tensors(self, run_id: str, attempt: int | None, which: str, framework: str) -> dict[str, Any]:
        if which not in ("init", "best", "last"):
            raise StoreError(f"which={which!r}: allowed init, best, last")
        attempt = (self.run(run_id).best_attempt or 0) if attempt is None else attempt
        found = read_tensors(self.run_dir(run_id), attempt, which, framework)
        if found is None:
            raise StoreError(f"no {which} weights for run '{run_id}' attempt {attempt}")
        return found

    def boundary(self, run_id: str, attempt: int | None = None) -> dict[str, "torch.Tensor"] | None:
        """The attempt's decision-boundary snapshots (:mod:`mlplab.model.boundary`), with the
        class probabilities ``probs [S, G, G, C]`` computed from the stored snapshot
        parameters; None when the run has none."""
        from mlplab.model.boundary import with_probabilities
        from mlplab.model.mlp import Head

        if attempt is None:
            attempt = self.run(run_id).best_attempt or 0
        packed = read_tensors(self.run_dir(run_id), attempt, "boundary")
        if packed is None:
            return None
        if "probs" in packed:                 # written before the weights were stored
            return packed
        doc = self.run_doc(run_id)
        model = doc["config"]["model"]
        return with_probabilities(packed, model["activation"], model["negative_slope"],
                                  Head(**doc["info"]["head"]))

    def load_model(self, run_id: str, attempt: int | None = None, which: str = "best") -> "torch.nn.Module":
        """Rebuild the run's network as an ``nn.Module`` with its stored weights."""
        from mlplab.config import from_dict
        from mlplab.model.mlp import Head, build_mlp

        doc = self.run_doc(run_id)
        if doc.get("source") == "probe":
            raise StoreError(f"run '{run_id}' was recorded by a Probe on a user's model;"
                             " load its weights with Store.weights()")
        cfg = from_dict(doc["config"])
        info = doc["info"]
        net = build_mlp(cfg.model, Head(**info["head"]), info["input_dim"], seed=0)
        net.load_state_dict(self.weights(run_id, attempt, which))
        return net.eval()
