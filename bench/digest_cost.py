"""What recording each file's digest costs when a run is written (issue 25): the run's
files encoded (:func:`mlplab.store.runfiles.encode_with_curves`: Parquet, safetensors,
its epoch curves) against their digests and ``run.json`` (:func:`mlplab.store.rows.run_record`
and :func:`~mlplab.store.rows.with_record`), and against ``mlplab check``'s verification
(read and hash), for a small and a larger run, back to back in one process: a ratio
within one run of this script (the machine may be shared).

    python bench/digest_cost.py            # best of 7 for each, printed as a table

``record ms``: every file's BLAKE2b digest and the run's ``run.json``; ``share``: of the
encoding; ``verify ms``: ``check_run`` on the written folder (parses and digests).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlplab.config import from_dict
from mlplab.engine.reference import train
from mlplab.store.check import check_run
from mlplab.store.rows import run_record, with_record
from mlplab.store.runfiles import encode_with_curves
from mlplab.store.store import Store

RUNS = {
    "xor, [4], 30 epochs": {"data": {"name": "xor", "n": 200}, "train": {"epochs": 30}},
    "moons, [64, 64], 200 epochs, boundary": {
        "data": {"name": "moons", "n": 1000}, "model": {"hidden": [64, 64]},
        "train": {"epochs": 200}, "stopping": {"patience": 1000},
        "probe": {"boundary_snapshots": 10}},
}


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    print(f"{'run':40s} {'files KB':>9s} {'encode ms':>10s} {'record ms':>10s} {'share':>7s}"
          f" {'verify ms':>10s}")
    for label, doc in RUNS.items():
        rec = train(from_dict(doc))
        files, _ = encode_with_curves(rec)
        encode = best_of(7, lambda: encode_with_curves(rec))
        digest = best_of(7, lambda: with_record(files, run_record(rec, None, {}, files, 0.0)))
        with tempfile.TemporaryDirectory() as d:
            store = Store(d)
            store.write_run(rec)
            info = store.run(rec.run_id)
            verify = best_of(7, lambda: check_run(Path(d) / "runs" / rec.run_id, info))
        size = sum(map(len, files.values())) / 1024
        print(f"{label:40s} {size:9.0f} {encode * 1e3:10.2f} {digest * 1e3:10.3f}"
              f" {digest / encode:7.1%} {verify * 1e3:10.2f}")


if __name__ == "__main__":
    main()
