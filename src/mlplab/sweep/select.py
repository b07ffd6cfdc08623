"""Selection that knows about seed noise: each configuration's interval over its seeds,
the leader by the ``select.rule``, the configurations that cannot be told apart from it,
and racing (seeds added in rounds only where the leader is not yet separated).

Seeds are paired across configurations (seed index ``i`` is the same data split, batch
order and, where the shapes agree, the same initial weights everywhere), so a
configuration is compared with the leader seed by seed where enough seeds pair up, and
the p-values of one selection are Holm-corrected together
(:func:`mlplab.stats.ties.ties_with_best`, the rule the figures use too).

>>> entries = [{"config_id": "a", "score": 0.11, "values": [0.10, 0.11, 0.12, 0.10, 0.11, 0.12, 0.1, 0.1]},
...            {"config_id": "b", "score": 0.31, "values": [0.30, 0.31, 0.33, 0.32, 0.30, 0.31, 0.3, 0.3]},
...            {"config_id": "c", "score": 0.11, "values": [0.12, 0.10, 0.11, 0.11, 0.12, 0.10, 0.1, 0.1]}]
>>> lead = leader(entries, "min", "median", "best")
>>> lead["config_id"], [e["config_id"] for e in tied_with(lead, entries, "min")]
('a', ['a', 'c'])

Six paired seeds are the fewest at which one paired permutation test can reach p < 0.05
(two-sided, 2 / 2^6), and Holm asks more of each test the more there are; with fewer
seeds nothing separates and every configuration is tied.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

# mlplab.stats (scipy) is imported where used: the sweep's driver loads it while its
# workers start (mlplab.sweep.driver.run_sweep); checking a sweep file never does


def interval(values: Sequence[float | None], statistic: str) -> tuple[float, float]:
    """The 95 % bootstrap interval of the median (``statistic`` median) or else the mean
    over seeds; ``(nan, nan)`` with no finite value (summarize drops the non-finite ones:
    a failed seed is None here)."""
    return _interval(tuple(math.nan if v is None else float(v) for v in values),
                     "median" if statistic == "median" else "mean")


@functools.lru_cache(maxsize=65536)
def _interval(values: tuple[float, ...], statistic: str) -> tuple[float, float]:
    # The same values come back (a sweep's entries are made after each round and again
    # for its summary), and a bootstrap of fixed seed costs ~3 ms: computed once each.
    from mlplab.stats import summarize

    s = summarize(values, statistic=statistic)
    return (math.nan, math.nan) if s.n == 0 else (s.ci_low, s.ci_high)


def _pessimistic(entry: Mapping[str, Any], mode: str) -> float:
    lo, hi = entry["ci"]
    end = hi if mode == "min" else lo
    if end is None or not math.isfinite(end):
        return math.inf if mode == "min" else -math.inf
    return end


def leader(entries: Sequence[Mapping[str, Any]], mode: str, statistic: str,
           rule: str) -> Mapping[str, Any] | None:
    """The entry the rule picks: ``best`` score, or ``lower_ci`` the best pessimistic end
    of its interval (the upper end of a loss, the lower end of an accuracy); the first
    one wins ties. Entries need ``values`` (per seed, in seed order) and, for
    ``best``, ``score``."""
    best, best_key = None, None
    sign = 1.0 if mode == "min" else -1.0
    for e in entries:
        if rule == "lower_ci":
            key = sign * _pessimistic({"ci": e.get("ci") or interval(e["values"], statistic)}, mode)
        else:
            score = e.get("score", math.nan)
            key = sign * score if score is not None and not math.isnan(score) else math.inf
        if best is None or key < best_key:
            best, best_key = e, key
    return best


def tied_with(lead: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
              mode: str) -> list[Mapping[str, Any]]:
    """The entries not distinguishable from ``lead`` (itself included), by the one tie rule
    of :func:`mlplab.stats.ties.ties_with_best` (per-seed values in seed order: the i-th
    value of every entry is seed index i)."""
    from mlplab.stats.ties import ties_with_best

    samples = [(range(len(e["values"])), [math.nan if v is None else v for v in e["values"]])
               for e in entries]
    ties = ties_with_best(samples, higher_is_better=(mode == "max"),
                          best=next(i for i, e in enumerate(entries) if e is lead))
    return [lead] + [e for e, tied in zip(entries, ties.tied) if tied and e is not lead]


def has_interval(entry: Mapping[str, Any]) -> bool:
    """Whether the entry has a finite interval (some seed finished with a finite value)."""
    return all(v is not None and math.isfinite(v) for v in entry["ci"])


def overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two entries' intervals overlap (an entry without one overlaps everything)."""
    (lo_a, hi_a), (lo_b, hi_b) = a["ci"], b["ci"]
    if None in (lo_a, hi_a, lo_b, hi_b) or any(math.isnan(v) for v in (lo_a, hi_a, lo_b, hi_b)):
        return True
    return lo_a <= hi_b and lo_b <= hi_a
