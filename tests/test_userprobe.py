"""``mlplab.Probe`` in a user's own loop: its records against values computed by hand in
the same loop, against mlplab's engine on the same training, and the run it writes as
read by ``mlplab runs`` and ``mlplab diagnose``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mlplab
from mlplab.cli import main
from mlplab.config import ConfigError, from_dict
from mlplab.data import load_data
from mlplab.engine.reference import (batch_order_generator, batch_size_of, make_optimizer,
                                     to_tensors, train)
from mlplab.model.loss import batch_loss
from mlplab.model.mlp import build_mlp, resolve_head
from mlplab.probe import user as userprobe
from mlplab.run import Probe
from mlplab.store.store import Store, StoreError

VN = torch.linalg.vector_norm
TINY = torch.finfo(torch.float32).tiny     # a zero-initialised bias: ratio over this floor


class SignalNet(nn.Module):
    """A user's model: Conv1d, ReLU, LayerNorm, Tanh, Linear and a bare parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.conv = nn.Conv1d(1, 4, kernel_size=3, padding=1)
        self.act = nn.ReLU()
        self.norm = nn.LayerNorm(32)
        self.squash = nn.Tanh()
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: [B, 1, 8]
        h = self.act(self.conv(x * self.scale))            # [B, 4, 8]
        return self.head(self.squash(self.norm(h.flatten(1))))


def _signals(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, generator=g)
    y = (x[:, 0, :4].sum(1) > 0).long() + (x[:, 0, 4:].sum(1) > 1).long()   # 3 classes
    return x, y


def _frame(out, run_id: str) -> pd.DataFrame:
    return Store(out, readonly=True).metrics(run_id)


def _value(frame: pd.DataFrame, scope: str, step: int, layer: str, metric: str) -> float:
    row = frame[(frame.scope == scope) & (frame.step == step) & (frame.layer == layer)
                & (frame.metric == metric)]
    assert len(row) == 1, (scope, step, layer, metric)
    return float(row.value.iloc[0])


