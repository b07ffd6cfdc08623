"""The reference engine against a hand-written nn.Sequential + torch.optim loop, and its
early stopping, restarts, kept weights, lr schedules and gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlplab.config import RunConfig, from_dict, with_overrides
from mlplab.data import load_data
from mlplab.engine.reference import batch_order_generator, train
from mlplab.model.mlp import build_mlp, derive_seed, resolve_head
from mlplab.optim.table import OPTIMIZERS, torch_kwargs

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
EPOCHS, BATCH = 13, 16   # 56 training points: 4 minibatches an epoch, 52 steps


def _from_the_table(name: str, lr: float) -> Factory:
    """The torch.optim of the table's row ``name``, its defaults and ``lr``."""
    return lambda p: getattr(torch.optim, OPTIMIZERS[name].torch_class)(
        p, **torch_kwargs(name, {"lr": lr}))


# One table of variants: mlplab's train settings and the torch.optim it must equal, written
# out by hand, then every row of the optimizer table with its defaults.
_OPTIMIZERS_UNDER_TEST: list[tuple[str, dict, Factory]] = [
    ("sgd", {"lr": 0.5}, lambda p: torch.optim.SGD(p, lr=0.5)),
    ("momentum", {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("momentum", {"lr": 0.1, "momentum": 0.5, "dampening": 0.2, "weight_decay": 1e-3},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, dampening=0.2, weight_decay=1e-3)),
    ("nesterov", {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", {"lr": 0.01}, lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "eps": 1e-6},
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, eps=1e-6)),
    ("adam", {"lr": 0.01}, lambda p: torch.optim.Adam(p, lr=0.01)),
    ("adam", {"lr": 0.02, "beta1": 0.5, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.01},
     lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.5, 0.99), eps=1e-6, weight_decay=0.01)),
    ("adamw", {"lr": 0.01}, lambda p: torch.optim.AdamW(p, lr=0.01)),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01}, lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01)),
] + [(name, {"lr": 0.05}, _from_the_table(name, 0.05)) for name in OPTIMIZERS]
_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(_OPTIMIZERS_UNDER_TEST)]


def _config(**sections: dict) -> RunConfig:
    raw = {"data": {"name": "xor", "n": 80, "noise": 0.2},
           "model": {"hidden": [4], "activation": "relu"},
           "train": {"epochs": EPOCHS, "batch_size": BATCH, "seed": 3},
           "stopping": {"restarts": 0, "patience": 10_000, "restore_best": False},
           "probe": {"boundary_snapshots": 0, "activations_every": 1000}}
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return from_dict(raw)


def _plain_loop(cfg: RunConfig, factory: Factory, init: dict, clip: float | None = None,
                scheduler: Callable | None = None) -> tuple[nn.Sequential, list[float]]:
    """The textbook loop: nn.Sequential, torch.optim, the same init and minibatch order."""
    data = load_data(cfg.data)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    hidden = list(cfg.model.hidden)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg.model.activation]
    classes = data.n_classes
    dims = [x.shape[1], *hidden, 1 if classes == 2 else classes]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    if classes == 2:
        layers.append(nn.Sigmoid())                 # one sigmoid unit, read as P(class 1)
    net = nn.Sequential(*layers)
    net.load_state_dict(init)
    opt = factory(list(net.parameters()))
    sched = scheduler(opt) if scheduler else None
    order = batch_order_generator(cfg.train.seed)
    n = len(y)
    bs = n if cfg.train.batch_size == 0 else cfg.train.batch_size
    losses = []
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(n, generator=order) if bs < n else torch.arange(n)
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs]
            out = net(x[idx])
            if classes == 2:
                loss = ((out[:, 0] - y[idx].float()) ** 2).mean()
            else:
                loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                total = torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(p.grad) for p in net.parameters()]))
                coef = min(clip / (float(total) + 1e-6), 1.0)
                for p in net.parameters():
                    p.grad.mul_(coef)
            opt.step()
            losses.append(loss.item())
        if sched is not None:
            sched.step()
    return net, losses


def _step_series(rec, metric: str, attempt: int = 0) -> list[float]:
    f = rec.metrics.to_frame()
    sel = (f.metric == metric) & (f.attempt == attempt) & (f.layer == "")
    return f[sel].sort_values("step").value.tolist()


