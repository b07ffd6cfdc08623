"""The Bayes limit of the dataset a set of runs trained on, for the accuracy figures.

A generated dataset (xor, gaussians, circles, spiral, moons, checkerboard) has a best accuracy
no classifier can beat on average: :func:`mlplab.stats.bayes_limit` of its
:class:`~mlplab.config.DataConfig`. The store figures draw it as a line on every accuracy axis.
User data (csv:, npz:) has none, and runs on datasets with different limits share none.

>>> from types import SimpleNamespace as Run
>>> runs = [Run(config={"data": {"name": "xor", "noise": 0.25, "seed": s}}) for s in (0, 1)]
>>> round(runs_bayes_limit(runs).accuracy, 4)
0.9555
>>> runs_bayes_limit([Run(config={"data": {"name": "csv:points.csv"}})]) is None
True
>>> runs_bayes_limit(runs + [Run(config={"name": "mine", "source": "probe"})]) is None
True
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from mlplab.config import from_dict
from mlplab.stats import BayesLimit, data_bayes_limit

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo


def runs_bayes_limit(runs: Sequence["RunInfo"] | Sequence[Any]) -> BayesLimit | None:
    """The Bayes limit every run's dataset shares (each DataConfig rebuilt from the run's
    stored config); None when a run is on user data (a Probe run records no dataset), when
    their limits differ, or with no run."""
    sections = {json.dumps((r.config or {}).get("data"), sort_keys=True) for r in runs}
    if "null" in sections:          # a run without a data section: a user's own loop and data
        return None
    limits = {data_bayes_limit(from_dict({"data": json.loads(s)}).data) for s in sections}
    return limits.pop() if len(limits) == 1 else None


def accuracy_limit(metric: str, limit: BayesLimit | None) -> float | None:
    """The limit to draw on an axis of ``metric``: only accuracies have one.

    >>> accuracy_limit("val_acc", BayesLimit(0.93, 0.0, "closed form")), accuracy_limit("val_loss", None)
    (0.93, None)
    """
    return limit.accuracy if limit is not None and metric.endswith("acc") else None


def limit_label(limit: float) -> str:
    """The words on a Bayes-limit line.

    >>> limit_label(0.92816)
    'Bayes limit 92.8 %'
    """
    return f"Bayes limit {100 * limit:.1f} %"
