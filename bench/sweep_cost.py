"""What a sweep costs end to end, and how it grows (issue 24, docs/performance.md).

For each size (100, 1000 or 10,000 runs of the grid in ``bench/sweep-1000.yaml``, see
:func:`grid_file`) it runs the whole
command ``mlplab sweep FILE --workers W`` (sweep and report) as a child process and
measures: its wall time, the sweep's own wall and training time (the sweep's summary),
the store's size on disk, the peak memory of the command's processes, the report (as
the command timed it after the sweep, then ``mlplab report`` alone drawn from nothing and
again), ``mlplab runs`` and the dashboard overview's first
load (its callbacks' work in a fresh process, as a first browser visit triggers it).
Then it prints each target of issue 24 as met or not, with the measured ratio.

    python bench/sweep_cost.py                        # 100 and 1000 runs, 10,000 synthetic
    python bench/sweep_cost.py --sizes 100 1000 10000 # a real 10,000-run sweep too (minutes)
    python bench/sweep_cost.py --ray --sizes 100 1000 --synthetic   # on a local Ray cluster
    python bench/sweep_cost.py --ray --ray-nodes 2 --sizes 100 1000 --synthetic   # two Ray nodes

``--synthetic 10000`` (the default) makes a 10,000-run store from the 1000-run one (its
index rows copied under new run ids, the run folders hard-linked) for the targets that
read a store (``mlplab runs``, the dashboard), when a real 10,000-run sweep would take
too long. Timings are ratios within one run of this script: the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
GRID = HERE / "sweep-1000.yaml"


def grid_file(runs: int, folder: Path) -> Path:
    """The grid of ``bench/sweep-1000.yaml`` with ``runs`` runs: 1000 as written, 10,000
    with 50 seeds, 100 with two optimizers (sgd, adam) and two inits instead of 5 and 4."""
    text = GRID.read_text()
    if runs == 1000:
        return GRID
    if runs == 10000:
        text = text.replace("seeds: 5", "seeds: 50").replace("grid-1000", "grid-10000")
    elif runs == 100:
        text = (text.replace("[xavier_uniform, xavier_normal, he_uniform, he_normal]", "[xavier_uniform]")
                .replace("[sgd, momentum, rmsprop, adam, adagrad]", "[sgd, adam]")
                .replace("grid-1000", "grid-100"))
    else:
        raise SystemExit(f"--sizes: {runs} is not one of 100, 1000, 10000")
    path = folder / f"sweep-{runs}.yaml"
    path.write_text(text)
    return path


def group_peak_mb(pgid: int, peak: dict[int, int]) -> None:
    """Fold into ``peak`` (pid -> MB) the high-water mark of the resident set (VmHWM) of
    every live process of group ``pgid``. A sweep's pool workers are the forkserver's
    children, and the server outlives the driver, so the command's rusage does not count
    them: read their own peaks while they live."""
    for name in os.listdir("/proc"):
        try:
            if not name.isdigit() or os.getpgid(int(name)) != pgid:
                continue
            text = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):     # kB
                peak[int(name)] = max(peak.get(int(name), 0), int(line.split()[1]) // 1024)


def mlplab(*args: str, stdout: list[str] | None = None) -> tuple[float, int, float]:
    """Run ``python -m mlplab ARGS``: (wall seconds, peak RSS in MB of the largest of it
    and its descendants, CPU seconds of it and its waited-for descendants); its output is
    appended to ``stdout`` where given."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mlplab", *args], stdout=out, stderr=err,
                                start_new_session=True)     # its group: see group_peak_mb
        peak: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:       # VmHWM is a high-water mark: sampling finds each peak
            while not done.wait(0.2):
                group_peak_mb(proc.pid, peak)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)   # the rusage of it and its children
        wall = time.perf_counter() - start         # to the exit, not to the next sample
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"mlplab {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{err.read().decode()[-3000:]}")
        if stdout is not None:
            stdout.append(out.read().decode())
        return wall, max(usage.ru_maxrss // 1024, *peak.values(), 0), usage.ru_utime + usage.ru_stime


def dashboard_load(root: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds the dashboard overview's callbacks take on a first visit (a
    fresh process, its imports done first, as in a running server), and the wall seconds
    of the importance card's own callback after them (filled in once the rest shows)."""
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from mlplab.dashboard import callbacks, overview\n"
            "root = Path(sys.argv[1])\n"
            "t, cpu = time.perf_counter(), time.process_time()\n"
            "callbacks.table_view(root)\n"
            "callbacks.status_counts(root)\n"
            "overview.store_level(root, None, None)\n"
            "overview.param_figure(root, None, None)\n"
            "print(time.perf_counter() - t, time.process_time() - cpu)\n"
            "t, cpu = time.perf_counter(), time.process_time()\n"
            "overview.importance_figure(root)\n"
            "print(time.perf_counter() - t, time.process_time() - cpu)\n")
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, text=True,
                         capture_output=True).stdout
    (wall, cpu), (card, _) = (line.split() for line in out.strip().splitlines()[-2:])
    return float(wall), float(cpu), float(card)


