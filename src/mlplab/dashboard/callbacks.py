"""What the dashboard's callbacks compute, as plain functions of the store directory.

The Dash callbacks in :mod:`mlplab.dashboard.app` only unpack their inputs and call
these, so each can be tested without a browser. Every function opens the store
read-only and validates run ids through :meth:`mlplab.store.store.Store.run_dir`; nothing
outside the store directory is read.

>>> route("/run/xor-1a2b3c4d")
Route(page='run', run_id='xor-1a2b3c4d', reason='')
"""

from __future__ import annotations

import functools
import math
import os
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from mlplab.store.store import INDEX, RunInfo, Store, StoreError
from mlplab.store.table import gc_paused, run_row, select_rows

PAGE_SIZE = 50          # rows a page; Dash renders every cell as a component, and 100 rows
                        # took seconds to draw in Chromium on a busy 2-core machine
# runs-table columns: (row key, header)
TABLE_COLUMNS = (("run_id", "run"), ("config", "configuration"), ("status", "status"),
                 ("best", "best"), ("val_loss", "val loss"), ("val_acc", "val acc"),
                 ("test_acc", "test acc"), ("restarts", "restarts"),
                 ("end_reason", "ended by"), ("wall_time", "time s"))
SORT_KEYS = tuple(key for key, _ in TABLE_COLUMNS) + ("created",)


@dataclass(frozen=True)
class Route:
    """The page a URL path asks for."""

    page: str                # overview, run, compare, not_found
    run_id: str = ""         # the run of a run page
    reason: str = ""         # why a path was not found


def route(pathname: str | None) -> Route:
    """Map a URL path to a page. The run id is not trusted yet: the run page checks it
    with :meth:`Store.run_dir` before it reads anything.

    >>> route("/").page, route("/compare").page, route("/nope").page
    ('overview', 'compare', 'not_found')
    """
    path = unquote(pathname or "/")
    if path in ("/", ""):
        return Route("overview")
    if path.rstrip("/") == "/compare":
        return Route("compare")
    if path.startswith("/run/"):
        return Route("run", path[len("/run/"):])
    return Route("not_found", reason=f"no page {path!r}")


class BadInput(ValueError):
    """A callback input of the wrong type: only a crafted request sends one (answered 400)."""


def _refuse(value: Any, name: str, expected: str) -> BadInput:
    return BadInput(f"{name}: got {reprlib.repr(value)}; expected {expected}")


def text_input(value: Any, name: str) -> str | None:
    """A callback input that must be a string (or None, before the page sets it).

    >>> text_input("train.lr=0.1", "filter")
    'train.lr=0.1'
    >>> text_input(["x"], "filter")
    Traceback (most recent call last):
    ...
    mlplab.dashboard.callbacks.BadInput: filter: got ['x']; expected a string
    """
    if value is None or isinstance(value, str):
        return value
    raise _refuse(value, name, "a string")


