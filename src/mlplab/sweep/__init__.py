"""Sweeps (SPEC §6): grid, random, staged and Optuna search over dotted config keys,
repeated over seeds, trained in cohorts on a local process pool or a Ray cluster,
resumable, summarised per configuration.

    spec.py           the strict ``sweep:`` block
    plan.py           planners: spec + base config -> configurations and runs
    units.py          runs grouped into cohorts that fit a worker
    executors.py      local process pool, Ray tasks
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

from .driver import SweepResult as SweepResult
from .driver import load_sweep as load_sweep
from .driver import run_sweep as run_sweep
from .spec import SweepConfig as SweepConfig
from .spec import parse_sweep as parse_sweep

__all__ = ["SweepConfig", "SweepResult", "load_sweep", "parse_sweep", "run_sweep"]
