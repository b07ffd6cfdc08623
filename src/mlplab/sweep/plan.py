"""Planners: pure functions from a sweep spec and a base config to configurations.

A :class:`Candidate` is one configuration (the swept values and the full run config);
:func:`seed_runs` turns candidates into :class:`PlannedRun` s, one per seed, each with a
run id derived from its config hash, so a resumed sweep finds the same ids again.

>>> from mlplab.config import from_dict
>>> from mlplab.sweep.spec import parse_sweep
>>> base = from_dict({"data": {"name": "xor"}})
>>> spec = parse_sweep({"grid": {"train.lr": [0.01, 0.1], "model.hidden": [[4], [8]]}}, base)
>>> [c.params_dict() for c in plan_grid(spec, base)][:2]
[{'train.lr': 0.01, 'model.hidden': (4,)}, {'train.lr': 0.01, 'model.hidden': (8,)}]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from mlplab.config import RunConfig, to_dict, with_overrides
from mlplab.store.store import config_hash, slug
from .spec import Distribution, Grid, SweepConfig, freeze

Params = tuple[tuple[str, Any], ...]   # ordered (dotted key, value)


@dataclass(frozen=True)
class Candidate:
    """One configuration of a sweep: its swept values and the run config (base seed)."""

    params: Params
    config: RunConfig
    stage: int | None = None     # staged sweeps: the stage that proposed it
    trial: int | None = None     # optuna: the trial number

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: a candidate trained with one seed."""

    run_id: str
    config_id: str
    seed_index: int
    config: RunConfig
    candidate: Candidate
    config_dict: dict[str, Any] = field(default_factory=dict, compare=False)  # to_dict(config)


def round_sig(value: float, digits: int = 6) -> float:
    """``value`` rounded to ``digits`` significant digits (readable, stable hashes)."""
    return float(f"{value:.{digits}g}")


def make_candidate(base: RunConfig, params: Mapping[str, Any], spec: SweepConfig,
                   stage: int | None = None, trial: int | None = None) -> Candidate:
    """The run config ``base`` with ``params`` applied and the epoch budget enforced."""
    cfg = replace(with_overrides(base, dict(params)), sweep=None)
    if spec.budget.epochs is not None and cfg.train.epochs > spec.budget.epochs:
        cfg = replace(cfg, train=replace(cfg.train, epochs=spec.budget.epochs))
    return Candidate(tuple((k, freeze(v)) for k, v in params.items()), cfg, stage, trial)


