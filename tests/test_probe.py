"""The engine's probe records (SPEC §5): every recorded number against an independent
computation with plain PyTorch (``torch.linalg.vector_norm``, a hand-written loop), the
measurement functions on hand-built inputs, and the boundary snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mlplab.config import from_dict
from mlplab.data import load_data
from mlplab.engine.reference import batch_order_generator, train
from mlplab.engine.trace import step_norms, step_norms_klast, step_norms_rows
from mlplab.probe.norms import (STEP_NORMS, STEP_ROWS, activation_stats, fill_step_rows_, l2,
                                layer_norms, segment_norms, step_rows, units_last)
from mlplab.run import run_config
from mlplab.store.store import Store

TINY = torch.finfo(torch.float32).tiny


def _cfg(**sections: dict):
    base = {"data": {"name": "xor", "n": 80}, "model": {"hidden": [4, 3]},
            "train": {"epochs": 3, "batch_size": 16},
            "stopping": {"restarts": 0, "patience": 1000, "restore_best": False},
            "probe": {"boundary_snapshots": 0}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return from_dict(base)


def _only_run(store_dir) -> str:
    (run,) = Store(store_dir, readonly=True).runs()
    return run.run_id


def _value(frame: pd.DataFrame, step: int, layer: str, metric: str, scope: str = "step") -> float:
    row = frame[(frame.scope == scope) & (frame.step == step) & (frame.layer == layer)
                & (frame.metric == metric)]
    assert len(row) == 1, (step, layer, metric)
    return float(row.value.iloc[0])


def _hand_net(state: dict, hidden: int) -> nn.Sequential:
    """A 2-hidden-1 ReLU/sigmoid net written out by hand, loaded with ``state``."""
    net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())
    net.load_state_dict({k: v.clone() for k, v in state.items()})
    return net


# -- the measurement functions on hand-built inputs ----------------------------------------
def test_relu_dead_share_on_hand_built_pre_activations() -> None:
    pre = torch.tensor([[-1.0, 2.0, 0.0, 1.0],      # [B=3, units=4]
                        [-2.0, -1.0, 0.0, 1.0],
                        [0.0, 3.0, -5.0, 1.0]])
    stats = activation_stats(pre, "relu")
    # units 0 and 2 are <= 0 on every example: 2 of 4 dead
    assert stats["dead_frac"].item() == 0.5
    assert stats["sat_frac"].item() == 0.0
    assert stats["act_mean"].item() == pytest.approx(pre.mean().item())
    assert stats["act_std"].item() == pytest.approx(pre.flatten().std(correction=0).item())
    assert activation_stats(pre, "leaky_relu")["dead_frac"].item() == 0.0   # never dead


@pytest.mark.parametrize("activation, big", [("sigmoid", 4.7), ("tanh", 2.7)])
def test_saturated_share_on_hand_built_pre_activations(activation: str, big: float) -> None:
    b = 20                                           # 19 of 20 is the 95% the rule needs
    pre = torch.zeros(b, 4)
    pre[:, 0] = big                                  # saturated on every example
    pre[:-1, 1] = -big                               # 19 of 20 = 95%: saturated too
    pre[:-2, 2] = big                                # 18 of 20 = 90%: not saturated
    pre[:, 3] = big - 0.2                            # just inside the sensitive range
    stats = activation_stats(pre, activation)
    assert stats["sat_frac"].item() == 0.5
    assert stats["dead_frac"].item() == 0.0
    assert activation_stats(pre, "relu")["sat_frac"].item() == 0.0


def test_measurements_are_batched_over_leading_model_dims() -> None:
    pre = torch.randn(3, 16, 5)                      # [K, B, units]
    pre[1, :, :2] = -1.0                             # model 1: units 0, 1 dead
    stats = activation_stats(pre, "relu")
    assert stats["dead_frac"].shape == (3,)
    for k in range(3):
        one = activation_stats(pre[k], "relu")
        for name in stats:
            assert stats[name][k].item() == pytest.approx(one[name].item(), rel=1e-6)
    w = torch.randn(3, 4, 2)                         # [K, out, in]
    assert torch.allclose(l2(w, 1), torch.stack([torch.linalg.vector_norm(w[k]) for k in range(3)]))


def test_layer_norms_and_norms_against_vector_norm() -> None:
    g = torch.Generator().manual_seed(0)
    w0, w_prev, w = (torch.randn(3, 2, generator=g) for _ in range(3))
    b0, b_prev, b = (torch.randn(3, generator=g) for _ in range(3))
    gw, gb = torch.randn(3, 2, generator=g), torch.randn(3, generator=g)
    out = layer_norms(w, b, gw, gb, w_prev, b_prev, w0, b0)
    vn = torch.linalg.vector_norm
    assert out["grad_norm_w"] == vn(gw) and out["grad_norm_b"] == vn(gb)
    assert out["weight_norm_w"] == vn(w) and out["dist_init_b"] == vn(b - b0)
    assert out["update_ratio_w"] == vn(w - w_prev) / vn(w_prev)
    zero = layer_norms(w, b, None, None, torch.zeros_like(w), b_prev, w0, b0)
    assert "grad_norm_w" not in zero and zero["update_ratio_w"] == vn(w) / TINY
    flat = torch.stack([torch.cat([gw.reshape(-1), gb]), torch.cat([w.reshape(-1), b])])  # [2, 9]
    expect = [[vn(gw), vn(gb)], [vn(w), vn(b)]]
    assert torch.allclose(segment_norms(flat, [6, 3]), torch.tensor(expect))
    assert segment_norms(flat, [0, 6, 3])[:, 0].tolist() == [0.0, 0.0]   # an empty tensor
    assert units_last(torch.zeros(4, 3, 7), channels_first=True).shape == (28, 3)
    assert units_last(torch.zeros(4, 3, 7), channels_first=False).shape == (12, 7)
    assert units_last(torch.zeros(5), channels_first=False).shape == (1, 5)


# -- one step, recomputed by hand ---------------------------------------------------------
def test_one_full_batch_sgd_step_recomputed_by_hand(tmp_path) -> None:
    lr = 0.3
    cfg = _cfg(model={"hidden": [3], "bias_init": "constant(0.1)"},
               train={"optimizer": "sgd", "lr": lr, "epochs": 1, "batch_size": 0})
    run_config(cfg, tmp_path, report=False, quiet=True)
    store, run_id = Store(tmp_path, readonly=True), _only_run(tmp_path)
    frame = store.metrics(run_id)
    init = store.weights(run_id, 0, "init")
    last = store.weights(run_id, 0, "last")
    data = load_data(cfg.data)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train).float()

    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    h = torch.relu(x @ params["0.weight"].T + params["0.bias"])
    p = torch.sigmoid(h @ params["2.weight"].T + params["2.bias"])[:, 0]
    loss = ((p - y) ** 2).mean()
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    vn = torch.linalg.vector_norm

    assert _value(frame, 0, "", "loss") == pytest.approx(loss.item(), rel=1e-6)
    assert _value(frame, 0, "", "lr") == lr
    for layer, prefix in (("layer1", "0"), ("layer2", "2")):
        for suffix, name in (("w", "weight"), ("b", "bias")):
            key = f"{prefix}.{name}"
            assert torch.allclose(last[key], init[key] - lr * grads[key], atol=1e-7)
            step = last[key] - init[key]
            expect = {"grad_norm": vn(grads[key]), "weight_norm": vn(last[key]),
                      "update_ratio": vn(step) / vn(init[key]), "dist_init": vn(step)}
            for metric, value in expect.items():
                assert _value(frame, 0, layer, f"{metric}_{suffix}") == \
                    pytest.approx(value.item(), rel=1e-5, abs=1e-9), (layer, metric, suffix)


# -- a whole run, replayed in a plain torch loop ---------------------------------------------
def _replay(cfg, init: dict, probe_x: torch.Tensor):
    """The run, retrained with torch.optim and every probe value computed independently."""
    data = load_data(cfg.data)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train).float()
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(),
                        nn.Linear(3, 1), nn.Sigmoid())
    net.load_state_dict({k: v.clone() for k, v in init.items()})
    opt = torch.optim.SGD(net.parameters(), lr=cfg.train.lr, momentum=0.9)
    order = batch_order_generator(cfg.train.seed)
    linears = [net[0], net[2], net[4]]
    first = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in linears]
    expected, step, n = [], 0, len(y)
    for epoch in range(cfg.train.epochs):
        perm = torch.randperm(n, generator=order)
        for lo in range(0, n, cfg.train.batch_size):
            idx = perm[lo:lo + cfg.train.batch_size]
            loss = ((net(x[idx])[:, 0] - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            before = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in linears]
            grads = [(m.weight.grad.clone(), m.bias.grad.clone()) for m in linears]
            opt.step()
            if step % cfg.probe.every == 0:
                expected.append((step, "", "loss", loss.item()))
                for i, m in enumerate(linears):
                    for s, now, prev, w0, g in zip("wb", (m.weight, m.bias), before[i], first[i], grads[i]):
                        vn = torch.linalg.vector_norm
                        expected += [(step, f"layer{i + 1}", f"grad_norm_{s}", vn(g).item()),
                                     (step, f"layer{i + 1}", f"weight_norm_{s}", vn(now).item()),
                                     (step, f"layer{i + 1}", f"update_ratio_{s}",
                                      (vn(now - prev) / vn(prev).clamp_min(TINY)).item()),
                                     (step, f"layer{i + 1}", f"dist_init_{s}", vn(now - w0).item())]
            if step % cfg.probe.activations_every == 0:
                with torch.no_grad():
                    pre1 = net[0](probe_x)
                    pre2 = net[2](torch.relu(pre1))
                for name, pre in (("layer1", pre1), ("layer2", pre2)):
                    dead = (pre <= 0).all(dim=0).float().mean().item()
                    expected += [(step, name, "act_mean", pre.mean().item()),
                                 (step, name, "act_std", pre.std(correction=0).item()),
                                 (step, name, "dead_frac", dead), (step, name, "sat_frac", 0.0)]
            step += 1
    return net, expected


def test_recorded_values_equal_an_independent_replay() -> None:
    cfg = _cfg(train={"lr": 0.2}, probe={"every": 2, "activations_every": 3})
    rec = train(cfg)
    frame = rec.metrics.to_frame()
    data = load_data(cfg.data)
    net, expected = _replay(cfg, rec.attempts[0].init_state,
                            torch.as_tensor(data.x_train[:cfg.probe.batch]))
    steps = rec.attempts[0].steps
    assert steps == 3 * 4
    recorded_steps = sorted(set(frame.loc[frame.scope == "step", "step"]))
    assert recorded_steps == list(range(0, steps, 2))
    assert sorted(set(frame.loc[frame.scope == "act", "step"])) == list(range(0, steps, 3))
    assert set(frame.loc[frame.scope == "act", "layer"]) == {"layer1", "layer2"}  # hidden only
    for step, layer, metric, value in expected:
        scope = "act" if metric.startswith(("act_", "dead", "sat")) else "step"
        assert _value(frame, step, layer, metric, scope) == \
            pytest.approx(value, rel=1e-5, abs=1e-7), (step, layer, metric)
    for key, value in net.state_dict().items():
        assert torch.equal(rec.attempts[0].last_state[key], value), key


def test_probing_does_not_change_training() -> None:
    every = train(_cfg(probe={"every": 1, "activations_every": 1}))
    rarely = train(_cfg(probe={"every": 10 ** 9, "activations_every": 10 ** 9}))
    assert len(every.metrics) > 5 * len(rarely.metrics)
    for which in ("init_state", "best_state", "last_state"):
        a, b = getattr(every.attempts[0], which), getattr(rarely.attempts[0], which)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), which


# -- decision-boundary snapshots ---------------------------------------------------------
def test_boundary_snapshots_for_two_dimensional_data(tmp_path) -> None:
    cfg = _cfg(train={"epochs": 5}, probe={"boundary_snapshots": 3})
    run_config(cfg, tmp_path, report=False, quiet=True)
    snap = Store(tmp_path, readonly=True).boundary(_only_run(tmp_path))
    g = len(snap["grid_u"])
    assert snap["epochs"].tolist() == [0, 2, 4]
    assert snap["probs"].shape == (3, g, g, 1)                  # sigmoid head: P(class 1)
    assert torch.equal(snap["basis"], torch.eye(2)) and torch.equal(snap["center"], torch.zeros(2))
    probs = snap["probs"].float()
    assert bool(((probs >= 0) & (probs <= 1)).all())


def test_boundary_snapshots_for_six_dimensional_csv_lie_in_the_pca_plane(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 90
    latent = rng.normal(size=(n, 2)) * [3.0, 2.0]              # the informative plane
    mixing = np.linalg.qr(rng.normal(size=(6, 6)))[0][:, :2]    # [6, 2] orthonormal
    x = latent @ mixing.T + 0.05 * rng.normal(size=(n, 6))
    label = np.digitize(latent[:, 0], [-1.5, 1.5])               # three classes
    csv = tmp_path / "six.csv"
    pd.DataFrame({**{f"f{i}": x[:, i] for i in range(6)}, "label": label}).to_csv(csv, index=False)
    cfg = from_dict({"data": {"name": f"csv:{csv}"}, "model": {"hidden": [5]},
                     "train": {"epochs": 4, "batch_size": 32},
                     "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 2}})
    run_config(cfg, tmp_path / "store", report=False, quiet=True)
    snap = Store(tmp_path / "store", readonly=True).boundary(_only_run(tmp_path / "store"))
    g = len(snap["grid_u"])
    assert snap["probs"].shape == (2, g, g, 3)                  # softmax head: 3 classes
    assert snap["basis"].shape == (2, 6) and snap["center"].shape == (6,)
    x_train = load_data(cfg.data).x_train.astype(np.float64)
    assert np.allclose(snap["center"].numpy(), x_train.mean(0), atol=1e-5)
    basis = snap["basis"].numpy().astype(np.float64)
    assert np.allclose(basis @ basis.T, np.eye(2), atol=1e-5)
    top2 = np.linalg.svd(x_train - x_train.mean(0), full_matrices=False)[2][:2]
    assert np.allclose(np.abs(basis @ top2.T), np.eye(2), atol=1e-4)   # same plane, up to sign
    sums = snap["probs"].float().sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-2)


def test_every_layout_of_the_step_norms_gives_layer_norms() -> None:
    # K models' layers as flat [K, P] rows (weight then bias per layer): the trace's buffer
    # (filled in place), the compiled epoch's two layouts and layer_norms model by model
    # give the same metrics, in the same column order
    g = torch.Generator().manual_seed(1)
    sizes = [(2, 3), (3, 1)]                                       # (fan_in, fan_out)
    segments = [n for i, o in sizes for n in (i * o, o)]
    k, p = 4, sum(segments)
    after, prev, grad, init = (torch.randn(k, p, generator=g, dtype=torch.float64)
                               for _ in range(4))
    raw = torch.empty(1, len(STEP_ROWS), k, p, dtype=torch.float64)
    for row, t in (("after", after), ("prev", prev), ("grad", grad)):
        raw[0, STEP_ROWS.index(row)] = t
    fill_step_rows_(list(raw.unbind(1)), init)
    assert torch.equal(raw[0], torch.stack(step_rows(after, prev, grad, init)))
    buffered = step_norms(raw, segments)[0]                        # [K, M - 1]
    torch.testing.assert_close(step_norms_rows(after, prev, grad, init, segments), buffered)
    torch.testing.assert_close(step_norms_klast(after, prev, grad, init, segments).t(), buffered)
    names = [m + wb for wb in ("_w", "_b") for m in STEP_NORMS]
    for m in range(k):
        expect, lo = [], 0
        for fan_in, fan_out in sizes:
            part = lambda t, n: t[m, lo:lo + n]  # noqa: E731
            w = [part(t, fan_in * fan_out).view(fan_out, fan_in) for t in (after, grad, prev, init)]
            lo += fan_in * fan_out
            b = [part(t, fan_out) for t in (after, grad, prev, init)]
            lo += fan_out
            norms = layer_norms(w[0], b[0], w[1], b[1], w[2], b[2], w[3], b[3])
            expect += [norms[n] for n in names]
        torch.testing.assert_close(buffered[m], torch.stack(expect), rtol=1e-12, atol=0)
