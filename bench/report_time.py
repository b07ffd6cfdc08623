"""Where ``mlplab report STORE`` spends its time (issue 24, docs/performance.md "The report's
own time").

``--walls N``: N pairs of the report drawn from nothing (``figures/``, ``runs/*/figures``
and ``cache/`` removed first, as ``bench/sweep_cost.py::cold_report`` does) and again on
the unchanged store, each a fresh ``python -m mlplab report`` process: its wall time and
the CPU time of its whole process tree (the report forks), with the load average.

``--phases``: the report's parts one after the other in one fresh process, each with its
CPU time (the check, the store's figure data, importing Optuna's evaluators, the
importance, importing torch, the best run's figure data, drawing, the findings), PNGs
drawn to a temporary folder. The store is modified (its figures, cache, damage marks):
give it a copy.

    python bench/report_time.py /tmp/store-copy --walls 3 --phases
    python bench/report_time.py /tmp/store-copy --walls 3 --src /other/checkout/src   # before
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

PHASES = r'''
import sys, tempfile, time
from pathlib import Path
laps, t0 = {}, time.process_time()
def lap(name):
    global t0
    t = time.process_time(); laps[name] = t - t0; t0 = t
import mlplab.report.build as B
from mlplab.store.check import check_store
from mlplab.store.store import Store
lap("imports")
root = Path(sys.argv[1])
store = Store(root)
check_store(root, repair=True); lap("check_store(repair=True)")
runs = store.runs(); done = [r for r in runs if r.status == "done"]; best = B.best_run(runs)
from mlplab.figures.data_store import load_store_figdata
store_data = load_store_figdata(store); lap("store figure data")
import optuna.importance; lap("importing optuna.importance")
from mlplab.report.sweep import hyperparameter_figures
hyper_jobs, _ = hyperparameter_figures(done, store_root=root); lap("importance and parallel data")
import torch; lap("importing torch")
from mlplab.figures.data_run import load_run_figdata
run_data = load_run_figdata(store, best.run_id); lap("best run's figure data")
out = Path(tempfile.mkdtemp())
B.draw_all(B.store_figure_jobs(store_data) + hyper_jobs, out / "store"); lap("drawing the store's PNGs")
B.draw_all(B.run_figure_jobs(run_data), out / "run"); lap("drawing the best run's PNGs")
B.run_findings(root, best.run_id); lap("findings")
for name, cpu in laps.items():
    print(f"  {name:34s} cpu {cpu:5.2f} s")
'''


def clear(store: Path) -> None:
    """Every figure and cache entry removed, as after a sweep."""
    for folder in [store / "figures", *store.glob("runs/*/figures")]:
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(store / "cache", ignore_errors=True)


def report(store: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (the whole process tree) of one ``mlplab report``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mlplab", "report", str(store)], env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="a store to report (a copy: it is modified)")
    parser.add_argument("--walls", type=int, default=0, help="pairs of cold and again reports")
    parser.add_argument("--phases", action="store_true", help="each part's CPU time")
    parser.add_argument("--src", help="PYTHONPATH for mlplab (default: as this process has it)")
    args = parser.parse_args()
    env = dict(os.environ, **({"PYTHONPATH": args.src} if args.src else {}))
    for _ in range(args.walls):
        clear(args.store)
        (cold, cold_cpu), (again, again_cpu) = report(args.store, env), report(args.store, env)
        print(f"cold {cold:5.2f} s (cpu {cold_cpu:5.2f})  again {again:5.2f} s (cpu {again_cpu:5.2f})"
              f"  load {os.getloadavg()[0]:.2f}", flush=True)
    if args.phases:
        clear(args.store)
        print(f"phases (load {os.getloadavg()[0]:.2f}):", flush=True)
        subprocess.run([sys.executable, "-c", PHASES, str(args.store)], env=env, check=True)


if __name__ == "__main__":
    main()