def store_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def sweep_timing(root: Path) -> dict:
    db = sqlite3.connect(root / "mlplab.sqlite")
    try:
        (summary,) = db.execute("SELECT summary_json FROM sweeps ORDER BY created DESC").fetchone()
    finally:
        db.close()
    return json.loads(summary)["timing"]


def synthetic_store(src: Path, dst: Path, times: int) -> Path:
    """A store of ``times`` copies of ``src``'s runs: index rows under new run ids
    (``<id>.c<k>``), run folders hard-linked (no bytes copied)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    shutil.copy(src / "mlplab.sqlite", dst / "mlplab.sqlite")
    db = sqlite3.connect(dst / "mlplab.sqlite")
    with db:
        for table in ("runs", "attempts", "curves"):
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            sel = ", ".join("run_id || '.c' || ?" if c == "run_id" else c for c in cols)
            for k in range(1, times):     # a sweep's run ids hold no '.'
                db.execute(f"INSERT INTO {table} SELECT {sel} FROM {table} WHERE run_id NOT LIKE '%.c%'",
                           (k,))
    db.close()
    for folder in (src / "runs").iterdir():
        if folder.name.startswith("."):
            continue
        for k in range(times):
            shutil.copytree(folder, dst / "runs" / (folder.name + (f".c{k}" if k else "")),
                            copy_function=os.link)
    return dst


@contextlib.contextmanager
def local_ray(cpus: int, nodes: int = 1) -> Iterator[str]:
    """A Ray cluster on 127.0.0.1 of ``nodes`` nodes (raylets) sharing ``cpus`` CPUs,
    started by this script and stopped by process id: the test suite's helper
    (tests/realray.py), whose second node joins the head the way ``ray start
    --address`` would, on 127.0.0.1.
    """
    sys.path.insert(0, str(HERE.parent / "tests"))
    from realray import RAY_ENV, local_ray_cluster

    os.environ.update(RAY_ENV)              # the sweep's driver inherits it
    with local_ray_cluster(num_cpus=cpus // nodes, timeout=180.0, nodes=nodes) as cluster:
        yield cluster.address


def report_time(printed: str) -> float | None:
    """Seconds the report after a sweep took, as ``mlplab sweep`` printed them (what the
    user waits for after the last unit; the same report in a fresh process is
    :func:`cold_report`'s); None where it wrote no report."""
    written = re.search(r"report: .* \(written in ([0-9.]+) s\)", printed)
    return float(written.group(1)) if written else None


def cold_report(root: Path) -> float:
    """Wall seconds of ``mlplab report`` drawn from nothing, as after a sweep: every figure
    (PNGs and their key files) and the importance cache removed first."""
    for figures in [root / "figures", *root.glob("runs/*/figures")]:
        shutil.rmtree(figures, ignore_errors=True)
    shutil.rmtree(root / "cache", ignore_errors=True)
    return mlplab("report", str(root))[0]


def measure(runs: int, folder: Path, workers: int, ray: str | None, with_report: bool = True) -> dict:
    out = folder / f"store-{runs}"
    shutil.rmtree(out, ignore_errors=True)
    args = ["sweep", str(grid_file(runs, folder)), "--out", str(out), "--quiet"]
    args += ["--backend", "ray", "--address", ray] if ray else ["--workers", str(workers)]
    printed: list[str] = []
    whole, peak, whole_cpu = mlplab(*args, *([] if with_report else ["--no-report"]), stdout=printed)
    timing = sweep_timing(out)
    after = report_time(printed[0])
    if with_report and after is None:
        raise SystemExit(f"mlplab {' '.join(args)} printed no report time:\n{printed[0][-2000:]}")
    cold = cold_report(out) if with_report else None
    report, _, report_cpu = mlplab("report", str(out)) if with_report else (None, 0, None)
    runs_s, _, runs_cpu = mlplab("runs", str(out))
    dash, dash_cpu, card = dashboard_load(out)
    row = {"runs": runs, "whole_s": whole, "whole_cpu_s": whole_cpu, "sweep_s": timing["wall_s"], "train_s": timing["train_s"],
           "encode_s": timing.get("encode_s", 0.0), "workers": timing["workers"],
           "train_share": timing["train_share"], "store_mb": store_mb(out), "peak_mb": peak,
           "report_after_sweep_s": after, "report_cold_s": cold, "report_s": report,
           "report_cpu_s": report_cpu,
           "runs_s": runs_s, "runs_cpu_s": runs_cpu,
           "dashboard_s": dash, "dashboard_cpu_s": dash_cpu, "importance_card_s": card,
           "backend": "ray" if ray else "local", "with_report": with_report}
    print(f"{runs:>6} runs  whole {whole:6.1f} s  sweep {row['sweep_s']:6.1f} s  training "
          f"{row['train_s']:6.1f} s ({row['train_share']:.0%})  encoding {row['encode_s']:5.1f} s  "
          f"store {row['store_mb']:6.1f} MB  peak {peak} MB  "
          + (f"report after the sweep {after:4.1f} s, cold {cold:5.1f} s, again {report:5.1f} s"
             f" (cpu {report_cpu:.1f})"
             if with_report else "no report")
          + f"  runs {runs_s:4.2f} s (cpu {runs_cpu:.2f})  dashboard {dash:4.2f} s (cpu {dash_cpu:.2f}),"
            f" importance card {card:4.2f} s later",
          flush=True)
    return row


def synthetic_row(src: Path, folder: Path, runs: int) -> dict:
    root = synthetic_store(src, folder / f"synthetic-{runs}", runs // 1000)
    runs_s, _, runs_cpu = mlplab("runs", str(root))
    dash, dash_cpu, card = dashboard_load(root)
    row = {"runs": runs, "synthetic": True, "runs_s": runs_s, "runs_cpu_s": runs_cpu,
           "dashboard_s": dash, "dashboard_cpu_s": dash_cpu, "importance_card_s": card,
           "store_mb": store_mb(root)}
    print(f"{runs:>6} runs  (synthetic: {runs // 1000} copies of the 1000-run store)  runs "
          f"{runs_s:4.2f} s (cpu {runs_cpu:.2f})  dashboard {dash:4.2f} s (cpu {dash_cpu:.2f}),"
          f" importance card {card:4.2f} s later (not cached: no report of this store)", flush=True)
    return row


def targets(rows: list[dict]) -> list[tuple[str, bool, str]]:
    """Issue 24's targets as (what, met, measured)."""
    by = {(r["runs"], bool(r.get("synthetic"))): r for r in rows}
    out = []
    for r in rows:
        if "whole_s" in r:
            limit = 1.5 * r["train_s"] / r["workers"]
            what = "whole command" if r.get("with_report", True) else "sweep --no-report"
            out.append((f"{what} on {r['runs']} runs <= 1.5 x training / workers",
                        r["whole_s"] <= limit, f"{r['whole_s']:.1f} s = {r['whole_s'] / limit * 1.5:.2f} x"))
    r1000 = by.get((1000, False))
    if r1000:
        if r1000.get("with_report", True):
            out.append(("report on 1000 runs <= 3 s, after the sweep in its command",
                        r1000["report_after_sweep_s"] <= 3, f"{r1000['report_after_sweep_s']:.1f} s"))
            out.append(("report on 1000 runs <= 3 s, drawn from nothing in a fresh process",
                        r1000["report_cold_s"] <= 3, f"{r1000['report_cold_s']:.1f} s"))
            out.append(("report on 1000 runs <= 3 s, again on the unchanged store",
                        r1000["report_s"] <= 3, f"{r1000['report_s']:.1f} s"))
        out.append(("dashboard overview first load on 1000 runs <= 1 s", r1000["dashboard_s"] <= 1,
                    f"{r1000['dashboard_s']:.2f} s"))
    r10k = by.get((10000, False)) or by.get((10000, True))
    if r10k:
        kind = " (synthetic store)" if r10k.get("synthetic") else ""
        out.append((f"mlplab runs on 10,000 runs <= 1 s{kind}", r10k["runs_s"] <= 1, f"{r10k['runs_s']:.2f} s"))
        out.append((f"dashboard overview first load on 10,000 runs <= 3 s{kind}", r10k["dashboard_s"] <= 3,
                    f"{r10k['dashboard_s']:.2f} s"))
    real = by.get((10000, False))
    if real and r1000:
        ratio = real["peak_mb"] / r1000["peak_mb"]
        out.append(("peak memory of a 10,000-run sweep bounded (<= 1.5 x the 1000-run one's)",
                    ratio <= 1.5, f"{real['peak_mb']} MB = {ratio:.2f} x"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--synthetic", type=int, nargs="*", default=[10000],
                   help="store sizes (multiples of 1000) made from the 1000-run store")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--ray", action="store_true",
                   help="sweep on a local Ray cluster (--workers CPUs) that this script starts and stops")
    p.add_argument("--ray-nodes", type=int, default=1,
                   help="Ray nodes (raylets) on this machine that share the --workers CPUs")
    p.add_argument("--no-report", action="store_true",
                   help="sweeps without their report (`mlplab sweep --no-report`), none measured"
                        " alone: the sweep's own time and peak memory")
    p.add_argument("--out", help="folder for the stores (default: a temporary one, removed)")
    p.add_argument("--json", help="also write the rows to this file")
    a = p.parse_args(argv)
    if a.ray_nodes < 1 or a.workers % a.ray_nodes:
        p.error(f"--ray-nodes {a.ray_nodes}: a divisor of --workers ({a.workers}), 1 or more")
    folder = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="mlplab-sweep-cost-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        with local_ray(a.workers, a.ray_nodes) if a.ray else contextlib.nullcontext() as address:
            rows = [measure(n, folder, a.workers, address, not a.no_report) for n in a.sizes]
        if 1000 in a.sizes:
            rows += [synthetic_row(folder / "store-1000", folder, n) for n in a.synthetic
                     if n not in a.sizes]
        print(f"load average {os.getloadavg()[0]:.1f}")
        for what, met, measured in targets(rows):
            print(f"{'met    ' if met else 'NOT met'}  {what}: {measured}")
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=2))
    finally:
        if not a.out:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
