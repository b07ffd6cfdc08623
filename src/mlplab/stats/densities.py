"""The class densities of mlplab's generated datasets, written out from mlplab.data.

``joint_log_density(cfg, x)[i, c]`` is log p(x_i, y = c) for the generator of ``cfg.name``,
in the generator's own coordinates (before any standardisation, which, being an invertible
map, changes no classifier's accuracy). The generators give each class the same share of
points (labels cycle 0..K-1), except the checkerboard, whose label is the parity of a uniform
cell. Where a point is jitter added to a point on a curve (spiral, moons) the density is the
jitter's Gaussian averaged over the curve parameter, integrated on a grid finer than the jitter.

>>> from mlplab.config import DataConfig
>>> joint_log_density(DataConfig(name="xor", noise=0.1), np.array([[0.0, 0.0]])).argmax(axis=1)
array([0])
"""

from __future__ import annotations

import math

import numpy as np

from mlplab.config import DATASETS, DataConfig

# scipy is imported by the functions that use it: bayes.py, which a sweep's workers import,
# imports this module, and needs no scipy where its driver computed the limit (known_limit)

_TINY = np.finfo(np.float64).tiny   # a density that underflowed: log of it, not log 0


def n_classes(cfg: DataConfig) -> int:
    """The number of classes the generator of ``cfg`` draws."""
    return {"xor": 2, "moons": 2, "checkerboard": 2, "gaussians": cfg.k, "circles": cfg.rings,
            "spiral": cfg.arms}[cfg.name]


def gaussians_sd(cfg: DataConfig) -> float:
    """The per-axis std of a "gaussians" cluster: the cluster's own spread and the jitter."""
    spacing = 4.0 * math.sin(math.pi / cfg.k)      # distance between neighbouring centres
    return math.hypot(0.5 * spacing * cfg.spread, cfg.noise)


def jitter_sd(cfg: DataConfig) -> float:
    """The std of the Gaussian jitter each generator adds (0: the classes do not overlap)."""
    return {"xor": cfg.noise, "gaussians": gaussians_sd(cfg), "circles": cfg.noise / cfg.rings,
            "spiral": 0.3 * cfg.noise, "moons": cfg.noise, "checkerboard": 0.2 * cfg.noise}[cfg.name]


def _log_normal2(x: np.ndarray, centres: np.ndarray, sd: float) -> np.ndarray:
    """log N(x; centre, sd^2 I) in 2-D: [N, 2] x [M, 2] -> [N, M]."""
    sq = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    return -sq / (2 * sd * sd) - math.log(2 * math.pi * sd * sd)


def _xor(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    from scipy.special import logsumexp

    corners = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=np.float64)  # class 0, 0, 1, 1
    each = _log_normal2(x, corners, cfg.noise) + math.log(0.25)
    return np.stack([logsumexp(each[:, :2], axis=1), logsumexp(each[:, 2:], axis=1)], axis=1)


