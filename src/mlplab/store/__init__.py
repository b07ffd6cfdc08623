"""The run store (SPEC §4): a directory with a SQLite index, a folder per run with its
resolved configuration, ``metrics.parquet`` and safetensors weights.

    store.py     :class:`Store`: the index, atomic writes, reading
    models.py    ``load_model``: a run back as a ``torch.nn.Module``
    runfiles.py  a finished run's files as bytes, encoded apart from the index
    rows.py      the index's tables; a finished run's rows as one record (``run.json``)
    sweepfiles.py each sweep's row as a file (``sweeps/<id>.json``)
    atomic.py    a file written whole or not at all (temporary file, then a rename)
    check.py     ``mlplab check``: the index and every run's files verified, digests too
    rebuild.py   a lost or damaged index rebuilt from the run folders (``check --repair``)
    curves.py    each finished run's epoch curves, kept in the index for the store figures
    table.py     the runs table: rows filtered, sorted and laid out as text
    groups.py    runs grouped over seeds (``--group-by``) and two groups compared
    owners.py    the process that owns an unfinished run, and whether it is gone
"""

from __future__ import annotations

from .store import Store as Store
from .store import StoreError as StoreError
from .models import load_model as load_model

__all__ = ["Store", "StoreError", "load_model"]
