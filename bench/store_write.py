"""What writing a sweep's run folders costs the driver, in the layout a store writes now
(an attempt's tensors in one file, ``attempt-<n>.safetensors``: a folder and four files a
run) against the one before (``attempt-<n>/{init,best,last,boundary}.safetensors``: two
folders and seven files), through the store's own writing path
(:meth:`mlplab.store.store.Store.write_runs`, the driver's), on the runs of one
``bench/sweep-1000.yaml`` unit encoded once by its worker's code.

The two layouts take turns, each round into a fresh store in this machine's temporary
folder, and the process's CPU time (user and system, ``getrusage``) is taken around each
round: a ratio within one run of this script. The kernel's time for a file or folder
created varies several-fold with what the rest of the machine does to the disk, so
compare the two columns of one run, not runs on different days.

    python bench/store_write.py                 # 1000 runs a round, 3 rounds each
    python bench/store_write.py --runs 300 --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import resource
import shutil
import statistics
from dataclasses import replace
import tempfile
from pathlib import Path

from safetensors import safe_open
from safetensors.numpy import save

from mlplab.config import from_dict
from mlplab.config_file import read_mapping
from mlplab.engine.cohort import train_cohort
from mlplab.store.runfiles import TENSOR_KINDS, encode_runs, legacy_tensors_file, slim
from mlplab.store.store import Store

GRID = Path(__file__).with_name("sweep-1000.yaml")


def unit(n: int) -> tuple[list, list[dict[str, bytes]], list]:
    """``n`` runs of the 1000-run grid's configuration (seeds and learning rates varied),
    trained as one cohort and encoded as a worker does: slim records, files, curves."""
    raw = read_mapping(GRID)
    raw.pop("sweep"), raw.pop("name")
    configs = []
    for i in range(n):
        r = copy.deepcopy(raw)
        r["train"].update(seed=i, lr=0.001 * (1 + i % 100))
        configs.append(from_dict(r))
    records = train_cohort(configs, run_ids=[f"r{i:05d}" for i in range(n)])
    encoded = encode_runs(records)
    return [slim(r) for r in records], [e[0] for e in encoded], [e[1] for e in encoded]


def older_layout(files: dict[str, bytes]) -> dict[str, bytes]:
    """A run's files as the store wrote them before: each attempt's file split into its
    folder of one file a kind (the same tensors and metadata)."""
    out = {}
    for name, content in files.items():
        if not (name.startswith("attempt-") and name.endswith(".safetensors")):
            out[name] = content
            continue
        attempt = int(name[len("attempt-"):-len(".safetensors")])
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
            f.write(content)
            f.flush()
            with safe_open(f.name, framework="np") as st:
                meta, keys = st.metadata(), list(st.keys())
                for which in TENSOR_KINDS:
                    part = {k[len(which) + 1:]: st.get_tensor(k) for k in keys if k.startswith(which + "/")}
                    if part:
                        out[legacy_tensors_file(attempt, which)] = save(part, metadata=meta)
    return out


def cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def write_round(records: list, files: list[dict[str, bytes]], curves: list, copies: int,
                where: Path) -> tuple[float, float]:
    """User and system CPU seconds to write ``copies`` times the unit (run ids made
    unique) into a fresh store, a unit's runs a call as the driver does."""
    store = Store(where)
    u0, s0 = cpu()
    for c in range(copies):
        recs = [replace(r, run_id=f"{r.run_id}-{c}") for r in records]
        store.write_runs(recs, files={r.run_id: f for r, f in zip(recs, files)},
                         curves={r.run_id: k for r, k in zip(recs, curves)})
    u1, s1 = cpu()
    return u1 - u0, s1 - s0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1000, help="runs written a round (a multiple of 100)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    records, now, curves = unit(100)
    layouts = {"one file an attempt": now, "a folder an attempt": [older_layout(f) for f in now]}
    per_run = {name: len(fs[0]) + 1 + 1 + len({f.rsplit("/", 1)[0] for f in fs[0] if "/" in f})
               for name, fs in layouts.items()}       # its files, run.json, its folder, subfolders
    taken: dict[str, list[tuple[float, float]]] = {name: [] for name in layouts}
    base = Path(tempfile.mkdtemp(prefix="mlplab-store-write-"))
    try:
        for r in range(args.rounds):
            for name, files in layouts.items():
                where = base / f"{r}-{len(taken[name])}-{name.split()[0]}"
                taken[name].append(write_round(records, files, curves, args.runs // 100, where))
                shutil.rmtree(where)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{args.runs} runs a round, {args.rounds} rounds, layouts in turns; CPU ms a run (median)")
    print(f"{'layout':22s} {'made a run':>10s} {'user':>7s} {'system':>7s} {'total':>7s}")
    for name, rows in taken.items():
        user = statistics.median(u for u, _ in rows) / args.runs * 1000
        system = statistics.median(s for _, s in rows) / args.runs * 1000
        print(f"{name:22s} {per_run[name]:>10d} {user:7.3f} {system:7.3f} {user + system:7.3f}")
    print("made a run: files and folders created for one run (its own folder included)")


if __name__ == "__main__":
    main()
