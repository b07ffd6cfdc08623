"""Bayes limits against closed forms, against Monte Carlo, and against data.py's own samples.

The densities in mlplab.stats.densities are written out by hand from mlplab.data; if they
drifted from the generators, the Bayes classifier would stop scoring its own limit on fresh
generated points, and a k-nearest-neighbour classifier could beat it.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as sp

from mlplab.config import DATASETS, DataConfig
from mlplab.stats import BayesLimit, against_limit, bayes_classify, bayes_limit, joint_log_density
from mlplab.stats.bayes import sample_points

# one table of datasets, each noisy enough that its limit is well below 1
CONFIGS = [DataConfig(name="xor", noise=0.3),
           DataConfig(name="gaussians", k=2, spread=0.5),
           DataConfig(name="gaussians", k=5, spread=0.6),
           DataConfig(name="circles", rings=2, noise=0.5),
           DataConfig(name="circles", rings=3, noise=0.3),
           DataConfig(name="spiral", arms=2, noise=0.5),
           DataConfig(name="moons", noise=0.3),
           DataConfig(name="checkerboard", cells=4, noise=0.5),
           DataConfig(name="checkerboard", cells=3, noise=1.0)]   # 5 cells of class 0, 4 of 1
CLOSED = [c for c in CONFIGS if c.name in ("xor", "gaussians", "circles")]
MC_POINTS = 20_000


def ids(cfg: DataConfig) -> str:
    shape = {"gaussians": f"k{cfg.k}", "circles": f"r{cfg.rings}", "spiral": f"a{cfg.arms}",
             "checkerboard": f"c{cfg.cells}"}.get(cfg.name, "")
    return f"{cfg.name}{shape}-noise{cfg.noise}"


@pytest.fixture(scope="module")
def limits() -> dict[str, BayesLimit]:
    """Each table entry's limit, computed once (Monte Carlo for three of them)."""
    return {ids(c): bayes_limit(c, n_samples=MC_POINTS) for c in CONFIGS}


def test_every_dataset_is_in_the_table() -> None:
    assert {c.name for c in CONFIGS} == set(DATASETS)


def test_two_gaussians_equal_phi_of_half_the_distance_over_sigma() -> None:
    cfg = DataConfig(name="gaussians", k=2, spread=0.7, noise=0.2)
    d = 4.0                                           # centres at (2, 0) and (-2, 0)
    sigma = math.hypot(0.5 * d * 0.7, 0.2)           # cluster spread and jitter, per axis
    exact = sp.norm.cdf(d / (2 * sigma))
    assert bayes_limit(cfg).accuracy == pytest.approx(exact, abs=1e-12)
    mc = bayes_limit(cfg, monte_carlo=True, n_samples=MC_POINTS)
    assert abs(mc.accuracy - exact) < 4 * mc.stderr and 0 < mc.stderr < 0.005


@pytest.mark.parametrize("cfg", CLOSED, ids=ids)
def test_monte_carlo_agrees_with_the_closed_forms(cfg: DataConfig,
        limits: dict[str, BayesLimit]) -> None:
    exact = limits[ids(cfg)]
    assert exact.stderr == 0 and exact.n_samples == 0
    mc = bayes_limit(cfg, monte_carlo=True, n_samples=MC_POINTS, seed=3)
    assert abs(mc.accuracy - exact.accuracy) < 4 * mc.stderr


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_the_bayes_classifier_scores_its_limit_on_generated_points(cfg: DataConfig,
        limits: dict[str, BayesLimit]) -> None:
    limit = limits[ids(cfg)]
    x, y = sample_points(cfg, MC_POINTS, seed=11)
    hits = float((bayes_classify(cfg, x) == y).mean())
    noise = math.sqrt(limit.accuracy * (1 - limit.accuracy) / MC_POINTS + limit.stderr ** 2)
    assert abs(hits - limit.accuracy) < 4 * noise


