"""The claims of the seed study and their three-valued verdicts.

A section states each claim of the post as a :class:`Claim` (arm A, the one claimed better,
against arm B on one measure, with a smallest effect of interest ``sesoi`` in the measure's
units) or, for a claim about how often something happens, as a :class:`RateClaim`.
:func:`judge` then decides them all at once:

- a :class:`Claim` is one of the study's family of comparisons: its difference test and its
  equivalence test (TOST against ``sesoi``) are Holm-adjusted across every comparison of the
  whole study, then :func:`mlplab.stats.verdict` calls it *reproduces* (the claimed direction,
  significant after Holm), *contradicted* (the opposite direction significant, or any
  difference shown smaller than ``sesoi``) or *inconclusive* (with the seeds that would do).
  :func:`mlplab.stats.study_verdicts` does the same with one ``sesoi`` for every comparison;
  the study's measures differ in units (epochs, accuracy), so the family is adjusted here with
  :func:`mlplab.stats.holm` and each comparison keeps its own ``sesoi``.
- a :class:`RateClaim` ("sometimes" or "never") is decided by the 95 % Wilson interval of the
  rate against ``sesoi``: *reproduces* when the interval lies on the claimed side of it,
  *contradicted* when it lies on the other side, *inconclusive* when it straddles it. An
  interval rule has no p-value, so rates stay outside the Holm family.

A section's verdict combines its claims: *reproduces* when every claim reproduces,
*contradicted* when any is contradicted, *inconclusive* otherwise.

>>> from mlplab.stats import compare, success_rate
>>> fast = Claim("adam", "Adam is faster", "epochs", ("Adam", "SGD"),
...              compare([3, 4, 3, 5, 4, 3], [6, 7, 6, 8, 7, 6], higher_is_better=False), 1.0)
>>> never = RateClaim("zeros", "zero weights never learn", "runs that learn", success_rate(0, 96),
...                   sesoi=0.05, above=False)
>>> [j.kind for j in judge([fast, never])]
['reproduces', 'reproduces']
>>> section_verdict(["reproduces", "inconclusive"]), section_verdict(["contradicted", "reproduces"])
('inconclusive', 'contradicted')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mlplab.stats import Comparison, Rate, holm, tost, verdict
from mlplab.strictjson import jsonable

KINDS = ("reproduces", "contradicted", "inconclusive")
WILSON = "Wilson 95% interval against the smallest rate of interest"


@dataclass(frozen=True)
class Claim:
    """Arm A (``names[0]``, claimed better) against arm B on one measure, seed by seed."""

    section: str                 # the section's key
    statement: str               # the claim in words
    measure: str                 # what is compared, with its unit
    names: tuple[str, str]       # (claimed better, the other)
    comparison: Comparison       # a = the claimed better arm
    sesoi: float                 # smallest effect of interest, in the measure's units


@dataclass(frozen=True)
class RateClaim:
    """A rate claimed to be above ``sesoi`` ("sometimes") or below it ("never")."""

    section: str
    statement: str
    measure: str                 # what is counted
    rate: Rate
    sesoi: float
    above: bool                  # True: claimed above sesoi; False: claimed below


@dataclass(frozen=True)
class Judged:
    """A claim with its verdict: the test that decided, n, the effect and its interval."""

    section: str
    statement: str
    measure: str
    kind: str                    # one of KINDS
    test: str
    n: int                       # seeds per arm (comparisons) or runs (rates)
    effect: float                # how much better the claimed arm did; the rate for rates
    ci: tuple[float, float]      # 95 % interval of the effect
    sesoi: float
    p: float | None              # the difference test's p (None for rates)
    p_holm: float | None         # adjusted across the study's comparisons
    seeds_needed: int | None     # for an inconclusive comparison (None: no affordable number)
    text: str                    # the verdict in a sentence

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON fields (non-finite numbers become None)."""
        return jsonable(self.__dict__)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _judge_rate(c: RateClaim) -> Judged:
    r = c.rate
    low, high = r.ci_low or 0.0, r.ci_high or 1.0
    said = (f"{r.k} of {r.n} {c.measure} ({_pct(r.rate or 0.0)}, Wilson 95% CI {_pct(low)} to "
            f"{_pct(high)}, smallest rate of interest {_pct(c.sesoi)})")
    claimed_side = low > c.sesoi if c.above else high < c.sesoi
    other_side = high < c.sesoi if c.above else low > c.sesoi
    if r.n and claimed_side:
        kind, text = "reproduces", f"reproduces: {said}, n = {r.n} runs"
    elif r.n and other_side:
        kind, text = "contradicted", f"contradicted: {said}, n = {r.n} runs"
    else:
        kind, text = "inconclusive", f"inconclusive at {r.n} runs: {said}"
    return Judged(c.section, c.statement, c.measure, kind, WILSON, r.n, r.rate or 0.0,
                  (low, high), c.sesoi, None, None, None, text)


def judge(claims: Sequence[Claim | RateClaim], alpha: float = 0.05) -> list[Judged]:
    """The verdict on every claim of the study, in order (comparisons Holm-adjusted together)."""
    family = [c for c in claims if isinstance(c, Claim)]
    p_holm = holm([c.comparison.p_value for c in family]) if family else []
    p_eq = holm([tost(c.comparison.a, c.comparison.b, sesoi=c.sesoi, paired=c.comparison.paired,
                      alpha=alpha).p_value for c in family]) if family else []
    adjusted = {id(c): (float(ph), float(pe)) for c, ph, pe in zip(family, p_holm, p_eq)}
    out = []
    for c in claims:
        if isinstance(c, RateClaim):
            out.append(_judge_rate(c))
            continue
        ph, pe = adjusted[id(c)]
        v = verdict(c.comparison, "a", sesoi=c.sesoi, p_holm=ph, p_equivalence_holm=pe,
                    alpha=alpha, n_comparisons=len(family), names=c.names)
        out.append(Judged(c.section, c.statement, c.measure, v.kind, v.test, v.n, v.effect, v.ci,
                          c.sesoi, v.p, v.p_holm, v.seeds_needed, v.text))
    return out


def section_verdict(kinds: Sequence[str]) -> str:
    """All reproduce: reproduces; any contradicted: contradicted; else inconclusive."""
    if kinds and all(k == "reproduces" for k in kinds):
        return "reproduces"
    return "contradicted" if "contradicted" in kinds else "inconclusive"
