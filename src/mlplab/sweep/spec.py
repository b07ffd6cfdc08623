"""The ``sweep:`` block of a config file: strict, typed, every bad value named (SPEC §6).

A sweep file is a run config (SPEC §3) plus a ``sweep:`` block whose keys are dotted
paths into the run schema. :func:`parse_sweep` checks every key and value (including
that each swept value, and each combination of them, makes a valid run) and returns a frozen
:class:`SweepConfig`.

>>> from mlplab.config import from_dict
>>> base = from_dict({"data": {"name": "xor"}})
>>> spec = parse_sweep({"strategy": "grid", "seeds": 2,
...                     "grid": {"train.lr": [0.01, 0.1]}}, base)
>>> spec.strategy, spec.seeds, spec.grid
('grid', 2, (('train.lr', (0.01, 0.1)),))
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from mlplab.config import ConfigError, RunConfig, from_dict, with_overrides
from mlplab.config_file import load_config, yaml_line

STRATEGIES = ("grid", "random", "staged", "optuna")
STATISTICS = ("mean", "median", "worst", "mean_minus_std")
# How a winner is chosen over seeds: "best" statistic, or the best pessimistic end of
# the 95 % interval ("lower_ci": the lower bound of an accuracy, the upper of a loss).
RULES = ("best", "lower_ci")
SELECT_METRICS = ("val_loss", "val_acc", "test_loss", "test_acc", "train_loss", "best")
DISTRIBUTIONS = ("uniform", "log_uniform", "int", "choice")
SAMPLERS = ("tpe", "cmaes", "random")
PRUNERS = ("median", "hyperband", "none")

# The default order of a staged sweep: learning rate -> model shape -> optimizer.
DEFAULT_STAGES: tuple[tuple[tuple[str, tuple[Any, ...]], ...], ...] = (
    (("train.lr", (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)),),
    (("model.hidden", ((4,), (8,), (16,), (8, 8), (16, 16))),),
    (("train.optimizer", ("sgd", "momentum", "rmsprop", "adam")),),
)
DEFAULT_RETUNE_FACTORS = (1 / 3, 1.0, 3.0)   # retune_lr: true -> best lr x these

_TOP_KEYS = ("strategy", "seeds", "select", "budget", "grid", "space", "n", "seed",
             "stages", "retune_lr", "optuna")
_ONLY_WITH = {"grid": ("grid",), "space": ("random", "optuna"), "n": ("random",),
              "stages": ("staged",), "retune_lr": ("staged",), "optuna": ("optuna",)}

Grid = tuple[tuple[str, tuple[Any, ...]], ...]   # ordered (dotted key, values)


@dataclass(frozen=True)
class Distribution:
    """One dimension of a random / Optuna search space."""

    kind: str                      # uniform, log_uniform, int, choice
    low: float = 0.0               # uniform / log_uniform / int: bounds (inclusive)
    high: float = 0.0
    choices: tuple[Any, ...] = ()  # choice: the values


@dataclass(frozen=True)
class SelectConfig:
    metric: str = "val_loss"       # one of SELECT_METRICS; "best" = the monitored value
    statistic: str = "median"      # over seeds: mean, median, worst, mean_minus_std
    mode: str = "min"              # min for losses, max for accuracies (derived)
    rule: str = "best"             # best statistic, or lower_ci (the pessimistic CI end)


@dataclass(frozen=True)
class BudgetConfig:
    runs: int | None = None        # at most this many runs (configurations x seeds)
    epochs: int | None = None      # train.epochs of every run capped at this


@dataclass(frozen=True)
class OptunaConfig:
    sampler: str = "tpe"           # tpe, cmaes, random
    pruner: str = "median"         # median, hyperband, none
    n_trials: int = 20             # configurations to try (each with `seeds` runs)
    storage: str | None = None     # None: the sweep's own mlplab.sqlite; else an RDB URL


@dataclass(frozen=True)
class SweepConfig:
    strategy: str = "grid"
    seeds: int = 1                          # runs per configuration (train.seed, +1, ...)
    seeds_max: int = 1                      # racing: seeds up to this where still tied
    seeds_step: int = 1                     # racing: seeds added per round
    select: SelectConfig = SelectConfig()
    budget: BudgetConfig = BudgetConfig()
    grid: Grid = ()                          # grid: keys and their values
    space: tuple[tuple[str, Distribution], ...] = ()   # random / optuna
    n: int = 20                              # random: configurations drawn
    seed: int = 0                            # random draws and the Optuna sampler
    stages: tuple[Grid, ...] = ()            # staged: each stage a grid
    retune_lr: tuple[float, ...] = ()        # staged: lr factors re-tried in later stages
    optuna: OptunaConfig = OptunaConfig()


def _err(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"sweep.{key}", value, allowed)


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or value < minimum:
        raise _err(key, value, f"an integer >= {minimum}")
    return int(value)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(key, value, "a finite number")
    return float(value)


def _mapping(key: str, value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _err(key, value, what)
    return value


def _check_keys(key: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for k in raw:
        if k not in allowed:
            prefix = f"{key}." if key else ""
            raise _err(f"{prefix}{k}", raw[k], "one of " + ", ".join(allowed))


def freeze(value: Any) -> Any:
    """Lists become tuples (recursively), so values hash and compare like config fields."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def check_value(where: str, dotted: str, value: Any, base: RunConfig) -> None:
    """Raise a ConfigError naming ``sweep.<where>`` if ``dotted=value`` is not a valid run."""
    if dotted in ("name", "sweep") or dotted.startswith("sweep."):
        raise _err(where, dotted, "a dotted key into data, model, train, stopping or probe")
    try:
        with_overrides(base, {dotted: value})
    except ConfigError as e:
        raise ConfigError(f"sweep.{where}", value,
                          f"a valid value of '{dotted}' ({e.key}: {e.allowed})") from None


