"""The run's measurement series: one tidy table, written as ``metrics.parquet``.

Columns (documented in the README):

========  =======  ==================================================================
column    type     meaning
========  =======  ==================================================================
attempt   int32    attempt number within the run (0 = first network, 1.. restarts)
step      int64    optimizer steps taken in this attempt when the value was recorded
epoch     int32    epoch of the attempt (0-based) the step belongs to
scope     string   ``step`` (every probe.every steps), ``act`` (every
                   activations_every steps), ``epoch`` (end of each epoch), ``final``
layer     string   layer name (``layer1`` .. ``layerN`` for mlplab's MLP, the module
                   name for a user's model), ``""`` for model-level values
metric    string   see METRICS
value     float64  the value
========  =======  ==================================================================

>>> log = MetricsLog()
>>> log.add(0, 10, 1, "epoch", "", "val_loss", 0.25)
>>> log.to_frame()[["metric", "value"]].values.tolist()
[['val_loss', 0.25]]
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

STEP_METRICS = ("loss", "lr", "grad_norm_w", "grad_norm_b", "weight_norm_w", "weight_norm_b",
                "update_ratio_w", "update_ratio_b", "dist_init_w", "dist_init_b")
# model-level step metrics of the curvature probe (probe.curvature_every > 0)
CURVATURE_METRICS = ("sharpness", "hess_trace", "grad_noise_scale", "stability")
ACT_METRICS = ("act_mean", "act_std", "dead_frac", "sat_frac")
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")
FINAL_METRICS = ("test_loss", "test_acc")
METRICS = STEP_METRICS + CURVATURE_METRICS + ACT_METRICS + EPOCH_METRICS + FINAL_METRICS
COLUMNS = ("attempt", "step", "epoch", "scope", "layer", "metric", "value")
_TEXT = ("scope", "layer", "metric")                  # the string columns


def _column(chunk: dict[str, np.ndarray | str], name: str,
            value: np.ndarray | None = None) -> np.ndarray:
    """Column ``name`` of a chunk as an array, a block's shared columns repeated (see
    :meth:`MetricsLog.add_block`); ``value``: in place of the chunk's own, the same shape
    (the codes of its strings: a chunk-wide string is coded by :func:`_text_codes`)."""
    value = chunk[name] if value is None else value
    if "block" in chunk:
        m = len(chunk["block"])                          # series in the block
        by_step = chunk["by_step"]
        if name == "value":             # [M, S], float32 if so given: converted here, once
            return np.asarray(value.T if by_step else value, dtype=np.float64).reshape(-1)
        if name in ("layer", "metric"):                  # [M] per series
            return np.tile(value, _size(chunk) // m) if by_step \
                else np.repeat(value, _size(chunk) // m)
        return np.repeat(value, m) if by_step else np.tile(value, m)     # [S] per step
    return value


def _size(chunk: dict[str, np.ndarray | str]) -> int:
    """Records in a chunk."""
    return chunk["value"].size  # type: ignore[union-attr]


def _text_codes(chunks: list[dict[str, np.ndarray | str]], name: str
                ) -> tuple[np.ndarray, list[str]]:
    """String column ``name`` of all ``chunks`` as ``int32`` codes into its distinct
    strings, and those strings: a chunk's strings are coded where they are few (one per
    chunk, or per series of a block) before they are expanded to every record."""
    import pandas as pd

    vocab: dict[str, int] = {}
    parts = []
    for chunk in chunks:
        value = chunk[name]
        if isinstance(value, str):
            parts.append(np.full(_size(chunk), vocab.setdefault(value, len(vocab)), np.int32))
            continue
        codes, distinct = pd.factorize(value)
        remap = np.array([vocab.setdefault(str(t), len(vocab)) for t in distinct], np.int32)
        parts.append(_column(chunk, name, remap[codes]))
    return np.concatenate(parts), list(vocab)


def _ranks(texts: list[str]) -> np.ndarray:
    """Each string's rank among ``texts`` (distinct; code point order)."""
    rank = np.empty(len(texts), dtype=np.int64)
    rank[np.argsort(np.asarray(texts, dtype=str), kind="stable")] = np.arange(len(texts))
    return rank