def _gaussians(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * np.arange(cfg.k) / cfg.k
    centres = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _log_normal2(x, centres, gaussians_sd(cfg)) - math.log(cfg.k)


def circles_radius_log_density(cfg: DataConfig, rho: np.ndarray) -> np.ndarray:
    """log density of the distance from the origin, per ring: [N] -> [N, rings].

    The generator draws a signed radius N((c + 1) / rings, (noise / rings)^2) and a uniform
    angle, so a negative radius lands at distance |r| on the other side: two folded normals.
    """
    from scipy import stats

    mu = (np.arange(cfg.rings) + 1.0) / cfg.rings
    sd = cfg.noise / cfg.rings
    near = stats.norm.logpdf(rho[:, None], mu, sd)
    far = stats.norm.logpdf(-rho[:, None], mu, sd)
    return np.logaddexp(near, far)


def _circles(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    rho = np.maximum(np.hypot(x[:, 0], x[:, 1]), _TINY)
    # uniform angle: the 2-D density is the radius density spread over a circle of length 2 pi rho
    return circles_radius_log_density(cfg, rho) - np.log(2 * np.pi * rho)[:, None] - math.log(cfg.rings)


def _log_curve_density(x: np.ndarray, curve: np.ndarray, sd: float) -> np.ndarray:
    """log of the mean over a uniform curve parameter of N(x; curve(t), sd^2 I): [N, 2] -> [N].

    ``curve`` [T, 2] holds points at equal parameter steps; the trapezoid rule weights them.
    """
    from scipy.special import logsumexp

    weights = np.full(len(curve), 1.0 / (len(curve) - 1))
    weights[[0, -1]] *= 0.5
    out = np.empty(len(x))
    for start in range(0, len(x), 1024):       # [1024, T] at a time keeps memory small
        part = x[start:start + 1024]
        out[start:start + 1024] = logsumexp(_log_normal2(part, curve, sd), b=weights, axis=1)
    return out


def _grid(max_speed: float, sd: float) -> np.ndarray:
    """Equal steps of the curve parameter on [0, 1], at most sd / 2 of arc apart."""
    return np.linspace(0.0, 1.0, max(64, math.ceil(2.0 * max_speed / sd)) + 1)


def _spiral(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    sd = 0.3 * cfg.noise
    t = _grid(math.hypot(1.0, 3 * math.pi), sd)   # |d/dt t(cos, sin)(3 pi t)| <= sqrt(1 + 9 pi^2)
    out = []
    for arm in range(cfg.arms):
        angle = 3 * np.pi * t + 2 * np.pi * arm / cfg.arms
        curve = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
        out.append(_log_curve_density(x, curve, sd))
    return np.stack(out, axis=1) - math.log(cfg.arms)


def _moons(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    t = np.pi * _grid(math.pi, cfg.noise)        # t uniform on [0, pi], unit speed: pi per unit
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    out = [_log_curve_density(x, curve, cfg.noise) for curve in (upper, lower)]
    return np.stack(out, axis=1) - math.log(2)


def _checkerboard(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    from scipy import stats

    sd = 0.2 * cfg.noise
    edges = np.linspace(-1.0, 1.0, cfg.cells + 1)
    lo, hi = (edges[:-1][None, :] - x[..., None]) / sd, (edges[1:][None, :] - x[..., None]) / sd
    # P(a cell's uniform point plus jitter lands at x), per axis: [N, 2, cells]; sf in the upper
    # tail keeps precision where both ends are far above x
    mass = np.where(lo > 0, stats.norm.sf(lo) - stats.norm.sf(hi),
                    stats.norm.cdf(hi) - stats.norm.cdf(lo))
    per_cell = mass[:, 0, :, None] * mass[:, 1, None, :] / 4.0   # uniform on [-1, 1]^2: density 1/4
    parity = np.add.outer(np.arange(cfg.cells), np.arange(cfg.cells)) % 2
    joint = np.stack([per_cell[:, parity == c].sum(axis=1) for c in (0, 1)], axis=1)
    return np.log(np.maximum(joint, _TINY))


_DENSITIES = {"xor": _xor, "gaussians": _gaussians, "circles": _circles, "spiral": _spiral,
              "moons": _moons, "checkerboard": _checkerboard}
assert set(_DENSITIES) == set(DATASETS)


def joint_log_density(cfg: DataConfig, x: np.ndarray) -> np.ndarray:
    """log p(x, y = c) for each point and class of the generated dataset ``cfg``: [N, 2] -> [N, K].

    >>> from mlplab.config import DataConfig
    >>> cfg = DataConfig(name="circles", rings=2, noise=0.2)
    >>> joint_log_density(cfg, np.array([[0.5, 0.0], [0.0, -1.0]])).argmax(axis=1).tolist()
    [0, 1]
    """
    if cfg.name not in _DENSITIES:
        raise ValueError(f"only generated datasets have a known density, but got name={cfg.name!r}")
    if jitter_sd(cfg) <= 0:
        raise ValueError(f"without jitter the classes are curves or points with no density;"
                         f" got noise={cfg.noise}")
    return _DENSITIES[cfg.name](cfg, np.asarray(x, dtype=np.float64).reshape(-1, 2))
