"""Medians over seeds for the bootstrap: of many short rows at once, of every resample of
a row, and of every leave-one-out sample, each equal to ``np.median`` of the same values
(:mod:`mlplab.stats.summary` makes the intervals from them).

>>> float(sorted_median(np.array([3.0, 1.0, 2.0, 10.0])))
2.5
"""

from __future__ import annotations

import numpy as np

SMALL_N = 12         # up to this many values a median is taken by a sorting network (faster)


def sorted_median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.median`` along ``axis``, equal to it and several times faster on the bootstrap's
    many short rows ([rows, resamples, n], n a handful of seeds): up to SMALL_N values are
    put in order by a sorting network of elementwise min / max over the whole array (odd-
    even transposition: n rounds), more by a sort.

    >>> float(sorted_median(np.array([3.0, 1.0, 2.0, 10.0])))
    2.5
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    if n > SMALL_N:
        # a C-ordered copy sorts up to 2x faster than scipy's resamples, whose rows are strided
        s = np.array(x, dtype=np.float64, order="C", copy=True)
        s.sort(axis=-1)
        cols = list(np.moveaxis(s, -1, 0))
    else:
        cols = [x[..., j] for j in range(n)]
        for r in range(n):
            for j in range(r % 2, n - 1, 2):
                a, b = cols[j], cols[j + 1]
                cols[j], cols[j + 1] = np.minimum(a, b), np.maximum(a, b)
    return cols[(n - 1) // 2] if n % 2 else (cols[n // 2 - 1] + cols[n // 2]) / 2


def resampled_medians(matrix: np.ndarray, n_resamples: int, seed: int = 0,
                      batch: int | None = None) -> np.ndarray:
    """``[rows, n_resamples]``: the median of each bootstrap resample of each row of
    ``matrix`` ([rows, n], finite), the resamples drawn as ``scipy.stats.bootstrap`` draws
    them for a generator seeded ``seed`` and its ``batch`` (the indices of ``batch``
    resamples at a time, in turn from that generator; one set for every row): its bootstrap
    distribution of :func:`sorted_median`, bit for bit, without its ``[rows, n_resamples,
    n]`` float copies. Each row's values are replaced by their ranks (small integers, one
    row at a time in one reused buffer), each resample of ranks is sorted, and its middle
    rank(s) name the values: a sort of 2-byte ranks is several times faster than one of
    8-byte values, and there is no value copy to make per row.

    >>> d = resampled_medians(np.array([[1.0, 2.0, 9.0]]), n_resamples=4)
    >>> d.shape, bool(np.isin(d, [1.0, 2.0, 9.0]).all())
    ((1, 4), True)
    """
    rows, n = matrix.shape
    rng, size = np.random.default_rng(seed), min(batch or n_resamples, n_resamples)
    order = np.argsort(matrix, axis=-1, kind="stable")
    ordered = np.take_along_axis(matrix, order, axis=-1)                    # [rows, n]
    rank_type = np.int16 if n <= np.iinfo(np.int16).max else np.int32
    ranks = np.empty((rows, n), rank_type)
    np.put_along_axis(ranks, order, np.arange(n, dtype=rank_type)[None], axis=-1)
    lo, hi = (n - 1) // 2, n // 2
    buffer = np.empty((size, n), rank_type)                          # reused per row
    out = np.empty((rows, n_resamples))
    for start in range(0, n_resamples, size):
        picks = rng.integers(0, n, (min(size, n_resamples - start), n))   # scipy's draw
        resample, into = buffer[:len(picks)], slice(start, start + len(picks))
        for r in range(rows):
            np.take(ranks[r], picks, out=resample)
            resample.sort(axis=-1)
            # as sorted_median: the middle value, or the two middle ones' (a + b) / 2
            out[r, into] = ordered[r, resample[:, lo]] if lo == hi else \
                (ordered[r, resample[:, lo]] + ordered[r, resample[:, hi]]) / 2
    return out


def leave_one_out_medians(matrix: np.ndarray) -> np.ndarray:
    """``[rows, n]``: the median of each row of ``matrix`` ([rows, n], n >= 2) without its
    j-th value, for every j: :func:`sorted_median` of the jackknife samples, bit for bit,
    from one sort of the row (the median without the value of rank j is the value of rank
    k, or of rank k + 1 when j <= k) instead of n sorts of n - 1 values.

    >>> leave_one_out_medians(np.array([[1.0, 5.0, 2.0, 9.0]])).tolist()
    [[5.0, 2.0, 5.0, 2.0]]
    """
    n = matrix.shape[-1]
    order = np.argsort(matrix, axis=-1, kind="stable")
    ordered = np.take_along_axis(matrix, order, axis=-1)                    # [rows, n]
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[None], axis=-1)            # of each value

    def kept(k: int) -> np.ndarray:   # the value of rank k among the n - 1 kept, per left-out
        return np.where(rank > k, ordered[:, k:k + 1], ordered[:, k + 1:k + 2])

    m = n - 1
    return kept((m - 1) // 2) if m % 2 else (kept(m // 2 - 1) + kept(m // 2)) / 2
