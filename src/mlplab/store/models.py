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


def locate_run(path: Path, run_id: str | None = None) -> tuple[Path, str]:
    """(store root, run id) for a run folder ``STORE/runs/ID``, or a store directory and
    ``run_id`` (None: the store's only finished run), as the commands that read one run
    (``diagnose``, ``landscape``) take it."""
    if not path.exists():
        raise StoreError(f"no run or store at '{path}'")
    if (path / "config.json").is_file() and path.parent.name == "runs":
        if run_id is not None and run_id != path.name:
            raise StoreError(f"--run-id {run_id!r} does not match the run folder '{path.name}'")
        return path.parent.parent, path.name
    store = Store(path, readonly=True)
    if run_id is not None:
        store.run(run_id)
        return path, run_id
    done = [r.run_id for r in store.runs(status="done")]
    if len(done) != 1:
        raise StoreError(f"store '{path}' has {len(done)} finished runs; name one with --run-id"
                         + (": " + ", ".join(done[:20]) if done else ""))
    return path, done[0]
