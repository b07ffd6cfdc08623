"""Committing a sweep's runs: :class:`Driver` hands planned runs to an executor, in
cohort-sized units, and writes each finished unit whole (its run folders, then its index
rows in one transaction). It is the only writer of the store during a sweep and
remembers every outcome, so a run already done is reused, never trained twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mlplab.config import to_dict
from mlplab.progress import ProgressBar
from mlplab.store.store import Store
from .executors import Executor
from .plan import Candidate, PlannedRun, config_id, seed_runs
from .spec import SweepConfig
from .summary import (RunOutcome, config_entry, failed_outcome, is_better, jsonable,
                      outcome_from_info, outcome_from_record, run_value)
from .units import plan_units
from .worker import UnitResult


@dataclass
class Driver:
    """Runs planned runs on an executor and commits them; remembers every outcome."""

    store: Store
    sweep_id: str
    executor: Executor
    spec: SweepConfig
    bar: ProgressBar
    max_cohort: int | None = None
    outcomes: dict[str, RunOutcome] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)   # config id -> seeds (racing)
    train_s: float = 0.0
    encode_s: float = 0.0
    best: float = math.nan
    # runs whose files this driver wrote (not those a resumed sweep found done): the
    # report it writes next need not read them back to check them (check_store)
    written: set[str] = field(default_factory=set)
    # id(candidate) -> (candidate, its config id, its planned runs): holding the candidate
    # keeps its id from being reused
    _planned: dict[int, tuple[Candidate, str, list[PlannedRun]]] = field(default_factory=dict,
                                                                         repr=False)

    def runs_of(self, candidates: Sequence[Candidate]) -> list[PlannedRun]:
        """The planned runs of ``candidates``: ``spec.seeds`` each, or as many as racing
        gave the configuration (planned once per candidate and number of seeds: hashing
        each run's config is most of the cost of a sweep's summary)."""
        out = []
        for c in candidates:
            known = self._planned.get(id(c))
            if known is None or known[0] is not c:
                known = (c, config_id(c.config), [])
            seeds = self.seeds.get(known[1], self.spec.seeds)
            if len(known[2]) != seeds:
                known = (c, known[1], seed_runs([c], seeds, self.sweep_id))
            self._planned[id(c)] = known
            out.extend(known[2])
        return out

    def load_done(self) -> None:
        """Outcomes of the runs a previous driver finished (resume)."""
        attempts = self.store.all_attempts()
        for info in self.store.runs(sweep_id=self.sweep_id, status="done"):
            self.outcomes[info.run_id] = outcome_from_info(info, attempts.get(info.run_id, []))

    def _note(self, outcome: RunOutcome) -> None:
        v = run_value(outcome, self.spec.select.metric, self.spec.select.mode)
        if math.isfinite(v) and is_better(v, self.best, self.spec.select.mode):
            self.best = v

    def execute(self, runs: Sequence[PlannedRun]) -> None:
        """Train every run not yet done; runs already done (earlier stage, resumed
        sweep, a repeated configuration) are reused, never trained twice."""
        todo: dict[str, PlannedRun] = {}
        reused = 0
        for r in runs:
            if r.run_id in todo:          # the same configuration twice in one batch
                reused += 1
                continue
            o = self.outcomes.get(r.run_id)
            if o is not None and o.status == "done":
                reused += 1
                self._note(o)
            else:
                todo[r.run_id] = r
        if reused:
            self.bar.update(reused, best=self.best)
        if not todo:
            return
        self.store.mark_many([(r.run_id, r.config.name, r.config_dict or to_dict(r.config))
                              for r in todo.values()], "pending", sweep_id=self.sweep_id, source="cohort")
        units = plan_units(list(todo.values()), self.executor.workers, self.max_cohort)
        left, finished = len(units), []
        for result in self.executor.map_unordered(units):
            self.commit(result, todo)
            left -= 1
            finished += [todo[r.run_id].candidate for r in result.records]
            if left < self.executor.workers:      # a worker has no unit left: its core is free
                self._settle(finished)
                finished = []

    def commit(self, result: UnitResult, planned: Mapping[str, PlannedRun]) -> None:
        """Write a finished unit: its runs' files, then their index rows in one transaction;
        the runs that raised are marked failed with their error."""
        summaries = {rec.run_id: run_summary(planned[rec.run_id]) for rec in result.records}
        self.store.write_runs(result.records, sweep_id=self.sweep_id, summaries=summaries,
                              files=result.files, curves=result.curves)
        self.written.update(rec.run_id for rec in result.records)
        for rec in result.records:
            self.outcomes[rec.run_id] = outcome_from_record(rec)
            self._note(self.outcomes[rec.run_id])
        for run_id, error in result.failures:
            r = planned[run_id]
            self.store.mark(run_id, r.config.name, r.config_dict or to_dict(r.config), "failed",
                            sweep_id=self.sweep_id, error=error, source="cohort")
            self.outcomes[run_id] = failed_outcome(run_id, error)
        self.train_s += result.train_s
        self.encode_s += result.encode_s
        self.bar.update(len(result.records) + len(result.failures), best=self.best)

    def _settle(self, candidates: Sequence[Candidate]) -> None:
        """The summary entry of each of ``candidates`` whose seeds are all in, made now,
        while the last units train on the other cores: its interval (a bootstrap, ~2 ms;
        cached by :func:`mlplab.sweep.select.interval`) is then ready for the entries
        made after the last unit, instead of all of them being drawn there, one after
        another (0.3-0.5 s for the 200 configurations of ``bench/sweep-1000.yaml``).
        Not earlier: while every worker trains, the driver's CPU time is theirs."""
        for c in {id(c): c for c in candidates}.values():
            runs = self.runs_of([c])
            if all(r.run_id in self.outcomes for r in runs):
                config_entry(c, runs, self.outcomes, self.spec.select)


def run_summary(r: PlannedRun) -> dict[str, Any]:
    """What the runs table keeps of a run's place in its sweep."""
    return jsonable({"config_id": r.config_id, "params": r.candidate.params_dict(),
                     "seed_index": r.seed_index, "stage": r.candidate.stage,
                     "trial": r.candidate.trial})
