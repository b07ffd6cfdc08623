"""How many seeds a difference needs: the power of a two-sided t-test, from the noncentral t.

Paired arms (same seeds) test the per-seed differences with a one-sample t-test
(df = n - 1, noncentrality diff / sd * sqrt(n), sd of the differences); unpaired arms of n
seeds each use the two-sample t-test (df = 2n - 2, noncentrality diff / (sd sqrt(2 / n)), sd of
one arm). The permutation and Mann-Whitney tests mlplab runs have about this power on
normal-ish data (tests/test_stats.py measures how close).

The t-test's answer can be a number at which the exact tests mlplab runs cannot reject at
all (a paired permutation test's smallest two-sided p is 2 / 2^n), so the count is never
below :func:`fewest_seeds`, the smallest n whose exact test can reach ``alpha``.

>>> seeds_needed(1.0, 1.0), seeds_needed(1.0, 1.0, paired=True)
(17, 10)
>>> seeds_needed(5.0, 1.0, paired=True), seeds_needed(5.0, 1.0, paired=True, alpha=0.05 / 6)
(6, 8)
"""

from __future__ import annotations

import math

from scipy import stats

MAX_SEEDS = 100_000   # beyond this, "no affordable number of seeds" (None)


def ttest_power(n: int, diff: float, sd: float, *, alpha: float = 0.05,
                paired: bool = False) -> float:
    """The probability that a two-sided t-test at ``alpha`` finds ``diff`` with n seeds per arm.

    >>> round(ttest_power(10, 1.0, 1.0), 3), ttest_power(10, 0.0, 1.0) == 0.05
    (0.562, True)
    >>> ttest_power(6, 5.0, 1.0, paired=True) > 0.99
    True
    """
    if n < 2 or sd < 0:
        raise ValueError(f"need n >= 2 and sd >= 0, but got {n=}, {sd=}")
    if sd == 0:
        return 1.0 if diff != 0 else alpha
    df, ncp = (n - 1, abs(diff) / sd * math.sqrt(n)) if paired else \
        (2 * n - 2, abs(diff) / (sd * math.sqrt(2.0 / n)))
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    if ncp == 0:
        return alpha
    power = float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    if not math.isfinite(power):      # scipy's nct gives NaN far out in the tail (ncp >~ 10)
        power = float(stats.norm.sf(crit - ncp) + stats.norm.cdf(-crit - ncp))
    return power


def fewest_seeds(alpha: float = 0.05, *, paired: bool = False) -> int:
    """The fewest seeds per arm at which the exact test can give a two-sided p below
    ``alpha`` at all: 2 / 2^n for the paired permutation test, 2 / C(2n, n) for
    Mann-Whitney U on two arms of n.

    >>> fewest_seeds(), fewest_seeds(paired=True), fewest_seeds(0.01, paired=True)
    (4, 6, 8)
    """
    n = 2
    while (2.0 / 2 ** n if paired else 2.0 / math.comb(2 * n, n)) >= alpha:
        n += 1
    return n


def seeds_needed(diff: float, sd: float, *, power: float = 0.8, alpha: float = 0.05,
                 paired: bool = False, max_seeds: int = MAX_SEEDS) -> int | None:
    """The smallest number of seeds per arm (at least :func:`fewest_seeds`) whose t-test
    finds ``diff`` with that power.

    ``sd`` is the spread of one arm (unpaired) or of the per-seed differences (paired). None
    when no number up to ``max_seeds`` does (a zero difference never will).

    >>> seeds_needed(0.01, 0.02), seeds_needed(0.0, 0.02), seeds_needed(0.01, 0.0)
    (64, None, 4)
    """
    if not 0 < power < 1:
        raise ValueError(f"power must lie in (0, 1), but got {power=}")

    floor = fewest_seeds(alpha, paired=paired)

    def enough(n: int) -> bool:
        return ttest_power(n, diff, sd, alpha=alpha, paired=paired) >= power

    if enough(floor):
        return floor
    if not enough(max_seeds):
        return None
    low, high = floor, 2 * floor  # power grows with n: double past the target, then bisect
    while not enough(high):
        low, high = high, min(2 * high, max_seeds)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high
