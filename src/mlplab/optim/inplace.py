"""In-place steps of the batched optimizers for the common case: every model active.

:mod:`mlplab.optim.batched` masks each step so that stopped models keep their parameters and
state bit for bit; that costs a ``torch.where`` per state tensor and a fresh tensor per
intermediate. When the caller knows on the host that every model of the cohort is
training (the cohort engine knows it after each epoch's look at the stopping flags), the
same update rules run here as a handful of in-place operations on the flat ``[K, P]``
buffers, with per-model hyper-parameters broadcast as ``[K, 1]`` columns. Facts about the
hyper-parameters that decide which ops run (any weight decay? every momentum positive?)
are read once, by :func:`plan_step`, never inside the step.

>>> import torch
>>> from mlplab.optim.batched import hyper_from_configs, make_optimizer
>>> opt, hyper = make_optimizer("momentum"), hyper_from_configs("momentum", [{"lr": .1}] * 2)
>>> w = torch.zeros(2, 3)                                        # [K=2, P=3]
>>> state, plan = opt.init([w]), plan_step("momentum", hyper)
>>> state = step_all_active(plan, [w], [torch.ones_like(w)], state, hyper)
>>> w[0].tolist(), state.count.tolist()
([-0.10000000149011612, -0.10000000149011612, -0.10000000149011612], [1, 1])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .batched import AdamHyper, AdamState, Hyper, MomentumState, OptState, SGDHyper
from .table import spec_of


IN_PLACE_RULES = ("sgd", "nesterov", "adam", "adamw")   # batched rules with an in-place form


class StepPlan(NamedTuple):
    """Host facts about a cohort's hyper-parameters; ``rule`` is "" when the in-place
    path does not cover them (the caller then uses the masked ``BatchedOptimizer.step``)."""

    rule: str             # "sgd" (no momentum), "momentum", "nesterov", "adam", "adamw", ""
    weight_decay: bool    # some model has a non-zero weight decay


def plan_step(name: str, hyper: Hyper) -> StepPlan:
    """The in-place plan for optimizer ``name`` with ``hyper`` (reads ``hyper`` on the host:
    call it once, not per step; only ``lr`` may change afterwards). Keyed by the batched
    rule the table names for ``name``: the rules without an in-place form plan ""."""
    rule, decay = spec_of(name).rule, bool((hyper.weight_decay != 0).any())
    if rule not in IN_PLACE_RULES:
        return StepPlan("", decay)
    if rule in ("sgd", "nesterov"):
        momentum = hyper.momentum > 0
        if bool((hyper.dampening != 0).any()) or bool(momentum.any() != momentum.all()):
            return StepPlan("", decay)          # mixed momentum or dampening: masked path
        if not bool(momentum.all()):
            return StepPlan("sgd", decay)
        return StepPlan("momentum" if rule == "sgd" else "nesterov", decay)
    return StepPlan(rule, decay)                # adam, adamw


def _col(x: Tensor, dtype: torch.dtype) -> Tensor:
    """A ``[K]`` hyper-parameter as a ``[K, 1]`` column in the params' dtype."""
    return x.to(dtype).unsqueeze(-1)


# columns made from hyper-parameter tensors, kept while the very same tensor (identity and
# in-place version) comes back: the cohort passes the same [K] tensors every step
_COLUMNS: dict[tuple[int, str, torch.dtype], tuple[Tensor, int | None, Tensor]] = {}


def _version(x: Tensor) -> int | None:
    """``x``'s in-place version; None for an inference tensor, which keeps none (the cohort
    trains in ``torch.inference_mode`` and never changes a hyper-parameter in place: a new
    lr is a new tensor)."""
    return None if x.is_inference() else x._version


def _cached_col(x: Tensor, dtype: torch.dtype, what: str = "") -> Tensor:
    """``_col(x, dtype)``, or ``_col(1 - x, dtype)`` for ``what="1-"``, made once per tensor."""
    key = (id(x), what, dtype)
    hit = _COLUMNS.get(key)
    if hit is not None and hit[0] is x and hit[1] == _version(x):
        return hit[2]
    if len(_COLUMNS) > 64:
        _COLUMNS.clear()
    col = _col(1 - x if what == "1-" else x, dtype)
    _COLUMNS[key] = (x, _version(x), col)
    return col


@torch.no_grad()
def step_all_active(plan: StepPlan, params: list[Tensor], grads: list[Tensor],
                    state: OptState, hyper: Hyper) -> OptState:
    """One step of every model, exactly as ``BatchedOptimizer.step`` with an all-True mask,
    for params ``[K, P]`` (2-D, as the cohort's flat buffer). Updates ``params`` *and the
    state's buffers* in place (never ``grads``: the probe reads them) and returns the state."""
    if plan.rule in ("sgd", "momentum", "nesterov"):
        return _sgd(plan, params, grads, state, hyper)
    if plan.rule in ("adam", "adamw"):
        return _adam(plan, params, grads, state, hyper)
    raise ValueError(f"no in-place step for plan {plan!r}; use BatchedOptimizer.step")


def _sgd(plan: StepPlan, params: list[Tensor], grads: list[Tensor], state: MomentumState,
         hyper: SGDHyper) -> MomentumState:
    dt = params[0].dtype
    lr, mom = _cached_col(hyper.lr, dt), _cached_col(hyper.momentum, dt)
    for p, g, buf in zip(params, grads, state.buf, strict=True):
        if plan.weight_decay:
            g = g + _cached_col(hyper.weight_decay, dt) * p        # [K, P] L2 decay
        if plan.rule == "sgd":
            d = g
        else:
            # torch sets buf = grad on a model's first step; buf is zero then, and with
            # dampening 0 (the plan's condition) mom * 0 + g is exactly g
            buf.mul_(mom).add_(g)
            d = g + mom * buf if plan.rule == "nesterov" else buf
        p.sub_(lr * d)
    return MomentumState(state.count.add_(1), state.buf)


def _adam(plan: StepPlan, params: list[Tensor], grads: list[Tensor], state: AdamState,
          hyper: AdamHyper) -> AdamState:
    dt = params[0].dtype
    t = (state.count + 1).to(hyper.lr.dtype)                        # [K]
    # per-model scalars in the hyper dtype, as torch computes them in Python floats
    step_size = _col(hyper.lr / (1 - hyper.beta1 ** t), dt)         # [K, 1]
    bc2_sqrt = _col((1 - hyper.beta2 ** t).sqrt(), dt)
    one_minus_b1, one_minus_b2 = _cached_col(hyper.beta1, dt, "1-"), \
        _cached_col(hyper.beta2, dt, "1-")
    b2, eps = _cached_col(hyper.beta2, dt), _cached_col(hyper.eps, dt)
    for p, g, m, v in zip(params, grads, state.exp_avg, state.exp_avg_sq, strict=True):
        if plan.rule == "adamw":
            if plan.weight_decay:
                p.mul_(_col(1 - hyper.lr * hyper.weight_decay, dt))
        elif plan.weight_decay:
            g = g + _cached_col(hyper.weight_decay, dt) * p
        m.lerp_(g, one_minus_b1)                                     # [K, P]
        v.mul_(b2).add_((one_minus_b2 * g).mul_(g))
        denom = v.sqrt().div_(bc2_sqrt).add_(eps)
        p.sub_(m.div(denom).mul_(step_size))
    return AdamState(state.count.add_(1), state.exp_avg, state.exp_avg_sq)
