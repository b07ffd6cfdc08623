"""Sweeps (SPEC §6): grid, random, staged and Optuna search over dotted config keys,
repeated over seeds, trained in cohorts on a local process pool or a Ray cluster,
resumable, summarised per configuration.

    spec.py           the strict ``sweep:`` block, and a sweep file read (load_sweep)
    plan.py           planners: spec + base config -> configurations and runs
    units.py          runs grouped into cohorts that fit a worker
    worker.py         what a worker does with a unit: train it as one cohort, encode its files
    executors.py      where the workers run: local process pool, Ray tasks
    worker_memory.py  a worker's Arrow allocations from malloc (imported first, for its effect)
    report_data.py    the report's best-run figure data made in a warm worker
    driver.py         ``run_sweep``: the strategies from plan to summary, resume
    commit.py         the only writer of the store: whole units, each run trained once
    select.py         selection that knows about noise: intervals, rules, ties, racing
    summary.py        spread over seeds, staged path, best configuration
    optuna_search.py  Optuna's samplers and pruners through ask/tell

>>> from mlplab.sweep import load_sweep
>>> base, spec = load_sweep({"sweep": {"strategy": "random", "n": 3,
...                          "space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}})
>>> spec.n
3
"""

from __future__ import annotations

from mlplab import lazy_exports

# public name -> module that defines it: loaded when first used, so that a sweep's worker
# process, which imports the executors module of this package, does not import the
# driver (and, through its summaries, scipy) that only the driver process needs
_EXPORTS = {"SweepConfig": "spec", "parse_sweep": "spec", "SweepResult": "driver",
            "load_sweep": "spec", "run_sweep": "driver"}

__all__ = ["SweepConfig", "SweepResult", "load_sweep", "parse_sweep", "run_sweep"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
