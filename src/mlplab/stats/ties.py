"""Which configurations are tied with the best one: the one rule every view of a sweep
uses (its summary, its figures, the dashboard).

Each configuration is a set of per-seed values. It is compared with the best one, paired
over their shared seeds when the seeds pair up and there are at least :data:`PAIRED_MIN`
pairs (seed i of a sweep is the same split, batches and initial weights in every
configuration, so the pairs cancel that noise; a paired permutation test cannot reach
p < 0.05 with fewer than six pairs), else unpaired (Mann–Whitney U), with the p-value of
:func:`mlplab.stats.compare`. The p-values of one selection are Holm-adjusted together and
an adjusted p of at least :data:`ALPHA` is a tie. Fewer than :data:`MIN_VALUES` finite values
a side cannot separate anything, so those are tied too; a configuration without any finite
value is not (it failed).

>>> seeds, best = range(8), [0.10, 0.12, 0.11, 0.13, 0.10, 0.12, 0.11, 0.12]
>>> ties = ties_with_best([(seeds, best), (seeds, best[::-1]), (seeds, [v + 0.5 for v in best])],
...                       higher_is_better=False)
>>> ties.best, ties.tied.tolist(), ties.paired.tolist()
(0, [True, True, False], [False, True, True])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mlplab.stats.comparison import difference_pvalue, holm

ALPHA = 0.05        # a comparison with the best whose Holm-adjusted p is below this is not a tie
MIN_VALUES = 3      # fewer values a side cannot separate two configurations
PAIRED_MIN = 6      # 2 / 2^6 < 0.05: the fewest pairs a paired permutation test can separate


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class TieInfo:
    """Which of a figure's configurations are tied with its best one."""

    best: int                 # index of the best configuration; -1 when none has a finite value
    p_adjusted: np.ndarray    # [N] Holm-adjusted p against the best (1 for the best, untested ones)
    tied: np.ndarray          # [N] bool: the best itself and those not distinguishable from it
    paired: np.ndarray        # [N] bool: compared with the best pair by pair over shared seeds


def pair_up(seeds_a: np.ndarray, a: np.ndarray, seeds_b: np.ndarray,
            b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The finite values of the seeds both sides ran, in seed order, when the seeds pair up
    (each seed at most once a side, at least PAIRED_MIN shared pairs); else None.

    >>> s = np.arange(6)
    >>> pair_up(s, np.arange(6.0), s[::-1], np.arange(6.0))[1].tolist()
    [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    """
    if len(set(seeds_a.tolist())) < len(seeds_a) or len(set(seeds_b.tolist())) < len(seeds_b):
        return None
    va = dict(zip(seeds_a.tolist(), a.tolist()))
    vb = dict(zip(seeds_b.tolist(), b.tolist()))
    shared = sorted(s for s in va.keys() & vb.keys() if math.isfinite(va[s]) and math.isfinite(vb[s]))
    if len(shared) < PAIRED_MIN:
        return None
    return np.array([va[s] for s in shared]), np.array([vb[s] for s in shared])


def tie_pvalue(seeds_a: np.ndarray, a: np.ndarray, seeds_b: np.ndarray,
               b: np.ndarray) -> tuple[float | None, bool]:
    """``(p, paired)``: the two-sided p-value :func:`mlplab.stats.compare` gives for A against B
    (paired over shared seeds when they pair up); None when a side has fewer than MIN_VALUES
    finite values (no test)."""
    pairs = pair_up(seeds_a, a, seeds_b, b)
    if pairs is not None:
        p, _ = difference_pvalue(pairs[0], pairs[1], paired=True)
        return float(p), True
    fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(len(fa), len(fb)) < MIN_VALUES:
        return None, False
    p, _ = difference_pvalue(fa, fb, paired=False)
    return float(p), False


def ties_with_best(samples: Sequence[tuple[Sequence[int], Sequence[float]]], *,
                   higher_is_better: bool, best: int | None = None) -> TieInfo:
    """Compare each ``(seeds, values)`` sample with the best one (``best``, or the one with
    the best median) and say which are tied with it (module docstring). Seeds are any
    integers that identify a seed across samples (a sweep's seed index or ``train.seed``)."""
    seeds = [np.asarray(s, np.int64).reshape(-1) for s, _ in samples]
    values = [np.asarray(v, np.float64).reshape(-1) for _, v in samples]
    n = len(samples)
    if best is None:
        sign = -1.0 if higher_is_better else 1.0
        medians = [sign * float(np.median(v[np.isfinite(v)])) if np.isfinite(v).any() else math.inf
                   for v in values]
        best = int(np.argmin(medians)) if n and math.isfinite(min(medians)) else -1
    p_adj, tied, paired = np.ones(n), np.zeros(n, bool), np.zeros(n, bool)
    if best < 0:
        return TieInfo(-1, _frozen(p_adj), _frozen(tied), _frozen(paired))
    tested: list[tuple[int, float]] = []
    for i in range(n):
        if i == best:
            tied[i] = True
        elif np.isfinite(values[i]).any():
            p, paired[i] = tie_pvalue(seeds[best], values[best], seeds[i], values[i])
            tied[i] = True                      # until a test says otherwise
            if p is not None:
                tested.append((i, p))
    if tested:
        adjusted = holm([p for _, p in tested])
        for (i, _), q in zip(tested, adjusted):
            p_adj[i] = float(q)
            tied[i] = bool(q >= ALPHA)
    return TieInfo(best, _frozen(p_adj), _frozen(tied), _frozen(paired))
