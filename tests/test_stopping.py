"""Early stopping: the plateau rule on scripted sequences, end reasons, restarts, and the
batched rule equal to the scalar one."""

from __future__ import annotations

import math

import pytest
import torch

from mlplab.config import StoppingConfig, from_dict
from mlplab.engine import reference as engine
from mlplab.engine.stopping import (END_REASONS, PlateauState, end_codes, end_reason,
                                    init_batched, is_plateau, monitor_mode, observe,
                                    observe_batched, reason_of, should_restart, target_met,
                                    target_met_batched)

NAN = math.nan

# One table of scripted sequences: settings, values, (epoch the plateau is declared,
# best epoch at that point); None: no plateau within the sequence.
_SEQUENCES = [
    ({"patience": 2, "min_delta": 0.0}, [1.0, 0.9, 0.8, 0.8, 0.8], (4, 2)),
    ({"patience": 2, "min_delta": 0.05}, [1.0, 0.96, 0.97, 0.94, 0.5], (2, 0)),
    ({"patience": 3, "min_delta": 0.01}, [1.0, 0.9, 0.95, 0.92, 0.88, 0.9, 0.9, 0.89], (7, 4)),
    ({"patience": 1, "min_delta": 0.0}, [1.0, 0.9, 0.8, 0.7, 0.6], None),
    ({"patience": 0, "min_delta": 0.0}, [1.0, 0.9], (0, 0)),
    ({"patience": 2, "min_delta": 0.0, "monitor": "val_acc"}, [0.5, 0.7, 0.6, 0.7, 0.9], (3, 1)),
    ({"patience": 2, "min_delta": 0.0, "monitor": "val_acc", "mode": "min"},
     [0.5, 0.7, 0.6, 0.4, 0.3], (2, 0)),
    ({"patience": 2, "min_delta": 0.0}, [NAN, 1.0, 0.9, NAN, NAN], (4, 2)),
    ({"patience": 2, "min_delta": 0.0}, [NAN, NAN, 1.0], (1, -1)),   # NaN never improves
]


def _first_plateau(cfg: StoppingConfig, values: list[float]) -> tuple[int, int] | None:
    state = PlateauState()
    for epoch, v in enumerate(values):
        state = observe(state, epoch, v, cfg)
        if is_plateau(state, cfg):
            return epoch, state.best_epoch
    return None


@pytest.mark.parametrize(("settings", "values", "expected"), _SEQUENCES)
def test_plateau_on_scripted_sequences(settings: dict, values: list[float], expected) -> None:
    assert _first_plateau(StoppingConfig(**settings), values) == expected


@pytest.mark.parametrize(("monitor", "mode", "resolved"), [
    ("val_loss", "auto", "min"), ("train_loss", "auto", "min"), ("val_acc", "auto", "max"),
    ("train_acc", "auto", "max"), ("val_loss", "max", "max"), ("val_acc", "min", "min"),
])
def test_monitor_mode(monitor: str, mode: str, resolved: str) -> None:
    assert monitor_mode(StoppingConfig(monitor=monitor, mode=mode)) == resolved


@pytest.mark.parametrize(("settings", "value", "met"), [
    ({"target": None}, 0.0, False), ({"target": 0.1}, 0.1, True), ({"target": 0.1}, 0.11, False),
    ({"target": 0.1}, NAN, False), ({"target": 0.1}, -math.inf, False),
    ({"target": 0.9, "monitor": "val_acc"}, 0.95, True),
    ({"target": 0.9, "monitor": "val_acc"}, 0.85, False),
])
def test_target_met(settings: dict, value: float, met: bool) -> None:
    cfg = StoppingConfig(**settings)
    assert target_met(value, cfg) is met
    assert target_met_batched(torch.tensor([value]), cfg).tolist() == [met]


def test_end_reason_priorities() -> None:
    cfg = StoppingConfig(patience=1, target=0.5)
    flat = PlateauState(best=0.4, best_epoch=0, since=1)
    fresh = PlateauState(best=0.9, best_epoch=3, since=0)
    assert end_reason(0.4, NAN, flat, cfg, 3, 10) == "diverged"
    assert end_reason(0.4, math.inf, flat, cfg, 3, 10) == "diverged"
    assert end_reason(0.4, 0.3, flat, cfg, 9, 10) == "target"
    assert end_reason(0.9, 0.3, flat, cfg, 9, 10) == "plateau"
    assert end_reason(0.9, 0.3, fresh, cfg, 9, 10) == "max_epochs"
    assert end_reason(0.9, 0.3, fresh, cfg, 8, 10) is None
    assert set(END_REASONS) == {"plateau", "diverged", "target", "max_epochs"}


@pytest.mark.parametrize(("reason", "attempt", "restarts", "again"), [
    ("plateau", 0, 2, True), ("diverged", 1, 2, True), ("plateau", 2, 2, False),
    ("target", 0, 2, False), ("max_epochs", 0, 2, False), ("plateau", 0, 0, False),
])
def test_should_restart(reason: str, attempt: int, restarts: int, again: bool) -> None:
    assert should_restart(reason, attempt, StoppingConfig(restarts=restarts)) is again


