"""mlplab.stats by calibration: error rates, power and coverage measured on synthetic seeds.

Every check draws many synthetic studies from a fixed seed and asks whether a rate that
should be alpha (or 0.95, or the predicted power) lands inside the 99 % binomial interval
around it; exact references (Wilson, Holm, t-test sample sizes) come from published tables.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sp

from mlplab.stats import (accuracy_noise, compare, difference_pvalue, holm, seeds_needed,
                          study_verdicts, success_rate, summarize, tost, ttest_power, verdict)
from mlplab.stats import summary
from mlplab.stats.power import fewest_seeds
from mlplab.stats.medians import leave_one_out_medians, resampled_medians, sorted_median
from mlplab.stats.summary import expanded_level, summarize_many

N_STUDIES = 1000  # synthetic A/A studies: the 99 % range of a 5 % rate is 3.3 % to 6.8 %
N_SEEDS = 10      # seeds per arm, as a study would run


def binomial_99(rate: float, trials: int) -> tuple[float, float]:
    """The central 99 % range of a Binomial(trials, rate) count, as a rate."""
    return sp.binom.ppf(0.005, trials, rate) / trials, sp.binom.ppf(0.995, trials, rate) / trials


def strict_json(d: dict) -> str:
    return json.dumps(d, allow_nan=False)


def test_stats_import_neither_torch_nor_the_outer_layers() -> None:
    code = ("import sys, mlplab.stats; bad = [m for m in sys.modules if m == 'torch' or"
            " m.startswith(('mlplab.store', 'mlplab.figures', 'mlplab.report', 'mlplab.dashboard',"
            " 'mlplab.sweep', 'mlplab.demo', 'mlplab.cli'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- A/A: the tests reject a true null at their nominal rate ---------------------------------

@pytest.mark.parametrize("paired", [True, False])
def test_false_positive_rate_is_alpha(paired: bool) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(N_STUDIES, N_SEEDS)), rng.normal(size=(N_STUDIES, N_SEEDS))
    p, _ = difference_pvalue(a, b, paired=paired)
    # both tests are exact, so discrete: their true size is a little under 5 % (4.3 % for
    # Mann-Whitney at 10 + 10), inside this range
    low, high = binomial_99(0.05, N_STUDIES)
    assert low <= (p < 0.05).mean() <= high


def test_pvalues_of_compare_are_those_of_the_batched_test() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, N_SEEDS)), rng.normal(size=(3, N_SEEDS))
    for paired in (True, False):
        batched, test = difference_pvalue(a, b, paired=paired, n_resamples=999)
        one = [compare(x, y, paired=paired, n_resamples=999) for x, y in zip(a, b)]
        assert [c.test for c in one] == [test] * 3
        assert np.allclose([c.p_value for c in one], batched)


# ---- A/B: the tests find a shift as often as the power formula says -------------------------

@pytest.mark.parametrize("paired, diff", [(True, 0.8), (False, 1.0)])
def test_power_matches_seeds_needed(paired: bool, diff: float) -> None:
    n = seeds_needed(diff, 1.0, paired=paired)
    predicted = ttest_power(n, diff, 1.0, paired=paired)
    assert predicted >= 0.8 > ttest_power(n - 1, diff, 1.0, paired=paired)
    rng = np.random.default_rng(3)
    b = rng.normal(size=(400, n))
    # paired: the per-seed differences have sd 1; unpaired: each arm has sd 1
    a = b + rng.normal(diff, 1.0, size=b.shape) if paired else rng.normal(diff, 1.0, size=b.shape)
    found = (difference_pvalue(a, b, paired=paired, n_resamples=2000)[0] < 0.05).mean()
    low, high = binomial_99(predicted, 400)
    # Mann-Whitney has 95.5 % of the t-test's efficiency on normal data and, being exact and
    # discrete, a size a little under alpha: it may fall short of the t formula by a few points
    assert low - (0.0 if paired else 0.08) <= found <= high


def test_seeds_needed_equals_published_sample_sizes() -> None:
    # Cohen (1988), table 2.4.1, two-sided alpha 0.05, power 0.8: d = 0.5 -> 64, 0.8 -> 26, 1 -> 17
    assert [seeds_needed(d, 1.0) for d in (0.5, 0.8, 1.0)] == [64, 26, 17]
    assert seeds_needed(0.5, 1.0, paired=True) == 34      # paired t, d_z = 0.5 (G*Power: 34)
    # no spread: any difference is found, at the fewest seeds whose exact test can reject
    assert seeds_needed(0.0, 1.0) is None and seeds_needed(0.3, 0.0) == fewest_seeds() == 4
    assert seeds_needed(0.3, 0.0, paired=True) == fewest_seeds(paired=True) == 6
    assert seeds_needed(5.0, 1.0, paired=True, alpha=0.05 / 6) == 8     # 2 / 2^8 < 0.05 / 6
    assert seeds_needed(0.5, 1.0, alpha=0.01) > 64


# ---- bootstrap intervals cover the truth -----------------------------------------------------

def test_mean_interval_covers_95_percent() -> None:
    rng = np.random.default_rng(4)
    draws = rng.normal(3.0, 2.0, size=(200, N_SEEDS))
    expanded = np.mean([(s.ci_low < 3.0 < s.ci_high) for s in map(summarize, draws)])
    plain = np.mean([(s.ci_low < 3.0 < s.ci_high)
                     for s in (summarize(x, expand=False, n_resamples=2000) for x in draws)])
    low, high = binomial_99(0.95, 200)
    assert low <= expanded <= high
    assert plain < expanded          # the plain BCa interval is too narrow at 10 seeds


@pytest.mark.parametrize("n", [10, 50])
def test_median_interval_covers_95_percent(n: int) -> None:
    # a skewed metric (lognormal, true median 1): the BCa interval of the median, unexpanded
    draws = np.random.default_rng(13 + n).lognormal(0.0, 1.0, size=(400, n))
    hits = np.mean([s.ci_low < 1.0 < s.ci_high
                    for s in summarize_many(list(draws), statistic="median")])
    low, high = binomial_99(0.95, 400)
    assert low <= hits <= high


def test_batched_mean_intervals_cover_95_percent_as_one_at_a_time() -> None:
    # many configurations of one study: those with the same number of seeds in one call
    rng = np.random.default_rng(6)
    draws = [rng.normal(3.0, 2.0, size=n) for n in rng.choice([N_SEEDS, N_SEEDS - 2], 300)]
    batched = summarize_many(draws)
    hits = np.mean([s.ci_low < 3.0 < s.ci_high for s in batched])
    low, high = binomial_99(0.95, 300)
    assert low <= hits <= high
    assert batched == [summarize(x) for x in draws]          # the same intervals, bit for bit


def test_batched_intervals_equal_one_at_a_time() -> None:
    """Every row is resampled with the same seeded generator, as alone: means bit for bit,
    medians to the last bits of scipy's BCa level; rows of tied values (BCa undefined: its
    acceleration is 0/0) and rows too small to resample take the same fallback."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(240):
        n = int(rng.integers(1, 14))
        row = rng.choice([0.9, 0.95, 1.0], n) if k % 3 == 0 else rng.normal(0, 1, n)
        rows.append(np.append(row, math.nan) if k % 7 == 0 else row)
    rows += [np.array([]), np.array([math.nan, math.inf])]
    for statistic in ("mean", "median"):
        batched = summarize_many(rows, statistic=statistic)
        alone = [summarize(r, statistic=statistic) for r in rows]
        assert [(b.n, b.n_nonfinite, b.mean, b.median, b.method) for b in batched] == \
            [(a.n, a.n_nonfinite, a.mean, a.median, a.method) for a in alone]
        got = np.array([(b.ci_low, b.ci_high) for b in batched if b.n], np.float64)
        want = np.array([(a.ci_low, a.ci_high) for a in alone if a.n], np.float64)
        if statistic == "mean":
            assert np.array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert {b.method for b in batched} >= {"no spread: interval is the point",
                                               "no finite values"}
    assert any(b.method == "percentile bootstrap" for b in summarize_many(rows, statistic="median"))


