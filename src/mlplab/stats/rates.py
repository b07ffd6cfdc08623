"""Proportions: a success rate over runs, and the noise floor of an accuracy on m points.

Both use the Wilson score interval (scipy's ``binomtest(...).proportion_ci(method="wilson")``),
which, unlike the normal approximation, stays inside [0, 1] and is not zero-width at 0/n or n/n.

>>> r = success_rate(8, 10)
>>> r.rate, round(r.ci_low, 3), round(r.ci_high, 3)
(0.8, 0.49, 0.943)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from mlplab.strictjson import jsonable


@dataclass(frozen=True)
class Rate:
    """``k`` successes in ``n`` tries, with the Wilson interval of the rate."""

    k: int
    n: int
    rate: float | None           # None when n == 0
    ci_low: float | None
    ci_high: float | None
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(asdict(self))


def success_rate(k: int, n: int, confidence: float = 0.95) -> Rate:
    """The share of ``n`` runs that succeeded (``k`` of them), with its Wilson interval.

    >>> success_rate(0, 20).ci_high > 0, success_rate(0, 0).rate
    (True, None)
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, but got {k=}, {n=}")
    if n == 0:
        return Rate(0, 0, None, None, None, confidence)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Rate(k, n, k / n, float(ci.low), float(ci.high), confidence)


@dataclass(frozen=True)
class AccuracyNoise:
    """How far an accuracy measured on ``m`` points moves by chance alone."""

    accuracy: float
    m: int
    stderr: float        # sqrt(acc (1 - acc) / m), the binomial standard error
    halfwidth: float     # half the width of the Wilson interval at k = round(acc * m)

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(asdict(self))


def accuracy_noise(acc: float, m: int, confidence: float = 0.95) -> AccuracyNoise:
    """The noise floor of an accuracy ``acc`` on ``m`` test points (binomial sampling).

    Two models whose accuracies differ by less than ``halfwidth`` are not told apart by
    this test set. The Wilson half-width is used because at acc = 1 the standard error is 0
    while 100 / 100 still only shows acc > 0.96.

    >>> n = accuracy_noise(0.9, 100)
    >>> round(n.stderr, 3), round(n.halfwidth, 3)
    (0.03, 0.06)
    """
    if m < 1 or not 0.0 <= acc <= 1.0:
        raise ValueError(f"need m >= 1 and 0 <= acc <= 1, but got {acc=}, {m=}")
    ci = success_rate(round(acc * m), m, confidence)
    return AccuracyNoise(float(acc), m, math.sqrt(acc * (1.0 - acc) / m),
                         (ci.ci_high - ci.ci_low) / 2.0)
