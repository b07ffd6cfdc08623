"""Each sweep's row as a file in the store, ``sweeps/<sweep-id>.json`` (strict JSON, its
spec included), rewritten whenever the row is (:meth:`mlplab.store.store.Store.put_sweep`):
what a rebuilt index recovers the sweep from (:mod:`mlplab.store.rebuild`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = write_sweep_file(Path(d), {"sweep_id": "s-1", "name": "s",
...                                       "config_json": '{"a": 1}', "summary_json": None})
...     [(r["sweep_id"], r["config"]) for r in read_sweep_files(Path(d))[0]]
[('s-1', {'a': 1})]
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlplab import strictjson
from .atomic import write_atomic

SWEEPS = "sweeps"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def write_sweep_file(root: Path, row: dict[str, Any]) -> Path:
    """The sweeps-table ``row`` as ``root/sweeps/<sweep-id>.json``, replaced atomically."""
    if not _ID.match(row["sweep_id"]) or ".." in row["sweep_id"]:
        raise ValueError(f"sweep id {row['sweep_id']!r} cannot name a file")
    folder = root / SWEEPS
    folder.mkdir(exist_ok=True)
    doc = {**{k: v for k, v in row.items() if not k.endswith("_json")},
           "config": json.loads(row.get("config_json") or "null"),
           "summary": json.loads(row.get("summary_json") or "{}")}
    return write_atomic(folder / f"{row['sweep_id']}.json", strictjson.dumps(doc, indent=1))


def read_sweep_files(root: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The sweep rows kept in ``root/sweeps/``, and ``(file, reason)`` for each that does
    not read as one."""
    rows, bad = [], []
    for path in sorted((root / SWEEPS).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("sweep_id") != path.stem:
                raise ValueError("not this sweep's row")
            rows.append(doc)
        except (OSError, ValueError) as e:
            bad.append((f"{SWEEPS}/{path.name}", " ".join(f"{type(e).__name__}: {e}".split())))
    return rows, bad
