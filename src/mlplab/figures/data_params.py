"""Metric vs hyper-parameter: a metric at the kept weights against any config key that
varies among the finished runs, grouped (e.g. by optimizer): per x every seed's value, the
median with its 95 % interval (and the quartiles), and whether that cell is tied with the best
cell of the figure (:mod:`mlplab.figures.data_ties`).

A numeric key is drawn on a log axis when its values are positive and span at least a
decade, else on a linear one; any other key (strings, hidden sizes, mixed values) as
categories, sorted, each run placed at its category's index.

>>> axis_kind([0.001, 0.01, 0.1]), axis_kind([0.0, 0.9]), axis_kind([(4,), (8, 8)])
('log', 'linear', 'category')
>>> category_order([(8, 8), (16,), (4,)])
((4,), (16,), (8, 8))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from mlplab.stats.ties import ties_with_best

from .arrays import frozen_array
from .data_configs import flatten, metric_mode, quartiles, run_metric, short_value, varying_keys
from .data_limit import accuracy_limit
from .data_ties import median_intervals

if TYPE_CHECKING:
    from mlplab.stats import BayesLimit
    from mlplab.store.store import RunInfo

# Keys worth a metric-vs-key figure in the report besides the learning rate (in order).
REPORT_KEYS = ("train.optimizer", "train.momentum", "train.weight_decay", "model.hidden",
               "model.activation", "model.init", "train.batch_size")
# At most this many figures besides the learning rate's.
MAX_EXTRA = 4


@dataclass(frozen=True)
class ParamGroup:
    label: str
    x: np.ndarray             # [R] per run (a category's index for a categorical key)
    value: np.ndarray         # [R] per run (nan: diverged or failed)
    grid_x: np.ndarray        # [L] distinct x of the group, ascending
    median: np.ndarray        # [L] over the finite values at each x
    q25: np.ndarray           # [L]
    q75: np.ndarray           # [L]
    n_bad: np.ndarray         # [L] runs without a finite value
    seed: np.ndarray          # [R] per run, its train.seed (seed i pairs across configurations)
    ci_low: np.ndarray        # [L] 95 % interval of the median (mlplab.stats.summarize)
    ci_high: np.ndarray       # [L]
    tied: np.ndarray          # [L] bool: not distinguishable from the figure's best cell
    best: np.ndarray          # [L] bool: the figure's best cell (its best median)


@dataclass(frozen=True)
class ParamCurveInfo:
    """A metric at the kept weights against the config key ``x_key``, per group."""

    metric: str
    x_key: str
    x_scale: str                      # "log", "linear" or "category"
    categories: tuple[str, ...]       # labels of x = 0, 1, ... when x_scale is "category"
    group_key: str | None
    groups: tuple[ParamGroup, ...]
    n_runs: int
    bayes_limit: float | None = None  # the dataset's best possible accuracy (accuracy metrics only)

    @property
    def n_cells(self) -> int:
        """The (group, x) cells the figure compares."""
        return sum(len(g.grid_x) for g in self.groups)

    @property
    def n_tied(self) -> int:
        """Cells tied with the best, the best included."""
        return sum(int(g.tied.sum()) for g in self.groups)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def seed_of(flat: dict[str, Any], index: int) -> int:
    """A run's ``train.seed``; a run without one gets ``-1 - index``, a seed no other run has
    (it pairs with nothing)."""
    seed = flat.get("train.seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else -1 - index


def axis_kind(values: Sequence[Any]) -> str:
    """``log`` for positive numbers spanning ≥ 1 decade, ``linear`` for other numbers,
    ``category`` for anything else."""
    if not values or not all(_is_number(v) for v in values):
        return "category"
    lo, hi = min(values), max(values)
    return "log" if lo > 0 and hi / lo >= 10 else "linear"


def category_order(values: Sequence[Any]) -> tuple[Any, ...]:
    """The distinct values, sorted (hidden sizes by depth, then widths; numbers before
    strings); first-seen order when they cannot be compared."""
    distinct = list({repr(v): v for v in values}.values())

    def key(v: Any) -> tuple:
        if isinstance(v, tuple):
            return (2, len(v), v)
        return (0, v, ()) if _is_number(v) else (1, str(v), ())
    try:
        return tuple(sorted(distinct, key=key))
    except TypeError:
        return tuple(distinct)


def param_curve_info(runs: Sequence["RunInfo"], x_key: str = "train.lr", metric: str = "val_loss",
                     group_key: str | None = "auto",
                     limit: "BayesLimit | None" = None) -> ParamCurveInfo | None:
    """``metric`` against ``x_key`` over the finished runs; ``None`` unless they hold at
    least two values of it. ``group_key="auto"`` groups by optimizer when that varies
    and is not the x key; ``limit``, the dataset's Bayes limit, is kept for an accuracy.

    >>> from types import SimpleNamespace as Run
    >>> runs = [Run(status="done", val_loss=v, config={"model": {"hidden": h}})
    ...         for h, v in (([8, 8], 0.2), ([4], 0.5), ([4], 0.3))]
    >>> info = param_curve_info(runs, "model.hidden")
    >>> info.x_scale, info.categories, info.groups[0].median.tolist()
    ('category', ('4', '8-8'), [0.4, 0.2])
    """
    runs = [r for r in runs if r.config and r.status == "done"]
    flat = [flatten(r.config) for r in runs]
    raw = [f.get(x_key) for f in flat]
    if len({repr(v) for v in raw}) < 2:
        return None
    scale = axis_kind(raw)
    if scale == "category":
        order = category_order(raw)
        index = {repr(v): i for i, v in enumerate(order)}
        xs = [float(index[repr(v)]) for v in raw]
        categories = tuple(short_value(v) for v in order)
    else:
        xs, categories = [float(v) for v in raw], ()
    if group_key == "auto":
        group_key = "train.optimizer" if "train.optimizer" in varying_keys([r.config for r in runs]) else None
    if group_key == x_key:
        group_key = None
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(flat):
        groups.setdefault(short_value(f.get(group_key)) if group_key else "all runs", []).append(i)
    out = []
    # groups in label order, as the comparison's lines: one optimizer, one colour everywhere
    ordered = sorted(groups.items())
    seeds = [np.array([seed_of(flat[i], i) for i in idx], np.int64) for _, idx in ordered]
    xs_of = [np.array([xs[i] for i in idx]) for _, idx in ordered]
    values = [np.array([run_metric(runs[i], metric) for i in idx]) for _, idx in ordered]
    cells = [(k, g) for k, x in enumerate(xs_of) for g in np.unique(x)]
    ties = ties_with_best([(seeds[k][xs_of[k] == g], values[k][xs_of[k] == g]) for k, g in cells],
                          higher_is_better=metric_mode(metric) == "max")
    # every cell's interval in one call: the cells of one size share one bootstrap
    intervals = median_intervals([values[k][xs_of[k] == g] for k, g in cells])
    for k, (label, _) in enumerate(ordered):
        x, value = xs_of[k], values[k]
        grid = np.unique(x)
        stats = [quartiles(value[x == g]) for g in grid]
        mine = [j for j, (kk, _) in enumerate(cells) if kk == k]
        ci = [intervals[j] for j in mine]
        out.append(ParamGroup(label, frozen_array(x), frozen_array(value), frozen_array(grid),
                              *(frozen_array([s[q] for s in stats]) for q in range(3)),
                              frozen_array([int(np.sum(~np.isfinite(value[x == g]))) for g in grid],
                                           np.int64),
                              frozen_array(seeds[k], np.int64), frozen_array([c[1] for c in ci]),
                              frozen_array([c[2] for c in ci]), frozen_array(ties.tied[mine], bool),
                              frozen_array([j == ties.best for j in mine], bool)))
    return ParamCurveInfo(metric, x_key, scale, categories, group_key, tuple(out), len(runs),
                          accuracy_limit(metric, limit))


def store_param_curves(runs: Sequence["RunInfo"], metric: str = "val_loss",
                       limit: "BayesLimit | None" = None,
                       only: Sequence[str] | None = None) -> tuple[ParamCurveInfo, ...]:
    """The report's metric-vs-key curves: the learning rate's (when it varies) and up to
    MAX_EXTRA more for the REPORT_KEYS that vary among the finished runs; ``only``: of
    those, the ones for these keys (a view that shows one at a time)."""
    done = [r for r in runs if r.config and r.status == "done"]
    vary = set(varying_keys([r.config for r in done]))
    keys = ["train.lr"] * ("train.lr" in vary) + [k for k in REPORT_KEYS if k in vary][:MAX_EXTRA]
    keys = keys if only is None else [k for k in keys if k in only]
    infos = (param_curve_info(done, k, metric, limit=limit) for k in keys)
    return tuple(i for i in infos if i is not None)
