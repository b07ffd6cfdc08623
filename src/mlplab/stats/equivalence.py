"""Equivalence: is any difference between A and B smaller than the smallest one that matters?

Two one-sided t-tests (TOST, Schuirmann 1987) against the smallest effect size of interest
``sesoi``: "diff > -sesoi" and "diff < +sesoi", each at ``alpha``; A and B are equivalent when
both reject, which is the same as the (1 - 2 alpha) t interval of the difference lying inside
(-sesoi, +sesoi). Paired arms test the per-seed differences; unpaired arms use Welch's t.

>>> e = tost([0.901, 0.899, 0.902, 0.898, 0.900], [0.900, 0.901, 0.899, 0.900, 0.901], sesoi=0.01)
>>> e.equivalent, e.p_value < 0.001
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from mlplab.stats.summary import is_constant
from mlplab.strictjson import jsonable


@dataclass(frozen=True)
class Equivalence:
    """The TOST of |mean(A) - mean(B)| < sesoi."""

    diff: float          # mean(A) - mean(B)
    ci_low: float        # its (1 - 2 alpha) t interval
    ci_high: float
    p_value: float       # the larger of the two one-sided p-values
    equivalent: bool     # p_value < alpha: any difference is smaller than sesoi
    sesoi: float
    alpha: float
    test: str            # "TOST (paired t)" or "TOST (Welch t)"

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(asdict(self))


def tost(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, sesoi: float,
         paired: bool = False, alpha: float = 0.05) -> Equivalence:
    """Test whether mean(A) and mean(B) differ by less than ``sesoi`` (finite values only).

    Without spread the difference is known exactly: equivalent iff it is inside ±sesoi.
    Fewer than two values a side prove nothing (p = 1).

    >>> tost([0.80, 0.82, 0.81], [0.90, 0.91, 0.92], sesoi=0.01).equivalent
    False
    """
    if sesoi <= 0:
        raise ValueError(f"sesoi must be > 0, but got {sesoi=}")
    x, y = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if paired:
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
    else:
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    test = "TOST (paired t)" if paired else "TOST (Welch t)"
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else float("nan")
    if min(len(x), len(y)) < 2:
        return Equivalence(diff, -np.inf, np.inf, 1.0, False, sesoi, alpha, test)
    if is_constant(x - y) if paired else (is_constant(x) and is_constant(y)):
        inside = abs(diff) < sesoi
        return Equivalence(diff, diff, diff, 0.0 if inside else 1.0, inside, sesoi, alpha, test)
    if paired:
        d = x - y
        above = stats.ttest_1samp(d, -sesoi, alternative="greater").pvalue
        below = stats.ttest_1samp(d, sesoi, alternative="less").pvalue
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(1.0 - 2.0 * alpha)
    else:
        # shifting A by the margin tests the difference against it with Welch's t
        above = stats.ttest_ind(x + sesoi, y, equal_var=False, alternative="greater").pvalue
        below = stats.ttest_ind(x - sesoi, y, equal_var=False, alternative="less").pvalue
        ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(1.0 - 2.0 * alpha)
    p = float(max(above, below))
    return Equivalence(diff, float(ci.low), float(ci.high), p, p < alpha, sesoi, alpha, test)
