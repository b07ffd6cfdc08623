"""Configurations of a set of runs: dotted keys, which of them vary, labels, per-run metrics.

A *configuration* is a run's config without its seed (``train.seed``) and name, so the
seeds of one configuration give its spread. Labels name only the config keys that vary
among the runs. The store figures (:mod:`mlplab.figures.data_store`,
:mod:`mlplab.figures.data_params`) build on these.

>>> flatten({"train": {"lr": 0.1, "seed": 0}, "model": {"hidden": [4]}})
{'train.lr': 0.1, 'train.seed': 0, 'model.hidden': (4,)}
>>> short_value((8, 8)), short_value(0.012345)
('8-8', '0.0123')
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from mlplab.store.store import RunInfo

# Keys that never define a configuration: the seed repeats one, the name only labels it.
SEED_KEYS = ("train.seed", "name")
RUN_METRICS = ("val_loss", "val_acc", "test_loss", "test_acc", "train_loss", "best_value")


# A config's flat form, kept by its id. The store figures flatten each run's config a
# dozen times (varying keys, configuration ids, seeds, labels): 13k calls and most of the
# figure data's time on a 1000-run store. A config read from the store is never changed
# (RunInfo is frozen), so its flat form is kept while the config lives in here.
# Its configuration id (:func:`config_id`) is kept beside it once asked for.
_FLAT: dict[int, list[Any]] = {}         # id(config) -> [config, flat form, config id or None]
_FLAT_MAX = 20_000       # about 10 MB of flat forms per 1000 runs, at most


def _entry(config: Mapping[str, Any]) -> list[Any]:
    hit = _FLAT.get(id(config))
    if hit is None or hit[0] is not config:
        if len(_FLAT) >= _FLAT_MAX:
            _FLAT.clear()
        hit = _FLAT[id(config)] = [config, _flatten(config, ""), None]
    return hit


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested config; lists become tuples (hashable)."""
    if prefix:
        return _flatten(config, prefix)
    return dict(_entry(config)[1])          # a copy: the caller may change it


def _flatten(config: Mapping[str, Any], prefix: str,
             out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {} if out is None else out          # one dict filled down the nesting, no merges
    for k, v in config.items():
        # configs come from JSON, so a plain dict check suffices (and is ~10x cheaper
        # than the typing.Mapping ABC check on a 1000-run store)
        if isinstance(v, dict):
            if k != "layer_init":
                _flatten(v, f"{prefix}{k}.", out)
            else:                             # a leaf: per-layer settings, as one text
                out[_dotted(prefix, k)] = json.dumps(v, sort_keys=True) if v else "{}"
        elif k != "sweep":
            out[_dotted(prefix, k)] = tuple(v) if isinstance(v, list) else v
    return out


def _dotted(prefix: str, key: str) -> str:
    """``prefix + key``, one string for every config that has it: 10,000 runs' flat forms
    held 490,000 copies of about 50 key names (29 MB of a 10,000-run report's figure data)."""
    return sys.intern(prefix + key)


def varying_keys(configs: Sequence[Mapping[str, Any]], exclude: Sequence[str] = SEED_KEYS) -> list[str]:
    """Dotted keys whose value differs among ``configs`` (in first-seen order)."""
    return [k for k in _varying(configs) if k not in exclude]


# the last few answers of _varying, with the configs they were for (so that their ids
# cannot be reused while kept): the store figures ask the same runs' varying keys about
# five times (1.0 s of a 10,000-run overview)
_VARYING: list[tuple[list[Mapping[str, Any]], list[str]]] = []


def _varying(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every dotted key whose value differs among ``configs``, seed and name included."""
    for kept, keys in _VARYING:
        if len(kept) == len(configs) and all(a is b for a, b in zip(kept, configs)):
            return keys
    flat = [_entry(c)[1] for c in configs]          # read only: no copies
    seen: dict[str, None] = {}
    for f in flat:
        seen.update(dict.fromkeys(f))
    keys = [k for k in seen if _differ([f.get(k) for f in flat])]
    _VARYING.insert(0, (list(configs), keys))
    del _VARYING[4:]
    return keys


def _differ(values: list[Any]) -> bool:
    """Whether ``values`` hold two different reprs (``1`` and ``1.0`` differ; two nans do
    not). Values of one type that compare equal have one repr, so most keys (the same
    everywhere) are settled without a repr; floats that equal zero (``-0.0``) and tuples
    are left to the reprs.

    >>> _differ([0.1, 0.1]), _differ([1, 1.0]), _differ([float("nan")] * 2), _differ([0.0, -0.0])
    (False, True, False, True)
    """
    first = values[0] if values else None
    kind = type(first)
    if kind in (str, int, bool, type(None)) or (kind is float and first != 0.0):
        if all(type(v) is kind and v == first for v in values):
            return False
    return len({repr(v) for v in values}) > 1


def short_value(v: Any) -> str:
    """A config value as a short label: 3 significant digits, hidden sizes as ``8-8``."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "-".join(map(str, v)) or "()"
    return str(v)


def config_label(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``lr=0.01 optimizer=adam`` from the values of ``keys`` (last dotted part)."""
    flat = flatten(config)
    return " ".join(f"{k.split('.')[-1]}={short_value(flat.get(k))}" for k in keys) or "all runs"


def config_id(config: Mapping[str, Any]) -> str:
    """The configuration a run repeats: its config without seed and name."""
    entry = _entry(config)
    if entry[2] is None:
        entry[2] = json.dumps({k: repr(v) for k, v in sorted(entry[1].items()) if k not in SEED_KEYS})
    return entry[2]


def run_metric(run: "RunInfo", metric: str) -> float:
    """A run's value of ``metric`` (one of RUN_METRICS) at its kept weights; nan if none."""
    if metric not in RUN_METRICS:
        raise ValueError(f"metric={metric!r}: allowed {', '.join(RUN_METRICS)}")
    v = getattr(run, metric)
    return math.nan if v is None else float(v)


def metric_mode(metric: str) -> str:
    """``max`` for an accuracy, else ``min``."""
    return "max" if metric.endswith("acc") else "min"


def quartiles(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles over the finite values along ``axis`` (nan where none)."""
    v = np.where(np.isfinite(values), values, np.nan)
    if v.shape[axis] == 0:
        nan = np.full(np.delete(np.array(v.shape), axis), math.nan)
        return nan, nan, nan
    if not np.isnan(v).any():   # the same numbers, without nanpercentile's per-column loop
        q = np.percentile(v, [50, 25, 75], axis=axis)
        return q[0], q[1], q[2]
    with warnings.catch_warnings():   # an all-nan column is expected: its quartiles are nan
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(v, [50, 25, 75], axis=axis)
    return q[0], q[1], q[2]
