"""The batched optimizers equal torch.optim, model by model (micrograd-style parity), for
every row of the optimizer table (:mod:`mlplab.optim.table`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
import torch

from mlplab.optim.batched import (RULES, BatchedOptimizer, OptState, hyper_from_configs,
                                  make_optimizer)
from mlplab.optim.table import OPTIMIZERS, torch_kwargs

K = 4
SHAPES = [(5, 3), (5,), (1, 5), (1,)]  # a 2-layer MLP 3 -> 5 -> 1, per model
N_STEPS = 20

# One table of variants: (optimizer name, K per-model configs). Missing keys test defaults.
# Every row of the optimizer table trains with its defaults at a few learning rates and
# weight decays, then these optimizers with their own hyper-parameters.
_DEFAULTS = [{"lr": 0.1}, {"lr": 0.01}, {}, {"lr": 0.05, "weight_decay": 0.1}]
_OPTIMIZERS_UNDER_TEST: list[tuple[str, list[dict[str, float]]]] = [
    (name, _DEFAULTS) for name in OPTIMIZERS] + [
    ("sgd", [{"lr": 0.1, "momentum": 0.5}, {"lr": 0.1}, {"momentum": 0.9, "dampening": 0.3},
             {"lr": 0.2, "momentum": 0.0, "dampening": 0.5}]),
    ("momentum", [{"lr": 0.1}, {"lr": 0.05, "momentum": 0.5}, {"dampening": 0.2},
                  {"lr": 0.01, "momentum": 0.99, "weight_decay": 0.01}]),
    ("nesterov", [{"lr": 0.1}, {"lr": 0.05, "momentum": 0.5}, {},
                  {"lr": 0.01, "momentum": 0.99, "weight_decay": 0.1}]),
    ("rmsprop", [{}, {"lr": 0.001, "alpha": 0.9}, {"centered": True, "eps": 1e-6},
                 {"lr": 0.003, "weight_decay": 0.05, "momentum": 0.7}]),
    ("rmsprop", [{"centered": True, "momentum": 0.9}, {"centered": False, "momentum": 0.5},
                 {"centered": True}, {"momentum": 0.2, "alpha": 0.5, "lr": 0.001}]),
    ("adam", [{}, {"lr": 0.01, "beta1": 0.5}, {"beta2": 0.9, "eps": 1e-3},
              {"lr": 0.003, "weight_decay": 0.1, "beta1": 0.0}]),
    ("adamw", [{}, {"lr": 0.01, "weight_decay": 0.0}, {"beta1": 0.8, "beta2": 0.95},
               {"lr": 0.03, "weight_decay": 0.3, "eps": 1e-6}]),
    ("adagrad", [{}, {"lr": 0.1, "lr_decay": 0.05}, {"initial_accumulator_value": 0.5},
                 {"lr": 0.03, "weight_decay": 0.1, "eps": 1e-6, "lr_decay": 0.01}]),
]
_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(_OPTIMIZERS_UNDER_TEST)]
DTYPES = [torch.float64, torch.float32]


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    # only the order of a few floating-point operations differs from torch's kernels
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5,
                                                                        "atol": 1e-6}


def _torch_optimizer(name: str, params: list[torch.Tensor],
                     config: Mapping[str, float]) -> torch.optim.Optimizer:
    """The torch.optim reference for one model: the table's class and keywords (its defaults
    are torch's own, see test_config)."""
    cls = getattr(torch.optim, OPTIMIZERS[name].torch_class)
    return cls(params, foreach=False, **torch_kwargs(name, config))


def _cohort(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn((K, *shape), generator=gen, dtype=dtype) for shape in SHAPES]


def _gradients(dtype: torch.dtype, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn((K, *s), generator=gen, dtype=dtype) for s in SHAPES]
            for _ in range(N_STEPS)]


class _Reference:
    """K separate torch.optim runs, one per model, on clones of that model's tensors."""

    def __init__(self, name: str, cohort: Sequence[torch.Tensor],
                 configs: Sequence[Mapping[str, float]]) -> None:
        self.name, self.configs = name, configs
        self.params = [[p[k].clone().requires_grad_() for p in cohort] for k in range(K)]
        self.opts = [_torch_optimizer(name, self.params[k], configs[k]) for k in range(K)]

    def step(self, k: int, grads: Sequence[torch.Tensor]) -> None:
        for p, g in zip(self.params[k], grads, strict=True):
            p.grad = g[k].clone()
        self.opts[k].step()

    def restart(self, k: int) -> None:
        self.opts[k] = _torch_optimizer(self.name, self.params[k], self.configs[k])

    def set_lr(self, k: int, lr: float) -> None:
        self.opts[k].param_groups[0]["lr"] = lr

    def assert_matches(self, cohort: Sequence[torch.Tensor], k: int) -> None:
        for p, ref in zip(cohort, self.params[k], strict=True):
            torch.testing.assert_close(p[k], ref.detach(), **_tolerance(p.dtype))


