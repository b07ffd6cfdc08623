"""Hyper-parameter importance: the share of a metric's variance each factor explains.

:func:`param_importances` takes one column of values per factor (a swept key, and the
seed as one more factor) and the metric of each run, builds an in-memory Optuna study
of those runs as finished trials and asks Optuna's evaluators (``optuna.importance``:
fANOVA and PED-ANOVA) for each factor's share. Shares of one evaluator sum to 1.
Deterministic: fANOVA's random forest has a fixed seed. Needs the ``optuna`` extra.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> lr = rng.choice([0.01, 0.1, 1.0], 60)
>>> noise = rng.choice(["a", "b"], 60)            # a key with no effect
>>> shares = param_importances({"lr": lr, "noise": noise}, np.log10(lr) + rng.normal(0, 0.01, 60))
>>> shares["fANOVA"]["lr"] > 0.9, shares["fANOVA"]["noise"] < 0.05
(True, True)
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

EVALUATORS = ("fANOVA", "PED-ANOVA")
FANOVA_SEED = 0
# fANOVA's cost doubles with each category of a factor; past this many, a factor is coded
# as the integer position of its category.
MAX_CATEGORIES = 8


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def distribution_of(column: Sequence[Any]) -> "BaseDistribution":
    """The Optuna distribution a factor's values are drawn from: categorical for text,
    lists and flags, integer or float otherwise, on a log scale when the positive values
    span a factor of 10 or more.

    >>> distribution_of([0.01, 0.1, 1.0])
    FloatDistribution(high=1.0, log=True, low=0.01, step=None)
    >>> distribution_of(["relu", "tanh"]).choices
    ('relu', 'tanh')
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    values = list(column)
    if not all(_is_number(v) for v in values):
        return CategoricalDistribution(sorted({_choice(v) for v in values}, key=str))
    low, high = min(values), max(values)
    log = low > 0 and high >= 10 * low
    if all(isinstance(v, numbers.Integral) for v in values):
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _choice(v: Any) -> Any:
    """A value Optuna accepts as a categorical choice (None, bool, int, float or str)."""
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return "-".join(map(str, v)) or "()"
    return str(v)


def param_importances(factors: Mapping[str, Sequence[Any]], values: Sequence[float], *,
                      minimize: bool = True, unordered: Sequence[str] = (),
                      seed: int = FANOVA_SEED) -> dict[str, dict[str, float]]:
    """Per evaluator (:data:`EVALUATORS`), each factor's share of the variance of ``values``.

    ``factors``: per factor name, one value per run (all columns as long as ``values``).
    Factors named in ``unordered`` (a seed) are categories to PED-ANOVA; to fANOVA they,
    and any factor of more than :data:`MAX_CATEGORIES` categories, are integer codes (its
    cost doubles with each category; a forest still isolates each code with enough
    threshold splits). ``minimize`` says which end of ``values`` is good (PED-ANOVA looks at
    the best 10 %). Runs whose value is not finite must be left out by the caller. A
    factor with one value explains nothing and gets 0.
    """
    with warnings.catch_warnings():
        # in a notebook, optuna's tqdm.auto asks for ipywidgets; its progress bars are not used
        warnings.filterwarnings("ignore", message="IProgress not found")
        import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    y = np.asarray(values, dtype=np.float64)   # [R]
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError("values: one finite number per run")
    for name, col in factors.items():
        if len(col) != len(y):
            raise ValueError(f"factor {name!r}: {len(col)} values for {len(y)} runs")
    varied = {k: [_choice(v) for v in c] for k, c in factors.items()
              if len({repr(_choice(v)) for v in c}) > 1}
    out = {e: dict.fromkeys(factors, 0.0) for e in EVALUATORS}
    if not varied or len(y) < 2 or np.ptp(y) == 0:
        return out
    evaluators = {"fANOVA": (FanovaImportanceEvaluator(seed=seed), False),
                  "PED-ANOVA": (PedAnovaImportanceEvaluator(), True)}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        for name, (evaluator, categories) in evaluators.items():
            study = _study(varied, y, minimize, unordered if categories else (), categories)
            with warnings.catch_warnings():
                # PED-ANOVA is marked experimental in Optuna; that notice is not about our data
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                shares = optuna.importance.get_param_importances(study, evaluator=evaluator)
            total = sum(shares.values())
            for k, s in shares.items():
                out[name][k] = float(s / total) if total > 0 and math.isfinite(s) else 0.0
    finally:
        optuna.logging.set_verbosity(verbosity)
    return out


def _study(varied: Mapping[str, list[Any]], y: np.ndarray, minimize: bool,
           categorical: Sequence[str], many_categories: bool) -> Any:
    """An in-memory study of one finished trial per run: factors in ``categorical`` as
    categories, other non-numeric factors as categories too unless they have more than
    MAX_CATEGORIES of them and ``many_categories`` is False (then integer codes)."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    columns, dists = {}, {}
    for k, c in varied.items():
        distinct = sorted({repr(v): v for v in c}.values(), key=lambda v: (str(type(v)), v))
        numeric = all(_is_number(v) for v in c)
        few = many_categories or len(distinct) <= MAX_CATEGORIES
        if k in categorical or (not numeric and few):
            columns[k], dists[k] = c, CategoricalDistribution(distinct)
        elif numeric:
            columns[k], dists[k] = c, distribution_of(c)
        else:
            code = {repr(v): i for i, v in enumerate(distinct)}
            columns[k] = [code[repr(v)] for v in c]
            dists[k] = distribution_of(columns[k])
    study = optuna.create_study(direction="minimize" if minimize else "maximize")
    study.add_trials([optuna.trial.create_trial(params={k: col[i] for k, col in columns.items()},
                                                distributions=dists, value=float(v))
                      for i, v in enumerate(y)])
    return study


__all__ = ["EVALUATORS", "distribution_of", "param_importances"]
