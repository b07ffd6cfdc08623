"""A metric over seeds: its mean, median and a bootstrap confidence interval.

The interval is scipy's BCa bootstrap with a fixed seed, so a report printed twice says the
same thing. At the handful of seeds a study runs, a plain bootstrap interval of the mean is
too narrow (it covers about 89 % instead of 95 % at n = 10: it divides by n where the t
interval divides by n - 1, and it uses normal tails where t's are heavier); by default the
confidence level is *expanded* as Hesterberg (2015, "What teachers should know about the
bootstrap", The American Statistician 69(4)) proposes, which brings the coverage back to
about 93.5 % at n = 10 (tests/test_stats.py measures it).

>>> s = summarize([0.91, 0.93, 0.92, float("nan"), 0.95, 0.90])
>>> s.n, s.n_nonfinite, round(s.mean, 3), s.ci_low < s.mean < s.ci_high
(5, 1, 0.922, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import stats

from mlplab.stats.medians import leave_one_out_medians, resampled_medians, sorted_median
from mlplab.strictjson import jsonable

N_RESAMPLES = 9999   # bootstrap resamples: the CI's ends move by well under 1 % of its width


def finite_values(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, int]:
    """The finite values (float64, 1-D) and how many NaN / infinite ones were dropped.

    >>> finite_values([1.0, float("inf"), 2.0])
    (array([1., 2.]), 1)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(x)
    return x[keep], int((~keep).sum())


def is_constant(x: np.ndarray) -> bool:
    """True when the values are all equal (to 1e-12 of their scale): no spread to resample."""
    return len(x) == 0 or float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.max(np.abs(x))))


def expanded_level(confidence: float, n: int | None, n_resamples: int = N_RESAMPLES) -> float:
    """The level to ask the bootstrap for so that its interval has ``confidence`` at ``n``
    (``confidence`` itself when there is no ``n`` to expand for: None, or under 2).

    Hesterberg's expansion: alpha' / 2 = Phi(-sqrt(n / (n - 1)) t_{alpha/2, n-1}); capped so
    that the tails still hold a resample each.

    >>> round(expanded_level(0.95, 10), 4), expanded_level(0.95, None)
    (0.9829, 0.95)
    """
    if n is None or n < 2:
        return confidence
    alpha = 1.0 - confidence
    tail = stats.norm.cdf(-math.sqrt(n / (n - 1)) * stats.t.ppf(1 - alpha / 2, n - 1))
    return float(min(1.0 - 2.0 * tail, 1.0 - 2.0 / n_resamples))


def bootstrap_ci(samples: tuple[np.ndarray, ...], statistic: Callable[..., Any], *,
                 paired: bool = False, confidence: float = 0.95, expand_n: int | None = None,
                 n_resamples: int = N_RESAMPLES, seed: int = 0,
                 methods: tuple[str, ...] = ("BCa", "percentile")) -> tuple[float, float, str]:
    """(low, high, method) of a vectorised ``statistic(*samples, axis)`` by BCa.

    ``expand_n`` (the sample size, for a mean) widens the level as :func:`expanded_level`.
    BCa is undefined when every resample gives the same value (scipy warns
    ``DegenerateDataWarning``); the percentile interval is used then, and its name recorded.
    ``methods``: the scipy methods to try in turn (``("percentile",)`` for a statistic
    with few distinct values, such as an argmin, where BCa's corrections mislead).

    >>> lo, hi, how = bootstrap_ci((np.array([1.0, 2, 3, 4]),), np.mean, expand_n=None)
    >>> (1 < lo < 2.5 < hi < 4, how)
    (True, 'BCa bootstrap')
    """
    level = expanded_level(confidence, expand_n, n_resamples)
    for method in methods:
        with warnings.catch_warnings():
            # a degenerate bootstrap distribution, or a 0/0 in BCa's acceleration: try the next method
            warnings.simplefilter("error", stats.DegenerateDataWarning)
            warnings.simplefilter("error", RuntimeWarning)
            try:
                ci = stats.bootstrap(samples, statistic, vectorized=True, paired=paired,
                                     confidence_level=level, n_resamples=n_resamples, method=method,
                                     batch=resample_batch(max(np.shape(s)[-1] for s in samples),
                                                          n_resamples),
                                     random_state=np.random.default_rng(seed)).confidence_interval
            except (stats.DegenerateDataWarning, RuntimeWarning):
                continue
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            expanded = ", expanded for small n" if level != confidence else ""
            return float(ci.low), float(ci.high), f"{method} bootstrap{expanded}"
    point = float(statistic(*samples, axis=-1))
    return point, point, "no spread: interval is the point"


