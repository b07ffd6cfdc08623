"""The cohort engine equals K separate runs of the reference engine (float64: to 1e-9),
for every optimizer, with restarts at different times, schedules, clipping, minibatch and
full batch; plus cohort keys, frozen and restarted slices, and no host sync per step."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch

from mlplab.config import ConfigError, RunConfig, from_dict
from mlplab.engine import cohort as cohort_mod
from mlplab.engine import stopping
from mlplab.engine.cohort import train_cohort
from mlplab.engine.cohort_members import check_cohort, cohort_key
from mlplab.engine.cohort_state import CohortState, restart_rows
from mlplab.engine.reference import train
from mlplab.model.mlp import build_mlp, count_parameters, init_flat_, resolve_head
from mlplab.model.stacked import StackedMLP, flatten_state
from mlplab.optim.batched import hyper_from_configs, make_optimizer
from mlplab.optim.table import OPTIMIZERS
from mlplab.record import RunRecord

KEYS = ["attempt", "step", "epoch", "scope", "layer", "metric"]
SMALL = {"data": {"name": "xor", "n": 40}, "model": {"hidden": [4]},
         "train": {"epochs": 12, "batch_size": 16},
         "stopping": {"restarts": 0, "patience": 50},
         "probe": {"activations_every": 3, "boundary_snapshots": 3, "batch": 16}}


def make_configs(base: dict[str, Any], per_model: list[dict[str, Any]]) -> list[RunConfig]:
    """One config per entry of ``per_model`` (dotted keys) on top of ``base``."""
    out = []
    for i, overrides in enumerate(per_model):
        raw = copy.deepcopy(base)
        raw.setdefault("train", {})["seed"] = i
        for key, value in overrides.items():
            node = raw
            *path, last = key.split(".")
            for p in path:
                node = node.setdefault(p, {})
            node[last] = value
        out.append(from_dict(raw))
    return out


def assert_same_record(got: RunRecord, want: RunRecord, tol: float = 1e-9) -> None:
    """Same metrics rows and values, attempts, states, boundaries, info and config."""
    fa, fb = got.metrics.to_frame(), want.metrics.to_frame()
    assert len(fa) == len(fb)
    assert (fa[KEYS].values == fb[KEYS].values).all()
    close = np.isclose(fa.value.values, fb.value.values, rtol=tol, atol=tol, equal_nan=True)
    assert close.all(), fa[~close].head()
    assert [(a.end_reason, a.epochs, a.steps, a.best_epoch, a.seed, a.target_met)
            for a in got.attempts] == [(a.end_reason, a.epochs, a.steps, a.best_epoch, a.seed,
                                        a.target_met) for a in want.attempts]
    for a, b in zip(got.attempts, want.attempts):
        for field in ("best_value", "val_loss", "val_acc", "test_loss", "test_acc", "train_loss"):
            x, y = getattr(a, field), getattr(b, field)
            assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=tol,
                                                                     abs_tol=tol), field
        for which in ("init_state", "best_state", "last_state"):
            x, y = getattr(a, which), getattr(b, which)
            assert list(x) == list(y)
            for key in x:
                assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape
                torch.testing.assert_close(x[key], y[key], rtol=tol, atol=tol)
        assert (a.boundary is None) == (b.boundary is None)
        if a.boundary is not None:
            assert list(a.boundary) == list(b.boundary)
            for key in a.boundary:
                torch.testing.assert_close(a.boundary[key].float(), b.boundary[key].float(),
                                           rtol=0, atol=2e-3)
    assert got.best_attempt == want.best_attempt
    assert got.info == want.info and got.config == want.config
    assert (got.name, got.run_id, got.source, want.source) == (want.name, want.run_id,
                                                               "cohort", "engine")


def assert_cohort_equals_engine(configs: list[RunConfig], dtype: torch.dtype = torch.float64,
                                tol: float = 1e-9) -> list[RunRecord]:
    records = train_cohort(configs, dtype=dtype)
    assert len(records) == len(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=dtype), tol)
    return records


def test_restarts_at_different_times_equal_separate_runs():
    # tiny lrs plateau after `patience` epochs and restart; the large one trains through
    base = copy.deepcopy(SMALL)
    base["train"].update(epochs=20, optimizer="momentum")
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    configs = make_configs(base, [{"train.lr": 1e-4}, {"train.lr": 0.3},
                                  {"train.lr": 0.05, "stopping.patience": 4},
                                  {"train.lr": 3e-3, "train.momentum": 0.5}])
    records = assert_cohort_equals_engine(configs)
    ends = [[(a.end_reason, a.epochs) for a in r.attempts] for r in records]
    assert len({len(e) for e in ends}) > 1          # models restarted different numbers of times
    assert any(len(e) == 3 for e in ends) and any(len(e) == 1 for e in ends)


@pytest.mark.parametrize("batch_size", [0, 16])
def test_a_diverging_model_restarts_while_the_others_train(batch_size):
    # lr 1e30 drives the float64 loss to inf/NaN within a few epochs: that model's attempts
    # end as "diverged" and restart; its neighbours must not notice
    base = copy.deepcopy(SMALL)
    base["data"] = {"name": "gaussians", "k": 3, "n": 60}
    base["train"].update(epochs=10, optimizer="sgd", batch_size=batch_size, loss="ce")
    base["stopping"].update(restarts=1)
    # no boundary snapshots: on overflowed weights which grid points come out NaN depends on
    # the order of a matmul's sums, which bmm and the engine's addmm do not share
    base["probe"]["boundary_snapshots"] = 0
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 1e30}, {"train.lr": 0.3}])
    records = assert_cohort_equals_engine(configs)
    reasons = [[a.end_reason for a in r.attempts] for r in records]
    assert reasons[1] == ["diverged", "diverged"]
    assert reasons[0] == reasons[2] == ["max_epochs"]


@pytest.mark.parametrize("patience,batch_size", [(0, 0), (1, 0), (1, 16), (3, 0)])
def test_small_patience_and_last_epoch_end_attempts_as_the_engine_does(patience, batch_size):
    # the cohort skips the plateau and max-epochs checks while no running model can meet
    # them; at the edges (patience 0 and 1, the last epoch) it must still end the same
    base = copy.deepcopy(SMALL)
    base["train"].update(epochs=6, optimizer="momentum", batch_size=batch_size)
    base["stopping"].update(restarts=2, patience=patience, min_delta=1e-3)
    records = assert_cohort_equals_engine(make_configs(base, [{"train.lr": 1e-5},
                                                              {"train.lr": 0.3}]))
    reasons = {a.end_reason for r in records for a in r.attempts}
    assert "plateau" in reasons and (patience < 3 or "max_epochs" in reasons)


# One table of variants: optimizer and K per-model hyper-parameter sets. Every row of the
# optimizer table trains with its defaults at a few learning rates and weight decays, then
# these optimizers with their own hyper-parameters.
_DEFAULT_MODELS: list[dict[str, Any]] = [{"train.lr": 0.05},
                                         {"train.lr": 0.01, "train.weight_decay": 0.01}, {}]
_OPTIMIZERS_UNDER_TEST: list[tuple[str, list[dict[str, Any]]]] = [
    (name, _DEFAULT_MODELS) for name in OPTIMIZERS] + [
    ("sgd", [{"train.lr": 0.2}, {"train.lr": 0.05, "train.weight_decay": 0.1}, {}]),
    ("momentum", [{"train.momentum": 0.5}, {"train.lr": 0.1, "train.dampening": 0.3},
                  {"train.momentum": 0.99, "train.lr": 0.005, "train.weight_decay": 0.01}]),
    ("nesterov", [{}, {"train.momentum": 0.7, "train.lr": 0.1}, {"train.weight_decay": 0.05}]),
    ("rmsprop", [{"train.lr": 0.01}, {"train.alpha": 0.9, "train.eps": 1e-6},
                 {"train.lr": 0.003, "train.weight_decay": 0.01}]),
    ("adam", [{"train.lr": 0.01}, {"train.beta1": 0.5, "train.beta2": 0.9, "train.lr": 0.03},
              {"train.eps": 1e-4, "train.weight_decay": 0.1}]),
    ("adamw", [{"train.lr": 0.01}, {"train.weight_decay": 0.3, "train.lr": 0.05},
               {"train.beta2": 0.95, "train.eps": 1e-6}]),
    ("adagrad", [{"train.lr": 0.1}, {"train.lr_decay": 0.05, "train.lr": 0.3},
                 {"train.eps": 1e-6, "train.weight_decay": 0.01}]),
]


@pytest.mark.parametrize("name,per_model", _OPTIMIZERS_UNDER_TEST,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(_OPTIMIZERS_UNDER_TEST)])
def test_every_optimizer_with_per_model_hyper_parameters(name, per_model):
    base = copy.deepcopy(SMALL)
    base["train"]["optimizer"] = name
    assert_cohort_equals_engine(make_configs(base, per_model))


def test_centered_rmsprop_and_clipping():
    base = copy.deepcopy(SMALL)
    base["train"].update(optimizer="rmsprop", centered=True, clip_grad_norm=0.05)
    assert_cohort_equals_engine(make_configs(base, [{}, {"train.lr": 0.05}]))


@pytest.mark.parametrize("restarts", [0, 2])
def test_full_batch_sigmoid_mse(restarts):
    # the classic 2-4-1 XOR net on its 4 points; restarts=0 is the no-sync loop
    base = {"data": {"name": "xor", "n": 4, "noise": 0.0, "split": [1, 0, 0]},
            "model": {"hidden": [4], "activation": "relu"},
            "train": {"optimizer": "momentum", "lr": 0.05, "batch_size": 0, "epochs": 30},
            "stopping": {"restarts": restarts, "patience": 6},
            "probe": {"activations_every": 4, "boundary_snapshots": 5}}
    configs = make_configs(base, [{}, {"train.lr": 1e-5}, {"train.lr": 0.5},
                                  {"model.init": "he_normal"}])
    records = assert_cohort_equals_engine(configs)
    assert records[0].info["val_is_train"] and records[0].config["train"]["loss"] == "mse"


@pytest.mark.slow
def test_five_classes_cross_entropy_two_layers_target():
    base = {"data": {"name": "gaussians", "k": 5, "n": 150, "spread": 0.6},
            "model": {"hidden": [6, 5], "activation": "tanh"},
            "train": {"optimizer": "adam", "batch_size": 32, "epochs": 12},
            "stopping": {"monitor": "val_acc", "target": 0.8, "restarts": 1, "patience": 5},
            "probe": {"every": 2, "activations_every": 5, "boundary_snapshots": 3}}
    configs = make_configs(base, [{"train.lr": 0.05}, {"train.lr": 1e-3},
                                  {"train.lr": 0.01, "model.layer_init": {"1": "orthogonal"}}])
    records = assert_cohort_equals_engine(configs)
    assert records[0].config["train"]["loss"] == "ce"
    assert any(a.end_reason == "target" for r in records for a in r.attempts)


@pytest.mark.parametrize("schedule", [{"name": "step", "step_size": 3, "gamma": 0.5},
                                      {"name": "cosine", "min_lr": 1e-3},
                                      {"name": "exponential", "gamma": 0.9},
                                      {"name": "plateau", "patience": 1, "factor": 0.3}],
                         ids=lambda s: s["name"])
def test_schedules(schedule):
    base = copy.deepcopy(SMALL)
    base["train"].update(schedule=schedule, optimizer="sgd", epochs=10)
    base["stopping"].update(restarts=1, patience=5)
    configs = make_configs(base, [{"train.lr": 0.5}, {"train.lr": 0.02}, {"train.lr": 1e-4}])
    records = assert_cohort_equals_engine(configs)
    lrs = records[0].metrics.to_frame().query("metric == 'lr'").value
    assert lrs.nunique() > 1


def test_single_model_cohort_equals_engine_in_float32():
    base = copy.deepcopy(SMALL)
    base["model"]["activation"] = "leaky_relu"
    configs = make_configs(base, [{"train.lr": 0.1}])
    assert_cohort_equals_engine(configs, dtype=torch.float32, tol=1e-4)


def test_stopped_model_is_frozen_while_others_train():
    base = copy.deepcopy(SMALL)
    base["train"].update(epochs=25, lr=0.3)
    base["stopping"].update(patience=3, min_delta=1e-4, monitor="train_loss")
    configs = make_configs(base, [{"train.lr": 1e-6}, {}])
    stopper, runner = train_cohort(configs, dtype=torch.float64)
    early, full = stopper.attempts[0], runner.attempts[0]
    assert early.end_reason == "plateau" and early.epochs < full.epochs == 25
    frame = stopper.metrics.to_frame()
    assert frame.step.max() == early.steps          # no records after it stopped
    alone = train_cohort(configs[:1], dtype=torch.float64)[0].attempts[0]
    for key in early.last_state:                    # the other model training on changed nothing
        torch.testing.assert_close(early.last_state[key], alone.last_state[key],
                                   rtol=1e-12, atol=1e-12)


def _live_state(k: int = 4) -> tuple[CohortState, Any]:
    cfg = from_dict(SMALL)
    head = resolve_head(cfg.model, "auto", 2)
    nets = [build_mlp(cfg.model, head, 2, s, dtype=torch.float64) for s in range(k)]
    spec = StackedMLP.of(nets[0], "relu", 0.01, head.output)
    rows = torch.stack([flatten_state(spec, n.state_dict()) for n in nets])
    opt = make_optimizer("adam")
    state = opt.init([rows])
    hyper = hyper_from_configs("adam", [{"lr": 0.01}] * k)
    grads = torch.randn_like(rows)
    state = opt.step([rows], [grads], state, hyper, torch.ones(k, dtype=torch.bool))
    plateau = stopping.BatchedPlateauState(torch.rand(k, dtype=torch.float64),
                                           torch.arange(k), torch.arange(k) + 1)
    live = CohortState(flat=rows, params=[], init=rows.clone() * 2, best=rows.clone() * 3,
                 grad=torch.empty_like(rows), opt_state=state, hyper=hyper,
                 base_lr=hyper.lr, plateau=plateau, lr_plateau=None,
                 epoch=torch.arange(k) + 5, active=torch.tensor([True, False, True, False]),
                 end_code=torch.tensor([0, 3, 0, 1]))
    return live, opt


def test_restarting_one_slice_leaves_the_others_bit_identical():
    live, opt = _live_state()
    before = copy.deepcopy(live)
    fresh = torch.full((1, live.flat.shape[1]), 7.0, dtype=torch.float64)
    restart_rows(live, [1], fresh, opt)
    others = [0, 2, 3]
    for name in ("flat", "init", "best"):
        assert torch.equal(getattr(live, name)[others], getattr(before, name)[others])
        assert torch.equal(getattr(live, name)[1], fresh[0])
    for new, old in zip(live.opt_state, before.opt_state):
        for n, o in zip(new if isinstance(new, tuple) else [new], old if isinstance(old, tuple)
                        else [old]):
            assert torch.equal(n[others], o[others]) and not n[1].any()
    for name in ("best", "best_epoch", "since"):
        assert torch.equal(getattr(live.plateau, name)[others],
                           getattr(before.plateau, name)[others])
    assert math.isnan(live.plateau.best[1]) and live.plateau.best_epoch[1] == -1
    assert live.epoch.tolist() == [5, 0, 7, 8] and live.end_code.tolist() == [0, 0, 0, 1]
    assert live.active.tolist() == [True, True, True, False]


def test_probe_grad_norms_equal_vector_norm_of_each_models_own_gradients():
    base = {"data": {"name": "moons", "n": 30}, "model": {"hidden": [5, 3]},
            "train": {"epochs": 1, "batch_size": 0, "optimizer": "sgd"},
            "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 0}}
    configs = make_configs(base, [{}, {"model.init": "normal(0.7)"}, {"train.lr": 0.3}])
    records = train_cohort(configs, dtype=torch.float64)
    from mlplab.data import load_data
    from mlplab.model.loss import batch_loss
    data = load_data(configs[0].data)
    x, y = torch.as_tensor(data.x_train, dtype=torch.float64), torch.as_tensor(data.y_train)
    for cfg, rec in zip(configs, records):
        net = build_mlp(cfg.model, resolve_head(cfg.model, "auto", 2), 2, cfg.train.seed,
                        dtype=torch.float64)
        batch_loss(net(x), y, resolve_head(cfg.model, "auto", 2)).backward()
        frame = rec.metrics.to_frame().query("step == 0 and scope == 'step'")
        for i, lin in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
            got = frame.query(f"layer == 'layer{i + 1}'").set_index("metric").value
            assert got["grad_norm_w"] == pytest.approx(
                torch.linalg.vector_norm(lin.weight.grad).item(), rel=1e-12)
            assert got["grad_norm_b"] == pytest.approx(
                torch.linalg.vector_norm(lin.bias.grad).item(), rel=1e-12)


def test_cohort_key_and_bad_mixes():
    a = from_dict(SMALL)
    same = [{"train.lr": 0.3}, {"train.seed": 9}, {"name": "other"}, {"model.init": "he_normal"},
            {"train.momentum": 0.5}, {"train.weight_decay": 0.1},
            {"model.bias_init": "normal(0.1)"}, {"model.layer_init": {"1": "zeros"}}]
    different = [{"model.hidden": [8]}, {"train.optimizer": "adam"}, {"train.batch_size": 8},
                 {"data.seed": 3}, {"stopping.patience": 7}, {"train.epochs": 13},
                 {"model.activation": "tanh"}, {"probe.every": 2}]
    for overrides in same:
        other = make_configs(SMALL, [{}, overrides])[1]
        assert cohort_key(other) == cohort_key(a)
        check_cohort([a, other])
    for overrides in different:
        other = make_configs(SMALL, [{}, overrides])[1]
        assert cohort_key(other) != cohort_key(a)
        key = next(iter(overrides))
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            train_cohort([a, other])
    with pytest.raises(ConfigError, match="configs"):
        train_cohort([])
    with pytest.raises(ConfigError, match="run_ids"):
        train_cohort([a, a], run_ids=["only-one"])


def test_run_ids_are_used():
    configs = make_configs(SMALL, [{}, {}])
    records = train_cohort(configs, run_ids=["r-a", "r-b"])
    assert [r.run_id for r in records] == ["r-a", "r-b"]


@pytest.mark.parametrize("batch_size,restarts", [(16, 1), (0, 0), (0, 1)])
def test_no_host_sync_in_the_step_loop(monkeypatch, batch_size, restarts):
    calls = {"steps": 0}

    def forbidden(*args, **kwargs):
        raise AssertionError("host sync inside the step loop")

    inner = cohort_mod._epoch_steps

    def guarded(*args, **kwargs):
        calls["steps"] += 1
        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu"):
                m.setattr(torch.Tensor, name, forbidden)
            return inner(*args, **kwargs)

    monkeypatch.setattr(cohort_mod, "_epoch_steps", guarded)
    base = copy.deepcopy(SMALL)
    base["train"]["batch_size"] = batch_size
    base["stopping"].update(restarts=restarts, patience=2, min_delta=0.5)
    records = train_cohort(make_configs(base, [{}, {"train.lr": 1e-5}]))
    assert calls["steps"] > 0 and all(r.attempts for r in records)


def test_full_batch_epoch_end_has_no_host_sync(monkeypatch):
    syncs, calls = {"n": 0}, {"end_epoch": 0, "apply_stopping_rule": 0}
    real = torch.Tensor.__bool__

    def counting(self):
        syncs["n"] += 1
        return real(self)

    def guard(name):
        inner = getattr(cohort_mod, name)

        def guarded(*args, **kwargs):
            calls[name] += 1
            with monkeypatch.context() as m:
                m.setattr(torch.Tensor, "__bool__", counting)
                for attr in ("item", "tolist", "numpy"):
                    m.setattr(torch.Tensor, attr, lambda *a, **k: pytest.fail(f"sync in {name}"))
                return inner(*args, **kwargs)
        return guarded

    for name in calls:          # the evaluation, then the stopping rule
        monkeypatch.setattr(cohort_mod, name, guard(name))
    base = copy.deepcopy(SMALL)
    base["train"].update(batch_size=0, epochs=40)
    base["stopping"].update(restarts=0, patience=100)
    train_cohort(make_configs(base, [{}, {}]))
    assert syncs["n"] == 0 and calls == {"end_epoch": 40, "apply_stopping_rule": 40}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_cohort_equals_cpu_cohort():
    base = copy.deepcopy(SMALL)
    base["stopping"].update(restarts=1, patience=3)
    configs = make_configs(base, [{}, {"train.lr": 1e-4}, {"train.lr": 0.3}])
    cpu = train_cohort(configs, dtype=torch.float64)
    gpu = train_cohort(configs, device="cuda", dtype=torch.float64)
    for a, b in zip(gpu, cpu):
        assert [(x.end_reason, x.epochs) for x in a.attempts] == \
            [(x.end_reason, x.epochs) for x in b.attempts]
        assert a.attempts[-1].last_state["0.weight"].device.type == "cpu"
        np.testing.assert_allclose(a.metrics.to_frame().value, b.metrics.to_frame().value,
                                   rtol=1e-7, atol=1e-9)


_HEADS = [("sigmoid", "mse", 1), ("sigmoid", "bce", 1), ("softmax", "ce", 3),
          ("softmax", "mse", 3), ("linear", "mse", 3), ("linear", "ce", 3)]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid",
                                        "linear"])
def test_stacked_gradients_equal_autograd_of_each_network(activation):
    from mlplab.model.loss import accuracy, batch_loss, class_probabilities
    from mlplab.model.mlp import Head
    from mlplab.model.stacked import evaluate, layers, loss_and_grad, probabilities

    gen = torch.Generator().manual_seed(0)
    for output, loss_name, out_dim in _HEADS:
        head = Head(output, loss_name, out_dim)
        model = from_dict({"model": {"hidden": [5, 4], "activation": activation}}).model
        nets = [build_mlp(model, head, 3, s, dtype=torch.float64) for s in range(4)]
        spec = StackedMLP.of(nets[0], activation, 0.01, output)
        flat = torch.stack([flatten_state(spec, n.state_dict()) for n in nets])    # [K, P]
        classes = 2 if out_dim == 1 else out_dim
        x_each = torch.randn(4, 7, 3, generator=gen, dtype=torch.float64)       # [K, B, d]
        y_each = torch.randint(0, classes, (4, 7), generator=gen)
        for x, y in ((x_each, y_each), (x_each[0], y_each[0])):                  # own / shared
            grad = torch.empty_like(flat)
            loss = loss_and_grad(spec, layers(spec, flat), x, y, head, grad)
            for k, net in enumerate(nets):
                net.zero_grad()
                want = batch_loss(net(x[k] if x.dim() == 3 else x),
                                  y[k] if y.dim() == 2 else y, head)
                want.backward()
                ref = flatten_state(spec, {n: p.grad for n, p in net.named_parameters()})
                torch.testing.assert_close(grad[k], ref, rtol=1e-12, atol=1e-14)
                torch.testing.assert_close(loss[k], want.detach(), rtol=1e-14, atol=0)
        x = x_each[0]                                         # evaluation on one dataset
        ev_loss, ev_acc = evaluate(spec, layers(spec, flat), x, y_each[0], head)
        probs = probabilities(spec, layers(spec, flat), x, head)                 # [K, B, C]
        for k, net in enumerate(nets):
            with torch.no_grad():
                out = net(x)
            torch.testing.assert_close(ev_loss[k], batch_loss(out, y_each[0], head),
                                       rtol=1e-13, atol=1e-15)
            assert ev_acc[k] == accuracy(out, y_each[0], head)
            want = class_probabilities(out, head)
            torch.testing.assert_close(probs[k], want[:, 1:] if output == "sigmoid" else want,
                                       rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_written_out_loss_gradients_equal_autograd_where_the_head_saturates(dtype):
    # logits far out: sigmoid rounds to exactly 0 or 1 (bce's gradient denominator is
    # clamped there, as torch's BCELoss), softmax to one-hot; the written-out gradient is
    # autograd's there too, and finite
    from mlplab.model.mlp import Head
    from mlplab.model.stacked import _loss, _loss_and_output_grad

    gen = torch.Generator().manual_seed(1)
    for output, loss_name, out_dim in _HEADS:
        head = Head(output, loss_name, out_dim)
        classes = 2 if out_dim == 1 else out_dim
        z = torch.randn(3, out_dim, 9, generator=gen, dtype=dtype)
        z[0] *= 1e3                                        # saturated, both signs
        z[1, :, :4] = torch.tensor([-800.0, -60.0, 40.0, 800.0], dtype=dtype)
        y = torch.randint(0, classes, (9,), generator=gen)
        loss, grad = _loss_and_output_grad(z, y, head)
        leaf = z.clone().requires_grad_()
        want = _loss(leaf, y, head)
        want.sum().backward()
        torch.testing.assert_close(loss, want.detach(), rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(grad, leaf.grad, rtol=1e-6 if dtype == torch.float32 else
                                   1e-13, atol=1e-12)
        assert torch.isfinite(grad).all() and torch.isfinite(loss).all()


def test_train_seeds_runs_one_cohort_into_the_store(tmp_path):
    from mlplab.run import run_config, seed_configs
    from mlplab.store.store import Store

    cfg = make_configs(SMALL, [{"stopping.restarts": 1, "stopping.patience": 3}])[0]
    ids = run_config(cfg, tmp_path, seeds=3, report=False, quiet=True)
    store = Store(tmp_path)
    assert {store.run(i).status for i in ids} == {"done"}
    for run_id, single in zip(ids, seed_configs(cfg, 3)):
        want = train(single)
        got = store.metrics(run_id)
        assert store.run_doc(run_id)["source"] == "cohort"
        want_frame = want.metrics.to_frame()
        assert (got[KEYS].values == want_frame[KEYS].values).all()
        np.testing.assert_allclose(got.value, want_frame.value, rtol=1e-4, atol=1e-6)
        net = store.load_model(run_id)
        for key, value in want.best.best_state.items():
            torch.testing.assert_close(net.state_dict()[key], value, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batch_last_activation_stats_equal_an_independent_reference(activation, dtype):
    from mlplab.probe.norms import SAT_MARGIN, SATURATED_SHARE, activation_stats

    gen = torch.Generator().manual_seed(1)
    pre = torch.randn(3, 5, 6, 40, generator=gen, dtype=dtype) * 4      # [.., units, B]
    pre[0, 1, 2] = -torch.rand(40, generator=gen, dtype=dtype)          # a dead ReLU unit
    pre[1, 2, 3] = 30.0                                                 # a saturated unit
    got = activation_stats(pre, activation, batch_last=True)
    same = activation_stats(pre.transpose(-1, -2).contiguous(), activation)   # [.., B, units]
    flat = pre.flatten(-2)
    want_mean, want_std = flat.mean(-1), flat.std(-1, correction=0)
    if activation == "relu":
        want_dead = (pre <= 0).all(-1).to(dtype).mean(-1)
    else:
        want_dead = torch.zeros_like(want_mean)
    if activation in ("tanh", "sigmoid"):
        a = torch.tanh(pre) if activation == "tanh" else torch.sigmoid(pre)
        lo, hi = (-1.0, 1.0) if activation == "tanh" else (0.0, 1.0)
        near = ((a < lo + SAT_MARGIN) | (a > hi - SAT_MARGIN)).to(dtype).mean(-1)
        want_sat = (near >= SATURATED_SHARE).to(dtype).mean(-1)
    else:
        want_sat = torch.zeros_like(want_mean)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for stats in (got, same):
        torch.testing.assert_close(stats["act_mean"], want_mean, rtol=tol, atol=tol)
        torch.testing.assert_close(stats["act_std"], want_std, rtol=tol, atol=tol)
        # shares of whole units: equal up to float32 rounding of k/units
        torch.testing.assert_close(stats["dead_frac"].to(dtype), want_dead, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(stats["sat_frac"].to(dtype), want_sat, rtol=1e-6, atol=1e-7)
    if activation == "relu":
        assert got["dead_frac"][0, 1] > 0


def test_probe_off_keeps_epoch_and_final_metrics_only():
    configs = make_configs(SMALL, [{}, {"train.lr": 0.1}])
    with_probe = train_cohort(configs, dtype=torch.float64)
    without = train_cohort(configs, dtype=torch.float64, probe=False)
    for a, b in zip(with_probe, without):
        frame = b.metrics.to_frame()
        assert set(frame.scope) == {"epoch", "final"}
        assert b.attempts[0].boundary is None and a.attempts[0].boundary is not None
        full = a.metrics.to_frame()
        kept = full[full.scope.isin(["epoch", "final"])].reset_index(drop=True)
        assert (kept[KEYS].values == frame[KEYS].values).all()
        np.testing.assert_array_equal(kept.value.values, frame.value.values)
        torch.testing.assert_close(a.attempts[0].last_state, b.attempts[0].last_state,
                                   rtol=0, atol=0)


@pytest.mark.parametrize("model,dtype", [
    ({"hidden": [4], "init": "xavier_uniform"}, torch.float32),
    ({"hidden": [5, 3], "init": "he_normal", "bias_init": "normal(0.1)",
      "activation": "leaky_relu", "layer_init": {"1": "orthogonal"}}, torch.float64),
    ({"hidden": [3], "init": "uniform(0.3)", "bias_init": "constant(0.2)"}, torch.float32)])
def test_flat_init_draws_what_build_mlp_draws(model, dtype):
    cfg = from_dict({"model": model}).model
    head = resolve_head(cfg, "auto", 3)
    for seed in (0, 7):
        row = init_flat_(torch.empty(count_parameters(cfg, 2, head), dtype=dtype), cfg, head, 2,
                         seed)
        net = build_mlp(cfg, head, 2, seed, dtype=dtype)
        spec = StackedMLP.of(net, cfg.activation, cfg.negative_slope, head.output)
        assert torch.equal(row, flatten_state(spec, net.state_dict()))


def test_to_dict_equals_asdict_through_json() -> None:
    # to_dict skips dataclasses.asdict's deep copies; the result must be what asdict gave
    import dataclasses
    import json

    from mlplab.config import to_dict

    cfg = from_dict({"name": "c", "train": {"lr": 0.25, "seed": 3, "schedule": {"name": "cosine"}},
                     "model": {"hidden": [3, 2], "layer_init": {"0": "he_normal"}}})
    reference = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert to_dict(cfg) == reference
    assert list(to_dict(cfg)) == list(reference)
    with pytest.raises(TypeError):
        to_dict(object())


def test_records_hold_normal_tensors_a_user_can_train_from():
    # the cohort trains in inference mode; what it hands out must not be inference tensors
    base = copy.deepcopy(SMALL)
    base["stopping"].update(restarts=1, patience=2, min_delta=0.5)
    records = train_cohort(make_configs(base, [{}, {"train.lr": 0.3}]))
    for rec in records:
        for a in rec.attempts:
            tensors = [*a.init_state.values(), *a.best_state.values(), *a.last_state.values(),
                       *(a.boundary or {}).values()]
            assert tensors and not any(t.is_inference() for t in tensors)
    model = from_dict(records[0].config).model
    net = build_mlp(model, resolve_head(model, "auto", 2), 2, seed=0)
    net.load_state_dict(records[0].best.best_state)
    weight = records[0].best.best_state["0.weight"].requires_grad_()
    (net(torch.ones(3, 2)).sum() + weight.sum()).backward()
    assert weight.grad is not None


@pytest.mark.parametrize("steps,every,act_every", [(1000, 1, 10), (30, 4, 6), (7, 5, 5),
                                                   (1, 3, 2), (101, 10, 25)])
def test_recorded_steps_counts_what_the_timeline_traces(steps, every, act_every):
    from mlplab.engine.trace import Timeline, recorded_steps

    traced, acts = Timeline(steps, every, act_every).traced_steps(np.array([0]))
    assert recorded_steps(steps, every, act_every) == (sum(traced), sum(acts))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trace_rows_grow_past_their_first_capacity_and_keep_every_block(dtype):
    from mlplab.engine.trace import _Rows

    rows = _Rows(torch.zeros(1, dtype=dtype), 3, 2, capacity=2)
    blocks = [torch.randn(n, 3, 2, dtype=dtype) for n in (1, 2, 4, 1, 9)]
    for b in blocks[:3]:
        rows.add([b])
    rows.take(len(blocks[3])).copy_(blocks[3])
    rows.add([blocks[4][:5], blocks[4][5:]])
    out = rows.array()
    assert out.dtype == torch.zeros(1, dtype=dtype).numpy().dtype and out.shape == (17, 3, 2)
    np.testing.assert_array_equal(out, torch.cat(blocks).numpy())


def test_keep_freed_memory_asks_glibc_and_says_so():
    import platform

    from mlplab.engine.process import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
    a = np.ones(5 * 2 ** 20)                                     # allocation still works
    assert a.sum() == 5 * 2 ** 20


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_trace_activation_statistics_in_blocks_larger_than_its_chunk(monkeypatch, activation):
    # a compiled minibatch epoch's flush can hold more steps than the raw buffer's chunk:
    # the statistics' blocks then have more rows than a chunk's A*K, and the scratch grows
    from mlplab.engine import trace as cohort_trace
    from mlplab.model.stacked import layers
    from mlplab.probe.norms import activation_stats

    spec = StackedMLP(((2, 64), (64, 64), (64, 3)), ("0", "2", "4"), activation, 0.01, "softmax")
    gen = torch.Generator().manual_seed(3)
    k, p, b = 4, spec.n_params, 8
    x_probe = torch.randn(b, 2, generator=gen)
    trace = cohort_trace.Trace(spec, torch.zeros(k, p), True, False, x_probe)
    monkeypatch.setattr(cohort_trace, "BLOCK_ELEMENTS", 64 * b * (trace.chunk * k + 6))
    params = torch.randn(20, k, p, generator=gen) * 0.3                     # [A, K, P]
    got = trace._activations(params)                                        # [A, K, M]
    assert got.shape == (20, k, len(trace.act_columns()))
    want = []
    for row in params.reshape(-1, p):
        (w1, b1), (w2, b2), _ = [(w[0], bias[0]) for w, bias in layers(spec, row[None])]
        z1 = x_probe @ w1.T + b1                                            # [B, units]
        h1 = {"relu": torch.relu, "tanh": torch.tanh,
              "gelu": torch.nn.functional.gelu}[activation](z1)
        z2 = h1 @ w2.T + b2
        stats = [activation_stats(z, activation) for z in (z1, z2)]
        want.append([s[m] for s in stats for m in cohort_trace.ACT_METRICS])
    torch.testing.assert_close(got.reshape(-1, got.shape[-1]), torch.tensor(want),
                               rtol=1e-5, atol=1e-5)


def test_a_full_batch_cohort_without_restarts_reads_its_flags_every_few_epochs(monkeypatch):
    # models end between the host's reads (a plateau, a divergence) and are frozen by the
    # masks alone; the records still equal separate runs, and the host read the flags
    # every CHECK_EVERY epochs and at the last, not once an epoch
    from mlplab.engine.host import CHECK_EVERY, HostSync, HostView

    reads = []
    real = HostView.read

    def counting(self, live):
        reads.append(int(live.epoch.max()))
        return real(self, live)

    monkeypatch.setattr(HostView, "read", counting)
    base = copy.deepcopy(SMALL)
    base["data"] = {"name": "gaussians", "k": 3, "n": 60}
    base["train"].update(epochs=2 * CHECK_EVERY + 3, optimizer="sgd", batch_size=0, loss="ce")
    base["stopping"].update(restarts=0, patience=3, min_delta=1e-3)
    base["probe"]["boundary_snapshots"] = 0     # overflowed weights: see the test above
    configs = make_configs(base, [{"train.lr": 1e-5}, {"train.lr": 0.3}, {"train.lr": 1e30}])
    records = assert_cohort_equals_engine(configs)
    ends = [(r.attempts[0].end_reason, r.attempts[0].epochs) for r in records]
    assert ends[1] == ("max_epochs", 2 * CHECK_EVERY + 3)
    # the others ended early, between two reads
    assert all(e[0] == "plateau" and e[1] % CHECK_EVERY and e[1] < ends[1][1]
               for e in (ends[0], ends[2]))
    assert len(reads) == 3                          # after epochs 8, 16 and the last, 19
    cpu = torch.device("cpu")
    assert HostSync.of(configs[0], 1, cpu).every == CHECK_EVERY
    for cfg, steps in ((configs[0], 2), (with_restarts(configs[0]), 1)):
        assert HostSync.of(cfg, steps, cpu).every == 1


def with_restarts(cfg: RunConfig) -> RunConfig:
    from dataclasses import replace

    return replace(cfg, stopping=replace(cfg.stopping, restarts=1))