def _state_slice(state: OptState, k: int) -> list[torch.Tensor]:
    return [state.count[k]] + [t[k].clone() for field in state[1:] for t in field]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "configs"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_parity_with_torch_optim(name: str, configs: list[dict[str, float]],
                                 dtype: torch.dtype) -> None:
    opt = make_optimizer(name)
    cohort = _cohort(dtype)
    ref = _Reference(name, cohort, configs)
    hyper = hyper_from_configs(name, configs)
    state = opt.init(cohort)
    all_active = torch.ones(K, dtype=torch.bool)
    for grads in _gradients(dtype):
        state = opt.step(cohort, grads, state, hyper, all_active)
        for k in range(K):
            ref.step(k, grads)
    for k in range(K):
        ref.assert_matches(cohort, k)
    assert state.count.tolist() == [N_STEPS] * K


@pytest.mark.parametrize(("name", "configs"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_lr_schedule_by_replacing_hyper_lr(name: str, configs: list[dict[str, float]]) -> None:
    opt = make_optimizer(name)
    cohort = _cohort(torch.float64)
    ref = _Reference(name, cohort, configs)
    hyper = hyper_from_configs(name, configs)
    state = opt.init(cohort)
    for t, grads in enumerate(_gradients(torch.float64)):
        scheduled = hyper._replace(lr=hyper.lr * 0.9**t)  # [K]
        state = opt.step(cohort, grads, state, scheduled, torch.ones(K, dtype=torch.bool))
        for k in range(K):
            ref.set_lr(k, float(scheduled.lr[k]))
            ref.step(k, grads)
    for k in range(K):
        ref.assert_matches(cohort, k)


@pytest.mark.parametrize(("name", "configs"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_inactive_models_stay_bit_identical(name: str, configs: list[dict[str, float]]) -> None:
    opt = make_optimizer(name)
    cohort = _cohort(torch.float64)
    ref = _Reference(name, cohort, configs)
    hyper = hyper_from_configs(name, configs)
    state = opt.init(cohort)
    gen = torch.Generator().manual_seed(2)
    masks = torch.rand((N_STEPS, K), generator=gen) < 0.6  # [T, K]
    masks[0, 0] = masks[1, 0] = False   # model 0 starts late: its first step is masked
    masks[:, 3] = False                 # model 3 never trains
    for step_mask, grads in zip(masks, _gradients(torch.float64), strict=True):
        # an inactive model's gradient may be garbage; it must not leak into anything
        grads = [torch.where(step_mask.view(-1, *([1] * (g.dim() - 1))), g, torch.nan)
                 for g in grads]
        before = [[p[k].clone() for p in cohort] for k in range(K)]
        state_before = [_state_slice(state, k) for k in range(K)]
        state = opt.step(cohort, grads, state, hyper, step_mask)
        for k in range(K):
            if step_mask[k]:
                ref.step(k, grads)
                continue
            for p, old in zip(cohort, before[k], strict=True):
                assert torch.equal(p[k], old)
            for new, old in zip(_state_slice(state, k), state_before[k], strict=True):
                assert torch.equal(new, old)
    for k in range(K):
        ref.assert_matches(cohort, k)
    assert state.count.tolist() == masks.sum(0).tolist()


@pytest.mark.parametrize(("name", "configs"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_reset_restarts_like_a_fresh_torch_optimizer(name: str,
                                                     configs: list[dict[str, float]]) -> None:
    opt = make_optimizer(name)
    cohort = _cohort(torch.float64)
    ref = _Reference(name, cohort, configs)
    hyper = hyper_from_configs(name, configs)
    state = opt.init(cohort)
    which = torch.tensor([False, True, False, True])
    all_active = torch.ones(K, dtype=torch.bool)
    for t, grads in enumerate(_gradients(torch.float64)):
        if t == N_STEPS // 2:
            state = opt.reset(state, which)
            with torch.no_grad():  # a restart also re-initialises the model's params
                for p in cohort:
                    p[which] = torch.randn_like(p[which])
            for k in torch.nonzero(which).flatten().tolist():
                for p, ref_p in zip(cohort, ref.params[k], strict=True):
                    ref_p.data.copy_(p[k])
                ref.restart(k)
            assert state.count.tolist() == [N_STEPS // 2, 0, N_STEPS // 2, 0]
            assert all(torch.all(t[which] == 0) for field in state[1:] for t in field)
        state = opt.step(cohort, grads, state, hyper, all_active)
        for k in range(K):
            ref.step(k, grads)
    for k in range(K):
        ref.assert_matches(cohort, k)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_init_gives_zero_state_with_model_dimension(name: str) -> None:
    opt = make_optimizer(name)
    cohort = _cohort(torch.float32)
    state = opt.init(cohort)
    assert isinstance(opt, BatchedOptimizer) and opt.name == name
    assert state.count.shape == (K,) and state.count.dtype == torch.int64
    for field in state[1:]:
        assert [t.shape for t in field] == [p.shape for p in cohort]
        assert all(t.dtype == torch.float32 and not t.any() for t in field)


def test_every_row_names_a_batched_rule_with_its_hyper_parameters() -> None:
    assert {spec.rule for spec in OPTIMIZERS.values()} == set(RULES)      # none left over
    for spec in OPTIMIZERS.values():
        assert set(RULES[spec.rule].hyper._fields) == set(spec.defaults), spec.name


def test_step_does_not_record_autograd_history() -> None:
    opt = make_optimizer("adam")
    cohort = [p.requires_grad_() for p in _cohort(torch.float32)]
    state = opt.step(cohort, [torch.ones_like(p) for p in cohort], opt.init(cohort),
                     hyper_from_configs("adam", [{}] * K), torch.ones(K, dtype=torch.bool))
    assert all(p.grad_fn is None for p in cohort)
    assert not any(t.requires_grad for field in state[1:] for t in field)


def test_unknown_optimizer_names_the_value_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'adamx'.*'sgd'.*'adagrad'"):
        make_optimizer("adamx")
    with pytest.raises(ValueError, match=r"'lbfgs'.*'adam'"):
        hyper_from_configs("lbfgs", [{}])


def test_unknown_hyper_key_names_the_key_and_the_allowed_keys() -> None:
    with pytest.raises(ValueError, match=r"'beta1'.*'sgd'.*'lr'.*'weight_decay'"):
        hyper_from_configs("sgd", [{"lr": 0.1}, {"beta1": 0.9}])
    with pytest.raises(ValueError, match=r"'betas'.*'beta1'.*'beta2'"):
        hyper_from_configs("adam", [{"betas": (0.9, 0.99)}])


@pytest.mark.parametrize(("name", "config"), [
    ("sgd", {"lr": -0.1}),
    ("adam", {"beta2": 1.0}),
    ("rmsprop", {"eps": -1e-8}),
    ("nesterov", {"momentum": 0.0}),
    ("nesterov", {"dampening": 0.1}),
])
def test_out_of_range_values_are_rejected(name: str, config: dict[str, float]) -> None:
    key = next(iter(config))
    with pytest.raises(ValueError, match=key):
        hyper_from_configs(name, [config])


def test_hyper_is_one_tensor_of_k_per_field() -> None:
    hyper = hyper_from_configs("rmsprop", [{"centered": True}, {"lr": 0.5}])
    assert hyper.lr.tolist() == [0.01, 0.5] and hyper.lr.dtype == torch.float64
    assert hyper.centered.tolist() == [True, False] and hyper.centered.dtype == torch.bool
    assert all(field.shape == (2,) for field in hyper)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "configs"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_in_place_all_active_step_equals_the_masked_step_and_torch(
        name: str, configs: list[dict[str, float]], dtype: torch.dtype) -> None:
    from mlplab.optim.inplace import IN_PLACE_RULES, plan_step, step_all_active

    opt, hyper = make_optimizer(name), hyper_from_configs(name, configs)
    plan = plan_step(name, hyper)
    spec = OPTIMIZERS[name]
    with_momentum = sum(c.get("momentum", spec.defaults.get("momentum", 0.0)) > 0
                        for c in configs)
    dampened = any(c.get("dampening", 0.0) for c in configs)
    uncovered = spec.rule not in IN_PLACE_RULES or dampened or 0 < with_momentum < K
    assert (plan.rule == "") == uncovered
    if plan.rule == "":
        with pytest.raises(ValueError, match="no in-place step"):
            step_all_active(plan, [], [], opt.init(_cohort(dtype)), hyper)
        return
    cohort = _cohort(dtype)
    ref = _Reference(name, cohort, configs)
    flat = torch.cat([p.reshape(K, -1) for p in cohort], dim=1)          # [K, P]
    masked = flat.clone()
    state, masked_state = opt.init([flat]), opt.init([masked])
    all_active = torch.ones(K, dtype=torch.bool)
    for grads in _gradients(dtype):
        g = torch.cat([x.reshape(K, -1) for x in grads], dim=1)
        g_before = g.clone()
        state = step_all_active(plan, [flat], [g], state, hyper)
        masked_state = opt.step([masked], [g], masked_state, hyper, all_active)
        assert torch.equal(g, g_before)                                  # grads untouched
        for k in range(K):
            ref.step(k, grads)
    assert torch.equal(flat, masked)
    for new, old in zip(state, masked_state):
        for a, b in zip(new if isinstance(new, tuple) else [new],
                        old if isinstance(old, tuple) else [old]):
            assert torch.equal(a, b)
    views = [t.view(K, *s) for t, s in zip(flat.split([math.prod(s) for s in SHAPES], 1),
                                              SHAPES)]
    for k in range(K):
        ref.assert_matches(views, k)
