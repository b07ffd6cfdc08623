"""What a report keeps for the next one: the written PNGs of one half of a store's report
(the store's figures, or the best run's figures and findings), so that a report of an
unchanged store neither computes figure data nor imports what computing it needs
(torch for the best run's network, Optuna and scikit-learn for the importance).

An entry lives in the store's cache (:mod:`mlplab.store.cache`), keyed by the digest of
everything the half's output depends on: for the best run, its folder (immutable once
finished: its ``run.json`` names every file's digest, and :func:`mlplab.store.check.check_store`,
run before, verified the files against them) and a CSV data file's size and time; for the
store, every run's row, the attempts and the sweeps in the index (a run's epoch curves are
written with its row); for both, :func:`code_version` (every source file of mlplab and the
versions of the libraries that compute or draw). The entry holds
the half's result as JSON and, per PNG, the figure key its key file holds
(:mod:`mlplab.report.figfiles`): it is used only while every PNG is still the one its key
describes; a missing, changed or redrawn PNG makes the half compute and draw again.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> recall(root, "report_run", {"run": "a"}) is None
True
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from .figfiles import FigureFile, is_current, key_path

T = TypeVar("T")
VERSION = 1            # of what an entry holds: a change here invalidates every entry
LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "torch", "safetensors", "matplotlib",
             "optuna", "scikit-learn")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of mlplab's source (every ``.py`` file of the package) and of the versions
    of the libraries its figure data and drawing use: a change to any of them computes
    every kept half again."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode())
        h.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            h.update(f"{name} {version(name)}".encode())
        except PackageNotFoundError:
            h.update(f"{name} -".encode())
    return h.hexdigest()


def _inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    # code_version covers the drawing code and matplotlib's version too (figures.digest's
    # drawing_version, which keys each PNG, is a part of it)
    return {"version": VERSION, "code": code_version(), **inputs}


def recall(root: Path, kind: str, inputs: dict[str, Any],
           decode: Callable[[Any], T] = lambda value: value) -> T | None:
    """``decode`` of the value kept for ``inputs`` when every PNG it names is still
    current; None when there is none, or a PNG changed, or ``decode`` finds the value
    malformed (KeyError, TypeError, ValueError): a damaged entry costs time, never an error."""
    from mlplab.store.cache import digest_of, read_entry

    entry = read_entry(root, kind, digest_of(_inputs(inputs)))
    if not (isinstance(entry, dict) and isinstance(entry.get("pngs"), list) and "value" in entry):
        return None
    for item in entry["pngs"]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)
                and is_current(root / item[0], item[1])):
            return None
    try:
        return decode(entry["value"])
    except (KeyError, TypeError, ValueError):
        return None


def keep(root: Path, kind: str, inputs: dict[str, Any], value: Any,
         files: Sequence[FigureFile]) -> None:
    """Keep ``value`` (JSON) for ``inputs``, with the figure key of each of ``files`` as its
    key file holds it now (a file without one is not kept: it is drawn again next time)."""
    from mlplab.store.cache import digest_of, write_entry

    pngs = []
    for f in files:
        try:
            key = json.loads(key_path(f.path).read_text(encoding="utf-8"))["figure"]
            pngs.append([str(Path(f.path).resolve().relative_to(root.resolve())), str(key)])
        except (OSError, ValueError, KeyError, TypeError):
            return
    write_entry(root, kind, digest_of(_inputs(inputs)), {"pngs": pngs, "value": value})


def kept_or_made(root: Path, kind: str, inputs: dict[str, Any] | None, make: Callable[[], T],
                 encode: Callable[[T], Any], decode: Callable[[Any], T],
                 files: Callable[[T], Sequence[FigureFile]] = lambda value: ()) -> T:
    """What the last report kept for ``inputs`` (:func:`recall` with ``decode``), else
    ``make()``, kept (:func:`keep`: ``encode`` of it, with its PNGs ``files``) for the
    next; ``inputs`` None: made and not kept. ``decode`` must not give None (a miss)."""
    found = None if inputs is None else recall(root, kind, inputs, decode)
    if found is not None:
        return found
    value = make()
    if inputs is not None:
        keep(root, kind, inputs, encode(value), files(value))
    return value


def run_inputs(root: Path, run_id: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """What a finished run's figures and findings depend on besides the code; None when
    its ``run.json`` cannot be read or records no digest of its config and metrics (then
    nothing is kept: only files whose digests it holds are known not to have changed)."""
    from mlplab.store.rows import parse_record

    folder = root / "runs" / run_id
    try:
        text = (folder / "run.json").read_bytes()
        files = parse_record(text)["files"]
    except (OSError, ValueError):
        return None
    if not {"config.json", "metrics.parquet"} <= set(files):   # a file no digest vouches for
        return None
    record = hashlib.sha256(text).hexdigest()
    inputs: dict[str, Any] = {"run_id": run_id, "record": record}
    name = str((config.get("data") or {}).get("name", ""))
    if name.startswith("csv:"):          # the data the boundary figure draws, read again
        try:
            st = Path(name[len("csv:"):]).stat()
            inputs["csv"] = [st.st_size, st.st_mtime_ns]
        except OSError:
            inputs["csv"] = None
    return inputs


def store_inputs(store: Any, runs: Sequence[Any]) -> dict[str, Any]:
    """What the store's figures depend on besides the code: every run's row (its values,
    status and times; its epoch curves are written with it), the attempts and the sweeps,
    as the digest of their ``repr`` (the records are dataclasses of plain values, whose
    ``repr`` is exact for floats; a tenth of the time canonical JSON takes on 1000 runs)."""
    index = repr((list(runs), sorted(store.all_attempts().items()), store.sweeps()))
    return {"index": hashlib.sha256(index.encode()).hexdigest()}


__all__ = ["code_version", "recall", "keep", "kept_or_made", "run_inputs", "store_inputs"]
