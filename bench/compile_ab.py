"""Compiled against eager cohorts, probe on and off, taking turns in one process.

``mlplab bench --compile`` and ``mlplab bench`` are separate runs, and the shared machine
moves between them; this times the four cohorts of one workload (compiled or eager, probe
on or off) in turns, ``--rounds`` times, after one compiled run that builds or loads the
package, and prints each one's fastest and median seconds and the probe's cost.

    PYTHONPATH=src .venv/bin/python bench/compile_ab.py [--workload W2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from mlplab import bench
from mlplab.engine.cohort import train_cohort
from mlplab.engine.process import freeze_imports


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="W2", choices=["W1", "W2"])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--quick", action="store_true", help="the small workloads of the tests")
    a = p.parse_args()
    w = {x.name: x for x in bench.workloads(a.quick)}[a.workload]
    freeze_imports()                 # as the console script does after its imports
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    train_cohort(w.configs, compile=True)
    print(f"{w.name}: first compiled cohort {time.perf_counter() - start:.1f} s "
          "(builds or loads the package)")
    times: dict[tuple[bool, bool], list[float]] = {}
    for _ in range(a.rounds):
        for compiled in (True, False):
            for probe in (True, False):
                start = time.perf_counter()
                train_cohort(w.configs, compile=compiled, probe=probe)
                times.setdefault((compiled, probe), []).append(time.perf_counter() - start)
    for compiled in (True, False):
        on, off = times[(compiled, True)], times[(compiled, False)]
        print(f"{'compiled' if compiled else 'eager':8s}  probe on  fastest {min(on):.3f} s "
              f"median {statistics.median(on):.3f} s | probe off fastest {min(off):.3f} s "
              f"median {statistics.median(off):.3f} s | probe cost "
              f"{statistics.median(on) / statistics.median(off):.2f}x")


if __name__ == "__main__":
    main()
