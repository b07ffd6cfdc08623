"""Train a configuration into a store: one seed with the reference engine, N seeds as
one cohort. What ``mlplab train`` calls.

>>> # ids = run_config(load_config("xor.yaml"), out="runs/xor", seeds=8)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import ConfigError, RunConfig, to_dict
from .progress import ProgressBar
from .store import Store


def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``seeds`` copies of ``cfg`` with train seeds ``seed, seed+1, ...``."""
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def check_data_and_head(cfg: RunConfig) -> None:
    """Load the data and resolve the output head: raises ConfigError before any training."""
    from .data import load_data

    data = load_data(cfg.data)
    from .model import resolve_head   # imports torch: only once the data is known good

    resolve_head(cfg.model, cfg.train.loss, data.n_classes)


def run_config(cfg: RunConfig, out: str | Path, seeds: int = 1, device: str = "cpu",
               report: bool = True, quiet: bool = False, compile: bool = False) -> list[str]:
    """Train ``cfg`` (``seeds`` > 1: that many seeds as one cohort) into the store ``out``,
    write the report unless ``report`` is False, and return the new run ids. ``compile``:
    train as a cohort (even of one seed) with compiled epochs
    (:func:`mlplab.cohort.train_cohort`).

    The data and the head are checked first, so a bad file or loss leaves no store behind.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError("--seeds", seeds, "a whole number >= 1")
    check_data_and_head(cfg)
    store = Store(out)
    configs = seed_configs(cfg, seeds)
    ids = [store.new_run_id(c.name, to_dict(c)) for c in configs]
    for run_id, c in zip(ids, configs):
        store.mark(run_id, c.name, to_dict(c), "running")
    bar = ProgressBar(len(configs), "runs", quiet=quiet, best_label=f"best {cfg.stopping.monitor}")
    try:
        if seeds == 1 and not compile:
            import torch

            from .engine import train

            # tiny networks: one intra-op thread beats two (thread hand-off costs more
            # than the arithmetic; several times slower on a busy 2-core machine)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                records = [train(cfg, run_id=ids[0], device=device)]
            finally:
                torch.set_num_threads(threads)
        else:
            from .cohort import train_cohort

            records = train_cohort(configs, run_ids=ids, device=device, compile=compile)
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
