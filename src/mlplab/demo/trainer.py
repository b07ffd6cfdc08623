"""What every section of the seed study uses: its scale, a section's result, the trainer
that trains cohorts into a section's store, the post's configurations, and the small
measures the findings are worded from.

>>> quartiles([1, 2, 3, 4, 5])
(2.0, 3.0, 4.0)
>>> censored([12.0, float("nan")], budget=100).tolist(), epochs_sesoi([4.0, 6.0, 30.0])
([12.0, 101.0], 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mlplab.config import RunConfig, from_dict, to_dict
from mlplab.progress import ProgressBar
from mlplab.record import RunRecord
from mlplab.store.store import Store
from mlplab.strictjson import jsonable
from .claims import Claim, Judged, RateClaim


@dataclass(frozen=True)
class DemoScale:
    """How big the study is: the full demo, or ``--quick`` for a smoke test."""

    xor_seeds: int = 256
    init_seeds: int = 48
    optim_lr_seeds: int = 4
    optim_seeds: int = 32
    depth_seeds: int = 12
    length_seeds: int = 12
    xor_epochs: int = 1000
    circle_epochs: int = 300
    optim_epochs: int = 200      # full batch: one step an epoch
    depth_epochs: int = 40       # 1800 training points, 29 minibatches an epoch
    depth_points: int = 6000     # 60 % test: 3600 points, noise floor under one point at 90 %
    length_epochs: int = 400
    staged_seeds: int = 3
    staged_epochs: int = 200
    confirm_seeds: int = 12      # fresh seeds for the staged sweep's pick and its start


QUICK = DemoScale(xor_seeds=16, init_seeds=6, optim_lr_seeds=2, optim_seeds=4, depth_seeds=2,
                  length_seeds=3, xor_epochs=150, circle_epochs=40, optim_epochs=30, depth_epochs=8,
                  depth_points=1000, length_epochs=60, staged_seeds=2, staged_epochs=25,
                  confirm_seeds=3)


@dataclass(frozen=True)
class SectionResult:
    """One finding: its title, the generated sentence, the claims it tests, the numbers
    behind it (a table of rows) and the figures that show it. A section states its claims;
    ``run_demo`` judges the whole study's claims together and fills ``judged`` and
    ``verdict`` (one of :data:`~mlplab.demo.claims.KINDS`)."""

    key: str
    title: str
    finding: str
    claims: list[Claim | RateClaim]
    numbers: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    store: Path | None = None
    judged: list[Judged] = field(default_factory=list)
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The section as strict-JSON data: its verdict, each claim with n and ci, the numbers."""
        return jsonable({"key": self.key, "title": self.title, "finding": self.finding,
                         "verdict": self.verdict, "claims": [j.to_dict() for j in self.judged],
                         "numbers": self.numbers, "rows": self.rows, "store": self.store})


# -- the post's network and the datasets ----------------------------------------------------

def xor_config(scale: DemoScale) -> RunConfig:
    """The post's XOR net: 2-4-1 ReLU/sigmoid, Xavier-uniform, MSE, SGD momentum 0.9, lr 0.02,
    full batch on the four points, no early stop (patience = epochs) and no restarts."""
    return from_dict({
        "name": "xor-post",
        "data": {"name": "xor", "n": 4, "noise": 0.0, "split": [1.0, 0.0, 0.0]},
        "model": {"hidden": [4], "activation": "relu", "output": "sigmoid", "init": "xavier_uniform"},
        "train": {"loss": "mse", "optimizer": "momentum", "lr": 0.02, "momentum": 0.9,
                  "batch_size": 0, "epochs": scale.xor_epochs},
        "stopping": {"monitor": "val_loss", "patience": scale.xor_epochs, "restarts": 0},
        "probe": {"every": 5, "activations_every": 25, "boundary_snapshots": 4}})


def circles_config(scale: DemoScale, rings: int = 2, epochs: int | None = None) -> RunConfig:
    return from_dict({
        "name": f"circles{rings}",
        "data": {"name": "circles", "rings": rings, "n": 600, "noise": 0.15},
        "model": {"hidden": [8, 8], "activation": "relu", "init": "xavier_uniform"},
        "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 64,
                  "epochs": epochs or scale.circle_epochs},
        # the whole budget, no target: the studies read accuracy against the epochs
        "stopping": {"monitor": "val_acc", "patience": epochs or scale.circle_epochs, "restarts": 0,
                     "target": None},
        "probe": {"every": 10, "activations_every": 50, "boundary_snapshots": 6}})


