"""The runs table: rows of a store, filtered and sorted, and their plain-text layout.

>>> format_table([{"run_id": "a", "val_loss": 0.5}], ["run_id", "val_loss"])
'run_id  val_loss\\na       0.5'
"""

from __future__ import annotations

import gc
import math
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from mlplab.config import ConfigError, get_dotted
from .store import RunInfo, Store

COLUMNS = ("run_id", "config", "status", "best", "val_loss", "val_acc", "test_acc",
           "restarts", "end_reason", "wall_time")


def config_summary(config: dict[str, Any]) -> str:
    """``xor 2-4-1 relu xavier_uniform momentum lr=0.02 s0`` for a config dict."""
    if not config:
        return ""
    if config.get("source") == "probe":   # a Probe in the user's own loop (mlplab.probe.user)
        m, t = config.get("model") or {}, config.get("train") or {}
        lr = f" lr={t['lr']:g}" if isinstance(t.get("lr"), (int, float)) else ""
        return (f"probe {m.get('class', '?')} {m.get('parameters', '?')} params "
                f"{t.get('optimizer', '')}{lr}").replace("  ", " ").strip()
    m, t = config["model"], config["train"]
    shape = "-".join(str(h) for h in m["hidden"]) or "linear"
    return (f"{config['data']['name']} [{shape}] {m['activation']} {m['init']} "
            f"{t['optimizer']} lr={t['lr']:g} s{t['seed']}")


def run_row(r: RunInfo) -> dict[str, Any]:
    return {"run_id": r.run_id, "sweep_id": r.sweep_id, "name": r.name,
            "config": config_summary(r.config), "status": r.status, "best": r.best_value,
            "val_loss": r.val_loss, "val_acc": r.val_acc, "test_loss": r.test_loss,
            "test_acc": r.test_acc, "restarts": r.restarts, "end_reason": r.end_reason,
            "target_met": r.target_met, "epochs": r.epochs, "wall_time": r.wall_time,
            "error": r.error}


def matches(r: RunInfo, row: dict[str, Any], key: str, want: str) -> bool:
    """Whether run ``r`` (its runs-table ``row``) has ``key`` (a column or a dotted config
    key) equal to ``want`` (the text of a ``--filter``)."""
    if key in row:
        have = row[key]
    else:
        try:
            have = get_dotted(r.config, key)
        except (KeyError, TypeError, AttributeError):   # AttributeError: a key below a list
            raise ConfigError("--filter", key, "a runs column (" + ", ".join(row) +
                              ") or a dotted config key such as train.lr") from None
    if isinstance(have, (list, tuple)):
        have = ",".join(map(str, have))
    if isinstance(have, float):
        try:
            return math.isclose(have, float(want), rel_tol=1e-9)
        except ValueError:
            return False
    return str(have) == want


_PAUSE_LOCK = threading.Lock()
_PAUSED = [0, False]            # sections inside gc_paused, and whether gc was on before them


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside, back on after (as it was: a section
    inside another, or in another thread, leaves it to the last one out). Reading the runs
    of a large store makes hundreds of thousands of objects that live on (rows, parsed
    configs, their flat forms), none in a cycle, and each full collection the allocations
    trigger walks all of them: a quarter of the runs table's time on 10,000 runs, 0.45-0.6 s
    of the dashboard overview's first load. Nothing is lost: garbage made meanwhile is
    collected after.

    >>> with gc_paused():
    ...     gc.isenabled()
    False
    """
    with _PAUSE_LOCK:
        if _PAUSED[0] == 0:
            _PAUSED[1] = gc.isenabled()
            gc.disable()
        _PAUSED[0] += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _PAUSED[0] -= 1
            if _PAUSED[0] == 0 and _PAUSED[1]:
                gc.enable()


def run_rows(store_dir: str | Path, sort: str | None = None,
             filters: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows of the runs table; ``filters`` are ``key=value`` (columns or config keys). A
    finished run whose files a glance finds damaged is listed ``damaged``, with the file
    and the reason (:func:`mlplab.store.check.glance`)."""
    from .check import glance

    store = Store(store_dir, readonly=True)
    with gc_paused():             # rows for every run: see gc_paused
        return select_rows(glance(store, store.runs()), sort, filters)


def filter_runs(runs: Iterable[RunInfo], filters: Iterable[str] = ()) -> list[RunInfo]:
    """The runs that match every ``key=value`` of ``filters`` (columns or config keys)."""
    pairs = []
    for f in filters:
        if "=" not in f:
            raise ConfigError("--filter", f, "key=value, e.g. status=done or train.optimizer=adam")
        pairs.append(tuple(f.split("=", 1)))
    if not pairs:
        return list(runs)
    out = []
    for r in runs:
        row = run_row(r)
        if all(matches(r, row, k, v) for k, v in pairs):
            out.append(r)
    return out


def select_rows(runs: Iterable[RunInfo], sort: str | None = None,
                filters: Iterable[str] = ()) -> list[dict[str, Any]]:
    """:func:`run_rows` of runs already read (one query serves several views)."""
    rows = [run_row(r) for r in filter_runs(runs, filters)]
    if sort:
        key, reverse = (sort[1:], True) if sort.startswith("-") else (sort, False)
        if rows and key not in rows[0]:
            raise ConfigError("--sort", sort, ", ".join(rows[0]) + " (prefix '-' for descending)")

        def sort_key(row: dict[str, Any]) -> tuple:
            v = row[key]
            missing = v is None or (isinstance(v, float) and math.isnan(v))
            return (missing, v if not missing else 0)

        rows.sort(key=sort_key, reverse=reverse)
        if reverse:   # keep missing values last
            rows.sort(key=lambda row: row[key] is None)
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def format_table(rows: list[dict[str, Any]], columns: Iterable[str] = COLUMNS) -> str:
    cols = list(columns)
    cells = [cols] + [[_fmt(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