@dataclass(frozen=True)
class MetricSummary:
    """A metric over seeds; the interval is for ``statistic`` ("mean" or "median")."""

    n: int                       # finite values used
    mean: float | None
    median: float | None
    ci_low: float | None         # None when no finite value was given
    ci_high: float | None
    statistic: str
    method: str                  # how the interval was made
    n_nonfinite: int = 0         # NaN / inf values dropped (diverged runs, say)
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields (no NaN or Infinity)."""
        return jsonable(asdict(self))


def summarize(values: Sequence[float] | np.ndarray, *, statistic: str = "mean",
              confidence: float = 0.95, expand: bool = True, n_resamples: int = N_RESAMPLES,
              seed: int = 0) -> MetricSummary:
    """Summarise one metric over seeds: NaN / inf are dropped and counted in ``n_nonfinite``.

    Fewer than two finite values, or all of them equal, give an interval equal to the point.

    >>> summarize([0.8]).to_dict()["ci_low"], summarize([0.8, 0.8, 0.8]).method
    (0.8, 'no spread: interval is the point')
    >>> summarize([]).to_dict()["mean"] is None
    True
    """
    return summarize_many([values], statistic=statistic, confidence=confidence, expand=expand,
                          n_resamples=n_resamples, seed=seed)[0]


def row_mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.mean`` along ``axis`` of a C-contiguous copy: numpy sums a strided axis (scipy's
    resamples are views of several rows) in another order than a contiguous one, and the
    last bits of a mean decide ties between resamples; so one row, or many, get one answer.

    >>> float(row_mean(np.array([1.0, 2.0, 6.0])))
    3.0
    """
    return np.ascontiguousarray(np.moveaxis(x, axis, -1)).mean(axis=-1)


# statistics whose bootstrap distribution and jackknife are computed here rather than by
# scipy's resampling (the same numbers, less work); scipy then makes the interval from them
SHORTCUTS: dict[Callable[..., Any], tuple[Callable[[np.ndarray, int, int, int | None], np.ndarray],
                                          Callable[[np.ndarray], np.ndarray]]] = {
    sorted_median: (resampled_medians, leave_one_out_medians)}

# float64 values one bootstrap call may hold: scipy's resamples ([rows, n_resamples, n]),
# or, for a statistic of SHORTCUTS, scipy's jackknife ([rows, n, n - 1]); more rows are
# split into several calls (16 MB each), more resamples of one row into batches (a
# median over 2500 runs of a 10,000-run sweep held ~300 MB at 8M values, ~130 MB at 2M)
MAX_RESAMPLED = 2_000_000


