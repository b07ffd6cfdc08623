"""Statistics for verdicts that state their uncertainty: does a choice matter, and how much?

Pure functions on arrays of per-seed results (numpy and scipy; no torch, no store): a metric
over seeds with its bootstrap interval (:func:`summarize`), a success rate with its Wilson
interval (:func:`success_rate`), the noise floor of an accuracy on m points
(:func:`accuracy_noise`), A against B (:func:`compare`, :func:`holm`), the seeds a difference
needs (:func:`seeds_needed`), equivalence (:func:`tost`), three-valued verdicts
(:func:`verdict`, :func:`verdicts`) and the Bayes-optimal accuracy of each generated dataset
(:func:`bayes_limit`).
"""

from mlplab.stats.compare import Comparison as Comparison
from mlplab.stats.compare import compare as compare
from mlplab.stats.compare import difference_pvalue as difference_pvalue
from mlplab.stats.compare import holm as holm
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
from mlplab.stats.verdict import Verdict as Verdict
from mlplab.stats.verdict import verdict as verdict
from mlplab.stats.verdict import verdicts as verdicts

__all__ = ["AccuracyNoise", "Comparison", "Equivalence", "MetricSummary", "Rate", "Verdict",
           "accuracy_noise", "compare", "difference_pvalue", "holm", "seeds_needed",
           "success_rate", "summarize", "tost", "ttest_power", "verdict", "verdicts"]