def _unique(candidates: Sequence[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = config_id(c.config)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def grid_points(grid: Grid) -> list[dict[str, Any]]:
    """Every combination of a grid, the last key varying fastest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in grid))]


def plan_grid(spec: SweepConfig, base: RunConfig) -> list[Candidate]:
    """Grid search: the product of ``spec.grid``, duplicates removed."""
    return _unique([make_candidate(base, p, spec) for p in grid_points(spec.grid)])


def draw(dist: Distribution, rng: np.random.Generator) -> Any:
    """One value from a search-space dimension."""
    if dist.kind == "uniform":
        return round_sig(float(rng.uniform(dist.low, dist.high)))
    if dist.kind == "log_uniform":
        return round_sig(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    if dist.kind == "int":
        return int(rng.integers(int(dist.low), int(dist.high) + 1))
    return dist.choices[int(rng.integers(len(dist.choices)))]


def plan_random(spec: SweepConfig, base: RunConfig) -> list[Candidate]:
    """Random search: ``spec.n`` draws from ``spec.space`` (seeded), duplicates removed."""
    rng = np.random.default_rng(spec.seed)
    out = []
    for _ in range(spec.n):
        out.append(make_candidate(base, {k: draw(d, rng) for k, d in spec.space}, spec))
    return _unique(out)


def stage_grid(spec: SweepConfig, stage: int, carried: Mapping[str, Any], base: RunConfig) -> Grid:
    """The keys stage ``stage`` sweeps; later stages add ``train.lr`` around the best lr
    so far when ``retune_lr`` is set and the stage does not sweep lr itself."""
    grid = spec.stages[stage]
    if stage > 0 and spec.retune_lr and "train.lr" not in dict(grid):
        best_lr = float(carried.get("train.lr", base.train.lr))
        lrs = tuple(dict.fromkeys(round_sig(best_lr * f) for f in spec.retune_lr))
        grid = grid + (("train.lr", lrs),)
    return grid


def plan_stage(spec: SweepConfig, base: RunConfig, stage: int,
               carried: Mapping[str, Any]) -> list[Candidate]:
    """Stage ``stage`` of a staged sweep: its keys swept, the rest fixed at ``carried``
    (the winners of the earlier stages)."""
    out = []
    for point in grid_points(stage_grid(spec, stage, carried, base)):
        out.append(make_candidate(base, {**carried, **point}, spec, stage=stage))
    return _unique(out)


def hand_over(carried: Mapping[str, Any], winner: Candidate) -> dict[str, Any]:
    """The settings later stages start from: the earlier winners updated by this one."""
    return {**carried, **winner.params_dict()}


def stage_winner_params(spec: SweepConfig, stage: int, winner: Candidate,
                        carried: Mapping[str, Any], base: RunConfig) -> dict[str, Any]:
    """The values stage ``stage`` chose (its own keys only)."""
    keys = [k for k, _ in stage_grid(spec, stage, carried, base)]
    params = winner.params_dict()
    return {k: params[k] for k in keys}


def cap_candidates(candidates: list[Candidate], seeds: int,
                   runs_left: int | None) -> tuple[list[Candidate], bool]:
    """Keep the first candidates whose runs fit ``runs_left``; True if any were cut."""
    if runs_left is None:
        return candidates, False
    keep = max(runs_left // seeds, 0)
    return candidates[:keep], len(candidates) > keep


def _with_seed(raw: dict[str, Any], seed: int) -> dict[str, Any]:
    return {**raw, "train": {**raw["train"], "seed": seed}}


def config_id(cfg: RunConfig | dict[str, Any]) -> str:
    """Identity of a configuration over its seeds: the config hash with the seed cleared."""
    raw = cfg if isinstance(cfg, dict) else to_dict(cfg)
    return config_hash(_with_seed(raw, 0))[:10]


def run_id_for(sweep_id: str, cfg: RunConfig | dict[str, Any]) -> str:
    """The deterministic id of a sweep's run: ``<sweep-id>-<config hash>``."""
    return f"{sweep_id}-{config_hash(cfg if isinstance(cfg, dict) else to_dict(cfg))[:10]}"


def sweep_id_for(name: str, base: RunConfig, sweep_block: Mapping[str, Any]) -> str:
    """``<name>-<hash>`` of the base config and the sweep block: the same file, the same id."""
    body = json.dumps({"base": to_dict(replace(base, sweep=None)), "sweep": sweep_block},
                      sort_keys=True, default=str)
    return f"{slug(name)[:40]}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"


def seed_runs(candidates: Sequence[Candidate], seeds: int, sweep_id: str) -> list[PlannedRun]:
    """Each candidate with seeds ``train.seed, train.seed + 1, ...``, seed-major within
    a candidate."""
    out = []
    for c in candidates:
        raw = to_dict(c.config)
        cid = config_id(raw)
        for i in range(seeds):
            seed = c.config.train.seed + i
            cfg = replace(c.config, train=replace(c.config.train, seed=seed))
            d = _with_seed(raw, seed)
            out.append(PlannedRun(run_id_for(sweep_id, d), cid, i, cfg, c, d))
    return out


def planned_total(spec: SweepConfig, base: RunConfig) -> int:
    """Runs the sweep will plan at most (before duplicates across stages are reused)."""
    if spec.strategy == "grid":
        n = len(grid_points(spec.grid))
    elif spec.strategy == "random":
        n = spec.n
    elif spec.strategy == "optuna":
        n = spec.optuna.n_trials
    else:
        n = sum(len(grid_points(stage_grid(spec, i, {"train.lr": base.train.lr}, base)))
                for i in range(len(spec.stages)))
    total = n * spec.seeds
    if spec.budget.runs is not None:
        total = min(total, spec.budget.runs // spec.seeds * spec.seeds)
    return total
