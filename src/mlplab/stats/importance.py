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


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def distribution_of(column: Sequence[Any], categorical: bool = False) -> "BaseDistribution":
    """The Optuna distribution a factor's values are drawn from: categorical for text,
    lists and flags (and when ``categorical``), integer or float otherwise, on a log scale
    when the positive values span a factor of 10 or more.

    >>> distribution_of([0.01, 0.1, 1.0])
    FloatDistribution(high=1.0, log=True, low=0.01, step=None)
    >>> distribution_of(["relu", "tanh"]).choices
    ('relu', 'tanh')
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    values = list(column)
    if categorical or not all(_is_number(v) for v in values):
        return CategoricalDistribution(sorted({_choice(v) for v in values}, key=str))
    low, high = min(values), max(values)
    log = low > 0 and high >= 10 * low
    if all(isinstance(v, numbers.Integral) for v in values):
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _choice(v: Any) -> Any:
    """A value Optuna accepts as a categorical choice (None, bool, int, float or str)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v.item() if isinstance(v, np.generic) else v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return "-".join(map(str, v)) or "()"
    return str(v)


def param_importances(factors: Mapping[str, Sequence[Any]], values: Sequence[float], *,
                      minimize: bool = True, categorical: Sequence[str] = (),
                      seed: int = FANOVA_SEED) -> dict[str, dict[str, float]]:
    """Per evaluator (:data:`EVALUATORS`), each factor's share of the variance of ``values``.

    ``factors``: per factor name, one value per run (all columns as long as ``values``);
    names in ``categorical`` are treated as unordered (a seed is). ``minimize`` says
    which end of ``values`` is good (PED-ANOVA looks at the best 10 %). Runs whose value
    is not finite must be left out by the caller. A factor with one value explains
    nothing and gets 0.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    y = np.asarray(values, dtype=np.float64)   # [R]
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError("values: one finite number per run")
    for name, col in factors.items():
        if len(col) != len(y):
            raise ValueError(f"factor {name!r}: {len(col)} values for {len(y)} runs")
    varied = {k: list(c) for k, c in factors.items() if len({repr(_choice(v)) for v in c}) > 1}
    out = {e: dict.fromkeys(factors, 0.0) for e in EVALUATORS}
    if not varied or len(y) < 2 or np.ptp(y) == 0:
        return out
    dists = {k: distribution_of(c, k in categorical) for k, c in varied.items()}
    trials = []
    for i, v in enumerate(y):
        params = {k: (_choice(c[i]) if isinstance(dists[k], optuna.distributions.CategoricalDistribution)
                      else c[i].item() if isinstance(c[i], np.generic) else c[i]) for k, c in varied.items()}
        trials.append(optuna.trial.create_trial(params=params, distributions=dists, value=float(v)))
    logging = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize" if minimize else "maximize")
        study.add_trials(trials)
        evaluators = {"fANOVA": FanovaImportanceEvaluator(seed=seed),
                      "PED-ANOVA": PedAnovaImportanceEvaluator()}
        for name, evaluator in evaluators.items():
            with warnings.catch_warnings():
                # PED-ANOVA is marked experimental in Optuna; that notice is not about our data
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                shares = optuna.importance.get_param_importances(study, evaluator=evaluator)
            total = sum(shares.values())
            for k, s in shares.items():
                out[name][k] = float(s / total) if total > 0 and math.isfinite(s) else 0.0
    finally:
        optuna.logging.set_verbosity(logging)
    return out


__all__ = ["EVALUATORS", "distribution_of", "param_importances"]
