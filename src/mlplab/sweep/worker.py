"""What a process that trains a sweep's units does with one (a local pool's worker, a Ray
worker): :func:`prepare_worker` once, then :func:`run_unit` per unit, which trains the
unit as one cohort, encodes its runs' files and hands back a :class:`UnitResult` for the
driver to write. :mod:`.executors` decides where these processes run."""

from __future__ import annotations

import importlib
import os
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .units import Unit

if TYPE_CHECKING:
    from mlplab.record import RunRecord
    from mlplab.store.curves import Curves
    from mlplab.store.runfiles import RunFiles


@dataclass
class UnitResult:
    """What a worker sends back: finished records and the runs that raised."""

    index: int
    records: list["RunRecord"] = field(default_factory=list)     # slim: see encoded()
    failures: list[tuple[str, str]] = field(default_factory=list)   # (run_id, error)
    train_s: float = 0.0       # seconds spent in the training call(s)
    worker: str = ""
    files: dict[str, "RunFiles"] = field(default_factory=dict)      # run_id -> its folder
    encode_s: float = 0.0      # seconds spent encoding the runs' files
    curves: dict[str, "Curves"] = field(default_factory=dict)       # run_id -> epoch curves

    def encoded(self) -> "UnitResult":
        """This result with every run's folder encoded (:func:`mlplab.store.runfiles.encode_run`)
        and epoch curves, and the records slimmed to what the index needs: the worker does the encoding,
        the driver only writes bytes."""
        from mlplab.store.runfiles import encode_runs, slim

        start = time.perf_counter()
        encoded = {rec.run_id: e for rec, e in zip(self.records, encode_runs(self.records))}
        return replace(self, records=[slim(rec) for rec in self.records],
                       files={r: e[0] for r, e in encoded.items()},
                       curves={r: e[1] for r, e in encoded.items()},
                       encode_s=time.perf_counter() - start)


def describe(e: BaseException) -> str:
    """``Type: message`` and where it was raised, for a run's ``error`` column."""
    where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    at = f" (at {os.path.basename(where[0].filename)}:{where[0].lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


def failed_result(unit: Unit, error: str) -> UnitResult:
    return UnitResult(unit.index, failures=[(r, error) for r in unit.run_ids])


def run_unit(unit: Unit, device: str = "cpu", compile: bool = False) -> UnitResult:
    """Train a unit as one cohort (``compile``: with compiled epochs where it can, see
    :mod:`mlplab.engine.compiled`). If the cohort raises, each run is trained alone so
    one bad run does not fail its cohort-mates; a run that still raises is a failure."""
    from mlplab.config import from_dict
    from mlplab.engine.cohort import train_cohort
    from mlplab.stats.bayes import BayesLimit, known_limit

    start = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    configs = [from_dict(c) for c in unit.configs]
    for cfg, limit in zip(configs, unit.limits):     # the driver's: no scipy imported here
        if limit is not None:
            known_limit(cfg.data, BayesLimit.from_dict(limit))
    try:
        records = train_cohort(configs, run_ids=list(unit.run_ids), device=device,
                               compile=compile)
        result = UnitResult(unit.index, list(records), [], time.perf_counter() - start, worker)
    except Exception as e:   # noqa: BLE001 - recorded, the sweep goes on
        if len(configs) == 1:
            return UnitResult(unit.index, [], [(unit.run_ids[0], describe(e))],
                              time.perf_counter() - start, worker)
        result = UnitResult(unit.index, worker=worker)
        for run_id, cfg in zip(unit.run_ids, configs):
            try:
                result.records.extend(train_cohort([cfg], run_ids=[run_id], device=device))
            except Exception as e:   # noqa: BLE001
                result.failures.append((run_id, describe(e)))
        result.train_s = time.perf_counter() - start
    return result.encoded()


# What a worker needs, imported once by the forkserver process that forks the workers
# (see executors.worker_context): each worker then starts in milliseconds instead of importing
# torch itself, and a pool rebuilt after a worker died starts as fast. It includes what
# the first cohort would otherwise import inside its timed training call, and nothing
# more: the forkserver imports it alone, one core idle, before any unit can start. No
# scipy: the run's Bayes limit (engine.reference.run_info) is computed by the driver and
# comes with the unit (Unit.limits; 0.7 s less here). No sympy: networks are no longer
# built on the meta device, which imported torch's symbolic shapes (0.3 s).
WORKER_PRELOAD = ("mlplab.sweep.worker_memory", "torch", "numpy", "pandas", "pyarrow.compute",
                  "pyarrow.parquet", "safetensors.torch", "mlplab.engine.cohort",
                  "mlplab.store.runfiles", "mlplab.stats.bayes", "mlplab.sweep.executors")


def prepare_worker() -> None:
    """What a process that trains units (a local pool's worker, a Ray worker) sets before
    its first unit: :data:`WORKER_PRELOAD` imported (a no-op where the forkserver preloaded
    it; :mod:`.worker_memory` first) and one core (workers = cores)."""
    import torch

    for name in WORKER_PRELOAD:
        importlib.import_module(name)
    torch.set_num_threads(1)


__all__ = ["UnitResult", "describe", "failed_result", "run_unit", "WORKER_PRELOAD", "prepare_worker"]
