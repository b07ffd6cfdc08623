"""Bayes limits: the best accuracy any classifier can reach on a generated dataset.

The limit is a property of the generative distribution of mlplab.data, not of a sample: the
accuracy of the classifier that picks the class of highest posterior density. Closed forms
where there is one (xor, gaussians, circles), otherwise Monte Carlo: draw points from the
generator itself and average the posterior of the class the Bayes classifier picks (whose
mean is its accuracy; this has less variance than counting its hits), with its standard error.
:func:`against_limit` says whether a model's test accuracy on m points is within noise of it.

>>> from mlplab.config import DataConfig
>>> lim = bayes_limit(DataConfig(name="gaussians", k=2, spread=0.5))
>>> round(lim.accuracy, 4), lim.method
(0.9767, 'closed form: Phi(d / 2 sigma)')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from mlplab.config import DataConfig
from mlplab.data import GENERATORS
from mlplab.stats.densities import (circles_radius_log_density, gaussians_sd, jitter_sd,
                                    joint_log_density)
from mlplab.strictjson import jsonable

N_SAMPLES = 50_000   # Monte Carlo points: a standard error of a few 1e-4 on these datasets


def scalar_fields(obj: Any) -> dict[str, Any]:
    """A dataclass of scalar fields as a dict (``asdict`` deep-copies every field first)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(frozen=True)
