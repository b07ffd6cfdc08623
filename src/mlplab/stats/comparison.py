"""A versus B over seeds: the difference, the probability of improvement and a p-value.

The effect is the difference of *means* (A - B, in the metric's units): the seeds-needed
calculation and the equivalence test reason about means, and a mean counts every seed. The
robust view sits beside it: P(A better than B), ties counting half (the "probability of
improvement" of Agarwal et al. 2021, rliable), which is the Mann-Whitney U statistic scaled to
[0, 1]. Both have BCa bootstrap intervals (resampling seeds jointly when the runs are paired).

The p-value comes from a paired permutation test of the mean difference when the arms share
seeds (scipy's ``permutation_type="samples"``: the sign of each seed's difference is flipped),
and from the Mann-Whitney U test otherwise. :func:`holm` adjusts the p-values of one study.

>>> c = compare([0.90, 0.92, 0.95, 0.91, 0.93], [0.85, 0.88, 0.90, 0.86, 0.87])
>>> c.test, round(c.diff, 3), c.prob_a_better, round(c.p_value, 4)
('paired permutation', 0.05, 0.98, 0.0625)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from mlplab.stats.summary import N_RESAMPLES, bootstrap_ci, is_constant
from mlplab.strictjson import jsonable

PAIRED_TEST = "paired permutation"
UNPAIRED_TEST = "Mann-Whitney U"


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis) - y.mean(axis=axis)


def _prob_greater(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over all pairs of the last axes: [..., n] x [..., m] -> [...]."""
    x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
    return ((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1))


