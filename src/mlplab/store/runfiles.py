"""A run's folder as bytes: what the store writes for a finished run, encoded apart from
any disk.

    config.json                                 resolved config + run info
    metrics.parquet                             the series (mlplab.metrics)
    attempt-<n>/{init,best,last}.safetensors    weights of each attempt
    attempt-<n>/boundary.safetensors            decision-boundary snapshots
    run.json                                    the run's index rows and each file's digest
                                                (:mod:`mlplab.store.rows`; added when written)

Encoding (a run's frame sorted, Parquet and safetensors serialised) is most of the cost
of writing a run. A sweep's workers therefore encode the runs they trained and hand the
bytes to the driver, which only writes them (:meth:`mlplab.store.store.Store.write_runs`): the
encoding runs in parallel with the other workers' training instead of one run after
another in the driver.

>>> from mlplab.metrics import MetricsLog
>>> from mlplab.record import AttemptRecord, RunRecord
>>> rec = RunRecord("r1", "r", {"train": {"seed": 0}}, [AttemptRecord(0, 0, "plateau", 1, 1,
...                 0, 0.5)], 0, MetricsLog(), {})
>>> sorted(encode_run(rec))
['config.json', 'metrics.parquet']
>>> slim(rec).metrics is rec.metrics, len(slim(rec).metrics)
(False, 0)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlplab import strictjson

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from mlplab.record import RunRecord

    from .curves import Curves

RunFiles = dict[str, bytes]      # path inside the run's folder -> content
RECORD = "run.json"              # the run's record (mlplab.store.rows), beside its files


def tensors_file(attempt: int, which: str) -> str:
    """Where an attempt's ``which`` tensors (init, best, last or boundary) lie in its run's
    folder.

    >>> tensors_file(1, "best")
    'attempt-1/best.safetensors'
    """
    return f"attempt-{attempt}/{which}.safetensors"


def read_config_doc(folder: Path) -> dict[str, Any]:
    """A run folder's ``config.json`` (its resolved config under ``config``, and its info);
    ``OSError`` when it cannot be read, ``ValueError`` when it is not JSON or holds no config."""
    doc = json.loads((folder / "config.json").read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ValueError("no config in it")
    return doc


def digest(content: bytes) -> str:
    """A file's digest as recorded when written: BLAKE2b, 16 bytes, in hex. With the
    run's ``run.json`` it costs under a millisecond a run: 0.3-1.6 % of encoding a
    600 KB run's files, 5-7 % of a 21 KB one's (``bench/digest_cost.py``).

    >>> digest(b"abc")
    'cf4ab791c62b8d2b2109c90275287816'
    """
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def encode_with_curves(rec: "RunRecord") -> "tuple[RunFiles, Curves]":
    """:func:`encode_run` and the run's epoch curves for the index
    (:func:`mlplab.store.curves.epoch_curves`), from one metrics table."""
    return encode_runs([rec])[0]


def encode_runs(records: "Sequence[RunRecord]") -> "list[tuple[RunFiles, Curves]]":
    """:func:`encode_with_curves` of each of ``records`` (a unit's), their metrics tables
    built together (:func:`mlplab.metrics.to_tables`: a cohort's runs share one sort)."""
    from mlplab.metrics import to_tables

    from .curves import epoch_curves

    tables = to_tables([rec.metrics for rec in records])
    return [(encode_run(rec, table), epoch_curves(table)) for rec, table in zip(records, tables)]


def encode_run(rec: "RunRecord", table: "pa.Table | None" = None) -> RunFiles:
    """Every file of ``rec``'s folder, by relative path (nothing is written); ``table``:
    ``rec.metrics.to_table()`` when the caller has it already."""
    from mlplab.metrics import parquet_bytes

    doc = {"run_id": rec.run_id, "name": rec.name, "config": rec.config, "info": rec.info,
           "source": rec.source}
    files = {"config.json": strictjson.dumps(doc, indent=2).encode(),
             "metrics.parquet": parquet_bytes(rec.metrics.to_table() if table is None else table)}
    for a in rec.attempts:
        meta = {"run_id": rec.run_id, "attempt": str(a.attempt), "seed": str(a.seed)}
        tensors = {"init": a.init_state, "best": a.best_state, "last": a.last_state,
                   "boundary": a.boundary or {}}
        for which, state in tensors.items():
            if state:
                files[tensors_file(a.attempt, which)] = safetensors_bytes(state, meta)
    return files


def safetensors_bytes(state: "Mapping[str, torch.Tensor]", metadata: dict[str, str]) -> bytes:
    """``safetensors.torch.save(state, metadata)``, the same bytes: through safetensors'
    numpy writer where every tensor has a numpy dtype (a third of the time: the torch
    writer's checks for shared and aliased storage cost more than a small network's
    bytes), through the torch writer otherwise (bfloat16, float8)."""
    import torch

    tensors = {k: v.detach().cpu() for k, v in state.items()}
    numpy_dtypes = (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32,
                    torch.int16, torch.int8, torch.uint8, torch.bool)
    if all(v.dtype in numpy_dtypes for v in tensors.values()):
        from safetensors.numpy import save

        return save({k: v.numpy() for k, v in tensors.items()}, metadata=metadata)
    from safetensors.torch import save as save_torch

    return save_torch({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def write_files(files: RunFiles, folder: Path) -> None:
    """Write ``files`` under ``folder`` (a fresh temporary folder the caller renames)."""
    base = os.fspath(folder)        # plain strings: a run's 7 files, a sweep's thousands
    made = {""}                     # one mkdir per folder, not per file: a slow syscall
    for name, content in files.items():
        parent = os.path.dirname(name)
        if parent not in made:
            os.makedirs(os.path.join(base, parent), exist_ok=True)
            made.add(parent)
        with open(os.path.join(base, name), "wb") as f:
            f.write(content)


def slim(rec: "RunRecord") -> "RunRecord":
    """``rec`` without its series and weights: what indexing a run needs once its files
    are encoded (a worker sends this, and the files, to the driver)."""
    from mlplab.metrics import MetricsLog

    attempts = [replace(a, init_state={}, best_state={}, last_state={}, boundary=None)
                for a in rec.attempts]
    return replace(rec, attempts=attempts, metrics=MetricsLog())