def resample_batch(n: int, n_resamples: int = N_RESAMPLES) -> int | None:
    """``scipy.stats.bootstrap``'s ``batch`` for samples of ``n`` values: None (all the
    resamples at once) while they hold at most MAX_RESAMPLED values, else as many
    resamples a batch as do. scipy draws each batch's indices in turn from one generator,
    so past ``MAX_RESAMPLED // n_resamples`` values (200 at 9999 resamples) the resamples
    differ from one draw's, but every interval of such a sample is made with the same
    batches, alone or in a group, and memory stays bounded.

    >>> resample_batch(200), resample_batch(2500)
    (None, 800)
    """
    return None if n * n_resamples <= MAX_RESAMPLED else max(1, MAX_RESAMPLED // n)


def summarize_many(rows: Sequence[Sequence[float] | np.ndarray], *, statistic: str = "mean",
                   confidence: float = 0.95, expand: bool = True, n_resamples: int = N_RESAMPLES,
                   seed: int = 0) -> list[MetricSummary]:
    """:func:`summarize` of each row (a configuration's values over its seeds), the rows
    with the same number of finite values in one vectorised BCa bootstrap.

    Every row is resampled with the same generator seeded ``seed``, as :func:`summarize`
    does for one, and scipy draws one set of resample indices for all rows of a call: so
    each row's interval is exactly the one :func:`summarize` gives it alone. A row whose BCa
    interval is undefined (its jackknife values all equal, say) gets :func:`bootstrap_ci`'s
    fallback on its own.

    >>> [s.n for s in summarize_many([[1.0, 2.0, 4.0], [3.0], [2.0, 5.0, 6.0]])]
    [3, 1, 3]
    >>> summarize_many([[1.0, 2.0, 4.0]])[0] == summarize([1.0, 2.0, 4.0])
    True
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', but got {statistic=}")
    fn = row_mean if statistic == "mean" else sorted_median
    out: list[MetricSummary | None] = []
    spread: dict[int, list[tuple[int, np.ndarray, int]]] = {}   # n -> (row, values, dropped)
    for i, values in enumerate(rows):
        x, dropped = finite_values(values)
        if len(x) == 0:
            out.append(MetricSummary(0, None, None, None, None, statistic, "no finite values",
                                     dropped, confidence))
        elif len(x) < 2 or is_constant(x):
            mean, median = float(x.mean()), float(np.median(x))
            point = mean if statistic == "mean" else median
            out.append(MetricSummary(len(x), mean, median, point, point, statistic,
                                     "no spread: interval is the point", dropped, confidence))
        else:
            out.append(None)
            spread.setdefault(len(x), []).append((i, x, dropped))
    for n, group in spread.items():
        expand_n = n if expand and statistic == "mean" else None
        matrix = np.stack([x for _, x, _ in group])                           # [R, n]
        cis = bootstrap_rows(matrix, fn, confidence=confidence, expand_n=expand_n,
                             n_resamples=n_resamples, seed=seed)
        for (i, x, dropped), (low, high, method) in zip(group, cis):
            out[i] = MetricSummary(n, float(x.mean()), float(np.median(x)), low, high,
                                   statistic, method, dropped, confidence)
    return out   # type: ignore[return-value]   (every row filled above)


def bootstrap_rows(matrix: np.ndarray, statistic: Callable[..., Any], *, confidence: float = 0.95,
                   expand_n: int | None = None, n_resamples: int = N_RESAMPLES, seed: int = 0
                   ) -> list[tuple[float, float, str]]:
    """:func:`bootstrap_ci` of each row of ``matrix`` ([rows, n], a one-sample statistic
    such as :func:`row_mean`) by one vectorised BCa call (several past MAX_RESAMPLED). The
    rows whose leave-one-out values are all equal (BCa undefined) get the percentile
    interval, by one more call; a row whose interval is still not finite (scipy warns, and
    :func:`bootstrap_ci` tries its next method) gets :func:`bootstrap_ci` alone. For a
    statistic of SHORTCUTS the bootstrap distribution (the one scipy would draw) and the
    leave-one-out values are computed here, and scipy makes the interval from them."""
    n, batch = matrix.shape[-1], resample_batch(matrix.shape[-1], n_resamples)
    shortcut = SHORTCUTS.get(statistic)
    if shortcut is None:
        leave_one_out = np.arange(n - 1)[None] + (np.arange(n - 1)[None] >= np.arange(n)[:, None])
        jackknife = statistic(matrix[:, leave_one_out], axis=-1)          # [rows, n]
        distribution = None
    else:
        jackknife = shortcut[1](matrix)                                    # [rows, n]
        distribution = shortcut[0](matrix, n_resamples, seed, batch)       # [rows, n_resamples]
    # BCa's acceleration is 0/0 where the jackknife is flat: what scipy makes of it depends
    # on the last bits of its sums (and so on how many rows share a call); the percentile
    # interval is the one BCa falls back to
    flat = np.array([is_constant(j) for j in jackknife], bool)
    step = max(1, MAX_RESAMPLED // (n_resamples * n if shortcut is None else n * (n - 1)))
    level = expanded_level(confidence, expand_n, n_resamples)
    low, high = np.full(len(matrix), np.nan), np.full(len(matrix), np.nan)
    for method, chosen in (("BCa", ~flat), ("percentile", flat)):
        for start in range(0, len(matrix), step):
            rows = np.zeros(len(matrix), bool)
            rows[start:start + step] = chosen[start:start + step]
            if not rows.any():
                continue
            with warnings.catch_warnings():
                # rows where the method is undefined come out NaN, and are redone one by one below
                warnings.simplefilter("ignore", stats.DegenerateDataWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                if distribution is None:
                    ci = stats.bootstrap((matrix[rows],), statistic, vectorized=True, axis=-1,
                                         confidence_level=level, n_resamples=n_resamples,
                                         method=method, batch=batch,
                                         random_state=np.random.default_rng(seed)
                                         ).confidence_interval
                else:   # no resampling left to scipy: the interval of the given distribution
                    given = SimpleNamespace(bootstrap_distribution=distribution[rows])
                    ci = stats.bootstrap((matrix[rows],), statistic, vectorized=True, axis=-1,
                                         confidence_level=level, n_resamples=0, method=method,
                                         batch=batch, bootstrap_result=given).confidence_interval
            low[rows], high[rows] = ci.low, ci.high                         # [rows]
    expanded = ", expanded for small n" if level != confidence else ""
    out = []
    for row, lo, hi, is_flat in zip(matrix, low, high, flat):
        if math.isfinite(lo) and math.isfinite(hi):
            out.append((float(lo), float(hi),
                        f"{'percentile' if is_flat else 'BCa'} bootstrap{expanded}"))
        else:
            out.append(bootstrap_ci((row,), statistic, confidence=confidence, expand_n=expand_n,
                                    n_resamples=n_resamples, seed=seed,
                                    methods=("percentile",) if is_flat else ("BCa", "percentile")))
    return out