def _train_signal_net(out, every: int = 1, activations_every: int = 2, epochs: int = 2):
    """Train SignalNet under a Probe; return (run id, model, hand-computed expectations)."""
    torch.manual_seed(0)
    model = SignalNet()
    x, y = _signals()
    x_val, y_val = _signals(32, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    named = {"model.scale_w": model.scale, "conv_w": model.conv.weight, "conv_b": model.conv.bias,
             "norm_w": model.norm.weight, "norm_b": model.norm.bias,
             "head_w": model.head.weight, "head_b": model.head.bias}
    first = {k: p.detach().clone() for k, p in named.items()}
    expected, step = [], 0
    probe = Probe(model, out=out, name="signal", every=every, activations_every=activations_every,
                  optimizer=opt, config={"note": "a test"}, seed=7)
    for epoch in range(epochs):
        for lo in range(0, len(y), 16):
            xb, yb = x[lo:lo + 16], y[lo:lo + 16]
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            probe.step(loss)
            if step % activations_every == 0:
                with torch.no_grad():        # the pre-activations the hooks should have seen
                    conv = model.conv(xb * model.scale)                       # [16, 4, 8]
                    norm = model.norm(torch.relu(conv).flatten(1))            # [16, 32]
                dead = (conv <= 0).all(dim=2).all(dim=0).float().mean().item()  # per channel
                sat = ((torch.tanh(norm).abs() > 0.99).float().mean(0) >= 0.95).float().mean().item()
                expected += [("act", step, "conv", "act_mean", conv.mean().item()),
                             ("act", step, "conv", "act_std", conv.std(correction=0).item()),
                             ("act", step, "conv", "dead_frac", dead),
                             ("act", step, "norm", "act_mean", norm.mean().item()),
                             ("act", step, "norm", "sat_frac", sat)]
            grads = {k: VN(p.grad).item() for k, p in named.items()}
            before = {k: p.detach().clone() for k, p in named.items()}
            opt.step()
            if step % every == 0:
                expected.append(("step", step, "", "loss", loss.item()))
                expected.append(("step", step, "", "lr", 0.1))
                for key, p in named.items():
                    layer, s = key.rsplit("_", 1)
                    expected += [("step", step, layer, f"grad_norm_{s}", grads[key]),
                                 ("step", step, layer, f"weight_norm_{s}", VN(p).item()),
                                 ("step", step, layer, f"update_ratio_{s}",
                                  (VN(p - before[key]) / VN(before[key]).clamp_min(TINY)).item()),
                                 ("step", step, layer, f"dist_init_{s}", VN(p - first[key]).item())]
            with torch.no_grad():
                model(x_val)                 # an evaluation forward: not recorded
            step += 1
        with torch.no_grad():
            val = nn.functional.cross_entropy(model(x_val), y_val)
        probe.epoch(train_loss=loss, val_loss=val, val_acc=0.5 + epoch / 10)
    run_id = probe.close()
    return run_id, model, expected, step


def test_records_equal_norms_computed_in_the_loop(tmp_path) -> None:
    run_id, model, expected, steps = _train_signal_net(tmp_path)
    frame = _frame(tmp_path, run_id)
    for scope, step, layer, metric, value in expected:
        assert _value(frame, scope, step, layer, metric) == \
            pytest.approx(value, rel=1e-5, abs=1e-7), (scope, step, layer, metric)
    steps_recorded = frame[frame.scope == "step"]
    assert sorted(set(steps_recorded.step)) == list(range(steps))
    assert sorted(set(frame[frame.scope == "act"].step)) == list(range(0, steps, 2))
    assert set(frame[frame.scope == "act"].layer) == {"conv", "norm"}
    assert set(steps_recorded.layer) == {"", "model.scale", "conv", "norm", "head"}
    epochs = frame[frame.scope == "epoch"]
    assert sorted(set(epochs.epoch)) == [0, 1] and set(epochs.step) == {4, 8}


def test_every_n_steps_and_buffered_flushes_keep_the_same_values(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(userprobe, "FLUSH_EVERY", 2)
    run_id, _, expected, steps = _train_signal_net(tmp_path, every=3, activations_every=5)
    frame = _frame(tmp_path, run_id)
    assert sorted(set(frame[frame.scope == "step"].step)) == list(range(0, steps, 3))
    assert sorted(set(frame[frame.scope == "act"].step)) == list(range(0, steps, 5))
    for scope, step, layer, metric, value in expected:
        assert _value(frame, scope, step, layer, metric) == pytest.approx(value, rel=1e-5, abs=1e-7)


def test_the_run_in_the_store(tmp_path) -> None:
    run_id, model, _, steps = _train_signal_net(tmp_path)
    store = Store(tmp_path, readonly=True)
    info = store.run(run_id)
    assert (info.status, info.source, info.seed, info.epochs) == ("done", "probe", 7, 2)
    assert info.end_reason == "closed" and info.best_value == pytest.approx(min(
        _frame(tmp_path, run_id).query("metric == 'val_loss'").value))
    assert info.val_acc == pytest.approx(0.6)                    # the last epoch's
    assert info.config["train"]["optimizer"] == "SGD" and info.config["user"] == {"note": "a test"}
    assert store.attempts(run_id)[0].steps == steps
    last = store.weights(run_id, 0, "last")
    assert all(torch.equal(last[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(store.weights(run_id, 0, "init")["head.weight"], last["head.weight"])
    doc = store.run_doc(run_id)
    assert doc["info"]["layers"] == ["model.scale", "conv", "norm", "head"]
    assert doc["info"]["activations"] == {"conv": "relu", "norm": "tanh"}
    with pytest.raises(StoreError, match="Probe"):
        store.load_model(run_id)


def test_mlplab_runs_and_diagnose_read_a_probe_run(tmp_path, capsys) -> None:
    run_id, *_ = _train_signal_net(tmp_path)
    assert main(["runs", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["run_id"] == run_id and row["config"].startswith("probe SignalNet")
    assert main(["diagnose", str(tmp_path / "runs" / run_id)]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["diagnose", str(tmp_path), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert isinstance(findings, list)
    assert all({"kind", "severity", "step", "hint"} <= set(f) for f in findings)


def test_probe_records_what_mlplabs_engine_records() -> None:
    cfg = from_dict({"data": {"name": "xor", "n": 100}, "model": {"hidden": [5, 3]},
                     "train": {"epochs": 3, "batch_size": 16},
                     "stopping": {"restarts": 0, "restore_best": False},
                     "probe": {"boundary_snapshots": 0}})
    engine = train(cfg).metrics.to_frame()
    data = load_data(cfg.data)
    head = resolve_head(cfg.model, cfg.train.loss, data.n_classes)
    t = to_tensors(data, cfg.probe.batch)
    net = build_mlp(cfg.model, head, 2, cfg.train.seed)
    opt = make_optimizer(net, cfg)
    order, n = batch_order_generator(cfg.train.seed), len(t.y_train)
    bs = batch_size_of(cfg, n)
    import tempfile

    with tempfile.TemporaryDirectory() as out, Probe(net, out=out, optimizer=opt) as probe:
        for _ in range(cfg.train.epochs):
            perm = torch.randperm(n, generator=order)
            for lo in range(0, n, bs):
                idx = perm[lo:lo + bs]
                loss = batch_loss(net(t.x_train[idx]), t.y_train[idx], head)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                probe.step(loss)
                opt.step()
        probe.close()
        mine = _frame(out, probe.run_id)
    names = {"0": "layer1", "2": "layer2", "4": "layer3", "": ""}
    mine = mine[mine.scope == "step"].assign(layer=lambda f: f.layer.map(names))
    theirs = engine[engine.scope == "step"]
    both = theirs.merge(mine, on=["step", "layer", "metric"], how="outer", suffixes=("_e", "_p"))
    assert len(both) == len(theirs) == len(mine) > 100
    assert np.allclose(both.value_p, both.value_e, rtol=1e-6, atol=0)   # the same numbers


def test_shared_inplace_activation_is_split_by_the_layer_before_it(tmp_path) -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(2, 6), nn.Linear(6, 6), nn.Linear(6, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.relu(self.fc2(self.relu(self.fc1(x)))))

    torch.manual_seed(1)
    model, x = Shared(), torch.randn(32, 2)
    with Probe(model, out=tmp_path, activations_every=1) as probe:
        model(x).pow(2).mean().backward()
        probe.step(0.5)                       # a float loss is fine too
    frame = _frame(tmp_path, probe.run_id)
    with torch.no_grad():
        pre1 = model.fc1(x)
        pre2 = model.fc2(torch.relu(pre1))
    for layer, pre in (("fc1", pre1), ("fc2", pre2)):     # the input, before the in-place ReLU
        assert _value(frame, "act", 0, layer, "act_mean") == pytest.approx(pre.mean().item(), abs=1e-6)
        dead = (pre <= 0).all(dim=0).float().mean().item()
        assert _value(frame, "act", 0, layer, "dead_frac") == pytest.approx(dead)
    assert _value(frame, "step", 0, "", "loss") == 0.5


def test_context_manager_writes_the_run_when_the_loop_fails(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="boom"):
        with Probe(model, out=tmp_path, name="broken") as probe:
            model(torch.ones(4, 2)).sum().backward()
            probe.step(torch.tensor(float("nan")))
            raise ValueError("boom")
    store = Store(tmp_path, readonly=True)
    (run,) = store.runs()
    assert (run.status, run.end_reason, run.name) == ("done", "interrupted", "broken")
    with pytest.raises(RuntimeError, match="closed"):
        probe.step(1.0)
    assert probe.close() == run.run_id                    # closing twice is harmless
    assert len(model._forward_pre_hooks) == 0 and len(model[1]._forward_pre_hooks) == 0


@pytest.mark.parametrize("kwargs, key", [({"every": 0}, "probe.every"),
                                         ({"activations_every": 2.5}, "probe.activations_every"),
                                         ({"every": True}, "probe.every")])
def test_bad_settings_name_the_key(tmp_path, kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Probe(nn.Linear(2, 1), out=tmp_path, **kwargs)
    assert not (tmp_path / "mlplab.sqlite").exists() or not Store(tmp_path).runs()


def test_bad_calls_are_explained(tmp_path) -> None:
    with pytest.raises(ConfigError, match="torch.nn.Module"):
        Probe("not a model", out=tmp_path)
    model = nn.Linear(2, 1)
    probe = Probe(model, out=tmp_path)
    with pytest.raises(ConfigError, match="scalar loss"):
        probe.step(torch.ones(3))
    with pytest.raises(ConfigError, match="val_loss"):
        probe.epoch()
    probe.close()
    assert probe.layers == ["model"]                     # the root module's own parameters
    (tmp_path / "a-file").write_text("not a store")
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(StoreError):
        Probe(net, out=tmp_path / "a-file")
    assert not net._forward_pre_hooks and not net[1]._forward_pre_hooks   # nothing left behind


def test_exported_from_mlplab() -> None:
    assert mlplab.Probe is Probe


def test_param_norms_with_missing_gradients_and_two_dtypes() -> None:
    from mlplab.probe.paramnorms import ParamNorms

    torch.manual_seed(2)
    a, b = nn.Linear(3, 2), nn.Linear(2, 2).double()
    entries = [("a", "_w", a.weight), ("a", "_b", a.bias), ("b", "_w", b.weight), ("b", "_b", b.bias)]
    norms = ParamNorms(entries)
    assert len(norms.groups) == 2                          # float32 and float64 apart
    a.weight.grad = torch.full_like(a.weight, 2.0)         # a.bias gets no gradient
    b.weight.grad, b.bias.grad = torch.randn_like(b.weight), torch.randn_like(b.bias)
    got = {k: v for keys, values in norms.gradients() for k, v in zip(keys, values.tolist())}
    assert set(got) == {("a", "grad_norm_w"), ("b", "grad_norm_w"), ("b", "grad_norm_b")}
    assert got[("a", "grad_norm_w")] == pytest.approx(VN(a.weight.grad).item())
    assert got[("b", "grad_norm_b")] == pytest.approx(VN(b.bias.grad).item(), rel=1e-12)
    first = {name: p.detach().clone() for name, p in (("a_w", a.weight), ("b_b", b.bias))}
    norms.snapshot()
    with torch.no_grad():
        a.weight.add_(0.5)
        b.bias.mul_(3.0)
    got = {k: v for keys, values in norms.updates() for k, v in zip(keys, values.tolist())}
    assert got[("a", "update_ratio_w")] == pytest.approx(VN(torch.full((2, 3), 0.5)).item()
                                                         / VN(first["a_w"]).item(), rel=1e-6)
    assert got[("b", "update_ratio_b")] == pytest.approx(2.0, rel=1e-12)
    assert got[("b", "dist_init_b")] == pytest.approx(2 * VN(first["b_b"]).item(), rel=1e-12)
    assert got[("a", "update_ratio_b")] == 0.0 and got[("a", "dist_init_b")] == 0.0


def test_hooks_are_attached_only_for_activation_steps(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    probe = Probe(model, out=tmp_path, activations_every=3)
    attached = []
    for step in range(7):
        attached.append(len(model[1]._forward_pre_hooks) > 0)
        model(torch.randn(4, 2)).sum().backward()
        probe.step(1.0)
    probe.close()
    assert attached == [True, False, False, True, False, False, True]
    assert len(model[1]._forward_pre_hooks) == 0 and len(model[0]._forward_hooks) == 0
    assert sorted(set(_frame(tmp_path, probe.run_id).query("scope == 'act'").step)) == [0, 3, 6]
