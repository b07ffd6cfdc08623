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

__all__ = ["OPTIMIZERS", "OptimizerSpec", "PRECONDITIONED", "spec_of", "stability_bound",
           "torch_kwargs"]


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


# The batched rules that divide the gradient by a diagonal D (their curvature is that of
# D^-1/2 H D^-1/2, Cohen et al. 2022), and the one whose weight decay is decoupled (not
# a term of the gradient, so not added to the Hessian).
PRECONDITIONED = ("rmsprop", "adam", "adamw", "adagrad")
DECOUPLED_DECAY = ("adamw",)


def stability_bound(name: str, hyper: Mapping[str, float | bool]) -> float:
    """The bound on ``lr x sharpness`` (the preconditioned sharpness for an adaptive
    optimizer) above which optimizer ``name`` diverges on a quadratic with that curvature:
    2 for gradient descent; 2 + 2 beta for heavy-ball momentum (divided by 1 - dampening,
    which scales the step); (2 + 2 beta) / (1 + 2 beta) for Nesterov; (2 + 2 beta1) /
    (1 - beta1) for Adam and AdamW; 2 + 2 beta for RMSprop with momentum beta; 2 for
    Adagrad. ``hyper``: as :func:`mlplab.config.optimizer_hyper` gives (missing keys: the
    row's defaults).

    >>> stability_bound("sgd", {}), stability_bound("momentum", {"momentum": 0.9})
    (2.0, 3.8)
    >>> round(stability_bound("adam", {"beta1": 0.9}), 6)
    38.0
    """
    spec = spec_of(name)
    get = lambda key: float(hyper.get(key, spec.defaults.get(key, 0.0)))  # noqa: E731
    if spec.rule == "sgd":
        damp = get("dampening") if get("momentum") > 0 else 0.0
        return (2.0 + 2.0 * get("momentum")) / max(1.0 - damp, 1e-12)
    if spec.rule == "nesterov":
        beta = get("momentum")
        return (2.0 + 2.0 * beta) / (1.0 + 2.0 * beta)
    if spec.rule in ("adam", "adamw"):
        return (2.0 + 2.0 * get("beta1")) / (1.0 - get("beta1"))
    if spec.rule == "rmsprop":
        return 2.0 + 2.0 * get("momentum")
    return 2.0
