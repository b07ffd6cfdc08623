"""Hyper-parameter importance: the share of a metric's variance each factor explains.

:func:`param_importances` takes one column of values per factor (a swept key, and the
seed as one more factor) and the metric of each run, and gives each factor's share by
fANOVA (:mod:`mlplab.stats.fanova`: Optuna's evaluator's numbers, vectorised) and by
Optuna's PED-ANOVA (``optuna.importance``, on an in-memory study of those runs as
finished trials). Shares of one evaluator sum to 1, or are all 0 when no factor alone
explains any of the variance. Deterministic: fANOVA's random forest has a fixed seed.
Needs the ``optuna`` extra (Optuna and scikit-learn).

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
    from optuna.importance import PedAnovaImportanceEvaluator

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
    fractions = _fanova(varied, y, seed)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = _study(varied, y, minimize, unordered)
        with warnings.catch_warnings():
            # PED-ANOVA is marked experimental in Optuna; that notice is not about our data
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ped = optuna.importance.get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), normalize=False)
    finally:
        optuna.logging.set_verbosity(verbosity)
    for name, shares in (("fANOVA", fractions), ("PED-ANOVA", ped)):
        total = sum(shares.values())
        for k, s in shares.items():
            out[name][k] = float(s / total) if total > 0 and math.isfinite(s) else 0.0
    return out


def _distributions(varied: Mapping[str, list[Any]], many_categories: bool,
                   categorical: Sequence[str] = ()) -> tuple[dict[str, list[Any]],
                                                             dict[str, "BaseDistribution"]]:
    """Each factor's values and the Optuna distribution they are read as, by name: factors in
    ``categorical`` as categories, other non-numeric factors as categories too unless they
    have more than MAX_CATEGORIES of them and ``many_categories`` is False (then integer
    codes)."""
    from optuna.distributions import CategoricalDistribution

    columns, dists = {}, {}
    for k, c in sorted(varied.items()):
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
    return columns, dists


def _fanova(varied: Mapping[str, list[Any]], y: np.ndarray, seed: int) -> dict[str, float]:
    """fANOVA's share for each factor (:func:`mlplab.stats.fanova.fanova_fractions`), on the
    encoding Optuna's evaluator uses for the same study: factors by name, numbers as they
    are within [lowest, highest], categories one-hot in their distribution's order."""
    from optuna.distributions import CategoricalDistribution

    from mlplab.stats.fanova import fanova_fractions

    columns, dists = _distributions(varied, many_categories=False)
    blocks, bounds, groups = [], [], []
    for k, dist in dists.items():
        start = sum(len(b) for b in bounds)
        if isinstance(dist, CategoricalDistribution):
            position = {repr(v): i for i, v in enumerate(dist.choices)}
            block = np.zeros((len(y), len(dist.choices)))
            block[np.arange(len(y)), [position[repr(v)] for v in columns[k]]] = 1.0
            bounds.append([(0.0, 1.0)] * len(dist.choices))
        else:
            block = np.asarray(columns[k], dtype=np.float64)[:, None]
            bounds.append([(float(dist.low), float(dist.high))])
        blocks.append(block)
        groups.append(np.arange(start, start + block.shape[1]))
    fractions = fanova_fractions(np.hstack(blocks), y, np.array(sum(bounds, [])), groups,
                                 seed=seed)
    return dict(zip(dists, fractions.tolist()))


def _study(varied: Mapping[str, list[Any]], y: np.ndarray, minimize: bool,
           unordered: Sequence[str]) -> Any:
    """An in-memory study of one finished trial per run, for PED-ANOVA: the ``unordered``
    factors and every non-numeric one as categories."""
    import optuna

    columns, dists = _distributions(varied, many_categories=True, categorical=unordered)
    study = optuna.create_study(direction="minimize" if minimize else "maximize")
    study.add_trials([optuna.trial.create_trial(params={k: col[i] for k, col in columns.items()},
                                                distributions=dists, value=float(v))
                      for i, v in enumerate(y)])
    return study


__all__ = ["EVALUATORS", "distribution_of", "param_importances"]