class BayesLimit:
    """The Bayes-optimal accuracy of a generated dataset's distribution."""

    accuracy: float
    stderr: float          # Monte Carlo standard error; 0 for closed forms and quadrature
    method: str
    n_samples: int = 0     # Monte Carlo points (0: none drawn)

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(scalar_fields(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BayesLimit":
        """The limit :meth:`to_dict` wrote."""
        return cls(float(d["accuracy"]), float(d["stderr"]), str(d["method"]),
                   int(d.get("n_samples", 0)))


def _xor(cfg: DataConfig) -> BayesLimit:
    # p0 - p1 factorises as (phi(x1) - phi(x1 - 1)) (phi(x2) - phi(x2 - 1)): the Bayes boundary is
    # x1 = 1/2 and x2 = 1/2, and a point is right when both or neither coordinate crossed it
    from scipy.special import ndtr         # Phi (scipy.stats' own): a fifth of its import

    q = ndtr(0.5 / cfg.noise)
    return BayesLimit(float(q * q + (1 - q) ** 2), 0.0,
                      "closed form: q^2 + (1 - q)^2, q = Phi(1 / 2 sigma)")


def _gaussians(cfg: DataConfig) -> BayesLimit:
    from scipy.special import ndtr

    sd = gaussians_sd(cfg)
    if cfg.k == 2:                                 # centres 4 apart
        return BayesLimit(float(ndtr(2.0 / sd)), 0.0, "closed form: Phi(d / 2 sigma)")
    from scipy import integrate, stats

    # equal priors and covariances: the nearest centre wins, so a class's region is the wedge of
    # half-angle pi / k around its centre at (2, 0); integrate its mass along the wedge's axis
    slope = math.tan(math.pi / cfg.k)

    def across(u: float) -> float:
        return stats.norm.pdf(u, 2.0, sd) * (2.0 * stats.norm.cdf(u * slope / sd) - 1.0)

    mass, _ = integrate.quad(across, 0.0, np.inf, epsabs=1e-12, epsrel=1e-10)
    return BayesLimit(float(mass), 0.0, "quadrature: mass of the nearest-centre wedge")


def _circles(cfg: DataConfig) -> BayesLimit:
    # the angle is uniform for every ring, so only the distance from the origin tells them apart:
    # accuracy = (1 / rings) * integral of the largest ring's radius density
    from scipy import integrate

    sd = cfg.noise / cfg.rings
    top = 1.0 + 12.0 * sd                          # the outer ring's mean radius is 1
    rho = np.linspace(0.0, top, min(2_000_001, math.ceil(top / sd * 400) + 1))   # sd / 400 apart
    best = np.exp(circles_radius_log_density(cfg, rho)).max(axis=1)
    return BayesLimit(float(integrate.trapezoid(best, rho) / cfg.rings), 0.0,
                      "quadrature: largest radius density")


_CLOSED = {"xor": _xor, "gaussians": _gaussians, "circles": _circles}


def sample_points(cfg: DataConfig, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh points and labels from the generator of ``cfg`` (its own coordinates)."""
    return GENERATORS[cfg.name](replace(cfg, n=n), np.random.default_rng([seed, 0xBA7E5]))


def bayes_classify(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    """The Bayes-optimal class of each point (generator coordinates, not standardised): [N]."""
    return joint_log_density(cfg, x).argmax(axis=1)


def _monte_carlo(cfg: DataConfig, n_samples: int, seed: int) -> BayesLimit:
    x, _ = sample_points(cfg, n_samples, seed)
    log_joint = joint_log_density(cfg, x)                           # [N, K]
    # the posterior of the most likely class: 1 / sum_c exp(l_c - l_max)
    best = 1.0 / np.exp(log_joint - log_joint.max(axis=1, keepdims=True)).sum(axis=1)
    return BayesLimit(float(best.mean()), float(best.std(ddof=1) / math.sqrt(n_samples)),
                      "Monte Carlo: mean posterior of the Bayes class", n_samples)


def bayes_limit(cfg: DataConfig, *, monte_carlo: bool = False, n_samples: int = N_SAMPLES,
                seed: int = 0) -> BayesLimit:
    """The Bayes-optimal accuracy of the generated dataset ``cfg`` (csv / npz data have none).

    Closed form or quadrature where there is one, unless ``monte_carlo``; Monte Carlo (seeded)
    otherwise. ``n``, ``split`` and ``standardize`` do not change it; without jitter the
    classes do not overlap and the limit is 1.

    >>> bayes_limit(DataConfig(name="xor", noise=0.25)).accuracy
    0.9555...
    >>> lim = bayes_limit(DataConfig(name="moons", noise=0.3), n_samples=2000)
    >>> 0.9 < lim.accuracy < 1.0, lim.stderr < 0.01
    (True, True)
    """
    if cfg.name not in GENERATORS:
        raise ValueError(f"only generated datasets have a Bayes limit, but got name={cfg.name!r}")
    if jitter_sd(cfg) == 0:
        return BayesLimit(1.0, 0.0, "noiseless: the classes do not overlap")
    if cfg.name in _CLOSED and not monte_carlo:
        return _CLOSED[cfg.name](cfg)
    return _monte_carlo(cfg, n_samples, seed)


def _distribution(data: DataConfig) -> DataConfig:
    """``data`` with what does not change its distribution (the sample size, the split, the
    data seed, standardisation) set to the defaults: one key per distribution."""
    defaults = DataConfig()
    return replace(data, n=defaults.n, split=defaults.split, seed=defaults.seed,
                   standardize=False)


# limits another process computed and handed over (known_limit), by distribution
_KNOWN: dict[DataConfig, BayesLimit] = {}


def known_limit(data: DataConfig, limit: BayesLimit) -> None:
    """Tell this process the limit of ``data``'s distribution (:func:`data_bayes_limit`,
    computed elsewhere): a sweep's driver computes each unit's once and its workers, which
    would otherwise import scipy (half a second) and compute it again each, are told it.

    >>> cfg = DataConfig(name="xor", noise=0.123)
    >>> known_limit(cfg, BayesLimit(0.5, 0.0, "handed over"))
    >>> data_bayes_limit(DataConfig(name="xor", noise=0.123, n=40)).method
    'handed over'
    """
    _KNOWN[_distribution(data)] = limit


@functools.lru_cache(maxsize=64)
def _cached_limit(dist: DataConfig) -> BayesLimit:
    known = _KNOWN.get(dist)
    return known if known is not None else bayes_limit(dist)


def data_bayes_limit(data: DataConfig) -> BayesLimit | None:
    """:func:`bayes_limit` of ``data``'s distribution, computed once per distribution in a
    process (a Monte Carlo one takes up to a few seconds), or as :func:`known_limit` was
    told it: the sample size, the split, the data seed and standardisation do not change
    it. None for the user's own data.

    >>> data_bayes_limit(DataConfig(name="xor", noise=0.25, n=40)) is data_bayes_limit(
    ...     DataConfig(name="xor", noise=0.25, n=400, seed=3))
    True
    """
    if data.name not in GENERATORS:
        return None
    return _limit_of(data)


@functools.lru_cache(maxsize=256)
def _limit_of(data: DataConfig) -> BayesLimit:
    """The limit of ``data``'s distribution, by the config as given: the runs of a cohort
    ask with equal configs, and the distribution's own config is then made once."""
    return _cached_limit(_distribution(data))


@dataclass(frozen=True)
class LimitCheck:
    """A test accuracy set against the Bayes limit."""

    accuracy: float
    m: int                 # test points
    limit: float
    limit_stderr: float
    gap: float             # limit - accuracy
    p_value: float         # exact binomial test of k / m against the nearest plausible limit
    within: bool           # p_value >= alpha: the gap is test-set noise
    beats_limit: bool      # significantly above the limit: leakage, a bug, or a wrong limit

    def to_dict(self) -> dict[str, Any]:
        """Plain strict-JSON fields."""
        return jsonable(scalar_fields(self))


def against_limit(acc: float, m: int, limit: BayesLimit, *, alpha: float = 0.05) -> LimitCheck:
    """Is an accuracy on ``m`` test points within binomial noise of the Bayes limit?

    The limit is known to its own standard error: the test uses the point of
    limit ± z * stderr nearest the observed accuracy, then an exact binomial test (a normal
    approximation would call 99 / 100 far from a limit of 0.999; it is not, p = 0.095).

    >>> against_limit(0.99, 100, BayesLimit(0.999, 0.0, "closed form")).within
    True
    >>> against_limit(0.85, 200, BayesLimit(0.95, 0.0, "closed form")).within
    False
    """
    if m < 1 or not 0.0 <= acc <= 1.0:
        raise ValueError(f"need m >= 1 and 0 <= acc <= 1, but got {acc=}, {m=}")
    from scipy import stats

    k = round(acc * m)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    near = float(np.clip(k / m, limit.accuracy - z * limit.stderr, limit.accuracy + z * limit.stderr))
    p = float(stats.binomtest(k, m, p=min(max(near, 0.0), 1.0)).pvalue)
    within = p >= alpha
    return LimitCheck(float(acc), m, limit.accuracy, limit.stderr, limit.accuracy - acc, p, within,
                      not within and acc > limit.accuracy)
