"""The sweep driver: plans, hands units to an executor, and is the only writer of the
store. Each finished unit is committed whole (its run folders written, then indexed in
one transaction), so a killed sweep resumes from whole units: done runs are kept,
everything else runs again under the same deterministic run ids.

``mlplab sweep FILE`` is one call of :func:`run_sweep`, whose docstring runs a sweep.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlplab.config import RunConfig, to_dict
from mlplab.progress import ProgressBar
from mlplab.store.store import Store, StoreError
from .commit import Driver
from .executors import check_backend, make_executor
from .lock import sweep_lock
from .plan import (Candidate, cap_candidates, config_id, hand_over, plan_grid, plan_random,
                   plan_stage, planned_total, stage_grid, stage_winner_params,
                   sweep_id_for)
from .spec import SweepConfig, load_sweep
from .select import has_interval, overlaps, tied_with
from .summary import best_run, config_entry, format_summary, jsonable, pick_best


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: its id, store and summary (also in the store's sweeps table)."""

    sweep_id: str
    out: Path
    data: dict[str, Any]
    report: Path | None = None
    report_s: float | None = None     # seconds writing the report took, after the sweep

    @property
    def best(self) -> dict[str, Any] | None:
        return self.data.get("best")

    def summary(self) -> str:
        """The printed table: configurations ranked, staged path, best configuration."""
        return format_summary(self.data) + "\n" + self.where()

    def where(self) -> str:
        """The summary's last line: the store, and the report with the time it took."""
        line = f"store: {self.out}"
        if self.report:
            line += f"   report: {self.report}" + (
                "" if self.report_s is None else f" (written in {self.report_s:.1f} s)")
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "out": str(self.out),
                "report": str(self.report) if self.report else None,
                "report_s": self.report_s, **self.data}


def _search(driver: Driver, spec: SweepConfig, base: RunConfig,
            info: dict[str, Any]) -> list[Candidate]:
    """Run the strategy; return its candidates (in plan order). Fills ``info``."""
    if spec.strategy in ("grid", "random"):
        cands = plan_grid(spec, base) if spec.strategy == "grid" else plan_random(spec, base)
        cands, info["truncated"] = cap_candidates(cands, spec.seeds, spec.budget.runs)
        _race(driver, cands, spec, info)
        return cands
    if spec.strategy == "optuna":
        from .optuna_search import run_optuna

        return run_optuna(driver, spec, base, info)
    return _staged(driver, spec, base, info)


def _entries(driver: Driver, cands: Sequence[Candidate], spec: SweepConfig) -> list[dict[str, Any]]:
    return [config_entry(c, driver.runs_of([c]), driver.outcomes, spec.select) for c in cands]


def _race(driver: Driver, cands: list[Candidate], spec: SweepConfig, info: dict[str, Any],
          budget: int | None = None) -> list[dict[str, Any]]:
    """Train ``cands`` with ``spec.seeds`` seeds each; while racing (``seeds: {min, max}``),
    add ``seeds_step`` seeds in rounds to the leader and to every configuration whose
    interval still overlaps the leader's, until they separate or reach ``seeds_max``.
    Returns the final entries; ``info["racing"]`` keeps the configurations raced and the
    rounds, from which the summary counts the runs racing saved."""
    runs = driver.runs_of(cands)
    driver.bar.total += len(runs) - len(cands) * spec.seeds   # seeds a raced winner brings along
    driver.execute(runs)
    entries = _entries(driver, cands, spec)
    if spec.seeds_max <= spec.seeds:
        return entries
    race = info.setdefault("racing", {"configs": set(), "rounds": 0})
    race["configs"].update(config_id(c.config) for c in cands)
    left = None if budget is None else budget - len(cands) * spec.seeds
    while True:
        lead = pick_best(entries, spec.select)
        if lead is None or not has_interval(lead):       # nothing finished: nothing to race
            break
        racing = [c for c, e in zip(cands, entries)
                  if e is not lead and has_interval(e) and overlaps(e, lead)]
        grow = [c for c, e in zip(cands, entries) if e is lead] + racing if racing else []
        new = []
        for c in grow:
            cid = config_id(c.config)
            have = driver.seeds.get(cid, spec.seeds)
            n = min(have + spec.seeds_step, spec.seeds_max)
            if left is not None:
                n = min(n, have + max(left, 0))
                left -= n - have
            if n > have:
                driver.seeds[cid] = n
                new += [r for r in driver.runs_of([c]) if r.seed_index >= have]
        if not new:
            break
        driver.bar.total += len(new)
        driver.execute(new)
        entries = _entries(driver, cands, spec)
        race["rounds"] += 1
    return entries


