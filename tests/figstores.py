"""Small real stores for the figure and report tests, trained with the reference engine.

Each builder trains tiny configurations (a few epochs on a few dozen points) so a whole
store takes seconds; the test modules build them once (module-scoped fixtures).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from mlplab.config import from_dict
from mlplab.engine.reference import train
from mlplab.store.store import RunInfo, Store

RESTART_CONFIG = {
    "name": "xor-restarts",
    "data": {"name": "xor", "n": 120},
    "model": {"hidden": [4], "activation": "relu"},
    "train": {"optimizer": "momentum", "lr": 0.05, "epochs": 60, "batch_size": 32},
    # seed 0's first network stalls near 0.25 (a plateau), the restart reaches the target
    "stopping": {"patience": 6, "min_delta": 0.002, "restarts": 2, "target": 0.05},
    "probe": {"activations_every": 2, "boundary_snapshots": 6},
}

FIVE_CLASS_CONFIG = {
    "name": "gauss5",
    "data": {"name": "gaussians", "k": 5, "n": 150},
    "model": {"hidden": [8, 8], "activation": "tanh"},
    "train": {"optimizer": "adam", "lr": 0.02, "epochs": 25, "batch_size": 50},
    "stopping": {"restarts": 0},
    "probe": {"activations_every": 3, "boundary_snapshots": 5},
}


def write_six_dim_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """A CSV of 6 numeric features and a 3-class label column named ``kind``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.digitize(x[:, 0] + 0.5 * x[:, 3], [-0.5, 0.5])
    rows = ["f1,f2,f3,f4,f5,f6,kind"] + [",".join(f"{v:.5f}" for v in r) + f",c{k}" for r, k in zip(x, y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def csv_config(csv_path: Path) -> dict:
    return {"name": "csv6", "data": {"name": f"csv:{csv_path}", "standardize": True},
            "model": {"hidden": [6], "activation": "sigmoid"},
            "train": {"optimizer": "adam", "lr": 0.03, "epochs": 20, "batch_size": 32},
            "stopping": {"restarts": 0}, "probe": {"activations_every": 4, "boundary_snapshots": 4}}


def train_one(root: Path, raw: dict, run_id: str) -> Store:
    """Train ``raw`` into the store at ``root`` as ``run_id``."""
    store = Store(root)
    store.write_run(train(from_dict(raw), run_id=run_id))
    return store


OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("xavier_uniform", "he_normal")
LRS = (0.01, 0.1, 0.5)


def many_runs_store(root: Path, n_runs: int = 50) -> Store:
    """``n_runs`` XOR runs over optimizer × init × lr × seeds, with a target (restarts
    allowed) and a staged-sweep row (lr, then optimizer) in the sweeps table."""
    store = Store(root)
    combos = [(o, i, lr, s) for s in range(10) for o in OPTIMIZERS for i in INITS for lr in LRS]
    made: dict[tuple[str, str, float], list[str]] = {}
    for k, (opt, init, lr, seed) in enumerate(combos[:n_runs]):
        raw = {"name": f"grid{k}", "data": {"name": "xor", "n": 48},
               "model": {"hidden": [4], "init": init},
               "train": {"optimizer": opt, "lr": lr, "epochs": 18, "batch_size": 0, "seed": seed},
               "stopping": {"patience": 6, "restarts": 1, "target": 0.2},
               "probe": {"activations_every": 3, "boundary_snapshots": 3}}
        run_id = f"run-{k:03d}"
        store.write_run(train(from_dict(raw), run_id=run_id), sweep_id="staged-1")
        made.setdefault((opt, init, lr), []).append(run_id)
    store.put_sweep("staged-1", "staged-xor", "staged", {}, status="done",
                    summary=staged_summary(store, made))
    return store


def staged_summary(store: Store, made: dict[tuple[str, str, float], list[str]]) -> dict:
    """A staged sweep's summary in the sweep driver's format: stage 0 sweeps train.lr
    (momentum, xavier), stage 1 sweeps train.optimizer at the winning lr."""
    def score(ids: list[str]) -> float:
        vals = [store.run(r).val_loss for r in ids]
        return statistics.median([v if v is not None else float("inf") for v in vals])

    configs, stages, lr_best = [], [], None
    stage0 = [(f"c-lr{lr}", {"train.lr": lr}, made[("momentum", "xavier_uniform", lr)]) for lr in LRS
              if ("momentum", "xavier_uniform", lr) in made]
    stage_sets = [(0, ["train.lr"], stage0)]
    for stage, keys, cands in stage_sets:
        entries = [{"config_id": cid, "params": params, "stage": stage, "run_ids": ids,
                    "score": score(ids)} for cid, params, ids in cands]
        best = min(entries, key=lambda e: e["score"])
        configs += entries
        stages.append({"stage": stage, "keys": keys, "winner": best["params"], "score": best["score"],
                       "config_id": best["config_id"], "n_configs": len(entries)})
        lr_best = best["params"]["train.lr"]
    stage1 = [(f"c-{o}", {"train.lr": lr_best, "train.optimizer": o}, made[(o, "xavier_uniform", lr_best)])
              for o in OPTIMIZERS if (o, "xavier_uniform", lr_best) in made]
    entries = [{"config_id": cid, "params": params, "stage": 1, "run_ids": ids, "score": score(ids)}
               for cid, params, ids in stage1]
    best = min(entries, key=lambda e: e["score"])
    configs += entries
    stages.append({"stage": 1, "keys": ["train.optimizer"], "winner": {"train.optimizer": best["params"]["train.optimizer"]},
                   "score": best["score"], "config_id": best["config_id"], "n_configs": len(entries)})
    return {"select": {"metric": "val_loss", "statistic": "median", "mode": "min"},
            "configs": configs, "stages": stages}


_BUILT: dict[str, Path] = {}


def built(tmp_path_factory, name: str) -> Path:
    """The store ``name`` (restarts, five_class, csv6, probe, many), built once per test session
    under pytest's temporary directory and shared by the figure and report tests."""
    if name not in _BUILT:
        root = tmp_path_factory.mktemp(name)
        if name == "restarts":
            train_one(root / "store", RESTART_CONFIG, "xor-restarts")
        elif name == "five_class":
            train_one(root / "store", FIVE_CLASS_CONFIG, "gauss5")
        elif name == "csv6":
            train_one(root / "store", csv_config(write_six_dim_csv(root / "six.csv")), "csv6")
        elif name == "probe":
            probe_run(root / "store")
        elif name == "many":
            many_runs_store(root / "store")
        else:
            raise KeyError(name)
        _BUILT[name] = root / "store"
    return _BUILT[name]


def fake_run(run_id: str, lr: float, optimizer: str = "sgd", seed: int = 0, init: str = "xavier_uniform",
             val_loss: float | None = 0.5, target: float | None = None, met: bool = False) -> RunInfo:
    """A finished run's index record, without files, for figure-data tests."""
    config = {"name": run_id, "data": {"name": "xor"},
              "model": {"hidden": [4], "init": init, "activation": "relu"},
              "train": {"lr": lr, "optimizer": optimizer, "seed": seed},
              "stopping": {"monitor": "val_loss", "target": target}}
    return RunInfo(run_id, None, run_id, "h", "done", "engine", seed, 0.0, 1.0, 1.0, 0, 1, 0,
                   "plateau", met, 10, val_loss, val_loss, 0.5, val_loss, 0.5, val_loss, None, {}, config)


def probe_run(root: Path) -> Store:
    """A user's own loop on a model with a Conv1d and a LayerNorm, recorded by a Probe."""
    import torch

    from mlplab.run import Probe

    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.LayerNorm(24), torch.nn.Linear(24, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.randn(64, 1, 8, generator=gen)
    y = x.sum(-1)
    with Probe(net, out=root, name="mine", optimizer=opt, activations_every=2) as probe:
        for _ in range(6):
            for i in range(0, 64, 16):
                loss = (net(x[i:i + 16]) - y[i:i + 16]).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                probe.step(loss)
                opt.step()
            probe.epoch(train_loss=loss.item())
    return Store(root)
