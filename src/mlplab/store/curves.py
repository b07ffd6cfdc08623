"""Each finished run's epoch curves, kept in the index beside its row.

The store figures (the report's and the dashboard overview's) draw every run's epoch
series of one metric (``val_loss`` by epoch of the first attempt). Reading them from
each run's ``metrics.parquet`` costs a file open and a Parquet decode per run, most of a
report's time on a large store; so the run's writer keeps them, once, in the index's
``curves`` table, written in the same transaction as the run's row. A run indexed before
this table existed (an older store) has no rows in it: its curves are read from its
``metrics.parquet`` as before (:func:`mlplab.figures.data_store.first_attempt_curves`).

The values are the ``epoch``-scope rows of ``metrics.parquet`` for that attempt and
metric, in epoch order, as little-endian float64 bytes: exactly what a reader of the
Parquet file gets (tested).

>>> from mlplab.metrics import MetricsLog
>>> log = MetricsLog()
>>> log.add(0, 2, 1, "epoch", "", "val_loss", 0.5)
>>> log.add(0, 1, 0, "epoch", "", "val_loss", 0.9)
>>> log.add(0, 1, 0, "step", "", "loss", 1.0)
>>> {k: v.tolist() for k, v in epoch_curves(log.to_table()).items()}
{(0, 'val_loss'): [0.9, 0.5]}
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT, attempt INTEGER, metric TEXT, vals BLOB,
    PRIMARY KEY (run_id, attempt, metric));
"""

Curves = Mapping[tuple[int, str], "np.ndarray"]     # (attempt, metric) -> values by epoch
# numpy is imported where used: `mlplab runs` reads the index without it


def epoch_curves(table: "pa.Table", attempts: Iterable[int] = (0,)) -> "dict[tuple[int, str], np.ndarray]":
    """The epoch-scope series of a run's metrics table (:meth:`mlplab.metrics.MetricsLog.to_table`),
    per ``(attempt, metric)`` for the ``attempts`` given (the store figures draw the first)."""
    return epoch_curves_of([table], attempts)[0]


_KEYS = ("attempt", "epoch", "scope", "metric")     # what says where a table's epoch rows are


def epoch_curves_of(tables: "Sequence[pa.Table]", attempts: Iterable[int] = (0,)
                    ) -> "list[dict[tuple[int, str], np.ndarray]]":
    """:func:`epoch_curves` of each of ``tables``. Where a table's key columns equal the one
    before it (a cohort's runs that trained every epoch: :func:`mlplab.metrics.to_tables`),
    where its epoch rows are and their order are not worked out again; only its values
    are gathered (0.25 ms a run of ``bench/sweep-1000.yaml`` otherwise)."""
    attempts = list(attempts)
    out, keys, plan = [], None, None
    for table in tables:
        these = table.select(_KEYS)
        if plan is None or not these.equals(keys):
            keys, plan = these, _plan(table, attempts)
        value = table["value"].to_numpy()
        out.append({k: value[rows].astype("float64") for k, rows in plan})
    return out


def _plan(table: "pa.Table", attempts: list[int]) -> "list[tuple[tuple[int, str], np.ndarray]]":
    """Per ``(attempt, metric)`` of the epoch rows of ``attempts`` (sorted by attempt, then
    metric), the positions of its rows in ``table`` in epoch order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.and_(pc.equal(table["scope"], "epoch"),
                   pc.is_in(table["attempt"], pa.array(attempts, table.schema.field("attempt").type)))
    at = np.flatnonzero(keep.to_numpy(zero_copy_only=False))        # [R] the epoch rows
    rows = table.take(at)
    names = rows["metric"].combine_chunks().dictionary_encode()     # codes: no string per row
    metric, words = names.indices.to_numpy(), names.dictionary.to_pylist()
    attempt, epoch = rows["attempt"].to_numpy(), rows["epoch"].to_numpy()
    n = max(len(words), 1)
    key = attempt.astype(np.int64) * n + metric                  # (attempt, metric) as one code
    plan = []
    for k in sorted(np.unique(key).tolist(), key=lambda k: (k // n, words[k % n])):
        mine = np.flatnonzero(key == k)
        plan.append(((int(k // n), str(words[k % n])), at[mine[np.argsort(epoch[mine], kind="stable")]]))
    return plan


def insert_curves(db: sqlite3.Connection, run_id: str, curves: Curves) -> None:
    """Replace the run's curves (inside the caller's transaction)."""
    import numpy as np

    db.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
    db.executemany("INSERT INTO curves VALUES (?, ?, ?, ?)",
                   [(run_id, a, m, np.ascontiguousarray(v, "<f8").tobytes())
                    for (a, m), v in curves.items()])


def read_curves(db: sqlite3.Connection, metric: str, attempt: int = 0) -> "dict[str, np.ndarray]":
    """Per run id, the ``metric`` curve of ``attempt`` kept in the index (one query); runs
    indexed without curves are absent, and an index older than the table gives none."""
    import numpy as np

    try:
        rows = db.execute("SELECT run_id, vals FROM curves WHERE metric = ? AND attempt = ?",
                          (metric, attempt)).fetchall()
    except sqlite3.OperationalError as e:      # a store written before the table existed
        if "no such table" not in str(e):
            raise
        return {}
    return {run_id: np.frombuffer(vals, "<f8").copy() for run_id, vals in rows}