def _staged(driver: Driver, spec: SweepConfig, base: RunConfig, info: dict[str, Any]) -> list[Candidate]:
    carried: dict[str, Any] = {}
    left = spec.budget.runs
    every: list[Candidate] = []
    info["stages"] = []
    for i in range(len(spec.stages)):
        cands, cut = cap_candidates(plan_stage(spec, base, i, carried), spec.seeds, left)
        info["truncated"] = info.get("truncated", False) or cut
        if not cands:
            break
        entries = _race(driver, cands, spec, info, left)
        left = None if left is None else left - sum(len(e["run_ids"]) for e in entries)
        lead = pick_best(entries, spec.select)
        k = entries.index(lead)
        tied = tied_with(lead, entries, spec.select.mode)
        info["stages"].append({"stage": i, "keys": [key for key, _ in stage_grid(spec, i, carried, base)],
                               "winner": jsonable(stage_winner_params(spec, i, cands[k], carried, base)),
                               "score": entries[k]["score"], "ci": entries[k]["ci"],
                               "config_id": entries[k]["config_id"], "n_configs": len(cands),
                               "tied": [jsonable(stage_winner_params(spec, i, cands[entries.index(e)],
                                                                     carried, base))
                                        for e in tied if e is not lead],
                               "rule": spec.select.rule})
        carried = hand_over(carried, cands[k])
        every.extend(cands)
    return every


def build_summary(driver: Driver, spec: SweepConfig, base: RunConfig, candidates: list[Candidate],
                  info: dict[str, Any], out: Path, timing: dict[str, Any]) -> dict[str, Any]:
    """The sweep summary stored in the index (``sweeps.summary_json``) and printed."""
    entries, seen = [], set()
    for c in candidates:
        e = config_entry(c, driver.runs_of([c]), driver.outcomes, spec.select)
        if (e["config_id"], c.stage, c.trial) not in seen:
            seen.add((e["config_id"], c.stage, c.trial))
            entries.append(e)
    best = pick_best(entries, spec.select)
    tied = {e["config_id"] for e in tied_with(best, entries, spec.select.mode)} if best else set()
    for e in entries:
        e["tied_with_best"] = e["config_id"] in tied
    run_ids = {r for e in entries for r in e["run_ids"]}
    outs = [driver.outcomes[r] for r in run_ids if r in driver.outcomes]
    summary = {
        "sweep_id": driver.sweep_id, "name": base.name, "strategy": spec.strategy, "out": str(out),
        "select": {"metric": spec.select.metric, "statistic": spec.select.statistic,
                   "mode": spec.select.mode, "rule": spec.select.rule},
        "seeds": spec.seeds, "seeds_max": spec.seeds_max, "target": base.stopping.target, "monitor": base.stopping.monitor,
        "budget": {"runs": spec.budget.runs, "epochs": spec.budget.epochs},
        "truncated": bool(info.get("truncated", False)),
        "n_configs": len(entries), "n_runs": len(run_ids),
        "n_done": sum(o.status == "done" for o in outs),
        "n_failed": sum(o.status == "failed" for o in outs),
        "n_diverged": sum(o.status == "done" and o.end_reason == "diverged" for o in outs),
        "restarts": sum(o.restarts for o in outs),
        "restarts_improved": sum(o.restarts_improved for o in outs),
        "configs": entries, "timing": timing,
    }
    if "stages" in info:
        summary["stages"] = info["stages"]
    if "racing" in info:        # distinct configurations: a stage's winner runs again in the next
        raced = info["racing"]["configs"]
        ran = sum(driver.seeds.get(cid, spec.seeds) for cid in raced)
        summary["racing"] = {"rounds": info["racing"]["rounds"], "configs": len(raced), "runs": ran,
                             "runs_at_max_everywhere": len(raced) * spec.seeds_max,
                             "saved": len(raced) * spec.seeds_max - ran,
                             "min": spec.seeds, "max": spec.seeds_max, "step": spec.seeds_step}
    if "optuna" in info:
        summary["optuna"] = info["optuna"]
    if best is not None:
        cand = next(c for c in candidates if config_id(c.config) == best["config_id"])
        summary["best"] = {"config_id": best["config_id"], "params": best["params"],
                           "score": best["score"], "median": best["median"], "ci": best["ci"],
                           "n_seeds": best["n_seeds"],
                           "success_rate": best["success_rate"], "run_ids": best["run_ids"],
                           "best_run_id": best_run(best, driver.outcomes, spec.select),
                           "config": to_dict(cand.config)}
    return jsonable(summary)


def _claim(store: Store, sweep_id: str, name: str, resume: bool, out: Path) -> None:
    """Refuse to overwrite a sweep, or to resume one from a changed file."""
    sweeps = {s["sweep_id"]: s for s in store.sweeps()}
    if sweep_id in sweeps and not resume:
        raise StoreError(f"sweep '{sweep_id}' is already in '{out}' (status {sweeps[sweep_id]['status']});"
                         " add --resume to continue it, or give another --out")
    if resume and sweep_id not in sweeps:
        same_name = [s for s in sweeps.values() if s["name"] == name]
        if same_name:
            raise StoreError(f"'{out}' holds sweep '{same_name[-1]['sweep_id']}' of a different"
                             f" version of '{name}' (this file is '{sweep_id}'); --resume needs the"
                             " unchanged sweep file, or give another --out")


def run_sweep(source: str | Path | Mapping[str, Any], out: str | Path | None = None,
              workers: int | None = None, backend: str = "local", address: str | None = None,
              resume: bool = False, quiet: bool = False, device: str = "cpu", report: bool = True,
              max_cohort: int | None = None, compile: bool = False) -> SweepResult:
    """Run a sweep file (or mapping) into the store ``out`` (default ``runs/<name>``).

    ``backend`` ``local`` trains on ``workers`` processes (default: one per core),
    ``ray`` on the Ray cluster at ``address``. ``resume`` continues a sweep that was
    stopped: done runs are kept, the rest run again. ``max_cohort`` caps the models
    trained together in one unit. ``compile``: units train with compiled epochs
    (:mod:`mlplab.engine.compiled`; a package per kind of cohort, built once per machine).
    Returns the :class:`SweepResult`; the report is written unless ``report`` is False.

    A grid of two learning rates over two seeds, on one worker process (starting it
    takes most of the few seconds this example needs):

    >>> import tempfile
    >>> sweep = {"name": "doc", "data": {"name": "xor", "n": 40}, "train": {"epochs": 3},
    ...          "sweep": {"strategy": "grid", "grid": {"train.lr": [0.03, 0.3]}, "seeds": 2}}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = run_sweep(sweep, out=out, workers=1, quiet=True, report=False)
    ...     print(result.summary().splitlines()[0])
    ...     sorted(c["params"]["train.lr"] for c in result.data["configs"])
    sweep doc-... (grid): 4 runs, 0 failed, 0 diverged, 0 restarts (0 of them improved on the attempts before)
    [0.03, 0.3]
    """
    start = time.perf_counter()
    base, spec = load_sweep(source)
    block = dict(base.sweep or {})
    base = replace(base, sweep=None)
    out = Path(out) if out is not None else Path("runs") / base.name
    sweep_id = sweep_id_for(base.name, base, block)
    check_backend(backend, workers, address)
    if backend == "local" and device != "cpu":   # a Ray cluster's workers may have GPUs the
        from mlplab.engine.reference import resolve_device  # driver lacks; cpu needs no torch

        resolve_device(device)
    store = Store(out)
    with sweep_lock(store.root, sweep_id):      # one driver per sweep: a second is refused
        _claim(store, sweep_id, base.name, resume, out)
        executor = make_executor(backend, workers, address, device, compile)
        executor.start()    # local: the workers import torch (a second or more) meanwhile
        status, summary, bar = "interrupted", {}, None
        try:
            # the report's imports while the workers start (which takes the forkserver
            # longer), rather than after the last unit. The summaries' statistics (scipy.stats:
            # 0.7 s) are not loaded here, which would keep the workers waiting for their
            # units: the first configuration settled while the last units train (a core
            # free, Driver._settle) imports them.
            if report:
                from mlplab.report.build import preload_report

                preload_report()
            if resume:   # folders a killed driver was writing (never indexed, never done)
                for leftover in (store.root / "runs").glob(f".{sweep_id}-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
            store.put_sweep(sweep_id, base.name, spec.strategy, {"base": to_dict(base), "sweep": block},
                            status="running")
            bar = ProgressBar(planned_total(spec, base), "runs", quiet=quiet,
                              best_label=f"best {spec.select.metric}")
            driver = Driver(store, sweep_id, executor, spec, bar, max_cohort)
            driver.load_done()
            info: dict[str, Any] = {}
            candidates = _search(driver, spec, base, info)
            wall = time.perf_counter() - start
            timing = {"wall_s": wall, "train_s": driver.train_s, "encode_s": driver.encode_s,
                      "workers": executor.workers,
                      "backend": backend,
                      "train_share": (driver.train_s / (wall * executor.workers)
                                      if wall > 0 else None)}
            summary = build_summary(driver, spec, base, candidates, info, out, timing)
            status = "done"
        finally:
            if bar is not None:
                bar.close()
            executor.close()
            store.put_sweep(sweep_id, base.name, spec.strategy,
                            {"base": to_dict(base), "sweep": block}, status=status, summary=summary)
    report_path, report_s = None, None
    if report:
        from mlplab.report.build import build_report

        from .report_data import report_figdata

        start = time.perf_counter()
        report_path = Path(build_report(out, figdata=report_figdata(executor),
                                        written=driver.written))
        report_s = time.perf_counter() - start
    return SweepResult(sweep_id, out, summary, report_path, report_s)