def test_sorted_median_is_numpys_median() -> None:
    x = np.random.default_rng(8).normal(size=(50, 7, 21))
    for n in (1, 2, 5, 12, 13, 20, 21):       # a sorting network up to 12, a sort past it
        assert np.array_equal(sorted_median(x[..., :n]), np.median(x[..., :n], axis=-1))
    assert np.array_equal(sorted_median(x, axis=1), np.median(x, axis=1))


def test_resampled_medians_are_scipys_bootstrap_distribution() -> None:
    """The medians of the resamples scipy draws (its indices for a generator of the same
    seed), bit for bit: odd and even n, tied values, either side of the sorting network."""
    rng = np.random.default_rng(9)
    for n in (2, 3, 7, 12, 13, 40, 201):
        x = rng.normal(size=(3, n)).round(1)              # rounded: many ties
        res = sp.bootstrap((x,), sorted_median, vectorized=True, axis=-1, n_resamples=999,
                           method="percentile", random_state=np.random.default_rng(4))
        assert np.array_equal(resampled_medians(x, 999, seed=4), res.bootstrap_distribution)
    # drawn in batches, as scipy draws them with its `batch` (a large sample's resamples)
    x = rng.normal(size=(2, 301)).round(1)
    for batch in (100, 333, 999):
        res = sp.bootstrap((x,), sorted_median, vectorized=True, axis=-1, n_resamples=999,
                           method="percentile", batch=batch, random_state=np.random.default_rng(4))
        assert np.array_equal(resampled_medians(x, 999, seed=4, batch=batch),
                              res.bootstrap_distribution)


