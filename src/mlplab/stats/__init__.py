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
"""

from mlplab.stats.bayes import BayesLimit as BayesLimit
from mlplab.stats.bayes import LimitCheck as LimitCheck
from mlplab.stats.bayes import against_limit as against_limit
from mlplab.stats.bayes import bayes_classify as bayes_classify
from mlplab.stats.bayes import bayes_limit as bayes_limit
from mlplab.stats.bayes import data_bayes_limit as data_bayes_limit
from mlplab.stats.comparison import Comparison as Comparison
from mlplab.stats.comparison import compare as compare
from mlplab.stats.comparison import difference_pvalue as difference_pvalue
from mlplab.stats.comparison import holm as holm
from mlplab.stats.densities import joint_log_density as joint_log_density
from mlplab.stats.equivalence import Equivalence as Equivalence
from mlplab.stats.equivalence import tost as tost
from mlplab.stats.power import seeds_needed as seeds_needed
from mlplab.stats.power import ttest_power as ttest_power
from mlplab.stats.rates import AccuracyNoise as AccuracyNoise
from mlplab.stats.rates import Rate as Rate
from mlplab.stats.rates import accuracy_noise as accuracy_noise
from mlplab.stats.rates import success_rate as success_rate
from mlplab.stats.summary import MetricSummary as MetricSummary
from mlplab.stats.summary import summarize as summarize
from mlplab.stats.ties import TieInfo as TieInfo
from mlplab.stats.ties import ties_with_best as ties_with_best
from mlplab.stats.verdicts import Verdict as Verdict
from mlplab.stats.verdicts import verdict as verdict
from mlplab.stats.verdicts import study_verdicts as study_verdicts

__all__ = ["AccuracyNoise", "BayesLimit", "Comparison", "Equivalence", "LimitCheck",
           "MetricSummary", "Rate", "TieInfo", "Verdict", "accuracy_noise", "against_limit",
           "bayes_classify", "bayes_limit", "compare", "data_bayes_limit", "difference_pvalue",
           "holm", "joint_log_density", "seeds_needed", "study_verdicts", "success_rate",
           "summarize", "ties_with_best", "tost", "ttest_power", "verdict"]