def _prob_less(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return _prob_greater(y, x, axis)


def difference_pvalue(a: np.ndarray, b: np.ndarray, *, paired: bool,
                      n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[np.ndarray, str]:
    """Two-sided p-values of "A and B differ", batched over leading axes: [..., n] -> [...].

    Paired: permutation test of the mean difference (exact when 2**n <= n_resamples).
    Unpaired: Mann-Whitney U. Rows without any difference, or with one value a side,
    get p = 1.

    >>> a, b = np.array([[1.0, 2, 3], [1, 1, 1]]), np.array([[0.0, 1, 2], [1, 1, 1]])
    >>> difference_pvalue(a, b, paired=True)[0].round(3).tolist()
    [0.25, 1.0]
    >>> difference_pvalue(a, b, paired=False)[0].round(3).tolist()
    [0.369, 1.0]
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if min(a.shape[-1], b.shape[-1]) < 2:   # one seed a side: no test can tell them apart
        return np.ones(np.broadcast_shapes(a.shape[:-1], b.shape[:-1])), \
            PAIRED_TEST if paired else UNPAIRED_TEST
    if paired:
        # no difference anywhere gives a null distribution of zeros, and p = 1, by itself
        res = stats.permutation_test((a, b), _mean_diff, permutation_type="samples",
                                     vectorized=True, n_resamples=n_resamples, axis=-1,
                                     random_state=np.random.default_rng(seed))
        return np.minimum(res.pvalue, 1.0), PAIRED_TEST
    pooled = np.concatenate([a, b], axis=-1)
    still = np.array([is_constant(row) for row in pooled.reshape(-1, pooled.shape[-1])])
    still = still.reshape(pooled.shape[:-1])
    # U's variance is 0 when every value is tied: give such rows a stand-in, then p = 1
    a = np.where(still[..., None], np.arange(a.shape[-1], dtype=np.float64), a)
    b = np.where(still[..., None], np.arange(b.shape[-1]) + 0.5, b)
    p = stats.mannwhitneyu(a, b, alternative="two-sided", axis=-1).pvalue
    return np.where(still, 1.0, np.minimum(p, 1.0)), UNPAIRED_TEST


@dataclass(frozen=True)
class Comparison:
    """A against B over seeds. ``diff`` = mean(A) - mean(B); "better" follows the metric."""

    n_a: int
    n_b: int
    paired: bool
    higher_is_better: bool
    mean_a: float
    mean_b: float
    diff: float                  # mean(A) - mean(B)
    diff_low: float              # its bootstrap interval
    diff_high: float
    prob_a_better: float         # P(A better than B), ties half
    prob_low: float
    prob_high: float
    p_value: float               # two-sided, of `test`
    test: str                    # "paired permutation" or "Mann-Whitney U"
    sd: float | None             # spread for power: sd of the differences (paired), pooled sd else
    ci_method: str
    a: tuple[float, ...]         # the finite values compared (paired: in seed order)
    b: tuple[float, ...]
    n_nonfinite: int = 0         # values dropped as NaN / inf (paired: with their partner)
    confidence: float = 0.95

    @property
    def n(self) -> int:
        """Seeds per arm: pairs when paired, the smaller arm otherwise."""
        return min(self.n_a, self.n_b)

    @property
    def improvement(self) -> float:
        """How much better A is than B: ``diff`` signed so that positive means A is better."""
        return self.diff if self.higher_is_better else -self.diff

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields (NaN and infinities become None)."""
        return jsonable(asdict(self))


def compare(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
            paired: bool | None = None, higher_is_better: bool = True, confidence: float = 0.95,
            n_resamples: int = N_RESAMPLES, seed: int = 0) -> Comparison:
    """Compare a metric of arm A with arm B over seeds.

    ``paired=None`` pairs the arms when they have as many values, so pass them in seed order
    (pairing independent runs keeps the test valid, it only changes its power); pass
    ``paired=False`` for arms whose seeds differ. NaN / inf values are dropped and counted.

    >>> c = compare([1.0, 2, 3], [2.5, 3.5], higher_is_better=False)
    >>> c.paired, c.test, c.diff, c.improvement
    (False, 'Mann-Whitney U', -1.0, 1.0)
    """
    x, y = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    paired = len(x) == len(y) if paired is None else paired
    if paired:
        if len(x) != len(y):
            raise ValueError(f"paired arms need as many values, but got {len(x)} and {len(y)}")
        keep = np.isfinite(x) & np.isfinite(y)
        dropped = int((~np.isfinite(x)).sum() + (~np.isfinite(y)).sum())
        x, y = x[keep], y[keep]
    else:
        dropped = int((~np.isfinite(x)).sum() + (~np.isfinite(y)).sum())
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"each arm needs a finite value to compare, but got {len(x)} and {len(y)}")
    better = _prob_greater if higher_is_better else _prob_less
    diff, prob = float(_mean_diff(x, y)), float(better(x, y))
    if min(len(x), len(y)) < 2:
        (d_lo, d_hi), (p_lo, p_hi), how, sd = (diff, diff), (prob, prob), "too few seeds", None
    else:
        # unpaired: expand as for the smaller arm alone (t with its n - 1 df), a little
        # conservative: ~96 % coverage at 10 seeds a side where the plain interval has ~90 %
        expand_n = len(x) if paired else min(len(x), len(y))
        d_lo, d_hi, how = bootstrap_ci((x, y), _mean_diff, paired=paired, confidence=confidence,
                                       expand_n=expand_n, n_resamples=n_resamples, seed=seed)
        # P(A better) needs no expansion: its plain BCa interval already covers ~97 % at n = 10
        p_lo, p_hi, _ = bootstrap_ci((x, y), better, paired=paired, confidence=confidence,
                                     n_resamples=n_resamples, seed=seed)
        sd = float(np.std(x - y, ddof=1) if paired
                   else np.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2.0))
    p, test = difference_pvalue(x, y, paired=paired, n_resamples=n_resamples, seed=seed)
    return Comparison(len(x), len(y), paired, higher_is_better, float(x.mean()), float(y.mean()),
                      diff, d_lo, d_hi, prob, p_lo, p_hi, float(p), test, sd, how,
                      tuple(x.tolist()), tuple(y.tolist()), dropped, confidence)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order given (reject where adjusted < alpha).

    The i-th smallest of m p-values is multiplied by m - i + 1 (i from 1), then made
    non-decreasing in that order and capped at 1 (Holm 1979).

    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must lie in [0, 1], but got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