def test_a_large_sample_is_resampled_in_batches_and_alone_as_in_a_group(monkeypatch) -> None:
    """Past MAX_RESAMPLED values a sample's resamples are drawn in batches (bounded memory):
    its interval, alone or in a group, mean or median, is the same bit for bit."""
    monkeypatch.setattr(summary, "MAX_RESAMPLED", 20_000)   # batches from n > 2
    rows = [np.random.default_rng(k).lognormal(size=40) for k in range(3)]
    assert summary.resample_batch(40, 9999) == 500
    for statistic in ("mean", "median"):
        assert summarize_many(rows, statistic=statistic) == \
            [summarize(r, statistic=statistic) for r in rows]


def test_leave_one_out_medians_are_the_jackknifes() -> None:
    rng = np.random.default_rng(12)
    for n in (2, 3, 4, 12, 13, 14, 41):
        x = rng.normal(size=(5, n)).round(1)              # ties too
        drop = np.arange(n - 1)[None] + (np.arange(n - 1)[None] >= np.arange(n)[:, None])
        assert np.array_equal(leave_one_out_medians(x), np.median(x[:, drop], axis=-1))


def test_median_intervals_are_scipys_bca_of_the_median() -> None:
    # the interval summarize_many gives a median is scipy's own BCa bootstrap of np.median
    rng = np.random.default_rng(10)
    rows = [rng.normal(size=n) for n in (5, 13, 60, 60, 150)]
    for row, s in zip(rows, summarize_many(rows, statistic="median")):
        ci = sp.bootstrap((row,), np.median, vectorized=True, axis=-1, method="BCa",
                          random_state=np.random.default_rng(0)).confidence_interval
        assert s.method == "BCa bootstrap"
        assert (s.ci_low, s.ci_high) == pytest.approx((ci.low, ci.high), rel=0, abs=1e-12)


def test_rows_split_over_several_calls_get_the_same_intervals(monkeypatch) -> None:
    # past MAX_RESAMPLED the rows of one size are bootstrapped a few at a time
    rng = np.random.default_rng(11)
    rows = [rng.normal(size=30) for _ in range(7)]
    for statistic in ("mean", "median"):
        whole = summarize_many(rows, statistic=statistic, n_resamples=500)
        monkeypatch.setattr(summary, "MAX_RESAMPLED", 2000)     # 2 or 4 rows a call
        assert summarize_many(rows, statistic=statistic, n_resamples=500) == whole
        monkeypatch.undo()


