"""The benchmark's two workloads (W1, W2: :mod:`mlplab.bench`) and how it times them:
calls taken in turn, medians.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: the K configs and how the user loop trains one of them."""

    name: str
    description: str
    configs: list                     # list[RunConfig], one per model
    baseline_models: list[int]        # which of the K the per-model loop trains (timed)



def workloads(quick: bool = False) -> list[Workload]:
    """W1 and W2 (``quick``: a few models and steps, for tests)."""
    from mlplab.config import from_dict

    k1, steps1, sub1 = (8, 20, 2) if quick else (256, 1000, 16)
    k2, epochs2, n2, sub2 = (4, 2, 200, 2) if quick else (64, 100, 1000, 8)
    never = {"restarts": 0, "patience": 10 ** 9}
    w1 = [from_dict({"name": f"w1-seed{s}",
                     "data": {"name": "xor", "n": 4, "noise": 0.0, "split": [1.0, 0.0, 0.0]},
                     "model": {"hidden": [4], "activation": "relu", "init": "xavier_uniform"},
                     "train": {"loss": "mse", "optimizer": "momentum", "lr": 0.02,
                               "momentum": 0.9, "batch_size": 0, "epochs": steps1, "seed": s},
                     "stopping": never}) for s in range(k1)]
    w2 = [from_dict({"name": f"w2-lr{lr:.2e}", "data": {"name": "gaussians", "k": 5, "n": n2},
                     "model": {"hidden": [16, 16], "activation": "relu"},
                     "train": {"loss": "ce", "optimizer": "adam", "lr": float(lr),
                               "batch_size": 64, "epochs": epochs2, "seed": 0},
                     "stopping": never}) for lr in np.logspace(-4, -1, k2)]
    return [Workload("W1", f"XOR 4 points, 2-4-1 ReLU/sigmoid, Xavier-uniform, MSE, SGD momentum "
                           f"0.9, lr 0.02, full batch, {steps1} steps, K={k1} seeds", w1,
                     list(range(sub1))),
            Workload("W2", f"5-class Gaussian mixture of {n2} points, 2-16-16-5 ReLU, CE, Adam, "
                           f"minibatch 64, {epochs2} epochs, K={k2} lrs log-spaced 1e-4..1e-1",
                     w2, list(range(0, k2, k2 // sub2)))]



def median_times(runs: Sequence[Callable[[], Any]], repeats: int, min_seconds: float = 0.0
                  ) -> tuple[Any, list[float], int]:
    """Call ``runs`` in turn, at least ``repeats`` rounds and until the rounds have taken
    ``min_seconds`` in all: the first result of ``runs[0]``, each one's median wall time
    and the number of rounds (later results are dropped at once: a cohort's records are
    large)."""
    times: list[list[float]] = [[] for _ in runs]
    result = None
    while len(times[0]) < repeats or sum(map(sum, times)) < min_seconds:
        for i, run in enumerate(runs):
            start = time.perf_counter()
            out = run()
            times[i].append(time.perf_counter() - start)
            if result is None and i == 0:
                result = out
            del out
    return result, [float(np.median(t)) for t in times], len(times[0])
