"""Results computed from a store's runs, kept in the store so that the next reader (the
dashboard, a notebook, the next report) gets them for free.

An entry is a strict-JSON file ``<store>/cache/<kind>-<digest>.json`` holding the digest
of exactly what its value was computed from (:func:`digest_of`: the runs' ids and values,
the method's settings, a version number). A reader that finds no entry, an unreadable
one, or one whose digest or kind is not the one it asked for, gets ``None`` and computes
the value again: a damaged cache costs time, never a wrong answer.

Why files beside the index and not a table in ``mlplab.sqlite``: the dashboard watches
the index's size and time to notice new runs (a write there would make it recompute
everything), and it opens the index read-only; a sweep holds the index's write lock for
its own rows. A file is written whole under a temporary name and renamed into place
(atomic on POSIX), so a concurrent reader sees the old entry, the new one or none; two
writers of one digest write the same bytes. Only the newest :data:`KEEP` entries of a
kind are kept.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> key = digest_of({"runs": ["a", "b"], "version": 1})
>>> read_entry(root, "demo", key) is None
True
>>> write_entry(root, "demo", key, {"share": 0.5}), read_entry(root, "demo", key)
(True, {'share': 0.5})
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from mlplab.strictjson import dumps
from .atomic import write_atomic

CACHE_DIR = "cache"
KEEP = 16               # entries of one kind kept (older states of the store are dropped)
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest_of(inputs: Any) -> str:
    """The SHA-256 of ``inputs`` as canonical strict JSON (sorted keys, no spaces):
    equal inputs, equal digests, in any process.

    >>> digest_of({"b": 1, "a": [0.1]}) == digest_of({"a": [0.1], "b": 1})
    True
    """
    text = dumps(inputs, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_path(root: str | Path, kind: str, digest: str) -> Path:
    """Where the entry of ``kind`` and ``digest`` lives (ValueError for a malformed name)."""
    if not _KIND.fullmatch(kind) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"cache entry: kind {kind!r} must match {_KIND.pattern} and digest"
                         f" {digest!r} be 64 hex digits")
    return Path(root) / CACHE_DIR / f"{kind}-{digest}.json"


def read_entry(root: str | Path, kind: str, digest: str) -> Any | None:
    """The value stored for ``digest``, or ``None``: no entry, an unreadable or damaged
    one (bad bytes, not JSON, another digest or kind inside), or no permission."""
    try:
        with open(entry_path(root, kind, digest), "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):     # missing, unreadable, not UTF-8, not JSON
        return None
    if not (isinstance(doc, dict) and doc.get("kind") == kind and doc.get("digest") == digest
            and "value" in doc):
        return None
    return doc["value"]


def write_entry(root: str | Path, kind: str, digest: str, value: Any) -> bool:
    """Store ``value`` (strict JSON) for ``digest``; False when the store cannot be written
    (read-only media, no permission, disk full): the value is then computed again next time."""
    path = entry_path(root, kind, digest)
    text = dumps({"kind": kind, "digest": digest, "value": value})
    try:
        path.parent.mkdir(exist_ok=True)
        write_atomic(path, text)
        _prune(path.parent, kind)
    except OSError:
        return False
    return True


def _prune(folder: Path, kind: str) -> None:
    """Drop all but the newest KEEP entries of ``kind`` (another process may be pruning too)."""
    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    entries = sorted(folder.glob(f"{kind}-*.json"), key=mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)


__all__ = ["CACHE_DIR", "digest_of", "entry_path", "read_entry", "write_entry"]