def knn_accuracy(cfg: DataConfig, k: int = 25) -> tuple[float, int]:
    """A k-nearest-neighbour vote trained on 3000 generated points, scored on 2000 fresh ones."""
    x, y = sample_points(cfg, 3000, seed=21)
    xt, yt = sample_points(cfg, 2000, seed=22)
    dist = ((xt[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)          # [2000, 3000]
    nearest = np.argpartition(dist, k, axis=1)[:, :k]
    votes = np.stack([(y[nearest] == c).sum(axis=1) for c in range(int(y.max()) + 1)], axis=1)
    return float((votes.argmax(axis=1) == yt).mean()), len(yt)


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_a_trained_classifier_does_not_beat_the_limit(cfg: DataConfig,
        limits: dict[str, BayesLimit]) -> None:
    limit = limits[ids(cfg)]
    acc, m = knn_accuracy(cfg)
    assert acc > limit.accuracy - 0.06                 # a good classifier: the check has teeth
    check = against_limit(acc, m, limit)
    binomial = math.sqrt(limit.accuracy * (1 - limit.accuracy) / m)
    assert not check.beats_limit and check.gap > -3 * binomial


def test_against_limit_is_calibrated() -> None:
    limit, m = BayesLimit(0.93, 0.0, "closed form"), 200
    rng = np.random.default_rng(5)
    at_limit = [against_limit(k / m, m, limit) for k in rng.binomial(m, limit.accuracy, 1000)]
    # an exact test: a model that is exactly as good as the limit is called off it <= 5 % of the time
    assert np.mean([not c.within for c in at_limit]) <= sp.binom.ppf(0.995, 1000, 0.05) / 1000
    worse = [against_limit(k / m, m, limit) for k in rng.binomial(m, 0.80, 200)]
    assert np.mean([not c.within for c in worse]) > 0.95 and not any(c.beats_limit for c in worse)
    assert against_limit(1.0, 500, BayesLimit(0.9, 0.0, "closed form")).beats_limit


def test_against_limit_near_one_uses_the_exact_binomial() -> None:
    near_one = BayesLimit(0.999, 0.0, "closed form")
    assert against_limit(0.99, 100, near_one).within          # 1 - 0.999^100 = 0.095
    assert not against_limit(0.97, 100, near_one).within
    # the limit's own Monte Carlo error widens what counts as noise
    assert against_limit(0.955, 1000, BayesLimit(0.97, 0.004, "mc")).within
    assert not against_limit(0.955, 1000, BayesLimit(0.97, 0.0, "closed form")).within


def test_limit_ignores_sample_size_split_and_standardisation() -> None:
    cfg = CONFIGS[0]
    other = replace(cfg, n=60, split=(0.5, 0.25, 0.25), standardize=True)
    assert bayes_limit(other) == bayes_limit(cfg)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_noiseless_data_have_a_limit_of_one(name: str) -> None:
    cfg = DataConfig(name=name, noise=0.0, spread=0.0)
    assert bayes_limit(cfg) == BayesLimit(1.0, 0.0, "noiseless: the classes do not overlap")
    with pytest.raises(ValueError, match="without jitter"):
        joint_log_density(cfg, np.zeros((1, 2)))


def test_user_data_have_no_limit() -> None:
    with pytest.raises(ValueError, match="only generated datasets"):
        bayes_limit(DataConfig(name="csv:points.csv"))


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_limits_are_strict_json(cfg: DataConfig,
        limits: dict[str, BayesLimit]) -> None:
    d = limits[ids(cfg)].to_dict()
    assert 0.5 < d["accuracy"] < 1.0 and json.loads(json.dumps(d, allow_nan=False)) == d


def test_the_statistics_package_imports_no_scipy_until_a_name_is_used():
    """A sweep's workers read the Bayes limit the driver handed over (known_limit) through
    ``mlplab.stats``: importing it, or its bayes module, costs no scipy; every exported
    name is its module's own."""
    import importlib
    import subprocess
    import sys

    code = ("import sys, mlplab.stats, mlplab.stats.bayes\n"
            "from mlplab.config import DataConfig\n"
            "from mlplab.stats import BayesLimit, data_bayes_limit, known_limit\n"
            "known_limit(DataConfig(name='xor', noise=0.2), BayesLimit(0.9, 0.0, 'given'))\n"
            "print(data_bayes_limit(DataConfig(name='xor', noise=0.2, n=50)).method,"
            " any(m.startswith('scipy') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["given", "False"], out.stderr
    import mlplab.stats as package

    assert sorted(package.__all__) == sorted(n for names in package.EXPORTS.values() for n in names)
    for module, names in package.EXPORTS.items():
        for name in names:
            assert getattr(package, name) is getattr(importlib.import_module(f"mlplab.stats.{module}"), name)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_a_handed_over_limit_is_the_one_computed_here():
    limit = bayes_limit(DataConfig(name="gaussians", k=3, spread=0.7))
    assert BayesLimit.from_dict(json.loads(json.dumps(limit.to_dict()))) == limit
