"""Which configurations can train as one cohort (:mod:`mlplab.engine.cohort`): those equal
but for :data:`PER_MODEL_KEYS`. Apart from the engine, without torch, so that a sweep's
driver groups its runs into units (:func:`mlplab.sweep.units.plan_units`) without
importing what only its workers need.

>>> from mlplab.config import from_dict
>>> cohort_key(from_dict({"train": {"lr": 0.1}})) == cohort_key(from_dict({"train": {"lr": 0.3}}))
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any, Sequence

from mlplab.config import ConfigError, RunConfig, to_dict

# keys that may differ inside one cohort (everything else must be equal)
PER_MODEL_KEYS = ("name", "sweep", "train.seed", "train.lr", "train.momentum", "train.dampening",
                  "train.weight_decay", "train.beta1", "train.beta2", "train.eps", "train.alpha",
                  "train.lr_decay", "model.init", "model.bias_init", "model.layer_init")


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = prefix + key
        if isinstance(value, dict) and name not in PER_MODEL_KEYS:
            out.update(_dotted(value, name + "."))
        else:
            out[name] = value
    return out


def _shared_part(cfg: RunConfig) -> dict[str, Any]:
    return {k: v for k, v in _dotted(to_dict(cfg)).items() if k not in PER_MODEL_KEYS}


def cohort_key(cfg: RunConfig) -> str:
    """Configs with equal keys can train as one cohort: they may differ only in the
    ``PER_MODEL_KEYS`` (name, seed, lr, the optimizer's numeric hyper-parameters, init).

    >>> from mlplab.config import from_dict
    >>> a, b = from_dict({"train": {"lr": 0.1}}), from_dict({"train": {"batch_size": 8}})
    >>> cohort_key(a) == cohort_key(from_dict({"train": {"lr": 0.3, "seed": 5}})), \\
    ...     cohort_key(a) == cohort_key(b)
    (True, False)
    """
    text = json.dumps(_shared_part(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# PER_MODEL_KEYS by top-level field: the leaves that may differ ("" for the whole field)
_PER_MODEL: dict[str, set[str]] = {}
for _key in PER_MODEL_KEYS:
    _top, _, _leaf = _key.partition(".")
    _PER_MODEL.setdefault(_top, set()).add(_leaf)


def _same_but_per_model(a: RunConfig, b: RunConfig) -> bool:
    """``a`` and ``b`` equal but for the ``PER_MODEL_KEYS``, field by field (no copies of
    either with those keys blanked: a cohort of 256 checked its configs in ~4 ms so)."""
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        free = _PER_MODEL.get(f.name)
        if free is None:
            if x != y:
                return False
        elif "" not in free and any(getattr(x, g.name) != getattr(y, g.name)
                                    for g in fields(x) if g.name not in free):
            return False
    return True


def check_cohort(configs: Sequence[RunConfig]) -> None:
    """Raise :class:`ConfigError` naming the first key where a config leaves the cohort.

    >>> from mlplab.config import from_dict
    >>> check_cohort([from_dict({}), from_dict({"model": {"hidden": [8]}})])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlplab.config.ConfigError: config key 'model.hidden': got [8]; allowed: [4] as in ...
    """
    if not configs:
        raise ConfigError("configs", [], "at least one configuration")
    first = None
    for i, cfg in enumerate(configs[1:], start=1):
        if _same_but_per_model(configs[0], cfg):
            continue
        first = first or _shared_part(configs[0])
        other = _shared_part(cfg)
        for key in first:
            if first[key] != other[key]:
                raise ConfigError(key, other[key],
                                  f"{first[key]!r} as in configs[0] (configs[{i}] differs): a "
                                  "cohort shares everything but " + ", ".join(PER_MODEL_KEYS))
