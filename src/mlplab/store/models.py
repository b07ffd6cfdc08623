"""A stored run back as a ``torch.nn.Module`` in one call, from a store or a run's folder
(safetensors only: no pickle is ever loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .store import INDEX, Store, StoreError

if TYPE_CHECKING:
    import torch


def load_model(store_dir: str | Path, run_id: str | None = None, which: str = "best") -> "torch.nn.Module":
    """Load a run as a ``torch.nn.Module`` in one call: ``store_dir`` is a store (its only
    run if ``run_id`` is None) or one run's folder ``STORE/runs/<run-id>``.

    >>> import tempfile, torch, mlplab
    >>> cfg = mlplab.from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3}})
    >>> with tempfile.TemporaryDirectory() as out:
    ...     (run_id,) = mlplab.run_config(cfg, out, report=False, quiet=True)
    ...     net = load_model(out)                              # the store's only run
    ...     same = load_model(Path(out) / "runs" / run_id)     # the run's folder
    ...     net(torch.zeros(3, 2)).shape, torch.equal(net[0].weight, same[0].weight)
    (torch.Size([3, 1]), True)
    """
    folder = Path(store_dir)
    if run_id is None and (folder / "config.json").is_file() \
            and (folder.parent.parent / INDEX).is_file():
        store_dir, run_id = folder.parent.parent, folder.name
    store = Store(store_dir, readonly=True)
    if run_id is None:
        done = store.runs(status="done")
        if len(done) != 1:
            raise StoreError(f"store '{store_dir}' has {len(done)} runs; name one: "
                             + ", ".join(r.run_id for r in done[:10]))
        run_id = done[0].run_id
    return store.load_model(run_id, which=which)
