"""Calibration of mlplab's tests over seeds, as a user would check it: how often an A/A
comparison (two arms from the same distribution) is flagged at alpha = 0.05, and how
often the 95 % bootstrap interval of a mean covers the true mean.

    .venv/bin/python bench/stats_calibration.py                 # 2000 studies of 10 seeds
    .venv/bin/python bench/stats_calibration.py --studies 500 --seeds 6

Each rate is printed with its own Wilson interval; a calibrated test's A/A rate has
0.05 inside it (the exact tests are a little conservative), the bootstrap's coverage 0.95.
"""

from __future__ import annotations

import argparse

import numpy as np

from mlplab.stats import difference_pvalue, success_rate, summarize


def rate_text(k: int, n: int) -> str:
    r = success_rate(k, n)
    return f"{k}/{n} = {r.rate:.3f} (95% CI {r.ci_low:.3f} to {r.ci_high:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--coverage-studies", type=int, default=300)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    for paired in (True, False):
        x, y = rng.normal(size=(2, a.studies, a.seeds))
        p, test = difference_pvalue(x, y, paired=paired)
        print(f"A/A at alpha 0.05, {test}: flagged {rate_text(int((p < 0.05).sum()), a.studies)}")
    covered = 0
    for _ in range(a.coverage_studies):
        s = summarize(rng.exponential(size=a.seeds), statistic="mean", n_resamples=2000)
        covered += s.ci_low <= 1.0 <= s.ci_high      # the exponential's mean is 1
    print(f"95% bootstrap interval of a mean (skewed data) covers it: "
          f"{rate_text(covered, a.coverage_studies)}")


if __name__ == "__main__":
    main()