def _grid(key: str, raw: Any, base: RunConfig) -> Grid:
    raw = _mapping(key, raw, "a mapping of dotted keys to lists of values, e.g. {train.lr: [0.01, 0.1]}")
    if not raw:
        raise _err(key, dict(raw), "at least one dotted key with a list of values")
    out = []
    for dotted, values in raw.items():
        where = f"{key}.{dotted}"
        if not isinstance(values, (list, tuple)) or not values:
            raise _err(where, values, "a non-empty list of values")
        for v in values:
            check_value(where, str(dotted), v, base)
        out.append((str(dotted), tuple(freeze(v) for v in values)))
    return tuple(out)


def _distribution(key: str, raw: Any, dotted: str, base: RunConfig) -> Distribution:
    what = "one of {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]}, {choice: [...]}"
    raw = _mapping(key, raw, what)
    if len(raw) != 1 or next(iter(raw)) not in DISTRIBUTIONS:
        raise _err(key, dict(raw), what)
    kind, args = next(iter(raw.items()))
    where = f"{key}.{kind}"
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise _err(where, args, "a non-empty list of values")
        for v in args:
            check_value(where, dotted, v, base)
        return Distribution(kind, choices=tuple(freeze(v) for v in args))
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise _err(where, args, "[low, high]")
    if kind == "int":
        low, high = float(_int(where, args[0], -2**62)), float(_int(where, args[1], -2**62))
        if low > high:
            raise _err(where, list(args), "integers low <= high")
    else:
        low, high = _number(where, args[0]), _number(where, args[1])
        if low >= high:
            raise _err(where, list(args), "numbers low < high")
    if kind == "log_uniform" and low <= 0:
        raise _err(where, list(args), "0 < low < high (a log scale)")
    for v in (low, high):
        check_value(where, dotted, int(v) if kind == "int" else v, base)
    return Distribution(kind, low, high)


def _space(key: str, raw: Any, base: RunConfig) -> tuple[tuple[str, Distribution], ...]:
    raw = _mapping(key, raw, "a mapping of dotted keys to distributions")
    if not raw:
        raise _err(key, dict(raw), "at least one dotted key with a distribution")
    return tuple((str(d), _distribution(f"{key}.{d}", v, str(d), base)) for d, v in raw.items())


def _select(raw: Any, base: RunConfig) -> SelectConfig:
    from mlplab.engine.stopping import monitor_mode

    raw = _mapping("select", raw, "a mapping {metric: ..., statistic: ..., rule: ...}")
    _check_keys("select", raw, ("metric", "statistic", "rule"))
    default = base.stopping.monitor if base.stopping.monitor in SELECT_METRICS else "best"
    metric = raw.get("metric", default)
    if metric not in SELECT_METRICS:
        raise _err("select.metric", metric, ", ".join(SELECT_METRICS))
    statistic = raw.get("statistic", "median")
    if statistic not in STATISTICS:
        raise _err("select.statistic", statistic, ", ".join(STATISTICS))
    rule = raw.get("rule", "best")
    if rule not in RULES:
        raise _err("select.rule", rule, ", ".join(RULES))
    if metric == "best":
        mode = monitor_mode(base.stopping)
    else:
        mode = "max" if metric.endswith("acc") else "min"
    return SelectConfig(metric, statistic, mode, rule)