def test_comparison_intervals_cover_the_true_difference() -> None:
    rng = np.random.default_rng(5)
    shift, true_prob = 0.5, sp.norm.cdf(0.5 / math.sqrt(2))   # P(N(0.5, 1) > N(0, 1))
    hits_diff, hits_prob = [], []
    for _ in range(150):
        c = compare(rng.normal(shift, 1, N_SEEDS), rng.normal(0, 1, N_SEEDS), paired=False,
                    n_resamples=2000)
        hits_diff.append(c.diff_low < shift < c.diff_high)
        hits_prob.append(c.prob_low <= true_prob <= c.prob_high)
    low, high = binomial_99(0.95, 150)
    assert low <= np.mean(hits_diff) <= high
    assert low <= np.mean(hits_prob)


def test_expanded_level_matches_hesterberg() -> None:
    # alpha'/2 = Phi(-sqrt(n/(n-1)) t_{0.025, n-1}); large n needs no expansion
    t_9 = 2.2622                                     # t_{0.025} with 9 degrees of freedom
    assert expanded_level(0.95, 10) == pytest.approx(1 - 2 * sp.norm.cdf(-math.sqrt(10 / 9) * t_9),
                                                     abs=1e-4)
    assert expanded_level(0.95, 10_000) == pytest.approx(0.95, abs=1e-3)


# ---- summaries: non-finite values, degenerate data, strict JSON ------------------------------

def test_summary_drops_and_counts_nonfinite_values() -> None:
    s = summarize([0.9, math.nan, 0.8, math.inf, 0.85, -math.inf])
    assert (s.n, s.n_nonfinite, s.mean) == (3, 3, pytest.approx(0.85))
    assert s.ci_low < 0.85 < s.ci_high
    strict_json(s.to_dict())


@pytest.mark.parametrize("values", [[], [0.7], [0.7, 0.7, 0.7], [math.nan, math.nan]])
def test_degenerate_summaries_have_the_point_as_interval(values: list[float]) -> None:
    s = summarize(values)
    assert s.ci_low == s.ci_high == s.mean
    strict_json(s.to_dict())


def test_median_summary_and_bad_statistic() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0], statistic="median")
    assert s.median == 5.0 and s.ci_low <= 5.0 <= s.ci_high < 100.0     # the outlier: no pull
    with pytest.raises(ValueError, match="statistic="):
        summarize([1.0], statistic="mode")


# ---- rates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("k, n, low, high", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                             (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)])
def test_wilson_equals_newcombe_1998(k: int, n: int, low: float, high: float) -> None:
    # Newcombe (1998) Stat. Med. 17:857, table II, method 3 (score interval without correction)
    r = success_rate(k, n)
    assert (round(r.ci_low, 4), round(r.ci_high, 4)) == (low, high)


def test_accuracy_noise() -> None:
    noise = accuracy_noise(0.9, 100)
    assert noise.stderr == pytest.approx(0.03)
    assert accuracy_noise(0.9, 400).halfwidth < noise.halfwidth        # shrinks as 1 / sqrt(m)
    assert accuracy_noise(1.0, 100).halfwidth > 0 == accuracy_noise(1.0, 100).stderr
    with pytest.raises(ValueError):
        accuracy_noise(1.2, 10)


# ---- Holm --------------------------------------------------------------------------------------

def test_holm_worked_example() -> None:
    # Holm-Bonferroni's textbook example (Wikipedia): H1..H4 with p = 0.01, 0.04, 0.03, 0.005 at
    # alpha 0.05 reject H4 (0.005 * 4) and H1 (0.01 * 3), then stop at H3 (0.03 * 2 = 0.06)
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert (adjusted < 0.05).tolist() == [True, False, False, True]
    assert holm([0.02, 0.04]).tolist() == [0.04, 0.04] and holm([0.9, 0.8]).tolist() == [1.0, 1.0]


# ---- comparisons -------------------------------------------------------------------------------

def test_prob_improvement_is_the_scaled_mann_whitney_u() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(0.3, 1, 8).round(1), rng.normal(0, 1, 11).round(1)   # with ties
    c = compare(a, b, n_resamples=999)
    assert c.prob_a_better == pytest.approx(sp.mannwhitneyu(a, b).statistic / (8 * 11))
    lower = compare(a, b, higher_is_better=False, n_resamples=999)
    assert lower.prob_a_better == pytest.approx(1 - c.prob_a_better)
    assert lower.improvement == -c.improvement == -c.diff