def _assert_same_weights(state: dict, net: nn.Module, exact: bool) -> None:
    ref = net.state_dict()
    assert list(state) == list(ref)
    for k in state:
        if exact:
            torch.testing.assert_close(state[k], ref[k], rtol=0, atol=0, msg=k)
        else:
            torch.testing.assert_close(state[k], ref[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("batch_size", [BATCH, 0], ids=["minibatch", "full-batch"])
@pytest.mark.parametrize(("name", "settings", "factory"), _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_parity_with_a_plain_pytorch_loop(name: str, settings: dict, factory: Factory,
                                          batch_size: int) -> None:
    cfg = _config(train={"optimizer": name, "batch_size": batch_size, **settings})
    rec = train(cfg)
    a = rec.attempts[0]
    net, losses = _plain_loop(cfg, factory, a.init_state)
    steps = EPOCHS * (4 if batch_size else 1)
    assert a.steps == len(losses) == steps and a.end_reason == "max_epochs"
    assert _step_series(rec, "loss") == losses
    _assert_same_weights(a.last_state, net, exact=True)
    assert not torch.equal(a.last_state["0.weight"], a.init_state["0.weight"])


@pytest.mark.parametrize(("name", "settings", "factory"),
                         [_OPTIMIZERS_UNDER_TEST[i] for i in (1, 6)], ids=["momentum", "adam"])
def test_parity_three_classes_cross_entropy(name: str, settings: dict, factory: Factory) -> None:
    cfg = _config(data={"name": "gaussians", "k": 3}, model={"hidden": [6, 5], "activation": "tanh"},
                  train={"optimizer": name, **settings})
    rec = train(cfg)
    assert rec.info["head"] == {"output": "softmax", "loss": "ce", "out_dim": 3}
    net, losses = _plain_loop(cfg, factory, rec.attempts[0].init_state)
    torch.testing.assert_close(torch.tensor(_step_series(rec, "loss")), torch.tensor(losses))
    _assert_same_weights(rec.attempts[0].last_state, net, exact=False)


def test_gradient_clipping_matches_a_hand_clipped_loop() -> None:
    cfg = _config(train={"optimizer": "sgd", "lr": 0.5, "clip_grad_norm": 0.01})
    rec = train(cfg)
    net, losses = _plain_loop(cfg, lambda p: torch.optim.SGD(p, lr=0.5),
                              rec.attempts[0].init_state, clip=0.01)
    assert torch.tensor(_step_series(rec, "loss")).allclose(torch.tensor(losses), rtol=1e-6)
    _assert_same_weights(rec.attempts[0].last_state, net, exact=False)
    # invariants: the recorded (clipped) global gradient norm never exceeds the threshold,
    # and at step 0 (same init, same batch) it is the unclipped norm cut down to it
    unclipped = train(with_overrides(cfg, {"train.clip_grad_norm": None}))
    clipped_norm, raw_norm = _global_grad_norm(rec), _global_grad_norm(unclipped)
    assert max(clipped_norm) <= 0.01 * (1 + 1e-6)
    assert raw_norm[0] > 0.01 and clipped_norm[0] == pytest.approx(0.01, rel=1e-4)
    assert not torch.equal(unclipped.attempts[0].last_state["0.weight"],
                           rec.attempts[0].last_state["0.weight"])


def _global_grad_norm(rec) -> list[float]:
    f = rec.metrics.to_frame()
    g = f[f.metric.isin(["grad_norm_w", "grad_norm_b"])]
    return (g.value ** 2).groupby(g.step).sum().pow(0.5).tolist()


def test_step_schedule_parity_with_torch_steplr() -> None:
    cfg = _config(train={"optimizer": "momentum", "lr": 0.2, "schedule": {"name": "step",
                                                                           "step_size": 4, "gamma": 0.3}})
    rec = train(cfg)
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.3)  # noqa: E731
    net, losses = _plain_loop(cfg, lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9),
                              rec.attempts[0].init_state, scheduler=sched)
    assert _step_series(rec, "loss") == pytest.approx(losses, rel=1e-6)
    _assert_same_weights(rec.attempts[0].last_state, net, exact=False)


def _torch_lr_series(make: Callable, epochs: int, val_losses: list[float] | None = None) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = make(opt)
    lrs = []
    for e in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if val_losses is None:
            sched.step()
        else:                                       # reduce-on-plateau reads the val loss
            sched.step(val_losses[e])
    return lrs


@pytest.mark.parametrize(("schedule", "reference"), [
    ({"name": "none"}, lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    ({"name": "step", "step_size": 3, "gamma": 0.5},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    ({"name": "exponential", "gamma": 0.8},
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
    ({"name": "cosine", "min_lr": 0.01},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.01)),
    ({"name": "plateau", "patience": 2, "factor": 0.5, "min_lr": 0.02},
     lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2, min_lr=0.02)),
], ids=["none", "step", "exponential", "cosine", "plateau"])
def test_lr_schedules_give_torchs_lr_series(schedule: dict, reference: Callable) -> None:
    # full batch: one step an epoch, so the recorded per-step lr is the per-epoch lr;
    # a tiny gradient keeps the val loss flat so reduce-on-plateau has plateaus to cut
    lr = 0.1
    cfg = _config(train={"optimizer": "sgd", "lr": lr, "batch_size": 0, "epochs": 12,
                         "schedule": schedule}, model={"init": "normal(0.001)"})
    rec = train(cfg)
    got = _step_series(rec, "lr")
    val = _step_series(rec, "val_loss") if schedule["name"] == "plateau" else None
    want = _torch_lr_series(reference, 12, val)
    assert got == pytest.approx(want, rel=1e-9)
    if schedule["name"] != "none":
        assert len(set(round(v, 12) for v in got)) > 2    # the schedule really moved


def test_plateau_restarts_with_fresh_derived_seeds() -> None:
    cfg = _config(train={"optimizer": "sgd", "lr": 1e-7, "epochs": 100, "seed": 5},
                  stopping={"restarts": 2, "patience": 3, "min_delta": 1e-3})
    rec = train(cfg)
    assert [a.attempt for a in rec.attempts] == [0, 1, 2]
    assert [a.end_reason for a in rec.attempts] == ["plateau"] * 3
    assert [a.epochs for a in rec.attempts] == [4, 4, 4]       # best at 0, patience 3
    assert [a.best_epoch for a in rec.attempts] == [0, 0, 0]
    assert [a.seed for a in rec.attempts] == [derive_seed(5, a) for a in range(3)]
    head = resolve_head(cfg.model, "auto", 2)
    inits = []
    for a in rec.attempts:
        fresh = build_mlp(cfg.model, head, 2, seed=a.seed).state_dict()
        assert all(torch.equal(a.init_state[k], fresh[k]) for k in fresh)
        inits.append(a.init_state["0.weight"])
    assert not torch.equal(inits[0], inits[1]) and not torch.equal(inits[1], inits[2])
    values = [a.best_value for a in rec.attempts]
    assert rec.best_attempt == values.index(min(values)) and rec.best is rec.attempts[rec.best_attempt]
    f = rec.metrics.to_frame()
    assert sorted(f.attempt.unique()) == [0, 1, 2]
    assert [len(_step_series(rec, "val_loss", a)) for a in range(3)] == [4, 4, 4]


@pytest.mark.parametrize(("sections", "reasons"), [
    ({"data": {"name": "gaussians", "k": 3}, "train": {"optimizer": "sgd", "lr": 1e4}},
     ["diverged", "diverged"]),
    ({"data": {"name": "gaussians", "k": 2, "spread": 0.2, "noise": 0.0},
      "train": {"optimizer": "adam", "lr": 0.05, "epochs": 300},
      "stopping": {"monitor": "train_acc", "target": 1.0}}, ["target"]),
    ({"train": {"epochs": 5}}, ["max_epochs"]),
], ids=["diverged", "target", "max_epochs"])
def test_end_reasons_and_when_a_restart_follows(sections: dict, reasons: list[str]) -> None:
    stopping = {"restarts": 1, "patience": 50, **sections.pop("stopping", {})}
    rec = train(_config(stopping=stopping, **sections))
    assert [a.end_reason for a in rec.attempts] == reasons
    if reasons == ["target"]:
        a = rec.attempts[0]
        assert a.target_met and a.best_value == 1.0 and a.epochs < 300
        assert _step_series(rec, "train_acc")[-1] == 1.0
    if reasons[0] == "diverged":
        assert not math.isfinite(_step_series(rec, "train_loss")[-1])


@pytest.mark.parametrize("restore_best", [True, False])
def test_kept_weights_and_the_test_metrics_measured_on_them(restore_best: bool) -> None:
    cfg = _config(data={"name": "moons", "noise": 0.3}, model={"hidden": [16]},
                  train={"optimizer": "sgd", "lr": 5.0, "batch_size": 8, "epochs": 40},
                  stopping={"min_delta": 0.0, "restore_best": restore_best})
    rec = train(cfg)
    a = rec.attempts[0]
    val = _step_series(rec, "val_loss")
    assert len(val) == 40 and a.best_value == min(val) and val.index(min(val)) == a.best_epoch
    assert a.best_epoch < 39, "the config must overshoot its best epoch for this test to bite"
    kept = a.best_state
    if restore_best:
        assert not torch.equal(kept["0.weight"], a.last_state["0.weight"])
    else:
        assert all(torch.equal(kept[k], a.last_state[k]) for k in kept)
    data = load_data(cfg.data)
    net = build_mlp(cfg.model, resolve_head(cfg.model, "auto", 2), 2, seed=0)
    net.load_state_dict(kept)
    with torch.no_grad():
        def mse_acc(x, y):
            p = net(torch.as_tensor(x))[:, 0]
            y = torch.as_tensor(y)
            return float(((p - y.float()) ** 2).mean()), float(((p > 0.5).long() == y).float().mean())
        test_loss, test_acc = mse_acc(data.x_test, data.y_test)
        val_loss, _ = mse_acc(data.x_val, data.y_val)
    assert (a.test_loss, a.test_acc) == pytest.approx((test_loss, test_acc), rel=1e-6)
    assert a.val_loss == pytest.approx(val_loss, rel=1e-6)
    assert a.val_loss == pytest.approx(val[a.best_epoch] if restore_best else val[-1], rel=1e-6)
    f = rec.metrics.to_frame()
    final = f[f.scope == "final"].set_index("metric").value
    assert (final["test_loss"], final["test_acc"]) == pytest.approx((test_loss, test_acc), rel=1e-6)


def test_records_per_epoch_and_per_step() -> None:
    cfg = _config(train={"epochs": 3}, probe={"every": 2, "activations_every": 3,
                                              "boundary_snapshots": 2})
    rec = train(cfg)
    f = rec.metrics.to_frame()
    assert sorted(f[f.scope == "epoch"].metric.unique()) == ["train_acc", "train_loss",
                                                             "val_acc", "val_loss"]
    assert len(f[(f.scope == "epoch") & (f.metric == "val_loss")]) == 3
    assert sorted(f[f.metric == "loss"].step.unique()) == list(range(0, 12, 2))
    assert sorted(f[f.metric == "act_mean"].step.unique()) == [0, 3, 6, 9]
    assert sorted(f[f.metric == "grad_norm_w"].layer.unique()) == ["layer1", "layer2"]
    assert rec.attempts[0].boundary["epochs"].tolist() == [0, 2]          # snapshots 2, 3 epochs
    assert rec.attempts[0].boundary["params.0.weight"].shape == (2, 4, 2)
    assert rec.info["layer_sizes"] == [2, 4, 1] and rec.info["n_train"] == 56
    assert rec.config["train"]["loss"] == "mse" and rec.config["model"]["output"] == "sigmoid"


def test_standardisation_statistics_are_recorded_for_readers() -> None:
    cfg = _config(data={"name": "gaussians", "k": 3, "standardize": True}, train={"epochs": 1})
    data = load_data(cfg.data)
    info = train(cfg).info
    assert info["input_mean"] == pytest.approx(data.mean.tolist())
    assert info["input_std"] == pytest.approx(data.std.tolist())
    plain = train(_config(train={"epochs": 1})).info
    assert plain["input_mean"] is None and plain["input_std"] is None


def test_a_device_this_process_cannot_use_is_a_config_error_naming_it() -> None:
    from mlplab.config import ConfigError
    from mlplab.engine.cohort import train_cohort
    from mlplab.engine.reference import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    bad = ["gpu0", "meta", "", f"cuda:{gpus}"] + ([] if gpus else ["cuda"])
    for value in bad:
        with pytest.raises(ConfigError) as err:
            resolve_device(value, "--device")
        assert err.value.key == "--device" and err.value.value == value
        assert "cpu" in err.value.allowed, err.value
    if gpus:
        assert resolve_device("cuda").type == "cuda"
    cfg = from_dict({"data": {"name": "xor", "n": 8}, "train": {"epochs": 1}})
    for run in (lambda: train(cfg, device="gpu0"), lambda: train_cohort([cfg, cfg], device="gpu0")):
        with pytest.raises(ConfigError, match="'device'.*'gpu0'"):
            run()


def test_bce_gradient_is_torchs_bceloss_gradient_where_the_sigmoid_saturates():
    # autograd through the clamped logs gave 0/0 = NaN at p == 0 or 1 exactly (float32: a
    # logit beyond ~17), and a confident model "diverged"; BCELoss's own gradient is finite
    from mlplab.model.loss import batch_loss

    head = resolve_head(from_dict({}).model, "bce", 2)
    for dtype in (torch.float32, torch.float64):
        p0 = torch.tensor([0.0, 1e-30, 0.3, 0.5, 1 - 1e-7, 1.0] * 2, dtype=dtype)
        y = torch.tensor([0] * 6 + [1] * 6)
        mine, ref = p0.clone().requires_grad_(), p0.clone().requires_grad_()
        loss = batch_loss(mine.unsqueeze(-1), y, head)
        want = F.binary_cross_entropy(ref, y.to(dtype))
        loss.backward()
        want.backward()
        torch.testing.assert_close(loss, want)
        torch.testing.assert_close(mine.grad, ref.grad)
        assert torch.isfinite(mine.grad).all()
    # a NaN probability (a diverged model) reaches the loss; BCELoss itself would raise
    nan = torch.tensor([[0.5], [float("nan")]], requires_grad=True)
    assert math.isnan(batch_loss(nan, torch.tensor([0, 1]), head).item())


@pytest.mark.slow
def test_a_confident_bce_model_trains_on_rather_than_diverging():
    # it "diverged" at epoch 197: one training point confidently wrong, sigmoid exactly 1
    cfg = from_dict({"data": {"name": "gaussians", "k": 2, "n": 200}, "model": {"hidden": [16]},
                     "train": {"loss": "bce", "optimizer": "adam", "lr": 0.05, "epochs": 260,
                               "batch_size": 0},
                     "stopping": {"restarts": 0, "patience": 1000}})
    (attempt,) = train(cfg).attempts
    assert attempt.end_reason == "max_epochs" and math.isfinite(attempt.train_loss)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_equals_torchs_model_by_model(max_norm: float) -> None:
    # one rule for both layouts: a model's parameters (the engine) and K models' flat
    # [K, P] rows (the cohort) are each clipped as torch.nn.utils.clip_grad_norm_ clips
    from mlplab.engine.grad_clip import clip_grad_norm_

    g = torch.Generator().manual_seed(3)
    k, shapes = 5, [(4, 2), (4,), (1, 4), (1,)]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) * (m + 0.2) for s in shapes]
             for m in range(k)]
    rows = torch.stack([torch.cat([t.reshape(-1) for t in gs]) for gs in grads])   # [K, P]
    norms = clip_grad_norm_([rows], max_norm, batch_dims=1)
    for m, gs in enumerate(grads):
        params = [nn.Parameter(t.clone()) for t in gs]
        for p, t in zip(params, gs):
            p.grad = t.clone()
        want = nn.utils.clip_grad_norm_(params, max_norm)
        ours = [t.clone() for t in gs]
        got = clip_grad_norm_(ours, max_norm)
        assert torch.equal(got, want) and norms[m] == pytest.approx(float(want), rel=1e-12)
        for p, t in zip(params, ours):
            assert torch.equal(t, p.grad)
        torch.testing.assert_close(rows[m], torch.cat([p.grad.reshape(-1) for p in params]),
                                   rtol=1e-12, atol=0)
    after = torch.linalg.vector_norm(rows, dim=1)
    # invariants: a norm above the threshold is cut to it, one below is left alone
    for before, now in zip(norms.tolist(), after.tolist()):
        assert now == pytest.approx(min(before, max_norm), rel=1e-5)