def _seeds(raw: Any, strategy: str) -> tuple[int, int, int]:
    """``seeds: N`` or, for racing, ``seeds: {min: 3, max: 30, step: 3}``: (min, max, step)."""
    if not isinstance(raw, Mapping):
        n = _int("seeds", raw, 1)
        return n, n, 1
    _check_keys("seeds", raw, ("min", "max", "step"))
    if strategy == "optuna":
        raise _err("seeds", dict(raw), "a whole number with strategy optuna (racing is for"
                   " grid, random and staged)")
    low = _int("seeds.min", raw.get("min", 3), 2)
    high = _int("seeds.max", raw.get("max", 30), low)
    return low, high, _int("seeds.step", raw.get("step", low), 1)


def _budget(raw: Any) -> BudgetConfig:
    raw = _mapping("budget", raw, "a mapping {runs: N, epochs: N}")
    _check_keys("budget", raw, ("runs", "epochs"))
    runs, epochs = raw.get("runs"), raw.get("epochs")
    return BudgetConfig(None if runs is None else _int("budget.runs", runs, 1),
                        None if epochs is None else _int("budget.epochs", epochs, 1))


def _optuna(raw: Any) -> OptunaConfig:
    raw = _mapping("optuna", raw, "a mapping {sampler, pruner, n_trials, storage}")
    _check_keys("optuna", raw, ("sampler", "pruner", "n_trials", "storage"))
    sampler, pruner = raw.get("sampler", "tpe"), raw.get("pruner", "median")
    if sampler not in SAMPLERS:
        raise _err("optuna.sampler", sampler, ", ".join(SAMPLERS))
    if pruner not in PRUNERS:
        raise _err("optuna.pruner", pruner, ", ".join(PRUNERS))
    storage = raw.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise _err("optuna.storage", storage,
                   "null (the sweep's own SQLite file) or an RDB URL such as sqlite:///study.db")
    return OptunaConfig(sampler, pruner, _int("optuna.n_trials", raw.get("n_trials", 20), 1), storage)


def _retune(raw: Any) -> tuple[float, ...]:
    if raw is False or raw is None:
        return ()
    if raw is True:
        return DEFAULT_RETUNE_FACTORS
    if not isinstance(raw, (list, tuple)) or not raw:
        raise _err("retune_lr", raw, "true, false, or a list of factors of the best lr, e.g. [0.3, 1, 3]")
    factors = tuple(_number("retune_lr", f) for f in raw)
    if any(f <= 0 for f in factors):
        raise _err("retune_lr", list(raw), "positive factors of the best lr")
    return factors


def _swept_values(spec: SweepConfig) -> tuple[str, Grid]:
    """The sweep key and every value each dotted key can take: a grid's lists, a space's
    choices (a range by its two ends), the stages' lists merged (a later stage runs with
    the winners of the earlier ones, so any value of one may meet any of another)."""
    if spec.strategy == "grid":
        return "grid", spec.grid
    if spec.strategy == "staged":
        merged: dict[str, tuple[Any, ...]] = {}
        for stage in spec.stages:
            for key, values in stage:
                merged[key] = tuple(dict.fromkeys(merged.get(key, ()) + values))
        return "stages", tuple(merged.items())
    ends = {"int": lambda d: (int(d.low), int(d.high))}
    return "space", tuple((key, d.choices if d.kind == "choice" else
                           ends.get(d.kind, lambda d: (d.low, d.high))(d)) for key, d in spec.space)


def _classes(data: Any, load_data: Any) -> int | None:
    """The number of classes of ``data``; None when it cannot be read: that is the run's
    own failure, recorded in the store with its message like any run that raises."""
    try:
        return load_data(data).n_classes
    except ConfigError:
        return None


