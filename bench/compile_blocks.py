"""Compiled cohorts with several full-batch epochs to a call against one, in turns.

``mlplab.engine.compiled_block.BLOCK_EPOCHS`` epochs of a full-batch cohort run as one
call of its compiled program. This times a workload's compiled cohort (probe on, as
``mlplab bench`` times it) with each of ``--epochs`` epochs per call, taking turns in one
process, ``--rounds`` times, after one run of each that builds or loads its package, and
prints each one's fastest and median seconds and model-steps/s.

    PYTHONPATH=src .venv/bin/python bench/compile_blocks.py [--workload W1] [--epochs 1 8]
        [--rounds 7] [--no-probe]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

from mlplab import bench
from mlplab.engine import compiled_block
from mlplab.engine.cohort import freeze_imports, train_cohort


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="W1", choices=["W1", "W2"])
    p.add_argument("--epochs", type=int, nargs="+", default=[1, compiled_block.BLOCK_EPOCHS])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--no-probe", action="store_true")
    p.add_argument("--quick", action="store_true", help="the small workloads of the tests")
    a = p.parse_args()
    w = {x.name: x for x in bench.workloads(a.quick)}[a.workload]
    steps = len(w.configs) * w.configs[0].train.epochs * (
        1 if w.name == "W1" else -(-700 // 64))
    freeze_imports()                 # as the console script does after its imports
    warnings.simplefilter("ignore")
    print(f"{w.name}, probe {'off' if a.no_probe else 'on'}, load {os.getloadavg()[0]:.2f}")
    for n in a.epochs:
        compiled_block.BLOCK_EPOCHS = n
        start = time.perf_counter()
        train_cohort(w.configs, compile=True, probe=not a.no_probe)
        print(f"  {n} epochs a call: first cohort {time.perf_counter() - start:.1f} s "
              "(builds or loads the package)", flush=True)
    times: dict[int, list[float]] = {n: [] for n in a.epochs}
    for _ in range(a.rounds):
        for n in a.epochs:
            compiled_block.BLOCK_EPOCHS = n
            start = time.perf_counter()
            train_cohort(w.configs, compile=True, probe=not a.no_probe)
            times[n].append(time.perf_counter() - start)
    for n, t in times.items():
        med = statistics.median(t)
        print(f"  {n} epochs a call: fastest {min(t):.3f} s, median {med:.3f} s, "
              f"{steps / med / 1e6:.2f}M model-steps/s (median)")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