def int_input(value: Any, name: str) -> int | None:
    """A callback input that must be an integer (or None); a bool is not one."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _refuse(value, name, "an integer")


def texts_input(value: Any, name: str) -> list[str]:
    """A callback input that must be a list of strings (None reads as no strings).

    >>> texts_input(None, "picked"), texts_input(["a"], "picked")
    ([], ['a'])
    """
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _refuse(value, name, "a list of strings")


def open_store(root: str | Path) -> Store:
    """The store at ``root``, read-only (StoreError if there is none)."""
    return Store(root, readonly=True)


def store_signature(root: str | Path) -> str:
    """Changes whenever the store's index changes: size and mtime of the SQLite files.

    Cheap enough to call every second; the live view re-reads the store only when it
    changes. (SQLite in WAL mode writes to ``-wal`` first, so both files count; an
    empty ``-wal``, which merely opening the store may create, counts as none.) A
    string, because nanosecond times lose digits as JavaScript numbers.
    """
    return ";".join(_file_stamp(Path(root) / name, empty_is_none=name.endswith("-wal"))
                    for name in (INDEX, INDEX + "-wal"))


def _file_stamp(path: Path, empty_is_none: bool = False) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "-"
    if empty_is_none and st.st_size == 0:
        return "-"
    return f"{st.st_mtime_ns}:{st.st_size}"


# -- overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class TableView:
    """One page of the filtered, sorted runs table."""

    rows: list[dict[str, Any]]     # this page's rows (mlplab.store.table.run_row)
    total: int                     # runs in the store
    matched: int                   # runs that pass the filter
    page: int                      # 0-based, clamped
    n_pages: int
    error: str = ""                # a bad filter or sort, in words


def split_filter(text: str | None) -> tuple[list[str], list[str]]:
    """``"train.optimizer=adam relu"`` -> (key=value filters, free-text terms).

    >>> split_filter("status=done  relu adam")
    (['status=done'], ['relu', 'adam'])
    """
    pairs, terms = [], []
    for token in (text or "").split():
        (pairs if "=" in token else terms).append(token)
    return pairs, terms


def table_view(root: str | Path, filter_text: str | None = "", sort: str | None = "created",
               descending: bool = False, page: int = 0, page_size: int = PAGE_SIZE) -> TableView:
    """The runs table after filter and sort: one SQL query, no per-run file reads.

    ``filter_text`` holds ``key=value`` pairs (a table column or a dotted config key
    such as ``train.lr=0.1``) and free words that must appear in the run id, name or
    configuration; ``sort`` is a column of :data:`SORT_KEYS`.
    """
    pairs, terms = split_filter(filter_text)
    sort = sort if sort in SORT_KEYS else "created"
    runs = run_infos(root)                         # the one query (shared)
    order = None if sort == "created" else ("-" if descending else "") + sort
    error = ""
    try:
        rows = select_rows(runs, sort=order, filters=pairs)
    except ValueError as e:            # ConfigError: a bad key in the filter
        error = str(e).replace("config key '--filter'", "filter")
        rows = select_rows(runs, sort=order)
    except AttributeError:             # a key into a list, such as model.hidden.0
        error = (f"filter: {' '.join(pairs)!r} reads inside a value that has no keys;"
                 " use a runs column or a dotted config key such as train.lr")
        rows = select_rows(runs, sort=order)
    if sort == "created" and descending:
        rows.reverse()
    total = len(runs)
    if terms:
        def text_of(row: dict[str, Any]) -> str:
            return " ".join(str(row.get(k) or "") for k in ("run_id", "name", "config", "status",
                                                            "end_reason", "sweep_id")).lower()
        rows = [row for row in rows if all(t.lower() in text_of(row) for t in terms)]
    n_pages = max(1, math.ceil(len(rows) / page_size))
    page = min(max(0, int(page or 0)), n_pages - 1)
    return TableView(rows[page * page_size:(page + 1) * page_size], total, len(rows), page,
                     n_pages, error)


def merge_picked(picked: list[str] | None, page_ids: list[str],
                 checked: list[list[str]]) -> list[str]:
    """Runs selected for comparison: the choices on the shown page replace earlier ones
    for those runs; choices on other pages are kept (order of first selection).

    >>> merge_picked(["a", "x"], ["a", "b"], [[], ["b"]])
    ['x', 'b']
    """
    on_page = set(page_ids)
    now = {v for values in checked for v in (values or [])}
    kept = [r for r in (picked or []) if r not in on_page or r in now]
    return kept + [r for r in page_ids if r in now and r not in kept]


def compare_href(picked: list[str]) -> str:
    """The compare page's URL for the selected runs.

    >>> compare_href(["a", "b"])
    '/compare?runs=a,b'
    """
    return "/compare?runs=" + ",".join(picked) if picked else "/compare"


def filter_from_search(search: str | None) -> str:
    """The filter text of ``?filter=...`` (the sweeps block links to its runs this way).

    >>> filter_from_search("?filter=sweep_id%3Ds1")
    'sweep_id=s1'
    """
    return parse_qs((search or "").lstrip("?")).get("filter", [""])[0]


def runs_from_search(search: str | None) -> list[str]:
    """Run ids named by ``?runs=a,b`` (not validated yet), without repeats.

    >>> runs_from_search("?runs=a,b,a")
    ['a', 'b']
    """
    values = parse_qs((search or "").lstrip("?")).get("runs", [])
    return list(dict.fromkeys(r for v in values for r in v.split(",") if r))


def sweep_summaries(root: str | Path) -> list[dict[str, Any]]:
    """The store's sweeps as written by the sweep engine (name, strategy, status, summary)."""
    return open_store(root).sweeps()


def run_infos(root: str | Path) -> list[RunInfo]:
    """Every run of the store: one SQL query per state of the index, which the runs
    table, the live line and the overview's figures share."""
    return list(runs_at(str(root), store_signature(root)))


@functools.lru_cache(maxsize=2)
def runs_at(root: str, signature: str) -> tuple[RunInfo, ...]:
    """Every run of the store at ``root`` when its index had ``signature``
    (:func:`store_signature`); the store as it is now and the one before are kept."""
    with gc_paused():
        return tuple(open_store(root).runs())


# -- one run -------------------------------------------------------------------------


def run_version(root: str | Path, run_id: str) -> str:
    """Changes when the run's row or its files change (a live run page re-draws then)."""
    store = open_store(root)
    folder = store.run_dir(run_id)
    try:
        info = store.run(run_id)
        state = f"{info.status}|{info.finished}|{info.n_attempts}"
    except StoreError:
        state = "missing"
    return "|".join([state] + [_file_stamp(folder / name)
                               for name in ("config.json", "metrics.parquet")])


def run_summary(root: str | Path, run_id: str) -> dict[str, Any]:
    """A run's index row, configuration and attempts as plain JSON-able data.

    Raises StoreError for an invalid id or a run that is not in the store.
    """
    store = open_store(root)
    info = store.run(run_id)           # validates the id before anything is read
    return {"run": {**run_row(info), "config": info.config, "summary": info.summary,
                    "created": info.created, "finished": info.finished},
            "attempts": [_plain(a.__dict__) for a in store.attempts(run_id)]}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def status_counts(root: str | Path) -> dict[str, int]:
    """Runs per status (done, running, pending, failed), for the live line of the top bar.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     Store(out).mark("r1", "xor", {"train": {"seed": 0}}, "running")
    ...     status_counts(out)
    {'done': 0, 'running': 1, 'pending': 0, 'failed': 0, 'interrupted': 0}
    """
    counts = {status: 0 for status in ("done", "running", "pending", "failed", "interrupted")}
    for r in run_infos(root):
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts
