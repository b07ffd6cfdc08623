"""The ``optuna`` strategy: Optuna's samplers and pruners through its ask/tell API.

The study lives in the sweep's own ``mlplab.sqlite`` (Optuna's tables beside mlplab's)
or in the RDB given by ``sweep.optuna.storage``; its name is the sweep id, so a resumed
sweep loads it. Trials are asked in batches as wide as the executor, each trial one
configuration trained with ``sweep.seeds`` seeds; after a batch is committed each trial
reports its epoch curve (the selected statistic over seeds) step by step to the pruner
and is told COMPLETE with its score, or PRUNED where the pruner stopped it.

The cohort engine trains a unit to its end, so pruning labels trials (which steers the
sampler) rather than saving their training time.
"""

from __future__ import annotations

import importlib.util
import json
import math
from typing import TYPE_CHECKING, Any

from mlplab.config import ConfigError, RunConfig
from .plan import Candidate, make_candidate, round_sig, seed_runs
from .spec import Distribution, SweepConfig
from .summary import config_entry, statistic

if TYPE_CHECKING:
    import optuna

    from .commit import Driver

FAILED_ATTR = "mlplab_all_runs_failed"
MAX_REPORTS = 20        # intermediate values per trial (evenly spaced epochs)
CURVE_METRIC = {"val_loss": "val_loss", "val_acc": "val_acc", "train_loss": "train_loss",
                "test_loss": "val_loss", "test_acc": "val_acc"}


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ImportError("the optuna strategy needs Optuna: pip install 'mlplab[optuna]'",
                          name="optuna") from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(name: str, seed: int) -> "optuna.samplers.BaseSampler":
    optuna = _import_optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if importlib.util.find_spec("cmaes") is None:
        raise ConfigError("sweep.optuna.sampler", name,
                          "tpe or random (cmaes needs the package 'cmaes': pip install cmaes)")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(name: str, epochs: int) -> "optuna.pruners.BasePruner":
    optuna = _import_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def suggest(trial: "optuna.Trial", space: tuple[tuple[str, Distribution], ...]) -> dict[str, Any]:
    """The trial's values for each dimension of the space (lists pass through as JSON)."""
    out: dict[str, Any] = {}
    for key, d in space:
        if d.kind == "uniform":
            out[key] = round_sig(trial.suggest_float(key, d.low, d.high))
        elif d.kind == "log_uniform":
            out[key] = round_sig(trial.suggest_float(key, d.low, d.high, log=True))
        elif d.kind == "int":
            out[key] = trial.suggest_int(key, int(d.low), int(d.high))
        elif all(_scalar(c) for c in d.choices):
            out[key] = trial.suggest_categorical(key, list(d.choices))
        else:
            out[key] = json.loads(trial.suggest_categorical(key, [json.dumps(c) for c in d.choices]))
    return out


def storage_url(driver: "Driver", spec: SweepConfig) -> str:
    if spec.optuna.storage:
        return spec.optuna.storage
    return f"sqlite:///{(driver.store.root / 'mlplab.sqlite').resolve()}"


def epoch_curve(driver: "Driver", run_id: str, metric: str) -> list[float]:
    """The epoch series of ``metric`` in a run's kept attempt."""
    info = driver.store.run(run_id)
    frame = driver.store.metrics(run_id)
    sel = ((frame["scope"] == "epoch") & (frame["metric"] == metric)
           & (frame["attempt"] == (info.best_attempt or 0)))
    return frame.loc[sel].sort_values("epoch")["value"].tolist()


def trial_curve(driver: "Driver", run_ids: list[str], spec: SweepConfig,
                monitor: str) -> list[tuple[int, float]]:
    """(epoch, statistic over seeds) at up to MAX_REPORTS evenly spaced epochs; a seed that
    stopped early keeps its last value."""
    metric = CURVE_METRIC.get(spec.select.metric, monitor)
    curves = [epoch_curve(driver, r, metric) for r in run_ids
              if r in driver.outcomes and driver.outcomes[r].status == "done"]
    curves = [c for c in curves if c]
    if not curves:
        return []
    n = max(len(c) for c in curves)
    every = max(1, math.ceil(n / MAX_REPORTS))
    steps = sorted(set(range(0, n, every)) | {n - 1})
    out = []
    for e in steps:
        v = statistic([c[min(e, len(c) - 1)] for c in curves], spec.select.statistic, spec.select.mode)
        if math.isfinite(v):
            out.append((e, v))
    return out


def _tell(study: Any, trial: Any, entry: dict[str, Any], curve: list[tuple[int, float]],
          optuna: Any) -> str:
    pruned = False
    for epoch, value in curve:
        trial.report(value, epoch)
        if trial.should_prune():
            pruned = True
            break
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return "pruned"
    if not math.isfinite(entry["score"]):
        trial.set_user_attr(FAILED_ATTR, True)     # all seeds failed: a real, finished trial
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return "failed"
    study.tell(trial, entry["score"])
    return "complete"


def run_optuna(driver: "Driver", spec: SweepConfig, base: RunConfig, info: dict[str, Any]) -> list[Candidate]:
    """Ask, train and tell until ``n_trials`` trials have finished (across resumes)."""
    optuna = _import_optuna()
    n_trials = spec.optuna.n_trials
    if spec.budget.runs is not None:
        n_trials = min(n_trials, spec.budget.runs // spec.seeds)
        info["truncated"] = n_trials < spec.optuna.n_trials
    url = storage_url(driver, spec)
    study = optuna.create_study(
        storage=url, study_name=driver.sweep_id, load_if_exists=True,
        sampler=make_sampler(spec.optuna.sampler, spec.seed),
        pruner=make_pruner(spec.optuna.pruner, base.train.epochs),
        direction="minimize" if spec.select.mode == "min" else "maximize")
    if study.trials:
        # a resumed study: a sampler seeded as before would replay the first trials' values
        study = optuna.load_study(study_name=driver.sweep_id, storage=url,
                                  sampler=make_sampler(spec.optuna.sampler, spec.seed + len(study.trials)),
                                  pruner=make_pruner(spec.optuna.pruner, base.train.epochs))
    states = optuna.trial.TrialState
    candidates: list[Candidate] = []
    finished = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (states.COMPLETE, states.PRUNED) or \
                (t.state == states.FAIL and t.user_attrs.get(FAILED_ATTR)):
            finished += 1
            cand = make_candidate(base, _decode(t.params, spec), spec, trial=t.number)
            candidates.append(cand)
            driver.execute(seed_runs([cand], spec.seeds, driver.sweep_id))
        elif t.state == states.RUNNING:
            # asked by a driver that was killed: its values are tried again in a new trial
            # (the same configuration, so the same run ids: its finished runs are reused)
            study.enqueue_trial(t.params, skip_if_exists=False)
            study.tell(t.number, state=states.FAIL)
    width = max(driver.executor.workers, 4)
    while finished < n_trials:
        batch = []
        for _ in range(min(width, n_trials - finished)):
            trial = study.ask()
            params = suggest(trial, spec.space)
            batch.append((trial, make_candidate(base, params, spec, trial=trial.number)))
        runs = seed_runs([c for _, c in batch], spec.seeds, driver.sweep_id)
        driver.execute(runs)
        for trial, cand in batch:
            mine = [r for r in runs if r.candidate is cand]
            entry = config_entry(cand, mine, driver.outcomes, spec.select)
            curve = trial_curve(driver, [r.run_id for r in mine], spec, base.stopping.monitor)
            _tell(study, trial, entry, curve, optuna)
            candidates.append(cand)
        finished += len(batch)
    trials = study.get_trials(deepcopy=False)
    info["optuna"] = {
        "study_name": driver.sweep_id, "storage": url if spec.optuna.storage else None,
        "sampler": spec.optuna.sampler, "pruner": spec.optuna.pruner, "n_trials": finished,
        "complete": sum(t.state == states.COMPLETE for t in trials),
        "pruned": sum(t.state == states.PRUNED for t in trials),
        "failed": sum(t.state == states.FAIL and bool(t.user_attrs.get(FAILED_ATTR)) for t in trials),
        "pruned_trials": [t.number for t in trials if t.state == states.PRUNED]}
    return candidates


def _decode(params: dict[str, Any], spec: SweepConfig) -> dict[str, Any]:
    """Trial params as config values (JSON-encoded list choices decoded)."""
    out = {}
    for key, d in spec.space:
        if key not in params:
            continue
        v = params[key]
        if d.kind == "choice" and not all(_scalar(c) for c in d.choices):
            v = json.loads(v)
        elif d.kind in ("uniform", "log_uniform"):
            v = round_sig(v)
        out[key] = v
    return out