def mixture_config(epochs: int, spread: float = 0.6, hidden: Sequence[int] = (16, 16),
                   batch_size: int = 64) -> RunConfig:
    """The 5-class 2-D Gaussian mixture of 1000 points, a ReLU net, cross-entropy, Adam."""
    return from_dict({
        "name": "mixture5",
        "data": {"name": "gaussians", "k": 5, "n": 1000, "spread": spread, "noise": 0.0},
        "model": {"hidden": list(hidden), "activation": "relu", "init": "he_uniform"},
        "train": {"loss": "ce", "optimizer": "adam", "lr": 0.01, "batch_size": batch_size,
                  "epochs": epochs},
        "stopping": {"monitor": "val_loss", "patience": epochs, "restarts": 0},
        "probe": {"every": 10, "activations_every": 50, "boundary_snapshots": 4}})


# -- training into a section store ----------------------------------------------------------

class Trainer:
    """Trains cohorts into section stores and counts runs for the progress bar."""

    def __init__(self, out: Path, total: int, quiet: bool):
        self.out = out
        self.bar = ProgressBar(total, "runs", quiet=quiet)

    def store(self, key: str) -> Store:
        return Store(self.out / key)

    def cohort(self, key: str, configs: Sequence[RunConfig]) -> list[RunRecord]:
        """Train ``configs`` as cohorts (grouped by shape) and write them to ``out/key``."""
        from mlplab.engine.cohort import train_cohort
        from mlplab.engine.cohort_members import cohort_key

        store = self.store(key)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(configs):
            groups.setdefault(cohort_key(c), []).append(i)
        records: list[RunRecord | None] = [None] * len(configs)
        for idx in groups.values():
            group = [configs[i] for i in idx]
            ids = [store.new_run_id(c.name, to_dict(c)) for c in group]
            for rec, i in zip(train_cohort(group, ids), idx):
                store.write_run(rec)
                records[i] = rec
            self.bar.update(len(idx))
        return [r for r in records if r is not None]


def seeds_of(cfg: RunConfig, n: int, offset: int = 0) -> list[RunConfig]:
    return [replace(cfg, train=replace(cfg.train, seed=offset + i)) for i in range(n)]


# -- numbers from records -------------------------------------------------------------------

def epoch_values(rec: RunRecord, metric: str, attempt: int = 0) -> np.ndarray:
    """The per-epoch series of ``metric`` for one attempt, ``[E]``."""
    f = rec.metrics.to_frame()
    sel = (f["scope"] == "epoch") & (f["metric"] == metric) & (f["attempt"] == attempt)
    return f.loc[sel].sort_values("epoch")["value"].to_numpy()


def epochs_to(rec: RunRecord, metric: str, target: float, attempt: int = 0) -> float:
    """Epochs (1-based count) until ``metric`` first reached ``target``; nan if never."""
    values = epoch_values(rec, metric, attempt)
    hit = np.flatnonzero(values >= target) if metric.endswith("acc") else \
        np.flatnonzero(values <= target)
    return float(hit[0] + 1) if len(hit) else float("nan")


def censored(epochs: Sequence[float], budget: int) -> np.ndarray:
    """Epochs to a target with the runs that never reached it counted as ``budget + 1``.

    Dropping them would compare only the runs that succeeded; a rank or permutation test on
    the censored values stays valid (a failure is slower than any success)."""
    e = np.asarray(epochs, dtype=float)
    return np.where(np.isfinite(e), e, budget + 1.0)


def epochs_sesoi(reference: Sequence[float]) -> float:
    """The smallest speed-up that matters: 10 % of the reference arm's median epochs (censored
    values included), and never under one epoch, the measure's resolution."""
    return max(1.0, round(0.1 * float(np.median(reference)), 1))


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3) of the finite values; nans if there are none."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return (float("nan"),) * 3
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return float(q1), float(med), float(q3)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def fmt_q(q: tuple[float, float, float], unit: str = "") -> str:
    if not np.isfinite(q[1]):
        return "never"
    return f"{q[1]:.3g}{unit} [{q[0]:.3g}, {q[2]:.3g}]"