def test_plateau_step_of_k_models_equals_each_model_alone() -> None:
    # reduce-on-plateau's one rule on [K] tensors, with models that skip epochs (inactive),
    # equals K runs of one model (the engine's K = 1)
    from mlplab.config import ScheduleConfig
    from mlplab.optim.schedule import plateau_floor, plateau_init, plateau_step

    cfg = ScheduleConfig(name="plateau", patience=2, factor=0.5, min_lr=0.01)
    g = torch.Generator().manual_seed(4)
    k, epochs = 6, 40
    val = 1.0 + 0.01 * torch.randn(epochs, k, generator=g, dtype=torch.float64)   # [T, K]
    val[5:, 1] = math.nan
    active = torch.rand(epochs, k, generator=g) < 0.8
    base = torch.tensor([0.1, 0.02, 0.5, 0.01, 0.0, 1.0], dtype=torch.float64)
    state, floor = plateau_init(k), plateau_floor(cfg, base)
    alone = [plateau_init(1) for _ in range(k)]
    for t in range(epochs):
        state = plateau_step(state, val[t], cfg, floor, active[t])
        for m in range(k):
            if active[t, m]:
                alone[m] = plateau_step(alone[m], val[t, m:m + 1], cfg, floor[m:m + 1])
    for m in range(k):
        assert [f[m].item() for f in state] == [f[0].item() for f in alone[m]]
    assert state.scale.min() < 1.0                        # some lr was cut
    assert bool((state.scale >= floor).all())
