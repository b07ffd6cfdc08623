"""Statistics for verdicts that state their uncertainty: does a choice matter, and how much?

Pure functions on arrays of per-seed results (numpy and scipy; no torch, no store): a metric
over seeds with its bootstrap interval (:func:`summarize`), a success rate with its Wilson
interval (:func:`success_rate`), the noise floor of an accuracy on m points
(:func:`accuracy_noise`), A against B (:func:`compare`, :func:`holm`), the seeds a difference
needs (:func:`seeds_needed`), equivalence (:func:`tost`), three-valued verdicts
(:func:`verdict`, :func:`study_verdicts`) and the Bayes-optimal accuracy of each generated dataset
(:func:`bayes_limit`, :func:`against_limit`).

    summary.py      a metric over seeds: n, mean, median, BCa bootstrap interval
    medians.py      medians for the bootstrap: of resamples and leave-one-out samples at once
    rates.py        success rates (Wilson) and the noise floor of an accuracy on m points
    comparison.py   A vs B: difference, P(A better), permutation / Mann-Whitney p, Holm
    power.py        t-test power and the seeds a difference needs
    equivalence.py  TOST against a smallest effect of interest
    verdicts.py     reproduces / contradicted / inconclusive, Holm across a study
    ties.py         which configurations are tied with the best (the one tie rule)
    densities.py    the generated datasets' class densities; bayes.py their Bayes limits
    importance.py   each factor's share of a metric's variance (fANOVA, Optuna's PED-ANOVA;
                    needs the optuna extra, imported when called; not re-exported here)
    fanova.py       fANOVA on a random forest, vectorised over each tree's leaves

Names are exported lazily (:data:`EXPORTS`): importing this package imports no scipy, so
a sweep's worker can read the Bayes limit its driver computed (:func:`known_limit`)
without scipy's half second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# each name re-exported here, by the module that defines it
EXPORTS = {
    "bayes": ("BayesLimit", "LimitCheck", "against_limit", "bayes_classify", "bayes_limit",
              "data_bayes_limit", "known_limit"),
    "comparison": ("Comparison", "compare", "difference_pvalue", "holm"),
    "densities": ("joint_log_density",),
    "equivalence": ("Equivalence", "tost"),
    "power": ("seeds_needed", "ttest_power"),
    "rates": ("AccuracyNoise", "Rate", "accuracy_noise", "success_rate"),
    "summary": ("MetricSummary", "summarize"),
    "ties": ("TieInfo", "ties_with_best"),
    "verdicts": ("Verdict", "verdict", "study_verdicts"),
}
_MODULE_OF = {name: module for module, names in EXPORTS.items() for name in names}

__all__ = ["AccuracyNoise", "BayesLimit", "Comparison", "Equivalence", "LimitCheck",
           "MetricSummary", "Rate", "TieInfo", "Verdict", "accuracy_noise", "against_limit",
           "bayes_classify", "bayes_limit", "compare", "data_bayes_limit", "difference_pvalue",
           "holm", "joint_log_density", "known_limit", "seeds_needed", "study_verdicts",
           "success_rate", "summarize", "ties_with_best", "tost", "ttest_power", "verdict"]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mlplab.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mlplab.stats.{module}"), name)
    globals()[name] = value          # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from mlplab.stats.bayes import (BayesLimit, LimitCheck, against_limit, bayes_classify,
                                    bayes_limit, data_bayes_limit, known_limit)
    from mlplab.stats.comparison import Comparison, compare, difference_pvalue, holm
    from mlplab.stats.densities import joint_log_density
    from mlplab.stats.equivalence import Equivalence, tost
    from mlplab.stats.power import seeds_needed, ttest_power
    from mlplab.stats.rates import AccuracyNoise, Rate, accuracy_noise, success_rate
    from mlplab.stats.summary import MetricSummary, summarize
    from mlplab.stats.ties import TieInfo, ties_with_best
    from mlplab.stats.verdicts import Verdict, study_verdicts, verdict
