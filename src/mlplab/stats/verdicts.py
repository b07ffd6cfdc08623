"""Three-valued verdicts on a claim "arm X is better than arm Y", stating their uncertainty.

- **reproduces**: the difference is in the claimed direction and significant after Holm's
  adjustment across the study (adjusted p < alpha).
- **contradicted**: either the difference is significant (after Holm) in the *opposite*
  direction, or the equivalence test (TOST, also Holm-adjusted) shows that any difference is
  smaller than the smallest effect of interest ``sesoi``: the claimed effect is not there.
- **inconclusive** otherwise, with the seeds per arm that would detect an effect as large as
  the one observed (never below ``sesoi``) with 80 % power at alpha / m, m comparisons in the
  study (Holm's strictest step), so "inconclusive at 5 seeds (about 40 needed)".

>>> from mlplab.stats import compare
>>> c = compare([0.91, 0.93, 0.92, 0.94, 0.95, 0.93], [0.88, 0.89, 0.90, 0.88, 0.91, 0.90])
>>> v = verdict(c, "a", sesoi=0.01)
>>> v.kind, v.text
('reproduces', 'reproduces: A better by 0.0367 (95% CI 0.025 to 0.0537), paired permutation p = 0.0312, n = 6 seeds')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from mlplab.stats.comparison import Comparison, holm
from mlplab.stats.equivalence import tost
from mlplab.stats.power import seeds_needed
from mlplab.strictjson import jsonable


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim; ``effect`` and ``ci`` are signed so that > 0 favours the claim."""

    kind: str                            # "reproduces", "contradicted" or "inconclusive"
    claim: str                           # "a" or "b": the arm claimed better
    test: str                            # the difference test (and "TOST" when it decided)
    n: int                               # seeds per arm
    effect: float                        # how much better the claimed arm did (mean difference)
    ci: tuple[float, float]              # its bootstrap interval
    p: float                             # the difference test's p-value
    p_holm: float                        # adjusted across the study
    p_equivalence: float | None          # TOST p (Holm-adjusted) when a sesoi was given
    sesoi: float | None
    seeds_needed: int | None             # per arm, for an inconclusive verdict (None: none would do)
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(asdict(self))


def _g(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def verdict(comparison: Comparison, claimed_direction: Literal["a", "b"], *,
            sesoi: float | None = None, p_holm: float | None = None,
            p_equivalence_holm: float | None = None, alpha: float = 0.05,
            n_comparisons: int = 1, names: tuple[str, str] = ("A", "B")) -> Verdict:
    """The verdict on "arm ``claimed_direction`` is better" from one comparison.

    ``p_holm`` / ``p_equivalence_holm`` are this comparison's Holm-adjusted p-values within its
    study (default: unadjusted, a study of one); :func:`study_verdicts` computes them for a study.

    >>> from mlplab.stats import compare
    >>> c = compare([0.90, 0.91, 0.92], [0.91, 0.90, 0.92])
    >>> verdict(c, "a", sesoi=0.02).text
    'contradicted: any difference is within ±0.02 (90% CI -0.0169 to 0.0169, TOST p = 0.0371), n = 3 seeds'
    >>> verdict(c, "a", sesoi=0.005).text
    'inconclusive at 3 seeds (about 34 needed): A better by 0 (95% CI -0.01 to 0.01), paired permutation p = 1'
    """
    if claimed_direction not in ("a", "b"):
        raise ValueError(f"claimed_direction must be 'a' or 'b', but got {claimed_direction=}")
    sign = 1.0 if claimed_direction == "a" else -1.0
    if not comparison.higher_is_better:
        sign = -sign
    effect = sign * comparison.diff + 0.0          # + 0.0: no "-0" in the text
    ends = sorted((sign * comparison.diff_low + 0.0, sign * comparison.diff_high + 0.0))
    p_adj = comparison.p_value if p_holm is None else p_holm
    winner, loser = names if claimed_direction == "a" else names[::-1]
    p_text = f"{comparison.test} p = {_g(comparison.p_value)}" + \
        ("" if p_holm is None else f", Holm p = {_g(p_holm)}")
    ci = f"{round(100 * comparison.confidence)}% CI"
    said = f"{winner} better by {_g(effect)} ({ci} {_g(ends[0])} to {_g(ends[1])}), {p_text}"
    p_eq = None
    if sesoi is not None:
        eq = tost(comparison.a, comparison.b, sesoi=sesoi, paired=comparison.paired, alpha=alpha)
        p_eq = eq.p_value if p_equivalence_holm is None else p_equivalence_holm
    needed = None
    test = comparison.test
    if p_adj < alpha and effect > 0:
        kind, text = "reproduces", f"reproduces: {said}, n = {comparison.n} seeds"
    elif p_adj < alpha:
        kind = "contradicted"
        text = f"contradicted: {loser} better by {_g(-effect)} ({ci} {_g(-ends[1])} to " \
               f"{_g(-ends[0])}), {p_text}, n = {comparison.n} seeds"
    elif p_eq is not None and p_eq < alpha:
        kind, test = "contradicted", f"{test}; {eq.test}"
        level = round(100 * (1 - 2 * alpha))
        low, high = sorted((sign * eq.ci_low + 0.0, sign * eq.ci_high + 0.0))
        text = f"contradicted: any difference is within ±{_g(sesoi)} ({level}% CI {_g(low)} to" \
               f" {_g(high)}, TOST p = {_g(p_eq)}), n = {comparison.n} seeds"
    else:
        kind = "inconclusive"
        if comparison.sd is not None:
            needed = seeds_needed(max(abs(effect), sesoi or 0.0), comparison.sd,
                                  alpha=alpha / n_comparisons, paired=comparison.paired)
        about = "no affordable number" if needed is None else f"about {needed}"
        text = f"inconclusive at {comparison.n} seeds ({about} needed): {said}"
    return Verdict(kind, claimed_direction, test, comparison.n, effect, (ends[0], ends[1]),
                   comparison.p_value, p_adj, p_eq, sesoi, needed, text)


def study_verdicts(comparisons: Sequence[Comparison], claims: Sequence[Literal["a", "b"]], *,
                   sesoi: float | None = None, alpha: float = 0.05,
                   names: Sequence[tuple[str, str]] | None = None) -> list[Verdict]:
    """Verdicts on all the claims of one study, Holm-adjusted across them.

    >>> from mlplab.stats import compare
    >>> cs = [compare([1.0, 1.2, 1.1, 1.3], [0.5, 0.6, 0.4, 0.5]), compare([1.0, 2], [1.5, 1.5])]
    >>> [v.kind for v in study_verdicts(cs, ["a", "a"], sesoi=0.1)]
    ['inconclusive', 'inconclusive']
    """
    if len(comparisons) != len(claims):
        raise ValueError(f"one claim per comparison, but got {len(comparisons)} and {len(claims)}")
    p_holm = holm([c.p_value for c in comparisons])
    p_eq_holm: np.ndarray | list[None] = [None] * len(comparisons)
    if sesoi is not None:
        p_eq_holm = holm([tost(c.a, c.b, sesoi=sesoi, paired=c.paired, alpha=alpha).p_value
                          for c in comparisons])
    return [verdict(c, claim, sesoi=sesoi, p_holm=float(ph),
                    p_equivalence_holm=None if pe is None else float(pe), alpha=alpha,
                    n_comparisons=len(comparisons),
                    names=("A", "B") if names is None else names[i])
            for i, (c, claim, ph, pe) in enumerate(zip(comparisons, claims, p_holm, p_eq_holm))]
