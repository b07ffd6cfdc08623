"""A run's folder as bytes: what the store writes for a finished run, encoded apart from
any disk.

    config.json                  resolved config + run info
    metrics.parquet              the series (mlplab.metrics)
    attempt-<n>.safetensors      every tensor of attempt n, under ``<kind>/``: its weights
                                 ``init/``, ``best/``, ``last/`` and decision-boundary
                                 snapshots ``boundary/`` (:data:`TENSOR_KINDS`)
    run.json                     the run's index rows and each file's digest
                                 (:mod:`mlplab.store.rows`; added when written)

Runs written before one file held an attempt's tensors keep them in a folder,
``attempt-<n>/{init,best,last,boundary}.safetensors`` (:func:`legacy_tensors_file`);
:func:`read_tensors` reads either. One file instead of a folder of four: each file or
folder a store creates cost 0.04-0.26 ms of the kernel's time on this project's machine,
nine a run before (docs/performance.md).

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


TENSOR_KINDS = ("init", "best", "last", "boundary")   # an attempt's tensors, by kind


def tensors_file(attempt: int) -> str:
    """The file of an attempt's tensors in its run's folder, each kind's under ``<kind>/``.

    >>> tensors_file(1)
    'attempt-1.safetensors'
    """
    return f"attempt-{attempt}.safetensors"


def legacy_tensors_folder(attempt: int) -> str:
    """The folder in which a run written before :func:`tensors_file` keeps an attempt's
    tensors, a file a kind (its presence says which layout a run's attempt has)."""
    return f"attempt-{attempt}"


def legacy_tensors_file(attempt: int, which: str) -> str:
    """Where a run written before :func:`tensors_file` keeps an attempt's ``which`` tensors.

    >>> legacy_tensors_file(1, "best")
    'attempt-1/best.safetensors'
    """
    return f"{legacy_tensors_folder(attempt)}/{which}.safetensors"


def tensors_name(folder: Path, attempt: int, which: str) -> str:
    """The name, in a run's ``folder``, of the file that holds (or would hold) an attempt's
    ``which`` tensors: the older layout's where the run has its folder, else
    :func:`tensors_file`; for a message that names a missing or damaged file."""
    if (folder / legacy_tensors_folder(attempt)).is_dir():
        return legacy_tensors_file(attempt, which)
    return tensors_file(attempt)


def _location(folder: Path, attempt: int, which: str) -> tuple[Path, str] | None:
    """The file holding an attempt's ``which`` tensors in a run's ``folder`` and the prefix
    of their keys in it: the attempt's file (whether it holds that kind: its keys say), else
    the file of the older layout; None when neither is there."""
    if which not in TENSOR_KINDS:
        raise ValueError(f"which={which!r}: allowed {', '.join(TENSOR_KINDS)}")
    one = folder / tensors_file(attempt)
    if one.is_file():
        return one, f"{which}/"
    old = folder / legacy_tensors_file(attempt, which)
    return (old, "") if old.is_file() else None


def read_tensors(folder: Path, attempt: int, which: str, framework: str = "pt") -> dict[str, Any] | None:
    """An attempt's ``which`` tensors by name, from either layout (safetensors, never a
    pickle): torch tensors (``framework="pt"``) or numpy arrays (``"np"``); None when the
    run kept none of that kind. Only that kind's tensors are read from the attempt's file."""
    found = _location(folder, attempt, which)
    if found is None:
        return None
    from safetensors import safe_open

    path, prefix = found
    with safe_open(str(path), framework=framework) as f:
        names = [k for k in f.keys() if k.startswith(prefix)]
        if not names:
            return None
        return {k[len(prefix):]: f.get_tensor(k) for k in names}


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

    from .curves import epoch_curves_of

    tables = to_tables([rec.metrics for rec in records])
    return [(encode_run(rec, table), curves)
            for rec, table, curves in zip(records, tables, epoch_curves_of(tables))]


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
        kinds = zip(TENSOR_KINDS, (a.init_state, a.best_state, a.last_state, a.boundary))
        tensors = {f"{which}/{name}": t for which, state in kinds for name, t in (state or {}).items()}
        if tensors:
            files[tensors_file(a.attempt)] = safetensors_bytes(tensors, meta)
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
