"""A small real store for the export tests: a grid over learning rate and optimizer,
trained with the reference engine and indexed as one sweep (each run's sweep entry names
the swept keys, as the sweep driver writes it), one run with a restart, and one run whose
``metrics.parquet`` is truncated afterwards (damaged on disk, still ``done`` in the index).
"""

from __future__ import annotations

import copy
from pathlib import Path

from mlplab.config import from_dict, to_dict
from mlplab.engine.reference import train
from mlplab.store.store import Store

import figstores

SWEPT = ("train.lr", "train.optimizer")
GRID = [(0.05, "momentum"), (0.2, "momentum"), (0.05, "adam")]
DAMAGED = "grid-damaged"
FAILED = "grid-failed"


def build_store(root: Path) -> Store:
    """The store (a few seconds): ``grid-0`` .. ``grid-2``, ``grid-restarts`` (two
    attempts, the second kept), :data:`DAMAGED` and :data:`FAILED` (indexed, no files)."""
    store = Store(root)
    for i, (lr, optimizer) in enumerate(GRID + [(0.05, "momentum"), (0.1, "sgd")]):
        raw = copy.deepcopy(figstores.RESTART_CONFIG)
        raw["train"].update(lr=lr, optimizer=optimizer, epochs=30)
        run_id = "grid-restarts" if i == 3 else DAMAGED if i == 4 else f"grid-{i}"
        if i != 3:
            raw["stopping"]["restarts"] = 0
        entry = {"config_id": f"c{i}", "params": {"train.lr": lr, "train.optimizer": optimizer},
                 "seed_index": 0, "stage": None, "trial": None}
        store.write_run(train(from_dict(raw), run_id=run_id), sweep_id="sw", summary=entry)
    raw = copy.deepcopy(figstores.RESTART_CONFIG)
    store.mark(FAILED, "grid", to_dict(from_dict(raw)), "failed", sweep_id="sw", error="boom")
    parquet = store.run_dir(DAMAGED) / "metrics.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])
    return store