def test_paired_comparison_drops_pairs_with_a_nonfinite_value() -> None:
    c = compare([0.9, math.nan, 0.8, 0.85], [0.7, 0.6, math.inf, 0.65], n_resamples=999)
    assert (c.paired, c.n, c.n_nonfinite, c.diff) == (True, 2, 2, pytest.approx(0.2))
    strict_json(c.to_dict())
    with pytest.raises(ValueError, match="paired arms"):
        compare([1.0, 2.0], [1.0], paired=True)


# ---- equivalence -------------------------------------------------------------------------------

@pytest.mark.parametrize("paired", [True, False])
def test_tost_on_equivalent_and_different_data(paired: bool) -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0.9, 0.01, 20)
    same = base + rng.normal(0, 0.002, 20) if paired else rng.normal(0.9, 0.01, 20)
    apart = base + 0.05
    equal = tost(base, same, sesoi=0.02, paired=paired)
    assert equal.equivalent and -0.02 < equal.ci_low < equal.ci_high < 0.02
    different = tost(base, apart, sesoi=0.02, paired=paired)
    assert not different.equivalent and different.p_value > 0.5
    strict_json(equal.to_dict())


def test_tost_false_equivalence_rate_is_at_most_alpha() -> None:
    # a true difference exactly at the margin: TOST may call it equivalent at most 5 % of the time
    rng = np.random.default_rng(8)
    calls = [tost(rng.normal(0.1, 0.1, 15), rng.normal(0, 0.1, 15), sesoi=0.1).equivalent
             for _ in range(300)]
    assert np.mean(calls) <= binomial_99(0.05, 300)[1]


# ---- verdicts ----------------------------------------------------------------------------------

def test_three_verdicts() -> None:
    rng = np.random.default_rng(9)
    b = rng.normal(0.90, 0.01, N_SEEDS)
    better = compare(b + 0.02 + rng.normal(0, 0.005, N_SEEDS), b, n_resamples=2000)
    assert verdict(better, "a", sesoi=0.01).kind == "reproduces"
    opposite = verdict(better, "b", sesoi=0.01, names=("he", "xavier"))
    assert opposite.kind == "contradicted" and opposite.text.startswith("contradicted: he better")
    tied = compare(b + rng.normal(0, 0.001, N_SEEDS), b, n_resamples=2000)
    null = verdict(tied, "a", sesoi=0.01)
    assert null.kind == "contradicted" and "within ±0.01" in null.text
    noisy = compare(rng.normal(0.905, 0.02, 4), rng.normal(0.9, 0.02, 4), n_resamples=2000)
    unsure = verdict(noisy, "a", sesoi=0.01)
    assert unsure.kind == "inconclusive" and unsure.seeds_needed > 4
    assert f"inconclusive at 4 seeds (about {unsure.seeds_needed} needed)" in unsure.text
    for v in (opposite, null, unsure):
        strict_json(v.to_dict())


def test_verdicts_on_a_lower_is_better_metric() -> None:
    rng = np.random.default_rng(11)
    loss_b = rng.normal(0.30, 0.01, N_SEEDS)
    c = compare(loss_b - 0.03 + rng.normal(0, 0.005, N_SEEDS), loss_b, higher_is_better=False,
                n_resamples=2000)
    a_lower = verdict(c, "a", sesoi=0.01)
    assert a_lower.kind == "reproduces" and a_lower.effect == pytest.approx(0.03, abs=0.01)
    assert a_lower.ci[0] > 0 and verdict(c, "b", sesoi=0.01).kind == "contradicted"


def test_study_verdicts_adjust_for_the_number_of_claims() -> None:
    rng = np.random.default_rng(10)
    b = rng.normal(0.9, 0.01, 6)
    borderline = compare(b + 0.01 + rng.normal(0, 0.004, 6), b, n_resamples=2000)
    assert borderline.p_value < 0.05 and verdict(borderline, "a").kind == "reproduces"
    others = [compare(b + rng.normal(0, 0.01, 6), b, n_resamples=2000) for _ in range(3)]
    first = study_verdicts([borderline, *others], ["a"] * 4)[0]
    assert first.p_holm == pytest.approx(min(1.0, 4 * borderline.p_value))
    assert first.kind == "inconclusive"