def check_plan(spec: SweepConfig, base: RunConfig, limit: int = 4096) -> None:
    """Raise a ConfigError naming the sweep key if a combination of swept values is not a
    valid run. Each value alone passed :func:`check_value`, but values can clash (loss ce
    with a sigmoid output, nesterov with momentum 0) and the data decides the head; found
    here, before any store is made or any run trained (the first ``limit`` combinations).

    >>> from mlplab.config import from_dict
    >>> base = from_dict({"data": {"name": "gaussians"}})
    >>> parse_sweep({"grid": {"train.loss": ["ce", "bce"]}}, base)
    Traceback (most recent call last):
    ...
    mlplab.config.ConfigError: config key 'sweep.grid': got {'train.loss': 'bce'}; allowed: ...
    """
    from mlplab.data import load_data
    from mlplab.model.head import resolve_head

    where, grid = _swept_values(spec)
    keys = [key for key, _ in grid]
    classes: dict[Any, int] = {}       # data config -> its number of classes
    for combo in itertools.islice(itertools.product(*(v for _, v in grid)), limit):
        point = dict(zip(keys, combo))
        try:
            cfg = with_overrides(base, point)
            if cfg.data not in classes:
                classes[cfg.data] = _classes(cfg.data, load_data)
            if classes[cfg.data]:
                resolve_head(cfg.model, cfg.train.loss, classes[cfg.data])
        except ConfigError as e:
            raise _err(where, point, "combinations that each make a valid run; this one"
                       f" breaks '{e.key}' (allowed: {e.allowed})") from None


def parse_sweep(raw: Any, base: RunConfig) -> SweepConfig:
    """Validate a ``sweep:`` block against the run config ``base`` it sweeps."""
    if not isinstance(raw, Mapping):
        raise ConfigError("sweep", raw, "a mapping with a strategy (grid, random, staged, optuna)")
    _check_keys("", raw, _TOP_KEYS)
    strategy = raw.get("strategy", "grid")
    if strategy not in STRATEGIES:
        raise _err("strategy", strategy, ", ".join(STRATEGIES))
    for key, strategies in _ONLY_WITH.items():
        if key in raw and strategy not in strategies:
            raise _err(key, raw[key], f"only with strategy {' or '.join(strategies)}"
                       f" (this sweep's strategy is {strategy})")
    seeds, seeds_max, seeds_step = _seeds(raw.get("seeds", 1), strategy)
    fields: dict[str, Any] = {
        "strategy": strategy,
        "seeds": seeds, "seeds_max": seeds_max, "seeds_step": seeds_step,
        "select": _select(raw.get("select", {}), base),
        "budget": _budget(raw.get("budget", {})),
        "seed": _int("seed", raw.get("seed", 0), 0),
    }
    if strategy == "grid":
        if "grid" not in raw:
            raise _err("grid", None, "a mapping of dotted keys to lists of values (strategy grid)")
        fields["grid"] = _grid("grid", raw["grid"], base)
    elif strategy in ("random", "optuna"):
        if "space" not in raw:
            raise _err("space", None, f"a mapping of dotted keys to distributions (strategy {strategy})")
        fields["space"] = _space("space", raw["space"], base)
        if strategy == "random":
            fields["n"] = _int("n", raw.get("n", 20), 1)
        else:
            fields["optuna"] = _optuna(raw.get("optuna", {}))
    else:
        stages = raw.get("stages")
        if stages is None:
            fields["stages"] = DEFAULT_STAGES
        else:
            if not isinstance(stages, (list, tuple)) or not stages:
                raise _err("stages", stages, "a non-empty list of {dotted key: [values]} mappings")
            fields["stages"] = tuple(_grid(f"stages[{i}]", s, base) for i, s in enumerate(stages))
        fields["retune_lr"] = _retune(raw.get("retune_lr", False))
    spec = SweepConfig(**fields)
    check_plan(spec, base)
    return spec


def load_sweep(source: str | Path | Mapping[str, Any]) -> tuple[RunConfig, SweepConfig]:
    """Read a sweep file (or mapping): the base run config and its checked ``sweep:`` block.

    >>> base, spec = load_sweep({"name": "s", "sweep": {"grid": {"train.lr": [0.1]}}})
    >>> base.name, spec.strategy
    ('s', 'grid')
    """
    if isinstance(source, Mapping):
        base, where = from_dict(source), ""
    else:
        path = Path(source)
        base, where = load_config(path), path.name
        if base.name == "run":                       # unnamed: the file's name
            base = replace(base, name=path.stem)
    if base.sweep is None:
        raise ConfigError("sweep", None, "a sweep: block (strategy grid, random, staged or optuna)",
                          where)
    try:
        spec = parse_sweep(base.sweep, replace(base, sweep=None))
    except ConfigError as e:
        if not where:
            raise

        line = yaml_line(Path(source), e.key) if str(source).endswith((".yaml", ".yml")) else None
        raise ConfigError(e.key, e.value, e.allowed, f"{where}, line {line}" if line else where) from None
    return base, spec
