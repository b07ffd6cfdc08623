"""The store figures' statistics at 10,000 runs: two source trees back to back (issue 24,
docs/performance.md, "Store figures' statistics at 10,000 runs").

For each tree given by ``--src`` (a ``src`` folder, put first on PYTHONPATH of a fresh
process), in turn and ``--reps`` times: the dashboard overview's first load on a
10,000-run synthetic store (``sweep_cost.dashboard_load``, the bench's own measure) and
``load_store_figdata`` of the 1000-run store (after its imports). Wall and CPU seconds,
and the load average before and after: on a shared machine compare the trees within one
run, and trust CPU more than wall.

    python bench/store_figures.py --store1000 /tmp/bs1/store-1000 \\
        --src /work/main/src --src src --reps 3

The 10,000-run store is made from the 1000-run one as ``bench/sweep_cost.py`` makes it
(index rows copied under new ids, run folders hard-linked) in ``--out`` (a temporary
folder by default); ``--store1000`` is only read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_cost import dashboard_load, synthetic_store  # noqa: E402   (a sibling script)

FIGDATA = ("import sys, time\n"
           "from pathlib import Path\n"
           "from mlplab.store.store import Store\n"
           "from mlplab.figures.data_store import load_store_figdata\n"
           "store = Store(Path(sys.argv[1]), readonly=True)\n"
           "t, cpu = time.perf_counter(), time.process_time()\n"
           "load_store_figdata(store)\n"
           "print(time.perf_counter() - t, time.process_time() - cpu)\n")


def figdata_load(root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``load_store_figdata`` of ``root`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", FIGDATA, str(root)], check=True, text=True,
                         capture_output=True).stdout
    wall, cpu = out.split()
    return float(wall), float(cpu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store1000", type=Path, required=True, help="a 1000-run store (only read)")
    p.add_argument("--src", action="append", required=True, help="a source tree (repeatable)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, help="folder for the 10,000-run store (default: temporary)")
    a = p.parse_args(argv)
    folder = a.out or Path(tempfile.mkdtemp(prefix="mlplab-store-figures-"))
    try:
        big = synthetic_store(a.store1000, folder / "synthetic-10000", 10)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        for _ in range(a.reps):
            for src in a.src:
                os.environ["PYTHONPATH"] = str(Path(src).resolve())
                dash, dash_cpu, _ = dashboard_load(big)
                fig, fig_cpu = figdata_load(a.store1000)
                print(f"{src}: dashboard 10k {dash:.2f} s (cpu {dash_cpu:.2f})  "
                      f"load_store_figdata 1000 {fig:.2f} s (cpu {fig_cpu:.2f})", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        if not a.out:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
