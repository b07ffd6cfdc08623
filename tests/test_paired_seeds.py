"""Paired seeds (common random numbers): seed index i of every configuration of a sweep
means the same data split, the same minibatch order and, where the layer shapes and the
initialiser agree, the same initial weights, so configurations can be compared seed by
seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlplab.store import Store
from mlplab.sweep import run_sweep

BASE = {"name": "paired", "data": {"name": "xor", "n": 80, "seed": 3},
        "model": {"hidden": [4]},
        "train": {"optimizer": "sgd", "batch_size": 16, "epochs": 3, "seed": 11},
        "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 0}}


def _by_lr_and_seed(out: Path) -> dict[tuple[float, int], str]:
    store = Store(out, readonly=True)
    return {(r.config["train"]["lr"], r.config["train"]["seed"]): r.run_id
            for r in store.runs(status="done")}


def _step_losses(store: Store, run_id: str) -> np.ndarray:
    m = store.metrics(run_id)
    return m[(m["scope"] == "step") & (m["metric"] == "loss")].sort_values("step")["value"].to_numpy()


@pytest.mark.slow
def test_configurations_differing_only_in_lr_share_weights_and_batches(tmp_path: Path):
    # two learning rates so small that the weights barely move: a step's loss then
    # depends on which batch the step saw, so equal loss series mean equal batches
    run_sweep({**BASE, "sweep": {"strategy": "grid", "seeds": 2,
                                 "grid": {"train.lr": [1e-9, 3e-9]}}},
              out=tmp_path, workers=1, quiet=True, report=False)
    store, runs = Store(tmp_path, readonly=True), _by_lr_and_seed(tmp_path)
    assert sorted(runs) == [(1e-9, 11), (1e-9, 12), (3e-9, 11), (3e-9, 12)]
    for seed in (11, 12):
        a, b = runs[(1e-9, seed)], runs[(3e-9, seed)]
        wa, wb = store.weights(a, 0, "init"), store.weights(b, 0, "init")
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        la, lb = _step_losses(store, a), _step_losses(store, b)
        assert len(la) == len(lb) == 3 * 4          # 56 training points in batches of 16
        np.testing.assert_allclose(la, lb, rtol=1e-6)
    # and different seed indices really differ, in weights and in batch order
    w11, w12 = store.weights(runs[(1e-9, 11)], 0, "init"), store.weights(runs[(1e-9, 12)], 0, "init")
    assert not all(torch.equal(w11[k], w12[k]) for k in w11)
    assert not np.allclose(_step_losses(store, runs[(1e-9, 11)]),
                           _step_losses(store, runs[(1e-9, 12)]), rtol=1e-3)