@functools.lru_cache(maxsize=1)
def _str_dtype() -> object:
    """The dtype pandas gives strings (``astype(str)``): pyarrow-backed from pandas 3."""
    import pandas as pd

    return pd.Series([""], dtype=object).astype(str).dtype


def _strings(codes: np.ndarray, texts: list[str]) -> object:
    """``texts[codes]`` as the column ``astype(str)`` would make, built from the codes:
    with pyarrow-backed strings, one dictionary cast (4x faster than from objects)."""
    import pandas as pd

    dtype = _str_dtype()
    if getattr(dtype, "storage", None) == "pyarrow":
        import pyarrow as pa

        coded = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()),
                                               pa.array(texts, pa.large_string()))
        return pd.array(coded.cast(pa.large_string()), dtype=dtype)
    return pd.Series(np.asarray(texts, dtype=object)[codes]).astype(str).array


@functools.lru_cache(maxsize=64)
def _names(columns: tuple[tuple[str, str], ...]) -> np.ndarray:
    """The layer and metric names of a block's series as one ``[2, M]`` object array
    (shared by the blocks of every model of a cohort; only read)."""
    names = np.empty((2, len(columns)), dtype=object)
    names[:] = list(zip(*columns))
    return names


def natural_key(name: str) -> tuple:
    """Sort ``layer2`` before ``layer10`` (and ``"2.weight"`` before ``"10.weight"``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def layer_name(index: int) -> str:
    """Name of the ``index``-th (0-based) Linear layer of an mlplab MLP."""
    return f"layer{index + 1}"


class MetricsLog:
    """Append-only columnar buffer of records; cheap to extend from scalars or arrays."""

    def __init__(self) -> None:
        # each chunk: numeric columns as arrays; a string column is either an array or,
        # for chunks from add_arrays, one string for the whole chunk (expanded in to_frame)
        self._chunks: list[dict[str, np.ndarray | str]] = []
        self._rows: list[tuple] = []

    def add(self, attempt: int, step: int, epoch: int, scope: str, layer: str,
            metric: str, value: float) -> None:
        self._rows.append((attempt, step, epoch, scope, layer, metric, float(value)))

    def add_arrays(self, attempt: Iterable | int, step: Iterable | int, epoch: Iterable | int,
                   scope: str, layer: str, metric: str, value: Iterable) -> None:
        """Append many records of one (scope, layer, metric) at once."""
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        n = len(value)

        def col(x: Iterable | int, dtype: type) -> np.ndarray:
            arr = np.asarray(x, dtype=dtype).reshape(-1)
            return np.full(n, arr[0] if arr.size else 0, dtype=dtype) if arr.size == 1 else arr

        self._chunks.append({"attempt": col(attempt, np.int32), "step": col(step, np.int64),
                             "epoch": col(epoch, np.int32), "scope": str(scope),
                             "layer": str(layer), "metric": str(metric), "value": value})

    def add_block(self, attempt: np.ndarray, step: np.ndarray, epoch: np.ndarray, scope: str,
                  columns: list[tuple[str, str]], values: np.ndarray, copy: bool = True
                  ) -> None:
        """Append M series sharing their ``attempt, step, epoch [S]`` columns: ``values
        [M, S]``, row m is (layer, metric) ``columns[m]``. Equal to M calls of
        :meth:`add_arrays`, in one cheap step (the shared columns expand in to_frame).
        ``copy=False`` keeps a float ``values`` array as it is, a view or float32 (the
        cohort's records: converted to float64 once, in to_frame); the caller must then
        not change it. A view whose M values of a step lie together in memory (the
        cohort's ``[S, K, M]`` rows, read per model) is expanded step by step, the others
        series by series: to_frame sorts the rows anyway, and reading memory in its own
        order is the fast way.

        >>> log = MetricsLog()
        >>> log.add_block([0, 0], [1, 2], [0, 0], "step", [("", "loss"), ("", "lr")],
        ...               [[0.5, 0.4], [0.1, 0.1]])
        >>> log.to_frame()[["step", "metric", "value"]].values.tolist()
        [[1, 'loss', 0.5], [1, 'lr', 0.1], [2, 'loss', 0.4], [2, 'lr', 0.1]]
        """
        m = len(columns)
        if m == 0:
            return
        values = np.asarray(values)
        if copy or values.dtype.kind != "f":
            values = np.array(values, dtype=np.float64)
        values = values.reshape(m, -1)
        by_step = m > 1 and values.shape[1] > 1 and values.strides[0] < values.strides[1]
        names = _names(tuple(columns))
        self._chunks.append({"attempt": np.asarray(attempt, np.int32).reshape(-1),
                             "step": np.asarray(step, np.int64).reshape(-1),
                             "epoch": np.asarray(epoch, np.int32).reshape(-1),
                             "scope": str(scope), "layer": names[0], "metric": names[1],
                             "value": values, "block": columns, "by_step": by_step})

    def extend(self, other: "MetricsLog") -> None:
        self._flush()
        other._flush()
        self._chunks.extend(other._chunks)

    def _flush(self) -> None:
        if self._rows:
            cols = list(zip(*self._rows))
            self._chunks.append({
                "attempt": np.asarray(cols[0], np.int32), "step": np.asarray(cols[1], np.int64),
                "epoch": np.asarray(cols[2], np.int32), "scope": np.asarray(cols[3], object),
                "layer": np.asarray(cols[4], object), "metric": np.asarray(cols[5], object),
                "value": np.asarray(cols[6], np.float64)})
            self._rows = []

    def __len__(self) -> int:
        return len(self._rows) + sum(_size(c) for c in self._chunks)

    def _sorted(self) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, list[str]]]]:
        """The numeric columns, and the string columns as (codes, strings), with rows by
        attempt, step, scope, metric, layer (stable): one lexsort on integer keys (the
        strings as their rank), 5x faster than DataFrame.sort_values on the strings."""
        order, cols, texts = self._keys()
        return {**cols, "value": self._values()[order]}, texts

    def _keys(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, tuple[np.ndarray, list[str]]]]:
        """The rows' sort order (see :meth:`_sorted`) and, in that order, every column but
        the values."""
        cols = {c: np.concatenate([_column(ch, c) for ch in self._chunks])
                for c in COLUMNS if c not in _TEXT and c != "value"}
        texts = {c: _text_codes(self._chunks, c) for c in _TEXT}        # codes, strings
        order = np.lexsort([_ranks(texts[c][1])[texts[c][0]] for c in ("layer", "metric", "scope")]
                           + [cols["step"], cols["attempt"]])
        return (order, {c: v[order] for c, v in cols.items()},
                {c: (codes[order], words) for c, (codes, words) in texts.items()})

    def _values(self) -> np.ndarray:
        """The value column, float64, in the order the chunks were added."""
        return np.concatenate([_column(ch, "value") for ch in self._chunks])

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        self._flush()
        if not self._chunks:
            return empty_frame()
        cols, texts = self._sorted()
        return pd.DataFrame({c: _strings(*texts[c]) if c in _TEXT else cols[c] for c in COLUMNS})

    def to_table(self) -> "pa.Table":
        """:meth:`to_frame` as an Arrow table, built without pandas (what
        :func:`parquet_bytes` writes: the same file, in about half the time)."""
        return to_tables([self])[0]

    def _layout(self) -> tuple:
        """What rows the log holds, short of its columns' contents: each chunk's kind and
        size (a block's series, a chunk's one string)."""
        self._flush()
        return tuple((ch["scope"], tuple(ch["block"]), ch["by_step"], ch["value"].shape)
                     if "block" in ch else
                     (_size(ch),) + tuple(ch[c] if isinstance(ch[c], str) else None for c in _TEXT)
                     for ch in self._chunks)

    def _same_rows(self, other: "MetricsLog") -> bool:
        """Whether ``other``, of the same :meth:`_layout`, has the same rows as this log
        (all columns but the values alike)."""
        return all(a[c] is b[c] or np.array_equal(a[c], b[c])
                   for a, b in zip(self._chunks, other._chunks)
                   for c in ("attempt", "step", "epoch") + (() if "block" in a else _TEXT))


def to_tables(logs: "Sequence[MetricsLog]") -> "list[pa.Table]":
    """:meth:`MetricsLog.to_table` of each of ``logs``. Logs with the same rows (the same
    series at the same attempt, step and epoch: the models of a cohort that all trained
    every epoch) are sorted once and share their key columns; each gathers only its
    values. For a cohort of 100 such runs of ``bench/sweep-1000.yaml``: 0.1 ms a run
    instead of 0.9 ms.

    >>> logs = [MetricsLog(), MetricsLog()]
    >>> for i, log in enumerate(logs):
    ...     log.add_block([0, 0], [2, 1], [0, 0], "step", [("", "loss")], [[i, i + 0.5]])
    >>> [(t["step"].to_pylist(), t["value"].to_pylist()) for t in to_tables(logs)]
    [([1, 2], [0.5, 0.0]), ([1, 2], [1.5, 1.0])]
    """
    import pyarrow as pa

    schema = _arrow_schema()
    shared: dict[tuple, list[tuple[MetricsLog, np.ndarray, list]]] = {}
    tables = []
    for log in logs:
        log._flush()
        if not log._chunks:
            tables.append(pa.Table.from_pandas(empty_frame(), preserve_index=False))
            continue
        layout = log._layout()
        like = next((x for x in shared.get(layout, []) if x[0]._same_rows(log)), None)
        if like is None:
            order, cols, texts = log._keys()
            arrays = [pa.DictionaryArray.from_arrays(pa.array(texts[c][0], pa.int32()),
                                                     pa.array(texts[c][1], schema.field(c).type))
                      .cast(schema.field(c).type) if c in _TEXT else
                      None if c == "value" else pa.array(cols[c]) for c in COLUMNS]
            like = (log, order, arrays)
            shared.setdefault(layout, []).append(like)
        _, order, arrays = like
        values = pa.array(log._values()[order])
        tables.append(pa.Table.from_arrays([values if a is None else a for a in arrays],
                                           schema=schema))
    return tables


@functools.lru_cache(maxsize=1)
def _arrow_schema() -> "pa.Schema":
    """The Arrow schema, pandas metadata included, of a metrics frame (as
    ``pa.Table.from_pandas`` makes it), so that a table built without pandas reads back
    as the same frame."""
    import pyarrow as pa

    log = MetricsLog()
    log.add(0, 0, 0, "step", "", "loss", 0.0)
    return pa.Table.from_pandas(log.to_frame(), preserve_index=False).schema


def empty_frame() -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame({"attempt": np.array([], np.int32), "step": np.array([], np.int64),
                         "epoch": np.array([], np.int32), "scope": np.array([], str),
                         "layer": np.array([], str), "metric": np.array([], str),
                         "value": np.array([], np.float64)})


def parquet_bytes(frame: "pd.DataFrame | pa.Table") -> bytes:
    """``frame`` (a metrics frame, or :meth:`MetricsLog.to_table`) as the content of a
    Parquet file (``pd.read_parquet`` reads it back equal)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    # one thread: pyarrow's per-column thread pool costs more than it converts on a
    # run's few thousand rows, and far more while the other cores train (a sweep).
    # Dictionary pages for the string columns only: tried on the numbers too (the
    # default), they fill up and fall back to plain, 46 against 20 ms for the 174k rows
    # of examples/xor.yaml, and the file is 13% larger
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(
        frame, preserve_index=False, nthreads=1)
    # No column statistics: no reader filters on them (every reader reads a run's file
    # whole), and they are a quarter of the writing time
    pq.write_table(table, sink, use_dictionary=list(_TEXT), write_statistics=False)
    return sink.getvalue().to_pybytes()


def read_metrics(path: str | Path) -> "pd.DataFrame":
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return empty_frame()
    return pd.read_parquet(path, engine="pyarrow")


def series(frame: "pd.DataFrame", metric: str, layer: str = "", attempt: int | None = None,
           x: str = "step") -> "pd.DataFrame":
    """One curve: rows of ``metric`` (and ``layer``, ``attempt``) with columns x, value."""
    sel = (frame["metric"] == metric) & (frame["layer"] == layer)
    if attempt is not None:
        sel &= frame["attempt"] == attempt
    return frame.loc[sel, ["attempt", x, "value"]].reset_index(drop=True)
