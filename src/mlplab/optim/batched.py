"""Batched optimizers: one update step for a cohort of K same-shape models.

Parameters are stacked tensors with a leading ``[K]`` dimension (weight
``[K, d_out, d_in]``, bias ``[K, d_out]``). Every hyper-parameter is a ``[K]`` tensor and
every state tensor carries the ``[K]`` dimension too, so K models with different learning
rates, momenta or betas take one step together (optax's ``inject_hyperparams`` idea,
batched). Each rule reproduces the matching ``torch.optim`` class model by model, first-step
conventions included; which rule steps which optimizer, and every default, is in the table
(:mod:`mlplab.optim.table`). Inactive models are masked with ``torch.where``: no host sync, no
Python loop over models.

>>> import torch
>>> opt = make_optimizer("adam")
>>> w = torch.zeros(3, 2, 4)                                    # [K=3, d_out, d_in]
>>> hyper = hyper_from_configs("adam", [{"lr": 0.1}, {"lr": 0.01}, {}])
>>> state = opt.init([w])
>>> active = torch.tensor([True, True, False])
>>> state = opt.step([w], [torch.ones_like(w)], state, hyper, active)
>>> w[:, 0, 0], state.count
(tensor([-0.1000, -0.0100,  0.0000]), tensor([1, 1, 0]))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Union

import torch
from torch import Tensor

from .table import spec_of

__all__ = [
    "AdagradHyper", "AdagradState", "AdamHyper", "AdamState",
    "BatchedOptimizer", "Hyper", "MomentumState", "OptState", "RMSpropHyper",
    "RMSpropState", "RULES", "Rule", "SGDHyper", "hyper_from_configs", "make_optimizer",
]


# ---- hyper-parameters: one [K] tensor per field (float; `centered` is bool) ----------
class SGDHyper(NamedTuple):
    lr: Tensor            # [K]
    momentum: Tensor      # [K]
    dampening: Tensor     # [K]
    weight_decay: Tensor  # [K]


class RMSpropHyper(NamedTuple):
    lr: Tensor            # [K]
    alpha: Tensor         # [K]
    eps: Tensor           # [K]
    weight_decay: Tensor  # [K]
    momentum: Tensor      # [K]
    centered: Tensor      # [K] bool


class AdamHyper(NamedTuple):
    lr: Tensor            # [K]
    beta1: Tensor         # [K]
    beta2: Tensor         # [K]
    eps: Tensor           # [K]
    weight_decay: Tensor  # [K]; L2 on the gradient (adam) or decoupled (adamw)


class AdagradHyper(NamedTuple):
    lr: Tensor                         # [K]
    lr_decay: Tensor                   # [K]
    weight_decay: Tensor               # [K]
    initial_accumulator_value: Tensor  # [K]
    eps: Tensor                        # [K]


# ---- state: `count` [K] int64 steps taken per model, then one tensor per parameter ---
class MomentumState(NamedTuple):
    count: Tensor             # [K]
    buf: tuple[Tensor, ...]   # [K, ...] each; stays zero for models with momentum 0


class RMSpropState(NamedTuple):
    count: Tensor
    square_avg: tuple[Tensor, ...]
    momentum_buf: tuple[Tensor, ...]  # only moves for models with momentum > 0
    grad_avg: tuple[Tensor, ...]      # only moves for centered models


class AdamState(NamedTuple):
    count: Tensor
    exp_avg: tuple[Tensor, ...]
    exp_avg_sq: tuple[Tensor, ...]


class AdagradState(NamedTuple):
    count: Tensor
    sum: tuple[Tensor, ...]  # read as `initial_accumulator_value` while count == 0


Hyper = Union[SGDHyper, RMSpropHyper, AdamHyper, AdagradHyper]
OptState = Union[MomentumState, RMSpropState, AdamState, AdagradState]


class BatchedOptimizer(NamedTuple):
    """A batched optimizer as pure pieces, plus one documented in-place write.

    ``init(params)`` returns the zero state for stacked params. ``step(params, grads,
    state, hyper, active)`` returns the new state and updates ``params`` in place (under
    ``torch.no_grad()``); models where the bool ``[K]`` mask ``active`` is False keep
    their params and state bit for bit. ``reset(state, which)`` zeroes the slices of
    ``which`` (bool ``[K]``) so the next step of those models is a first step.
    """

    name: str
    init: Callable[[Sequence[Tensor]], OptState]
    step: Callable[[list[Tensor], list[Tensor], OptState, Hyper, Tensor], OptState]
    reset: Callable[[OptState, Tensor], OptState]


def _per_model(x: Tensor, like: Tensor) -> Tensor:
    """View ``x`` [K] as [K, 1, ..., 1] so it broadcasts against ``like`` [K, ...]."""
    return x.view((-1,) + (1,) * (like.dim() - 1))


def _count_after(count: Tensor, hyper_lr: Tensor) -> Tensor:
    """The step number each model would reach now, as float [K] for bias corrections."""
    return (count + 1).to(hyper_lr.dtype)  # [K]


# ---- sgd / momentum / nesterov: torch.optim.SGD ----------------------------------------
@torch.no_grad()
def _sgd_step(params: list[Tensor], grads: list[Tensor], state: MomentumState,
              hyper: SGDHyper, active: Tensor, *, nesterov: bool) -> MomentumState:
    dt = params[0].dtype
    lr, mom, wd = hyper.lr.to(dt), hyper.momentum.to(dt), hyper.weight_decay.to(dt)
    one_minus_damp = (1 - hyper.dampening).to(dt)            # [K]
    first, has_mom = state.count == 0, hyper.momentum != 0   # [K]
    keep_buf = active & has_mom                              # torch keeps no buffer at 0
    bufs = []
    for p, g, buf in zip(params, grads, state.buf, strict=True):
        g = g + _per_model(wd, p) * p                        # [K, ...] L2 decay
        # torch sets buf = grad on a model's first step, undamped
        new_buf = torch.where(_per_model(first, p), g,
                              buf * _per_model(mom, p) + _per_model(one_minus_damp, p) * g)
        d = g + _per_model(mom, p) * new_buf if nesterov else new_buf
        d = torch.where(_per_model(has_mom, p), d, g)        # [K, ...] descent direction
        p.copy_(torch.where(_per_model(active, p), p - _per_model(lr, p) * d, p))
        bufs.append(torch.where(_per_model(keep_buf, p), new_buf, buf))
    return MomentumState(state.count + active.to(state.count.dtype), tuple(bufs))


# ---- rmsprop: torch.optim.RMSprop ------------------------------------------------------
@torch.no_grad()
def _rmsprop_step(params: list[Tensor], grads: list[Tensor], state: RMSpropState,
                  hyper: RMSpropHyper, active: Tensor) -> RMSpropState:
    dt = params[0].dtype
    lr, alpha, eps = hyper.lr.to(dt), hyper.alpha.to(dt), hyper.eps.to(dt)
    mom, wd = hyper.momentum.to(dt), hyper.weight_decay.to(dt)
    one_minus_alpha = (1 - hyper.alpha).to(dt)                  # [K]
    keep_buf, keep_gavg = active & (hyper.momentum > 0), active & hyper.centered
    sq_avgs, bufs, g_avgs = [], [], []
    for p, g, sq, buf, g_avg in zip(params, grads, state.square_avg, state.momentum_buf,
                                    state.grad_avg, strict=True):
        g = g + _per_model(wd, p) * p                                      # [K, ...]
        new_sq = sq * _per_model(alpha, p) + _per_model(one_minus_alpha, p) * g * g
        new_g_avg = torch.lerp(g_avg, g, _per_model(one_minus_alpha, p))
        centered_var = new_sq - new_g_avg * new_g_avg                      # Var[g] estimate
        avg = torch.where(_per_model(hyper.centered, p), centered_var, new_sq).sqrt()
        avg = avg + _per_model(eps, p)                                     # [K, ...]
        # with momentum 0 the buffer stays 0, so 0 * buf + g / avg is exactly g / avg
        new_buf = buf * _per_model(mom, p) + g / avg
        p.copy_(torch.where(_per_model(active, p), p - _per_model(lr, p) * new_buf, p))
        sq_avgs.append(torch.where(_per_model(active, p), new_sq, sq))
        bufs.append(torch.where(_per_model(keep_buf, p), new_buf, buf))
        g_avgs.append(torch.where(_per_model(keep_gavg, p), new_g_avg, g_avg))
    count = state.count + active.to(state.count.dtype)
    return RMSpropState(count, tuple(sq_avgs), tuple(bufs), tuple(g_avgs))


# ---- adam / adamw: torch.optim.Adam, torch.optim.AdamW ---------------------------------
@torch.no_grad()
def _adam_step(params: list[Tensor], grads: list[Tensor], state: AdamState,
               hyper: AdamHyper, active: Tensor, *, decoupled: bool) -> AdamState:
    dt = params[0].dtype
    t = _count_after(state.count, hyper.lr)                          # [K]
    # scalar-per-model coefficients in the hyper dtype, as torch does them in Python floats
    step_size = (hyper.lr / (1 - hyper.beta1 ** t)).to(dt)           # [K]
    bc2_sqrt = (1 - hyper.beta2 ** t).sqrt().to(dt)                  # [K]
    one_minus_b1, one_minus_b2 = (1 - hyper.beta1).to(dt), (1 - hyper.beta2).to(dt)
    b2, eps, wd = hyper.beta2.to(dt), hyper.eps.to(dt), hyper.weight_decay.to(dt)
    shrink = (1 - hyper.lr * hyper.weight_decay).to(dt)              # [K] adamw only
    ms, vs = [], []
    for p, g, m, v in zip(params, grads, state.exp_avg, state.exp_avg_sq, strict=True):
        if decoupled:
            new_p = p * _per_model(shrink, p)                        # [K, ...]
        else:
            new_p, g = p, g + _per_model(wd, p) * p
        new_m = torch.lerp(m, g, _per_model(one_minus_b1, p))        # [K, ...]
        new_v = v * _per_model(b2, p) + _per_model(one_minus_b2, p) * g * g
        denom = new_v.sqrt() / _per_model(bc2_sqrt, p) + _per_model(eps, p)
        new_p = new_p - _per_model(step_size, p) * (new_m / denom)
        act = _per_model(active, p)
        p.copy_(torch.where(act, new_p, p))
        ms.append(torch.where(act, new_m, m))
        vs.append(torch.where(act, new_v, v))
    return AdamState(state.count + active.to(state.count.dtype), tuple(ms), tuple(vs))


# ---- adagrad: torch.optim.Adagrad ------------------------------------------------------
@torch.no_grad()
def _adagrad_step(params: list[Tensor], grads: list[Tensor], state: AdagradState,
                  hyper: AdagradHyper, active: Tensor) -> AdagradState:
    dt = params[0].dtype
    t = _count_after(state.count, hyper.lr)                                  # [K]
    clr = (hyper.lr / (1 + (t - 1) * hyper.lr_decay)).to(dt)                # [K]
    eps, wd = hyper.eps.to(dt), hyper.weight_decay.to(dt)
    first, init_acc = state.count == 0, hyper.initial_accumulator_value.to(dt)
    sums = []
    for p, g, acc in zip(params, grads, state.sum, strict=True):
        g = g + _per_model(wd, p) * p                                        # [K, ...]
        acc_before = torch.where(_per_model(first, p), _per_model(init_acc, p), acc)
        new_acc = acc_before + g * g
        std = new_acc.sqrt() + _per_model(eps, p)
        new_p = p - _per_model(clr, p) * (g / std)
        act = _per_model(active, p)
        p.copy_(torch.where(act, new_p, p))
        sums.append(torch.where(act, new_acc, acc))
    return AdagradState(state.count + active.to(state.count.dtype), tuple(sums))


# ---- init / reset, shared by all rules -------------------------------------------------
def _zero_state(state_type: type, n_buffers: int, params: Sequence[Tensor]) -> OptState:
    count = torch.zeros(params[0].shape[0], dtype=torch.int64, device=params[0].device)
    buffers = (tuple(torch.zeros_like(p) for p in params) for _ in range(n_buffers))
    return state_type(count, *buffers)


def _reset(state: OptState, which: Tensor) -> OptState:
    """Zero every state slice of the models in ``which`` (bool [K]), count included."""
    def zero(x: Tensor) -> Tensor:
        return x.masked_fill(_per_model(which, x), 0)
    fields = (zero(f) if isinstance(f, Tensor) else tuple(zero(x) for x in f) for f in state)
    return type(state)(*fields)


# ---- the rules by name: each row of mlplab.optim.table names the one that steps it -----
class Rule(NamedTuple):
    """A batched rule: how :func:`make_optimizer` builds the optimizer of a row naming it."""

    hyper: type                        # its *Hyper: one field per hyper-parameter of the row
    state: type                        # its *State
    n_buffers: int                     # state tensors per parameter
    step: Callable[..., OptState]


RULES: dict[str, Rule] = {
    "sgd": Rule(SGDHyper, MomentumState, 1, functools.partial(_sgd_step, nesterov=False)),
    "nesterov": Rule(SGDHyper, MomentumState, 1, functools.partial(_sgd_step, nesterov=True)),
    "rmsprop": Rule(RMSpropHyper, RMSpropState, 3, _rmsprop_step),
    "adam": Rule(AdamHyper, AdamState, 2, functools.partial(_adam_step, decoupled=False)),
    "adamw": Rule(AdamHyper, AdamState, 2, functools.partial(_adam_step, decoupled=True)),
    "adagrad": Rule(AdagradHyper, AdagradState, 1, _adagrad_step),
}


def _check_value(name: str, key: str, value: float) -> None:
    """Raise ValueError, as torch.optim does, for a value outside the accepted range."""
    upper = 1.0 if key in ("beta1", "beta2") else math.inf  # betas live in [0, 1)
    if not 0.0 <= float(value) < upper:
        raise ValueError(f"{key} must be in [0, {upper}) for {name!r}, got {value!r}")


def make_optimizer(name: str) -> BatchedOptimizer:
    """The batched optimizer called ``name`` (a row of :mod:`mlplab.optim.table`).

    >>> make_optimizer("nesterov").name
    'nesterov'
    """
    rule = RULES[spec_of(name).rule]
    init = functools.partial(_zero_state, rule.state, rule.n_buffers)
    return BatchedOptimizer(name=name, init=init, step=rule.step, reset=_reset)


def hyper_from_configs(name: str, configs: Sequence[Mapping[str, float]],
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float64) -> Hyper:
    """Stack K per-model dicts into ``[K]`` hyper tensors for optimizer ``name``.

    Missing keys take the optimizer's default from :mod:`mlplab.optim.table` (torch.optim's,
    but ``momentum`` is 0.9 for ``momentum``/``nesterov``); ``beta1``/``beta2`` stand for
    torch's ``betas``. Keep ``dtype`` float64 (the default) even for float32 params: the
    coefficients are only [K] numbers, cast to the params' dtype in each step, and a float32
    ``beta2 = 0.999`` would already be off by 1e-5 in ``1 - beta2``.

    >>> hyper_from_configs("sgd", [{"lr": 0.1}, {}]).lr
    tensor([0.1000, 0.0010], dtype=torch.float64)
    """
    spec = spec_of(name)
    defaults = spec.defaults
    for config in configs:
        for key, value in config.items():
            if key not in defaults:
                raise ValueError(f"unknown hyper-parameter {key!r} for optimizer {name!r}; "
                                 f"allowed: {tuple(defaults)}")
            if not isinstance(defaults[key], bool):                  # flags: any value
                _check_value(name, key, value)
        full = {**defaults, **config}
        for key in spec.positive:
            if not full[key] > 0:
                raise ValueError(f"{name} needs {key} > 0, got {key}={full[key]!r}")
        for key in spec.fixed:
            if full[key] != defaults[key]:
                raise ValueError(f"{name} needs {key} {defaults[key]!r}, got {key}={full[key]!r}")
    fields = {}
    for key, default in defaults.items():
        values = [config.get(key, default) for config in configs]
        kind = torch.bool if isinstance(default, bool) else dtype
        fields[key] = torch.tensor(values, dtype=kind, device=device)  # [K]
    return RULES[spec.rule].hyper(**fields)
