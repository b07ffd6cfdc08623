"""Work units: a sweep's runs grouped into cohorts that one worker trains together.

Runs whose configs share a :func:`mlplab.engine.cohort_members.cohort_key` (data, shape,
batch size, optimizer, epochs, stopping, probe) can be one vectorized cohort. Each group
is cut into units no bigger than what fits a worker's memory, and small enough that
every worker gets work; the largest units come first so the pool ends evenly.

>>> split_sizes(10, 4)
[4, 3, 3]
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

from mlplab.config import RunConfig, to_dict
from .plan import PlannedRun

MAX_COHORT = 256                 # beyond this a cohort gains little and resumes coarsely
UNITS_PER_WORKER = 4             # units a worker gets, for the pool to end evenly...
BALANCE_MIN_COHORT = 100         # ...unless that cuts cohorts below this: per run, a cohort
# of 50 took 12.1 ms of CPU, of 100 9.3 ms, of 200 8.5 ms (bench/sweep-1000.yaml's XOR units)
MEMORY_SHARE = 0.5               # share of the available memory the workers may fill
PROBE_METRICS_PER_LAYER = 10     # per-layer step metrics kept by the probe (SPEC §5)


@dataclass(frozen=True)
class Unit:
    """Runs trained as one cohort by one worker; config dicts so any process can read them."""

    index: int
    run_ids: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    cost: float = 0.0            # estimated model-steps, to schedule the big ones first
    # each run's Bayes limit (BayesLimit.to_dict, None for the user's own data), computed
    # by the driver: a worker is told it (known_limit) and needs no scipy to compute it
    limits: tuple[dict[str, Any] | None, ...] = ()

    def __len__(self) -> int:
        return len(self.run_ids)


def split_sizes(n: int, cap: int) -> list[int]:
    """``n`` items in ``ceil(n / cap)`` parts of nearly equal size, none above ``cap``."""
    parts = max(1, math.ceil(n / max(cap, 1)))
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def model_bytes(cfg: RunConfig) -> int:
    """A generous estimate of one model's memory in a cohort: parameters with their
    gradients, optimizer state and copies, activations of a batch, the probe's step
    buffers for a whole attempt and the boundary snapshots."""
    n_train = max(int(cfg.data.n * cfg.data.split[0]), 1)
    batch = n_train if cfg.train.batch_size in (0,) else min(cfg.train.batch_size, n_train)
    widths = [2, *cfg.model.hidden, 8]       # input and output sizes are unknown here: small
    params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    steps = cfg.train.epochs * math.ceil(n_train / batch)
    layers = len(widths) - 1
    probe = steps // max(cfg.probe.every, 1) * (layers * PROBE_METRICS_PER_LAYER + 2) * 4
    acts = batch * sum(widths) * 4 * 4
    boundary = cfg.probe.boundary_snapshots * 48 * 48 * 8 * 4
    return 10 * params * 4 + acts + probe + boundary + 64 * 1024


def available_memory() -> int:
    """Bytes of memory available now (Linux ``MemAvailable``; 4 GiB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024 ** 3


def max_cohort_size(cfg: RunConfig, workers: int, memory: int | None = None) -> int:
    """The largest cohort of ``cfg`` that fits one worker's share of the memory."""
    memory = available_memory() if memory is None else memory
    per_worker = memory * MEMORY_SHARE / max(workers, 1)
    return max(1, min(MAX_COHORT, int(per_worker // model_bytes(cfg))))


def model_steps(cfg: RunConfig) -> float:
    n_train = max(int(cfg.data.n * cfg.data.split[0]), 1)
    batch = n_train if cfg.train.batch_size == 0 else min(cfg.train.batch_size, n_train)
    return cfg.train.epochs * math.ceil(n_train / batch) * (cfg.stopping.restarts + 1)


def plan_units(runs: Sequence[PlannedRun], workers: int, max_cohort: int | None = None,
               memory: int | None = None) -> list[Unit]:
    """Group ``runs`` by cohort key and cut the groups into units for ``workers``.

    A group is cut so no unit exceeds the memory cap (or ``max_cohort``), and so the
    sweep has at least about ``workers`` units when it has that many runs; and, where
    cohorts stay at :data:`BALANCE_MIN_COHORT` runs or more, about
    :data:`UNITS_PER_WORKER` units per worker, so that no worker trains a last big unit
    alone (five units of 200 on two workers: 600 runs on one, 400 on the other).
    """
    from mlplab.engine.cohort_members import cohort_key
    from mlplab.stats.bayes import data_bayes_limit

    as_dict: dict[Any, dict[str, Any]] = {}      # one dict per limit, sent once per unit

    def limit(cfg: RunConfig) -> dict[str, Any] | None:
        found = data_bayes_limit(cfg.data)
        if found is not None and found not in as_dict:
            as_dict[found] = found.to_dict()
        return None if found is None else as_dict[found]

    groups: dict[str, list[PlannedRun]] = {}
    for r in runs:
        groups.setdefault(cohort_key(r.config), []).append(r)
    workers = max(workers, 1)
    spread = max(math.ceil(len(runs) / (UNITS_PER_WORKER * workers)),
                 min(BALANCE_MIN_COHORT, math.ceil(len(runs) / workers)), 1)
    units: list[Unit] = []
    for members in groups.values():
        cap = min(max_cohort_size(members[0].config, workers, memory), spread)
        if max_cohort is not None:
            cap = min(cap, max_cohort)
        lo = 0
        for size in split_sizes(len(members), cap):
            part = members[lo:lo + size]
            lo += size
            units.append(Unit(0, tuple(r.run_id for r in part),
                              tuple(r.config_dict or to_dict(r.config) for r in part),
                              cost=sum(model_steps(r.config) for r in part),
                              limits=tuple(limit(r.config) for r in part)))
    units.sort(key=lambda u: -u.cost)
    return [replace(u, index=i) for i, u in enumerate(units)]


def default_workers() -> int:
    """One worker per core."""
    return os.cpu_count() or 1
