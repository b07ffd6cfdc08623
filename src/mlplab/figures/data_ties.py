"""Intervals over seeds for every store figure that draws configurations across runs, and the
words for their ties (the tie rule itself is :mod:`mlplab.stats.ties`).

A plotted configuration (a cell of a figure: a learning rate of one optimizer, say) is a set
of per-seed values. Its point estimate is the median, with the 95 % BCa bootstrap interval of
:func:`mlplab.stats.summarize`; which configurations are tied with the best is
:func:`mlplab.stats.ties.ties_with_best`.

>>> median_interval([1.0, 2.0, 3.0, float("nan")])[0]
2.0
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mlplab.stats.summary import summarize_many
from mlplab.stats.ties import ALPHA, PAIRED_MIN


def median_interval(values: Sequence[float] | np.ndarray,
                    statistic: str = "median") -> tuple[float, float, float]:
    """``(point, low, high)``: the median (or mean) of the finite values and its 95 % interval
    from :func:`mlplab.stats.summarize`; nan when no value is finite.

    >>> median_interval([1.0, 1.0, float("nan")])
    (1.0, 1.0, 1.0)
    """
    return median_intervals([values], statistic)[0]


def median_intervals(rows: Sequence[Sequence[float] | np.ndarray],
                     statistic: str = "median") -> list[tuple[float, float, float]]:
    """:func:`median_interval` of each row (a figure's cells), the rows of one number of
    seeds in one vectorised bootstrap (:func:`mlplab.stats.summary.summarize_many`).

    >>> median_intervals([[1.0, 3.0], []])[1]
    (nan, nan, nan)
    """
    out = []
    for s in summarize_many(rows, statistic=statistic):
        if s.n == 0:
            out.append((math.nan, math.nan, math.nan))
        else:
            point = s.median if statistic == "median" else s.mean
            out.append((float(point), float(s.ci_low), float(s.ci_high)))
    return out


def tie_words(n_tied: int, n: int) -> str:
    """What the tie marks of a figure say, for its title or legend.

    >>> tie_words(2, 5), tie_words(5, 5)
    ('2 of 5 tied with the best', 'all 5 tied with the best: the seeds cannot separate them')
    """
    if n > 1 and n_tied >= n:
        return f"all {n} tied with the best: the seeds cannot separate them"
    return f"{n_tied} of {n} tied with the best"


TIE_RULE = (f"tied with the best: not distinguishable from it (paired permutation test over "
            f"{PAIRED_MIN}+ shared seeds, else Mann-Whitney U; Holm-adjusted p ≥ {ALPHA:g})")
