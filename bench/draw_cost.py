"""What drawing the report's PNGs costs (issue 24, docs/performance.md "Drawing the report's
PNGs"): the CPU time to draw each figure of a store's report from its record and write it
(``draw(record)`` and ``report.figfiles.write_png``; best of ``--repeat``), and whole passes
over all of them the way the report draws them (``report.figfiles.draw_all`` into an empty
folder, garbage collection included), the store half and the best run's half apart.

The records are loaded once, before any timing. With ``--against SRC`` (another checkout's
``src``) the same measurement runs for that code too, alternately in child processes, and
the table shows both and their ratio: compare within one run, the machine may be shared.

    python bench/draw_cost.py STORE                          # this checkout
    python bench/draw_cost.py STORE --against /work/main/src # before / after, in one run

STORE is only read (the PNGs go to a temporary folder), but the hyper-parameter importance
it needs is computed and cached in ``STORE/cache`` when missing: use a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(store_root: Path, repeat: int, passes: int) -> dict:
    """Per figure ``{name: [half, cpu_seconds]}`` and whole passes ``{half: [seconds]}``."""
    import matplotlib

    matplotlib.use("agg")
    from mlplab.figures.data_run import load_run_figdata
    from mlplab.figures.data_store import load_store_figdata
    from mlplab.report.build import best_run, run_figure_jobs, store_figure_jobs
    from mlplab.report.figfiles import draw_all, figure_key, write_png
    from mlplab.report.sweep import hyperparameter_figures
    from mlplab.store.store import Store

    store = Store(store_root)
    runs = store.runs()
    done = [r for r in runs if r.status == "done"]
    halves = {"store": store_figure_jobs(load_store_figdata(store))
              + hyperparameter_figures(done, store_root=store_root)[0],
              "run": run_figure_jobs(load_run_figdata(store, best_run(runs).run_id))}
    figures, whole = {}, {"store": [], "run": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        draw_all(halves["store"][:1], out / "warm", prune=False)         # fonts, imports
        for half, jobs in halves.items():
            for name, draw, record in jobs:
                key, best = figure_key(name, draw, record), float("inf")
                for _ in range(repeat):
                    start = time.process_time()
                    write_png(draw(record), out / f"{name}.png", key)
                    best = min(best, time.process_time() - start)
                figures[name] = [half, best]
        for p in range(passes):
            for half, jobs in halves.items():
                folder = out / f"{half}{p}"
                start = time.process_time()
                draw_all(jobs, folder, prune=False)
                whole[half].append(time.process_time() - start)
                shutil.rmtree(folder)
    return {"figures": figures, "passes": whole}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--against", type=Path, help="another checkout's src, measured too")
    parser.add_argument("--repeat", type=int, default=3, help="draws of each figure (best kept)")
    parser.add_argument("--passes", type=int, default=3, help="whole passes (median kept)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --against")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.store, args.repeat, args.passes)))
        return
    trees = {"this": HERE.parent / "src"}
    if args.against:
        trees = {"against": args.against.resolve(), **trees}
    results: dict[str, list[dict]] = {label: [] for label in trees}
    for _ in range(args.rounds if args.against else 1):
        for label, src in trees.items():
            env = {**os.environ, "PYTHONPATH": str(src)}
            done = subprocess.run([sys.executable, __file__, str(args.store), "--child",
                                   "--repeat", str(args.repeat), "--passes", str(args.passes)],
                                  env=env, check=True, capture_output=True, text=True)
            results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    labels = list(trees)
    first = results[labels[0]][0]["figures"]
    best = {label: {name: min(r["figures"][name][1] for r in rs) for name in first}
            for label, rs in results.items()}
    print(f"{'figure':26s} {'half':5s} " + " ".join(f"{label:>8s}" for label in labels)
          + ("   ratio" if len(labels) == 2 else ""))
    for name, (half, _) in first.items():
        cells = [best[label][name] for label in labels]
        print(f"{name:26s} {half:5s} " + " ".join(f"{c:8.3f}" for c in cells)
              + (f" {cells[1] / cells[0]:7.2f}" if len(cells) == 2 else ""))
    for what, pick in (("sum of figures", None), ("whole pass, store half", "store"),
                       ("whole pass, run half", "run"), ("whole pass, both", "both")):
        cells = []
        for label in labels:
            if pick is None:
                cells.append(sum(best[label].values()))
            else:
                halves = ("store", "run") if pick == "both" else (pick,)
                cells.append(median([sum(r["passes"][h][p] for h in halves)
                                     for r in results[label] for p in range(args.passes)]))
        print(f"{what:32s} " + " ".join(f"{c:8.3f}" for c in cells)
              + (f" {cells[1] / cells[0]:7.2f}" if len(cells) == 2 else ""))
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
