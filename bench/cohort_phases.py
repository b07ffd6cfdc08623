"""Where a cohort's time goes, phase by phase, and what ratio each phase alone would allow.

Trains the ``mlplab bench`` workloads (W1, W2) with :func:`mlplab.engine.cohort.train_cohort`
and times its phases by wrapping the engine's functions: the optimizer steps (forward,
backward, update and the probe's raw copies), the probe's chunk reductions (``flush``),
the end of each epoch (metrics, stopping masks), boundary snapshots, and building the
run records. It also times the per-model loop of ``mlplab bench`` on a few models in the
same process, so each phase can be read as the ``mlplab bench`` ratio that the cohort
would reach if nothing else took time (its ceiling).

    PYTHONPATH=src .venv/bin/python bench/cohort_phases.py [--workloads W1,W2] [--rounds 3]
        [--no-probe] [--quick] [--json]

Each phase's time is the fastest of ``--rounds`` runs (a shared machine disturbs some) and
excludes the other phases called from inside it (``steps`` without its ``flush`` calls).
One intra-op thread, as the cohort engine uses on a CPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import Counter
from typing import Any, Callable

import torch

from mlplab import bench
from mlplab.engine import cohort
from mlplab.engine import trace as cohort_trace

# (module, attribute, phase): the engine functions whose time makes up a phase
PHASES = [(cohort, "_epoch_steps", "steps"), (cohort, "end_epoch", "end of epoch"),
          (cohort, "keep_snapshots", "snapshots"), (cohort, "build_records", "records"),
          (cohort_trace.Trace, "flush", "flush")]


def _timed(fn: Callable, phase: str, spent: Counter, nested: list[float]) -> Callable:
    """``fn`` adding its own time to ``spent[phase]``, less that of timed calls inside it
    (``nested``: a stack of the time those took, one entry per open call)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nested.append(0.0)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            spent[phase] += elapsed - nested.pop()
            nested[-1] += elapsed
    return wrapper


def phases_of(w: bench.Workload, probe: bool, rounds: int) -> dict[str, float]:
    """Fastest seconds of each phase (and ``total``) over ``rounds`` cohort runs."""
    best: dict[str, float] = {}
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in PHASES]
    for _ in range(rounds):
        spent: Counter = Counter()
        nested = [0.0]
        for (owner, name, phase), (_, _, fn) in zip(PHASES, originals):
            setattr(owner, name, _timed(fn, phase, spent, nested))
        try:
            start = time.perf_counter()
            cohort.train_cohort(w.configs, probe=probe)
            spent["total"] = time.perf_counter() - start
        finally:
            for owner, name, fn in originals:
                setattr(owner, name, fn)
        spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k != "total")
        for phase, seconds in spent.items():
            best[phase] = min(best.get(phase, seconds), seconds)
    return best


def loop_seconds_per_model(w: bench.Workload, models: int) -> float:
    """Seconds the per-model loop of ``mlplab bench`` takes for one model of ``w``."""
    chosen = w.baseline_models[:models]
    return bench.time_user_loop(w, chosen, torch.device("cpu"))[1] / len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop-models", type=int, default=4,
                        help="models the per-model loop trains for the ceilings")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--quick", action="store_true", help="the small workloads of the tests")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench._warm_up(torch.device("cpu"))
    out = {}
    for w in bench.workloads(args.quick):
        if w.name not in args.workloads.split(","):
            continue
        phases = phases_of(w, not args.no_probe, args.rounds)
        loop = loop_seconds_per_model(w, args.loop_models) * len(w.configs)
        out[w.name] = {"loop_seconds_all_models": loop, "phases": phases,
                       "ceiling": {p: loop / s for p, s in phases.items() if s > 0}}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, r in out.items():
        print(f"{name}: per-model loop {r['loop_seconds_all_models']:.1f} s for all models; "
              f"cohort{' (probe off)' if args.no_probe else ''}:")
        for phase, seconds in sorted(r["phases"].items(), key=lambda kv: -kv[1]):
            print(f"  {phase:<14}{seconds * 1e3:9.1f} ms   ratio if only this: "
                  f"{r['ceiling'][phase]:7.0f}x")


if __name__ == "__main__":
    main()
