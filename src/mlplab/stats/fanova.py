"""fANOVA (Hutter, Hoos and Leyton-Brown, ICML 2014): each factor's share of the variance of
a random forest's prediction over the search space, with the factor's marginal computed on
every tree's own partition of the space.

Optuna's ``FanovaImportanceEvaluator`` computes the same quantity by walking each tree once
per cell of a factor's grid in Python; on 1000 runs of a four-key grid that is about 2 s of
CPU and on 10,000 runs about 20 s, most of a cold report. Here each tree's leaves are boxes
(one array of their limits), and a factor's marginal on every cell of its grid is one
weighted sum over the leaves whose box covers the cell. The forest, its seed, the encoding
(floats as they are, categories one-hot in the order given, bounds from the lowest to the
highest value) and the statistics (per tree: the marginal's variance over the cells weighted
by their size, divided by the tree's variance weighted by leaf volume; averaged over trees)
are Optuna's, so the shares are Optuna's to rounding: ``tests/test_importance.py`` compares
them on mixed studies. Needs scikit-learn (the ``optuna`` extra installs it).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(0, 1, (200, 2))
>>> f = fanova_fractions(x, 3 * x[:, 0] + 0.1 * rng.normal(size=200), np.array([[0, 1], [0, 1.]]),
...                      [np.array([0]), np.array([1])], seed=0)
>>> bool(f[0] > 0.9 and f[1] < 0.05)
True
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

N_TREES = 64               # Optuna's defaults for its evaluator
MAX_DEPTH = 64


def fanova_fractions(x: np.ndarray, y: np.ndarray, bounds: np.ndarray,
                     groups: Sequence[np.ndarray], *, seed: int, n_trees: int = N_TREES,
                     max_depth: int = MAX_DEPTH) -> np.ndarray:
    """Per group of encoded columns (a factor: one column, or its one-hot columns), the
    share of the forest's variance its marginal explains, averaged over the trees whose
    prediction varies (not normalised: the shares of main effects sum to at most about 1).

    ``x``: [R, C] encoded factors, ``y``: [R] the metric, ``bounds``: [C, 2] each column's
    range. Trees whose prediction is constant are left out; all zero when every tree's is.
    """
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=n_trees, max_depth=max_depth,
                                   min_samples_split=2, min_samples_leaf=1, random_state=seed)
    forest.fit(x, y)
    per_tree = []
    for estimator in forest.estimators_:
        leaves = _leaves(estimator.tree_, bounds)
        total = _weighted_variance(leaves.value, np.prod(leaves.size, axis=1))
        if total > 0.0:
            per_tree.append([max(_marginal_variance(leaves, estimator.tree_, bounds, g), 0.0)
                             / total for g in groups])
    if not per_tree:
        return np.zeros(len(groups))
    return np.mean(np.asarray(per_tree), axis=0)


class _Leaves:
    """A tree's leaves as boxes: ``value`` [L]; ``low``/``high`` [L, C], the thresholds a
    point passes to reach the leaf (``low < x <= high``; ±inf where no split limits it);
    ``size`` [L, C], the box's side within the search space's bounds."""

    def __init__(self, value: np.ndarray, low: np.ndarray, high: np.ndarray,
                 bounds: np.ndarray) -> None:
        self.value, self.low, self.high = value, low, high
        self.size = (np.where(np.isinf(high), bounds[:, 1], high)
                     - np.where(np.isinf(low), bounds[:, 0], low))


def _leaves(tree: Any, bounds: np.ndarray) -> _Leaves:
    """Every leaf's box, found level by level (children set their limit on their parent's
    feature to its threshold: the left child's upper, the right child's lower)."""
    feature, threshold = tree.feature, tree.threshold
    left, right = tree.children_left, tree.children_right
    n, c = tree.node_count, len(bounds)
    low, high = np.full((n, c), -np.inf), np.full((n, c), np.inf)
    level = np.array([0])
    while level.size:
        split = level[feature[level] >= 0]
        f, t = feature[split], threshold[split]
        for child, limit in ((left[split], high), (right[split], low)):
            low[child], high[child] = low[split], high[split]
            limit[child, f] = t
        level = np.concatenate((left[split], right[split]))
    leaf = np.flatnonzero(feature < 0)
    return _Leaves(tree.value[leaf, 0, 0].astype(np.float64), low[leaf], high[leaf], bounds)


def _marginal_variance(leaves: _Leaves, tree: Any, bounds: np.ndarray,
                       group: np.ndarray) -> float:
    """The variance, over the cells the tree's splits on ``group``'s columns cut its bounds
    into (weighted by cell size), of the prediction averaged over the other columns."""
    edges = [np.concatenate(([bounds[f, 0]], np.unique(tree.threshold[tree.feature == f]),
                             [bounds[f, 1]])) for f in group]
    mids = np.array(list(itertools.product(*[(e[1:] + e[:-1]) / 2 for e in edges])))   # [K, G]
    sizes = np.prod(list(itertools.product(*[np.diff(e) for e in edges])), axis=1)      # [K]
    covers = np.all((leaves.low[:, None, group] < mids)
                    & (mids <= leaves.high[:, None, group]), axis=2)                    # [L, K]
    rest = np.delete(leaves.size, group, axis=1)
    weight = covers * np.prod(rest, axis=1)[:, None]                                    # [L, K]
    mass = weight.sum(axis=0)
    marginal = (weight * leaves.value[:, None]).sum(axis=0) / mass
    return _weighted_variance(marginal, mass * sizes)


def _weighted_variance(values: np.ndarray, weights: np.ndarray) -> float:
    mean = np.average(values, weights=weights)
    return float(np.average((values - mean) ** 2, weights=weights))


__all__ = ["fanova_fractions", "N_TREES", "MAX_DEPTH"]
