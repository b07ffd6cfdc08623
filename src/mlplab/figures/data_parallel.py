"""Figure data of the parallel-coordinates view of a sweep: one line per configuration
(a run's config without its seed), one axis per swept key, coloured by the median over
seeds of the chosen metric.

Numeric keys keep their values (a log axis when they span a decade or more); any
other key is an axis of categories, each placed at its position in
:func:`mlplab.figures.data_params.category_order` with its label as the tick.

>>> from types import SimpleNamespace as Run
>>> runs = [Run(config={"train": {"lr": lr, "optimizer": o, "seed": s}}, val_loss=lr + s)
...         for lr in (0.01, 0.1) for o in ("sgd", "adam") for s in (0, 1)]
>>> info = parallel_info(runs, "val_loss")
>>> [a.key for a in info.axes], [a.kind for a in info.axes], info.median.round(3).tolist()
(['train.lr', 'train.optimizer'], ['log', 'category'], [0.51, 0.51, 0.6, 0.6])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .arrays import frozen_array
from .data_configs import config_id, flatten, metric_mode, run_metric, short_value, varying_keys
from .data_params import axis_kind, category_order
from .data_ties import median_intervals

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo


@dataclass(frozen=True)
class ParallelAxis:
    key: str                      # the dotted config key
    kind: str                     # "log", "linear" or "category"
    values: np.ndarray            # [C] the value (a category: its position) of each configuration
    ticks: tuple[str, ...]        # a category axis: the label of position 0, 1, ...; else ()


@dataclass(frozen=True)
class ParallelInfo:
    """One line per configuration across the axes of the swept keys; its colour is the
    median over its seeds of ``metric`` (with the 95 % interval and the number of seeds)."""

    metric: str
    mode: str                     # "min" or "max": which end of the colour scale is good
    axes: tuple[ParallelAxis, ...]
    labels: tuple[str, ...]       # [C] the configuration's swept values, for hovers and legends
    median: np.ndarray            # [C] nan when no seed of it has a finite value
    low: np.ndarray               # [C] 95 % interval of the median (mlplab.stats.summarize)
    high: np.ndarray              # [C]
    n_seeds: np.ndarray           # [C] runs (seeds) of the configuration

    @property
    def n_configs(self) -> int:
        return len(self.labels)


def parallel_info(runs: Sequence["RunInfo"], metric: str) -> ParallelInfo | None:
    """The parallel coordinates of the finished ``runs`` (``None`` when no config key varies
    or there is one configuration only)."""
    runs = [r for r in runs if r.config]
    keys = varying_keys([r.config for r in runs])
    if not keys:
        return None
    groups: dict[str, list["RunInfo"]] = {}
    for r in runs:
        groups.setdefault(config_id(r.config), []).append(r)
    if len(groups) < 2:
        return None
    firsts = [flatten(g[0].config) for g in groups.values()]
    axes = []
    for k in keys:
        column = [f.get(k) for f in firsts]
        kind = axis_kind(column)
        if kind == "category":
            order = category_order(column)
            where = {repr(v): i for i, v in enumerate(order)}
            axes.append(ParallelAxis(k, kind, frozen_array([where[repr(v)] for v in column]),
                                     tuple(short_value(v) for v in order)))
        else:
            axes.append(ParallelAxis(k, kind, frozen_array(column), ()))
    stats = median_intervals([[run_metric(r, metric) for r in g] for g in groups.values()])
    labels = tuple(" ".join(f"{k.split('.')[-1]}={short_value(f.get(k))}" for k in keys)
                   for f in firsts)
    return ParallelInfo(metric, metric_mode(metric), tuple(axes), labels,
                        frozen_array([s[0] for s in stats]), frozen_array([s[1] for s in stats]),
                        frozen_array([s[2] for s in stats]),
                        frozen_array([len(g) for g in groups.values()], np.int64))


__all__ = ["ParallelAxis", "ParallelInfo", "parallel_info"]
