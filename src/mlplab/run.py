"""Train a configuration into a store: one seed with the reference engine, N seeds as
one cohort. What ``mlplab train`` calls.

>>> # ids = run_config(load_config("xor.yaml"), out="runs/xor", seeds=8)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import RunConfig, to_dict
from .progress import ProgressBar
from .store import Store


def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``seeds`` copies of ``cfg`` with train seeds ``seed, seed+1, ...``."""
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def run_config(cfg: RunConfig, out: str | Path, seeds: int = 1, device: str = "cpu",
               report: bool = True, quiet: bool = False) -> list[str]:
    """Train ``cfg`` (``seeds`` > 1: that many seeds as one cohort) into the store ``out``,
    write the report unless ``report`` is False, and return the new run ids."""
    store = Store(out)
    configs = seed_configs(cfg, seeds)
    ids = [store.new_run_id(c.name, to_dict(c)) for c in configs]
    for run_id, c in zip(ids, configs):
        store.mark(run_id, c.name, to_dict(c), "running")
    bar = ProgressBar(len(configs), "runs", quiet=quiet, best_label=f"best {cfg.stopping.monitor}")
    try:
        if seeds == 1:
            from .engine import train

            records = [train(cfg, run_id=ids[0], device=device)]
        else:
            from .cohort import train_cohort

            records = train_cohort(configs, run_ids=ids, device=device)
        for rec in records:
            store.write_run(rec)
            bar.update(1, best=rec.best.best_value)
    except Exception as e:
        for run_id, c in zip(ids, configs):
            if store.run(run_id).status != "done":
                store.mark(run_id, c.name, to_dict(c), "failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        bar.close()
    if report:
        from .report import build_report

        build_report(out)
    return ids
