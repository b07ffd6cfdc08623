"""``mlplab check STORE``: the index and every finished run's files verified — its folder,
``config.json`` (parses, holds a config), ``metrics.parquet`` (its footer reads), each
attempt's safetensors (its header reads; never a pickle), and each file against the size
and digest recorded when it was written (:mod:`mlplab.store.rows`), which finds damage
that keeps a file's size and still parses ("content changed since written"). ``repair``
marks each damaged run ``damaged``, with the file and the reason, so ``runs``, the report
and a resumed sweep treat it as unfinished instead of failing on it; everything intact
stays as it is. ``rebuild`` (``mlplab check --repair``) also rebuilds a missing or damaged
index from the run folders, and indexes run folders the index lacks
(:mod:`mlplab.store.rebuild`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as out:
...     Store(out).runs()
...     check_store(out).damaged
[]
[]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Sequence

from .rebuild import RebuildResult, index_damage, index_folders, rebuild_index, recover_sweeps
from .rows import parse_record, read_digests
from .runfiles import (RECORD, digest, legacy_tensors_file, legacy_tensors_folder, read_config_doc,
                       tensors_file)
from .store import INDEX, RunInfo, Store, StoreError


@dataclass(frozen=True)
class Damage:
    """One damaged file of a run."""

    run_id: str
    file: str                 # relative to the run's folder
    reason: str

    def text(self) -> str:
        return f"{self.run_id}: {self.file}: {self.reason}"


@dataclass(frozen=True)
class CheckResult:
    root: Path
    checked: int
    damaged: list[Damage] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)       # run ids marked damaged
    rebuilt: RebuildResult | None = None      # the index rebuilt, or folders it lacked indexed

    def to_dict(self) -> dict:
        return {"store": str(self.root), "checked": self.checked,
                "damaged": [{"run_id": d.run_id, "file": d.file, "reason": d.reason}
                            for d in self.damaged], "repaired": self.repaired,
                "index": None if self.rebuilt is None else self.rebuilt.to_dict()}

    def text(self) -> str:
        n = len({d.run_id for d in self.damaged})
        lines = [self.rebuilt.text()] if self.rebuilt is not None else []
        lines += [f"{self.checked} finished runs checked in {self.root}: "
                 + (f"{n} damaged" if n else "all intact")]
        lines += [f"  {d.text()}" for d in self.damaged]
        if self.repaired:
            lines.append(f"marked damaged: {', '.join(self.repaired)}")
        elif self.damaged:
            lines.append("mlplab check --repair marks them damaged (a resumed sweep trains"
                         " them again)")
        return "\n".join(lines)


def _reason(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def check_run(folder: Path, run: RunInfo,
              recorded: dict[str, dict[str, Any]] | None = None) -> list[Damage]:
    """The damaged files of one finished run (empty: intact). ``recorded``: each file's
    size and digest as the index holds them; None: as its folder's ``run.json`` does.

    Every file is read whole and compared with its recorded digest first; a file whose
    size and digest are those written is intact, so only the others (and files with no
    recorded digest) are parsed, for the reason to give (a parse error names it better
    than "content changed")."""
    if not folder.is_dir():
        return [Damage(run.run_id, ".", "the run's folder is missing")]
    changed, intact = _changed(folder, run, recorded)
    found = _unreadable(folder, run, intact)
    named = {d.file for d in found}
    return found + [d for d in changed if d.file not in named]


def _unreadable(folder: Path, run: RunInfo, intact: set[str]) -> list[Damage]:
    """The files that do not parse (or are missing: the kept attempt's ``best``), among
    those not in ``intact``: ``config.json`` (holds a config), ``metrics.parquet`` (its
    footer reads), each attempt's safetensors (its header reads; never a pickle)."""
    found = []
    if "config.json" not in intact:
        try:
            read_config_doc(folder)
        except (OSError, ValueError) as e:
            found.append(Damage(run.run_id, "config.json", _reason(e)))
    if "metrics.parquet" not in intact:
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(folder / "metrics.parquet")
        except Exception as e:  # noqa: BLE001 - pyarrow raises its own kinds for a bad file
            found.append(Damage(run.run_id, "metrics.parquet", _reason(e)))
    kept = run.best_attempt or 0
    for attempt in range(max(run.n_attempts or 0, kept + 1)):
        if tensors_file(attempt) in intact:
            continue
        if (folder / legacy_tensors_folder(attempt)).is_dir():   # written before one file an attempt
            names = [(legacy_tensors_file(attempt, which), which) for which in ("init", "best", "last")]
        else:
            names = [(tensors_file(attempt), None)]
        for name, which in names:
            if name in intact:
                continue
            reason = _tensors_damage(folder / name, which, attempt == kept)
            if reason is not None:
                found.append(Damage(run.run_id, name, reason))
    return found


def _tensors_damage(path: Path, which: str | None, kept: bool) -> str | None:
    """What is wrong with a safetensors file of an attempt (its header is read; never a
    pickle), None when nothing: missing where it holds the kept network's weights, a header
    that does not read, or (``which`` None: an attempt's one file) no ``best/`` tensors in
    the kept attempt's."""
    if not path.exists():
        return "missing" if kept and which in (None, "best") else None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            keys = list(f.keys())
    except Exception as e:  # noqa: BLE001 - safetensors' SafetensorError and others
        return _reason(e)
    if which is None and kept and not any(k.startswith("best/") for k in keys):
        return "holds no best weights (best/...) of the kept attempt"
    return None


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _changed(folder: Path, run: RunInfo, recorded: dict[str, dict[str, Any]] | None
             ) -> tuple[list[Damage], set[str]]:
    """The files whose size or digest differs from those recorded when they were written,
    and a missing or unreadable ``run.json``; and the names of the files that match."""
    found, intact = [], set()
    base = os.fspath(folder)          # plain paths: pathlib's joins were a third of the check
    try:
        own = parse_record(_read(os.path.join(base, RECORD)))["files"]
    except FileNotFoundError:
        own = {}
        if recorded:         # written with one: without it the index cannot be rebuilt
            found.append(Damage(run.run_id, RECORD, "missing"))
    except (OSError, ValueError) as e:
        own = {}
        found.append(Damage(run.run_id, RECORD, _reason(e)))
    for name, want in sorted((own if recorded is None else recorded).items()):
        try:
            content = _read(os.path.join(base, name))
        except FileNotFoundError:
            found.append(Damage(run.run_id, name, "missing"))
            continue
        except OSError as e:
            found.append(Damage(run.run_id, name, _reason(e)))
            continue
        if len(content) != want.get("size") or digest(content) != want.get("blake2b"):
            found.append(Damage(run.run_id, name, "content changed since written"
                                + ("" if len(content) == want.get("size") else
                                   f" ({len(content)} bytes, {want.get('size')} written)")))
        else:
            intact.add(name)
    return found, intact


def _read_at(path: str, start: int, n: int) -> tuple[bytes, int]:
    """``n`` bytes of ``path`` from ``start`` (negative: from its end), and its size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        at = size + start if start < 0 else start
        return (os.pread(fd, n, at) if 0 <= at else b""), size
    finally:
        os.close(fd)


def quick_damage(folder: Path, run: RunInfo) -> Damage | None:
    """The first damage a glance finds in a finished run's files, reading a few bytes of
    each (what ``mlplab runs`` can afford on every run): the folder, ``config.json``, the
    Parquet footer's magic, whether the kept network's safetensors header fits its file.
    Damage only reading a file whole shows is left to :func:`check_run`."""
    root = str(folder)
    kept = run.best_attempt or 0
    name = "."
    try:
        name = "config.json"
        if os.stat(os.path.join(root, name)).st_size == 0:
            return Damage(run.run_id, name, "empty")
        name = "metrics.parquet"
        tail, size = _read_at(os.path.join(root, name), -4, 4)
        if size < 12 or tail != b"PAR1":
            return Damage(run.run_id, name, "truncated (no Parquet footer)")
        name = tensors_file(kept)
        try:
            head, size = _read_at(os.path.join(root, name), 0, 8)
        except FileNotFoundError:             # or a run written before one file an attempt
            if not os.path.isdir(os.path.join(root, legacy_tensors_folder(kept))):
                raise
            name = legacy_tensors_file(kept, "best")
            head, size = _read_at(os.path.join(root, name), 0, 8)
        if len(head) < 8 or 8 + int.from_bytes(head, "little") > size:
            return Damage(run.run_id, name, "truncated or not safetensors (its header does"
                          " not fit)")
    except FileNotFoundError:
        if not os.path.isdir(root):
            return Damage(run.run_id, ".", "the run's folder is missing")
        return Damage(run.run_id, name, "missing")
    except OSError as e:
        return Damage(run.run_id, name, _reason(e))
    return None


def glance(store: Store, runs: list[RunInfo]) -> list[RunInfo]:
    """``runs`` with each finished run that :func:`quick_damage` finds damaged shown as
    ``damaged``, its error naming the file and the reason (the index is left as it is:
    ``mlplab check --repair`` marks it, and a resumed sweep then trains it again)."""
    out = []
    for r in runs:
        d = quick_damage(store.root / "runs" / r.run_id, r) if r.status == "done" else None
        out.append(r if d is None else replace(
            r, status="damaged",
            error=f"{d.file}: {d.reason}"))
    return out


def check_store(root: str | Path, repair: bool = False, rebuild: bool = False,
                written: Collection[str] = (), runs: Sequence[RunInfo] | None = None
                ) -> CheckResult:
    """Check the index and every finished run of the store at ``root``; ``repair`` marks
    the damaged ones ``damaged`` (their error names the file and the reason). ``rebuild``
    (with ``repair``: ``mlplab check --repair``) also rebuilds a missing or damaged index
    from the run folders, and indexes the run folders it lacks; without it a damaged index
    is a :class:`StoreError` that says so. ``written``: runs this process wrote itself
    moments ago (a sweep's driver, before its report), from the very bytes whose digests
    the index holds: not read back (at 10,000 runs that is seconds), and not counted as
    checked. ``runs``: the store's runs as the caller read them from the index just before
    (not read again: half a second at 10,000 runs); ignored when the index is rebuilt."""
    root = Path(root)
    rebuilt = None
    if rebuild or not repair:
        why = index_damage(root) if root.is_dir() else None
        if why is not None and not rebuild:
            raise StoreError(f"the index '{root / INDEX}' {'is ' * (why == 'missing')}{why};"
                             f" mlplab check {root} --repair "
                             + ("builds it" if why == "missing" else "keeps it aside and rebuilds it")
                             + " from the run folders")
        if why is not None:
            rebuilt = rebuild_index(root, why)
    store = Store(root, readonly=not repair)
    if rebuild and rebuilt is None:
        rebuilt = _index_unknown_folders(store)
    if runs is None or rebuilt is not None:
        runs = store.runs(status="done")
    done = [r for r in runs if r.status == "done" and r.run_id not in written]
    digests = {}
    if done:                                   # a sweep's own report may have none to read
        with store.transaction() as db:
            digests = read_digests(db)
    damaged = [d for r in done
               for d in check_run(store.root / "runs" / r.run_id, r, digests.get(r.run_id))]
    repaired = []
    if repair:
        by_run: dict[str, list[Damage]] = {}
        for d in damaged:
            by_run.setdefault(d.run_id, []).append(d)
        with store.transaction() as db:        # the rest of their rows kept as they are
            db.executemany("UPDATE runs SET status = 'damaged', error = ? WHERE run_id = ?",
                           [("; ".join(f"{d.file}: {d.reason}" for d in ds), run_id)
                            for run_id, ds in by_run.items()])
        repaired = [r.run_id for r in done if r.run_id in by_run]
    return CheckResult(store.root, len(done), damaged, repaired, rebuilt)


def _index_unknown_folders(store: Store) -> RebuildResult | None:
    """Index the run folders an intact index has no row for (written, then the index
    replaced or its rows lost), and the sweeps it lacks; None when there are none."""
    found = index_folders(store, skip={r.run_id for r in store.runs()})
    sweeps, no_spec, bad = recover_sweeps(store)
    if not (found.runs or found.old or found.skipped or sweeps or bad):
        return None
    return replace(found, why="intact; run folders or sweeps it lacked indexed",
                   sweeps=sweeps, sweeps_without_spec=no_spec, skipped=found.skipped + bad)
