"""The curvature probe (issue 22): sharpness, hess_trace, grad_noise_scale and stability
against exact Hessians, batched against per-model, in both engines and the user-loop
Probe, and the edge-of-stability finding on a quadratic of known curvature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlplab.config import ConfigError, ModelConfig, from_dict
from mlplab.diagnose import diagnose
from mlplab.model.loss import batch_loss
from mlplab.model.mlp import build_mlp, resolve_head
from mlplab.model.stacked import StackedMLP, flatten_state
from mlplab.optim.table import OPTIMIZERS, stability_bound
from mlplab.probe import curvature as C
from mlplab.probe import curvature_probe as CP

CASES = [("tanh", 2, "mse"), ("relu", 3, "ce"), ("gelu", 2, "bce"), ("sigmoid", 2, "mse"),
         ("elu", 3, "auto")]


def _nets(act: str, classes: int, loss: str, k: int = 3, hidden=(5,)):
    head = resolve_head(ModelConfig(), loss, classes)
    nets = [build_mlp(ModelConfig(hidden=hidden, activation=act), head, 2, seed=s,
                      dtype=torch.float64) for s in range(k)]
    spec = StackedMLP.of(nets[0], act, 0.01, head.output)
    theta = torch.stack([flatten_state(spec, n.state_dict()) for n in nets])
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(24, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (24,), generator=gen)
    t = CP.targets(y, head.output, head.loss, head.out_dim, x.dtype)
    return nets, head, spec, theta, x, y, t


def _exact(f, theta, x, t):
    return [torch.autograd.functional.hessian(lambda r: f(r, x, t), row) for row in theta]


@pytest.mark.parametrize("act,classes,loss", CASES)
def test_mlp_loss_is_the_engines_loss(act, classes, loss):
    nets, head, spec, theta, x, y, t = _nets(act, classes, loss)
    f = CP.mlp_loss(spec, head)
    for net, row in zip(nets, theta):
        assert torch.allclose(f(row, x, t), batch_loss(net(x), y, head), rtol=1e-12)


@pytest.mark.parametrize("act,classes,loss", CASES)
def test_sharpness_is_the_exact_top_eigenvalue(act, classes, loss):
    _, head, spec, theta, x, _, t = _nets(act, classes, loss)
    f = CP.mlp_loss(spec, head)
    exact = torch.stack([torch.linalg.eigvalsh(h)[-1] for h in _exact(f, theta, x, t)])
    got = C.sharpness(f, theta, x, t, iters=5000, tol=1e-13)
    assert torch.allclose(got, exact, rtol=1e-4, atol=0)
    # batched over the cohort equals each model alone
    alone = torch.cat([C.sharpness(f, theta[k:k + 1], x, t, iters=5000, tol=1e-13)
                       for k in range(len(theta))])
    assert torch.allclose(got, alone, rtol=1e-6)


def test_sharpness_finds_the_top_eigenvalue_when_a_negative_one_dominates():
    a = torch.diag(torch.tensor([-5.0, 2.0, 1.0], dtype=torch.float64))
    f = lambda row, x, t: 0.5 * row @ a @ row  # noqa: E731
    got = C.sharpness(f, torch.ones(2, 3, dtype=torch.float64), None, None, iters=2000,
                      tol=1e-14)
    assert torch.allclose(got, torch.tensor([2.0, 2.0], dtype=torch.float64), rtol=1e-6)


@pytest.mark.parametrize("act,classes,loss", CASES)
def test_hess_trace_is_hutchinsons_estimate_of_the_exact_trace(act, classes, loss):
    _, head, spec, theta, x, _, t = _nets(act, classes, loss)
    f = CP.mlp_loss(spec, head)
    hs = _exact(f, theta, x, t)
    # the estimator itself, exactly: the mean of v^T H v over its own vectors
    probes = (torch.randint(0, 2, (64, theta.shape[1]),
                            generator=torch.Generator().manual_seed(3)) * 2 - 1).double()
    want = torch.stack([torch.einsum("vp,pq,vq->v", probes, h, probes).mean() for h in hs])
    got = C.hess_trace(f, theta, x, t, probes=probes)
    assert torch.allclose(got, want, rtol=1e-10)
    # unbiased: with many vectors within 5 standard errors of the exact trace; the
    # variance of v^T H v over Rademacher v is 2 (|H|_F^2 - sum_i H_ii^2)
    n = 4000
    est = C.hess_trace(f, theta, x, t, vectors=n)
    for h, e in zip(hs, est):
        var = 2 * (h.pow(2).sum() - h.diagonal().pow(2).sum())
        assert abs(float(e - h.trace())) <= 5 * math.sqrt(float(var) / n) + 1e-9
    # with the basis vectors' +-1 sign patterns it is exact: all 2^P would be; the
    # estimate on P basis vectors e_i is the trace by construction
    basis = torch.eye(theta.shape[1], dtype=torch.float64)
    exact_via_basis = C.hess_trace(f, theta, x, t, probes=basis) * theta.shape[1]
    assert torch.allclose(exact_via_basis, torch.stack([h.trace() for h in hs]), rtol=1e-10)


def test_grad_noise_scale_from_per_example_gradients():
    nets, head, spec, theta, x, y, t = _nets("tanh", 3, "ce", k=2)
    f = CP.mlp_loss(spec, head)
    got = C.grad_noise_scale(CP.mlp_example_loss(f), theta, x, t)
    for net, g_k in zip(nets, got):
        per = []
        for i in range(len(x)):
            net.zero_grad()
            batch_loss(net(x[i:i + 1]), y[i:i + 1], head).backward()
            per.append(torch.cat([flatten_state(spec, {n: p.grad for n, p in
                                                       net.named_parameters()})]))
        g = torch.stack(per)
        mean = g.mean(0)
        want = (g - mean).pow(2).sum() / (len(g) - 1) / mean.pow(2).sum()
        assert torch.allclose(g_k, want, rtol=1e-8)


def test_stability_bounds_in_the_table():
    assert stability_bound("sgd", {}) == 2.0
    assert stability_bound("momentum", {"momentum": 0.5}) == 3.0
    assert stability_bound("adam", {"beta1": 0.0}) == 2.0
    for name in OPTIMIZERS:
        assert stability_bound(name, {}) > 0


def test_config_key():
    assert from_dict({}).probe.curvature_every == 0
    assert from_dict({"probe": {"curvature_every": 5}}).probe.curvature_every == 5
    with pytest.raises(ConfigError, match="probe.curvature_every"):
        from_dict({"probe": {"curvature_every": -1}})


def _cfg(every: int, seed: int = 0, lr: float = 0.2, opt: str = "sgd", epochs: int = 5):
    return from_dict({"data": {"name": "gaussians", "n": 100, "k": 3},
                      "model": {"hidden": [6], "activation": "tanh"},
                      "train": {"epochs": epochs, "seed": seed, "lr": lr, "optimizer": opt,
                                "batch_size": 32},
                      "stopping": {"restarts": 0},
                      "probe": {"curvature_every": every, "boundary_snapshots": 0}})


def _metric(rec, name):
    f = rec.metrics.to_frame()
    return f[f.metric == name].sort_values(["attempt", "step"])


@pytest.mark.parametrize("opt", ["momentum", "adam"])
def test_curvature_does_not_change_training(opt):
    from mlplab.engine.cohort import train_cohort
    from mlplab.engine.reference import train

    on, off = train(_cfg(3, opt=opt)), train(_cfg(0, opt=opt))
    assert np.array_equal(_metric(on, "loss").value, _metric(off, "loss").value)
    assert len(_metric(on, "sharpness")) == len(range(0, on.attempts[0].steps, 3))
    assert not len(_metric(off, "sharpness"))
    con = train_cohort([_cfg(3, s, opt=opt) for s in (0, 1)])
    coff = train_cohort([_cfg(0, s, opt=opt) for s in (0, 1)])
    for a, b in zip(con, coff):
        assert np.array_equal(_metric(a, "loss").value, _metric(b, "loss").value)


def test_cohort_equals_reference():
    from mlplab.engine.cohort import train_cohort
    from mlplab.engine.reference import train

    cfgs = [_cfg(2, s, lr) for s, lr in ((0, 0.1), (1, 0.4))]
    for c, r in zip(cfgs, train_cohort(cfgs, dtype=torch.float64)):
        ref = train(c, dtype=torch.float64)
        for m in C.CURVATURE_METRICS:
            a, b = _metric(ref, m), _metric(r, m)
            assert list(a.step) == list(b.step) and len(a)
            assert np.allclose(a.value, b.value, rtol=1e-3), m
        assert r.info["stability_bound"] == ref.info["stability_bound"] == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_every_optimizer_measures_the_same_in_both_engines(opt):
    """In float64 the cohort and the reference agree for every optimizer of the table, at a
    small and a large lr (the preconditioned sharpness of the adaptive ones included). In
    float32 they need not: at lr 0.5 RMSprop's two trajectories drift apart, and Adam's
    preconditioned sharpness hangs on second moments near eps**2 that rounding sets."""
    from mlplab.engine.cohort import train_cohort
    from mlplab.engine.reference import train

    cfgs = [_cfg(2, s, lr, opt=opt) for s, lr in ((0, 0.05), (1, 0.5))]
    for c, r in zip(cfgs, train_cohort(cfgs, dtype=torch.float64)):
        ref = train(c, dtype=torch.float64)
        for m in C.CURVATURE_METRICS:
            a, b = _metric(ref, m), _metric(r, m)
            assert list(a.step) == list(b.step) and len(a), m
            assert np.allclose(a.value, b.value, rtol=1e-3), (opt, m)


def test_compiled_cohort_with_curvature_trains_eagerly():
    from mlplab.engine.compiled import why_not

    assert "curvature" in why_not(_cfg(2), 1)


class _Quadratic(torch.nn.Module):
    """L(theta) = 1/2 sum_i lambda_i theta_i^2: a constant Hessian diag(lambda)."""

    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        return self.theta.expand(len(x), 3)


LAMBDA = torch.tensor([4.0, 1.0, 0.5], dtype=torch.float64)


def _quadratic_run(tmp_path, lrs):
    import mlplab

    net = _Quadratic()
    opt = torch.optim.SGD(net.parameters(), lr=lrs[0])
    loss_fn = lambda out, y: 0.5 * (LAMBDA * out.pow(2)).sum(-1).mean()  # noqa: E731
    x = torch.zeros(4, 1, dtype=torch.float64)
    with mlplab.Probe(net, out=tmp_path, name="quad", optimizer=opt, curvature_every=1,
                      loss_fn=loss_fn, batch=(x, x)) as probe:
        for lr in lrs:
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss = loss_fn(net(x), x)
            loss.backward()
            probe.step(loss)
            opt.step()
    store = mlplab.Store(tmp_path)
    return store, probe.run_id


def test_edge_of_stability_on_a_quadratic(tmp_path):
    """Gradient descent on a quadratic of top curvature 4 diverges exactly when
    lr > 2/4: with the lr raised past 0.5 at step 20 the loss grows from there on, and
    diagnose names the edge of stability at step 20 with a safe lr of 0.5."""
    from mlplab.diagnose.findings import diagnose_path

    start = 20
    lrs = [0.4] * start + [0.6] * 30
    store, rid = _quadratic_run(tmp_path / "over", lrs)
    frame = store.metrics(rid)
    loss = frame[frame.metric == "loss"].sort_values("step").value.to_numpy()
    assert loss[-1] > 100 * loss[start]                   # it diverged
    sharp = frame[frame.metric == "sharpness"].value.to_numpy()
    assert np.allclose(sharp, 4.0, rtol=1e-6)
    found = {f.kind: f for f in diagnose_path(tmp_path / "over")}
    eos = found["edge_of_stability"]
    assert eos.step == start
    assert eos.evidence["safe_lr"] == pytest.approx(0.5, rel=1e-6)
    assert eos.evidence["ratio"] == pytest.approx(0.6 * 4 / 2, rel=1e-6)
    assert "0.5" in eos.hint

    store, rid = _quadratic_run(tmp_path / "under", [0.45] * 50)
    frame = store.metrics(rid)
    loss = frame[frame.metric == "loss"].sort_values("step").value.to_numpy()
    assert loss[-1] < loss[0]                              # converges
    assert "edge_of_stability" not in {f.kind for f in diagnose_path(tmp_path / "under")}


def test_progressive_sharpening_finding():
    from mlplab.metrics import MetricsLog

    log = MetricsLog()
    for step in range(40):
        log.add(0, step, 0, "step", "", "loss", 1.0 - step / 100)
        log.add(0, step, 0, "step", "", "lr", 0.1)
        if step % 4 == 0:
            log.add(0, step, 0, "step", "", "sharpness", 1.0 + step / 4)
            log.add(0, step, 0, "step", "", "stability", 0.1 * (1.0 + step / 4))
    found = diagnose(log.to_frame(), {"stability_bound": 2.0})
    kinds = [f.kind for f in found]
    assert "progressive_sharpening" in kinds and "edge_of_stability" not in kinds


def test_user_probe_requires_a_loss_and_batch():
    from mlplab.probe.user import Probe

    class Keep:
        def begin(self, name, config): return name
        def finish(self, record): pass

    with pytest.raises(ConfigError, match="curvature_every"):
        Probe(torch.nn.Linear(2, 1), Keep(), curvature_every=2)


@pytest.mark.parametrize("act,classes,loss", CASES)
def test_mlp_noise_scale_equals_per_example_gradients(act, classes, loss):
    _, head, spec, theta, x, _, t = _nets(act, classes, loss)
    f = CP.mlp_loss(spec, head)
    want = C.grad_noise_scale(CP.mlp_example_loss(f), theta, x, t)
    assert torch.allclose(CP.mlp_noise_scale(spec, head)(theta, x, t), want, rtol=1e-9)


def test_curvature_figure_only_when_measured(tmp_path):
    from mlplab.figures.data_run import load_run_figdata
    from mlplab.figures.draw_run import draw_curvature, save_figure

    store, rid = _quadratic_run(tmp_path / "q", [0.4] * 6)
    data = load_run_figdata(store, rid)
    assert data.curvature is not None and data.curvature.bound == 2.0
    assert np.allclose(data.curvature.curves[0].sharpness, 4.0)
    assert save_figure(draw_curvature(data.curvature), tmp_path / "curvature.png").is_file()

    import mlplab

    net = torch.nn.Linear(2, 1)
    with mlplab.Probe(net, out=tmp_path / "plain", name="plain") as probe:
        net(torch.ones(3, 2)).sum().backward()
        probe.step(torch.tensor(1.0))
    assert load_run_figdata(mlplab.Store(tmp_path / "plain"), probe.run_id).curvature is None


def test_bench_measures_the_curvature_cost():
    from mlplab.bench.curvature import CURVATURE_EVERY, curvature_cost

    cost = curvature_cost(torch.device("cpu"), quick=True)
    assert cost.every == CURVATURE_EVERY and cost.measurements >= 1
    assert cost.ratio > 0 and "curvature every 10 steps" in cost.summary()