@pytest.mark.parametrize("mode", ["min", "max"])
def test_batched_rule_equals_the_scalar_rule(mode: str) -> None:
    cfg = StoppingConfig(patience=3, min_delta=0.02, mode=mode)
    k, epochs = 7, 40
    gen = torch.Generator().manual_seed(0)
    values = torch.rand((epochs, k), generator=gen, dtype=torch.float64)  # [T, K]
    values[:3, 0] = NAN                                   # model 0 starts with NaN
    values[10:, 1] = NAN                                  # model 1 diverges
    active = torch.rand((epochs, k), generator=gen) < 0.7
    active[:, 2] = True
    batched = init_batched(k)
    scalar = [PlateauState() for _ in range(k)]
    local_epoch = torch.zeros(k, dtype=torch.long)
    for t in range(epochs):
        batched = observe_batched(batched, local_epoch, values[t], cfg, active[t])
        for i in range(k):
            if active[t, i]:
                scalar[i] = observe(scalar[i], int(local_epoch[i]), float(values[t, i]), cfg)
        local_epoch = local_epoch + active[t].long()
        for i in range(k):
            got_best = float(batched.best[i])
            assert (math.isnan(got_best) and math.isnan(scalar[i].best)) or got_best == scalar[i].best
            assert int(batched.best_epoch[i]) == scalar[i].best_epoch
            assert int(batched.since[i]) == scalar[i].since


def test_engine_stops_at_the_right_epoch_on_a_scripted_val_loss(monkeypatch) -> None:
    """The engine asks the rule after each epoch and keeps the best epoch's weights."""
    script = iter([1.0, 0.8, 0.6, 0.65, 0.61, 0.7, 0.1, 0.1])
    real = engine.evaluate
    n_val = 16                                         # xor n=80, split 0.7/0.2/0.1
    calls = {"epochs": 0}

    def scripted(net, x, y, head):
        loss, acc = real(net, x, y, head)
        if len(x) == n_val and calls["epochs"] < 6:
            calls["epochs"] += 1
            return next(script), acc
        return loss, acc

    monkeypatch.setattr(engine, "evaluate", scripted)
    cfg = from_dict({"data": {"name": "xor", "n": 80}, "train": {"epochs": 100, "lr": 0.05},
                     "stopping": {"patience": 3, "min_delta": 0.0, "restarts": 0},
                     "probe": {"boundary_snapshots": 0}})
    rec = engine.train(cfg)
    a = rec.attempts[0]
    assert (a.end_reason, a.epochs, a.best_epoch, a.best_value) == ("plateau", 6, 2, 0.6)
    # the kept weights are those after epoch 2: retrain 3 epochs to compare
    short = engine.train(from_dict({**{"data": {"name": "xor", "n": 80}},
                                    "train": {"epochs": 3, "lr": 0.05},
                                    "stopping": {"restarts": 0, "restore_best": False},
                                    "probe": {"boundary_snapshots": 0}}))
    for key, value in short.attempts[0].last_state.items():
        assert torch.equal(a.best_state[key], value), key
    assert not torch.equal(a.best_state["0.weight"], a.last_state["0.weight"])


def test_the_epoch_that_meets_the_target_is_kept_even_below_min_delta() -> None:
    # 0.0626 -> 0.049 improves by less than min_delta, but it is the first epoch that meets
    # the target: the attempt ends on "target" and must keep that epoch as its best.
    cfg = StoppingConfig(min_delta=0.02, target=0.05, patience=10)
    state = PlateauState()
    for epoch, v in enumerate([0.2, 0.0626, 0.049]):
        state = observe(state, epoch, v, cfg)
    assert (state.best, state.best_epoch) == (0.049, 2)
    assert target_met(state.best, cfg)
    batched = init_batched(2)
    active = torch.tensor([True, True])
    for epoch, v in enumerate([0.2, 0.0626, 0.049]):
        batched = observe_batched(batched, torch.full((2,), epoch), torch.full((2,), v), cfg, active)
    assert batched.best_epoch.tolist() == [2, 2]


def test_cohort_end_codes_take_the_reason_end_reason_takes() -> None:
    # every combination of the four checks, one model each: the batched codes name the
    # reason the scalar rule gives (the first of END_REASONS that holds)
    cfg = StoppingConfig(patience=2, target=0.1)
    combos = [(d, t, p, m) for d in (0, 1) for t in (0, 1) for p in (0, 1) for m in (0, 1)]
    holds = {r: torch.tensor([bool(c[i]) for c in combos]) for i, r in enumerate(END_REASONS)}
    got = [reason_of(c) for c in end_codes(holds).tolist()]
    for (d, t, p, m), reason in zip(combos, got):
        state = PlateauState(0.5, 0, 2 if p else 0)
        expected = end_reason(0.05 if t else 0.5, NAN if d else 1.0, state, cfg,
                              9 if m else 3, 10)
        assert reason == (expected or "")
    # a check left out (None) holds nowhere; with no check at all there is no code
    assert end_codes({"plateau": None, "max_epochs": torch.tensor([True])}).tolist() == [4]
    with pytest.raises(ValueError):
        end_codes({"plateau": None})
    assert [reason_of(c) for c in range(5)] == ["", *END_REASONS]
