"""Every optimizer in one table: its name, its hyper-parameters with their defaults, the
run-config keys that set them, the ``torch.optim`` class the reference engine builds and
the batched rule a cohort steps with.

Config validation and :func:`mlplab.config.optimizer_hyper`, the reference engine's
``torch.optim`` factory, :mod:`mlplab.optim.batched` (and through it the in-place and
compiled steps) read this table, and the tests take their optimizers from it. Adding an
optimizer is one row here, plus its rule in :mod:`mlplab.optim.batched` when no rule there
fits. This module imports no torch (the config reads it, and the CLI must start fast): a
row *names* its ``torch.optim`` class and its batched rule, and they are looked up where
torch is loaded anyway.

>>> OPTIMIZERS["adamw"].defaults["weight_decay"]
0.01
>>> torch_kwargs("nesterov", {"lr": 0.1})
{'lr': 0.1, 'momentum': 0.9, 'dampening': 0.0, 'weight_decay': 0.0, 'nesterov': True}
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["OPTIMIZERS", "OptimizerSpec", "spec_of", "torch_kwargs"]


class OptimizerSpec(NamedTuple):
    """One optimizer. ``defaults`` are ``torch.optim``'s, except the momentum 0.9 that the
    names ``momentum`` and ``nesterov`` imply; ``beta1``/``beta2`` stand for torch's
    ``betas``."""

    name: str                             # the value of train.optimizer
    defaults: Mapping[str, float | bool]  # every hyper-parameter -> its default
    config_keys: tuple[str, ...]          # those train.<key> sets (None: the default), in
                                          # the order of the run record's optimizer_hyper
    torch_class: str                      # torch.optim.<torch_class>: the reference engine
    rule: str                             # mlplab.optim.batched.RULES[rule]: the cohort
    torch_fixed: Mapping[str, Any] = MappingProxyType({})  # torch keywords the name fixes
    fixed: tuple[str, ...] = ()           # held at the default, whatever the config says
    positive: tuple[str, ...] = ()        # must be > 0 (not just >= 0)


_SGD = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}
_ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
_ADAM_KEYS = ("lr", "weight_decay", "beta1", "beta2", "eps")

OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in (
    OptimizerSpec("sgd", _SGD, ("lr", "weight_decay"), "SGD", rule="sgd"),
    OptimizerSpec("momentum", {**_SGD, "momentum": 0.9},
                  ("lr", "weight_decay", "momentum", "dampening"), "SGD", rule="sgd"),
    OptimizerSpec("nesterov", {**_SGD, "momentum": 0.9},
                  ("lr", "weight_decay", "momentum", "dampening"), "SGD", rule="nesterov",
                  torch_fixed={"nesterov": True}, fixed=("dampening",),
                  positive=("momentum",)),
    OptimizerSpec("rmsprop", {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                              "momentum": 0.0, "centered": False},
                  ("lr", "weight_decay", "alpha", "eps", "momentum", "centered"), "RMSprop",
                  rule="rmsprop"),
    OptimizerSpec("adam", _ADAM, _ADAM_KEYS, "Adam", rule="adam"),
    OptimizerSpec("adamw", {**_ADAM, "weight_decay": 1e-2}, _ADAM_KEYS, "AdamW", rule="adamw"),
    OptimizerSpec("adagrad", {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                              "initial_accumulator_value": 0.0, "eps": 1e-10},
                  ("lr", "weight_decay", "lr_decay", "eps"), "Adagrad", rule="adagrad"),
)}


def spec_of(name: str) -> OptimizerSpec:
    """The row of optimizer ``name``; ValueError naming the choices for an unknown one.

    >>> spec_of("momentum").rule
    'sgd'
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {tuple(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def torch_kwargs(name: str, hyper: Mapping[str, float | bool]) -> dict[str, Any]:
    """Keyword arguments of ``torch.optim.<torch_class>`` for ``hyper`` (missing keys take
    the row's defaults): ``beta1``/``beta2`` as torch's ``betas``, flags as bools, and the
    keywords the name fixes (``nesterov=True``).

    >>> torch_kwargs("adam", {"lr": 0.01, "beta2": 0.99})
    {'lr': 0.01, 'betas': (0.9, 0.99), 'eps': 1e-08, 'weight_decay': 0.0}
    >>> torch_kwargs("rmsprop", {"centered": 1.0})["centered"]
    True
    """
    spec = spec_of(name)
    unknown = set(hyper) - set(spec.defaults)
    if unknown:
        raise ValueError(f"unknown hyper-parameters {sorted(unknown)} for optimizer {name!r}; "
                         f"allowed: {tuple(spec.defaults)}")
    kwargs: dict[str, Any] = {}
    for key, default in spec.defaults.items():
        value = hyper.get(key, default)
        if key == "beta1":
            kwargs["betas"] = (value, hyper.get("beta2", spec.defaults["beta2"]))
        elif key != "beta2":
            kwargs[key] = bool(value) if isinstance(default, bool) else value
    return {**kwargs, **spec.torch_fixed}
