"""Compiled cohort epochs (``train_cohort(compile=True)``): the same records as the
single-model engine, in float64, packages reused from memory and from the disk cache, and
a clean eager fallback where compiling is not possible. Each distinct kind of cohort costs
a build (~30 s cold; then cached in ``mlplab.engine.aot_package.cache_dir()``), so the tests
share a few."""

from __future__ import annotations

import copy
from dataclasses import replace
import os
import tempfile
import threading
import time
import warnings

import numpy as np
import pytest
import torch
import torch._inductor

from mlplab.bench import run_bench
from mlplab.cli import main
from mlplab.engine import aot_package, compiled
from mlplab.engine.cohort import train_cohort
from mlplab.engine.reference import train
from mlplab.store.store import Store
from test_cohort import SMALL, assert_same_record, make_configs

FULL = copy.deepcopy(SMALL)
FULL["train"].update(batch_size=0, optimizer="momentum")


def _compiled(configs, dtype=torch.float64):
    """``train_cohort(compile=True)``, checking that the epochs really ran compiled."""
    before = aot_package.compiled_calls()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="mlplab:")   # no fallback to eager
        records = train_cohort(configs, dtype=dtype, compile=True)
    assert aot_package.compiled_calls() > before
    return records


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 3])
def test_compiled_restarts_and_plateaus_equal_separate_runs(every):
    # models restart after plateaus at different epochs; probe every step (or third),
    # activations every third, boundary snapshots: every record as the engine's
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=20)
    base["probe"].update(every=every)
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    configs = make_configs(base, [{"train.lr": 1e-4}, {"train.lr": 0.3},
                                  {"train.lr": 0.05}, {"train.lr": 3e-3, "train.momentum": 0.5}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    ends = [[(a.end_reason, a.epochs) for a in r.attempts] for r in records]
    assert any(len(e) == 3 for e in ends) and any(len(e) == 1 for e in ends)


@pytest.mark.slow
def test_a_second_cohort_of_the_same_kind_reuses_the_compiled_epoch():
    # same shapes and stopping rule; other seeds, lrs and restarts (the host's business)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=20)
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    _compiled(make_configs(base, [{"train.lr": 0.2}, {"train.lr": 0.1}, {"train.lr": 0.01},
                                  {"train.lr": 0.02}]))
    first, packages = dict(aot_package.compile_seconds()), len(aot_package._CACHE)
    base["stopping"]["restarts"] = 0
    records = _compiled(make_configs(base, [{"train.lr": 0.3, "train.seed": 7 + i}
                                            for i in range(4)]))
    # neither built nor loaded again
    assert aot_package.compile_seconds() == first
    assert len(aot_package._CACHE) == packages
    assert all(r.source == "cohort" and len(r.attempts) == 1 for r in records)
    # another number of models: the same package (its models' dimension is left open)
    configs = make_configs(base, [{"train.lr": 0.3, "train.seed": 20 + i} for i in range(7)])
    records = _compiled(configs)
    assert len(aot_package._CACHE) == packages
    for cfg, rec in zip(configs[:2], records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    # one model: a package of its own, the same records as the engine
    (one,) = _compiled(configs[:1])
    assert len(aot_package._CACHE) == packages + 1
    assert_same_record(one, train(configs[0], dtype=torch.float64), tol=1e-7)


@pytest.mark.slow
def test_a_new_process_loads_the_package_from_the_disk_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(aot_package.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(aot_package, "_CACHE", {})
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=8)
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 0.3}])
    built = _compiled(configs)
    assert [c.how for c in aot_package._CACHE.values()] == ["built"]
    assert len(list((tmp_path / "compiled").glob("*.pt2"))) == 1    # no temporary left
    monkeypatch.setattr(aot_package, "_CACHE", {})               # as a new process
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    loaded = _compiled(configs)
    (hit,) = aot_package._CACHE.values()
    assert hit.how == "loaded" and hit.seconds < 1           # the C++ loader: milliseconds
    # the loader's extracted library is not left in the temporary folder while the package
    # is in use (a worker ending with os._exit never destroys the loader that would remove it)
    assert [p.name for p in tmp.iterdir()] == []
    for a, b in zip(built, loaded):
        assert a.metrics.to_frame().equals(b.metrics.to_frame())
    # a torch without the C++ loader by that name: torch's public loader, same results
    monkeypatch.setattr(aot_package, "_cpp_loader", lambda: None)
    monkeypatch.setattr(aot_package, "_CACHE", {})
    public = _compiled(configs)
    for a, b in zip(built, public):
        assert a.metrics.to_frame().equals(b.metrics.to_frame())
    assert [p.name for p in tmp.iterdir()] == []


def test_packages_are_named_by_everything_they_assume():
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    sig = aot_package.signature(aot_package.leaves((x, None, (y, [x]))))
    assert sig == (((4, 3), "C", "torch.float32", "cpu"), ((4,), "C", "torch.int64", "cpu"),
                   ((4, 3), "C", "torch.float32", "cpu"))
    # the open dimension: any size, but one size for all
    open_dim = aot_package.signature([x, y], [0, 0])
    assert open_dim == ((("*", 3), "C", "torch.float32", "cpu"),
                        (("*",), "C", "torch.int64", "cpu"))
    assert aot_package.signature([torch.zeros(9, 3), torch.zeros(9)], [0, 0])[:1] == open_dim[:1]
    assert aot_package.signature([x, torch.zeros(5, dtype=torch.long)], [0, 0]) != open_dim
    name = aot_package.package_name(("kind",), sig)
    assert name.endswith(".pt2")
    assert name != aot_package.package_name(("kind",), sig[:2])           # shapes
    assert name != aot_package.package_name(("other kind",), sig)
    t = aot_package.signature([x.t().contiguous().t()])                  # strides
    assert t != aot_package.signature([x])
    template = (x, None, (y, [x]))
    rebuilt = aot_package.unflattener(template)([x + 1, y + 1, x + 2])
    assert rebuilt[1] is None and isinstance(rebuilt[2][1], list)
    assert torch.equal(rebuilt[2][1][0], x + 2)


def test_the_probe_batch_is_in_the_compiled_epochs_key():
    # the activation statistics reduce the first probe.batch examples inside the package
    from mlplab.engine.compiled import _key

    a, b = make_configs(FULL, [{}, {"probe.batch": 8}])
    like = torch.zeros(3)
    assert _key(None, None, a, False, like) != _key(None, None, b, False, like)
    assert _key(None, None, a, False, like) == _key(None, None, make_configs(FULL, [{}])[0],
                                                    False, like)


def test_processes_asking_for_one_package_at_once_build_it_once(monkeypatch, tmp_path):
    # the build lock is a flock on a file beside the package: two threads holding their
    # own open file contend for it as two sweep workers do
    monkeypatch.setenv(aot_package.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(aot_package, "_CACHE", {})
    builds = []

    def slow_build(fn, args, path, free, options=None):   # a build that takes a while
        builds.append(path)
        time.sleep(0.5)
        path.write_bytes(b"package")

    monkeypatch.setattr(aot_package, "_build", slow_build)
    monkeypatch.setattr(aot_package, "_load", lambda path: (lambda *flat: list(flat)))
    sig = aot_package.signature([torch.zeros(2)])
    got: list[aot_package.Package] = []
    workers = [threading.Thread(target=lambda: got.append(
        aot_package.obtain(("kind",), None, (), sig))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert len(builds) == 1 and sorted(p.how for p in got) == ["built", "loaded"]
    assert all(p.failed is None for p in got)
    (package,) = tmp_path.glob("compiled/*.pt2")
    assert package.with_suffix(".lock").exists()
    for old in range(aot_package.KEEP_PACKAGES):             # pruned with its lock
        (tmp_path / "compiled" / f"{old:032d}.pt2").touch()
    os.utime(package, (0, 0))
    aot_package._prune(tmp_path / "compiled", aot_package.KEEP_PACKAGES)
    assert not package.exists() and not package.with_suffix(".lock").exists()


@pytest.mark.slow
def test_compiled_diverging_model_equals_separate_runs():
    # cross-entropy; lr 1e30 diverges and restarts while the others train on
    base = copy.deepcopy(FULL)
    base["data"] = {"name": "gaussians", "k": 3, "n": 60}
    base["train"].update(epochs=10, optimizer="sgd", loss="ce")
    base["stopping"].update(restarts=1)
    base["probe"]["boundary_snapshots"] = 0
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 1e30}, {"train.lr": 0.3}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    reasons = [[a.end_reason for a in r.attempts] for r in records]
    assert reasons[1] == ["diverged", "diverged"] and reasons[0] == reasons[2] == ["max_epochs"]


@pytest.mark.slow
def test_compiled_adam_with_a_target_and_restore_best_equals_separate_runs():
    # a validation set of its own (evaluated in the compiled epoch), the best epoch's
    # weights restored, a target on val_acc that some models meet; gradient clipping and
    # reduce-on-plateau lr inside the compiled epoch too
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=25, optimizer="adam", clip_grad_norm=0.5,
                         schedule={"name": "plateau", "patience": 2, "factor": 0.5})
    base["stopping"].update(restarts=1, restore_best=True, monitor="val_acc", target=0.9,
                            patience=8)
    configs = make_configs(base, [{"train.lr": 0.05}, {"train.lr": 1e-4},
                                  {"train.lr": 0.1, "train.beta1": 0.5}, {"train.lr": 0.02}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    reasons = {a.end_reason for r in records for a in r.attempts}
    assert "target" in reasons and len(reasons) > 1, reasons


@pytest.mark.slow
def test_compiled_full_batch_norms_are_of_the_clipped_gradient():
    # every step clipped: the probe's gradient norms are of the gradient the step used, as
    # the engine's (the full-batch epoch recorded the unclipped ones: 1.36x too large)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=6, clip_grad_norm=0.01)
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 0.5}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
        frame = rec.metrics.to_frame()
        grads = frame[frame.metric.str.startswith("grad_norm_")]
        total = np.sqrt((grads.value ** 2).groupby(grads.step).sum())
        np.testing.assert_allclose(total, 0.01, rtol=1e-3)        # clipped, every step


@pytest.mark.slow
def test_compiled_rmsprop_of_two_hidden_layers_equals_separate_runs():
    # the package returns rmsprop's grad_avg [K, P] laid out (1, K), not as the input it
    # was built for: the state is made contiguous again and the epochs stay compiled (they
    # fell back to eager at the second epoch before)
    base = copy.deepcopy(FULL)
    base["data"] = {"name": "circles", "n": 100}
    base["model"].update(hidden=[5, 4], activation="leaky_relu")
    base["train"].update(epochs=8, optimizer="rmsprop", lr=0.01, centered=True)
    configs = make_configs(base, [{}, {"train.momentum": 0.5}, {"train.lr": 0.003}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("output,loss,batch", [("sigmoid", "bce", 0), ("softmax", "mse", 16),
                                               ("linear", "mse", 0)])
def test_compiled_heads_of_every_loss_equal_separate_runs(output, loss, batch):
    # the heads whose gradient was autograd's (then they trained eagerly): sigmoid+bce with
    # models saturating at lr 30 (BCELoss's clamped gradient), k-output mse on minibatches
    base = copy.deepcopy(FULL)
    base["data"] = {"name": "gaussians", "k": 2 if output == "sigmoid" else 3, "n": 60}
    base["model"]["output"] = output
    base["train"].update(epochs=8, optimizer="adam", loss=loss, batch_size=batch)
    base["stopping"].update(restarts=1, patience=3)
    configs = make_configs(base, [{"train.lr": 0.05}, {"train.lr": 30.0}, {"train.lr": 1e-3}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)


def test_only_an_input_laid_out_otherwise_is_made_contiguous():
    from mlplab.engine.aot_package import signature
    from mlplab.engine.compiled import _relaid
    a, b = torch.zeros(3, 5), torch.zeros(4)
    built = signature([a, b], [0, None])
    assert _relaid(signature([torch.zeros(5, 3).t(), b], [0, None]), built) == [0]
    assert _relaid(signature([torch.zeros(3, 6), b], [0, None]), built) is None   # shape
    assert _relaid(signature([a, b.double()], [0, None]), built) is None          # dtype
    assert _relaid(signature([a], [0]), built) is None                            # count
    assert _relaid(built, built) == []


def test_a_failing_compiler_falls_back_to_the_eager_cohort(monkeypatch, tmp_path):
    def broken(program, package_path, inductor_configs=None):
        raise RuntimeError("no C++ compiler here\nsecond line")

    monkeypatch.setenv(aot_package.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(aot_package, "_CACHE", {})
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", broken)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=6)
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 0.3}])
    with pytest.warns(UserWarning, match="compiling failed, training eagerly "
                                         r"\(RuntimeError: no C\+\+ compiler here\)"):
        got = train_cohort(configs, dtype=torch.float64, compile=True)
    want = train_cohort(configs, dtype=torch.float64)
    for a, b in zip(got, want):
        assert a.metrics.to_frame().equals(b.metrics.to_frame())   # the eager path, exactly
    with warnings.catch_warnings():                  # known broken: eager without a retry
        warnings.filterwarnings("error", message="mlplab:")
        train_cohort(configs, dtype=torch.float64, compile=True)
    assert not list(tmp_path.rglob("*.pt2"))                     # nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 2])
def test_compiled_minibatch_cohort_equals_separate_runs(every):
    # Adam on minibatches of 16 (3 steps an epoch, the last one shorter), each model in its
    # own batch order; models plateau and restart in their rows while the others train on;
    # every second step's norms: some of an epoch's steps are kept, others not
    base = copy.deepcopy(SMALL)
    base["data"] = {"name": "gaussians", "k": 3, "n": 60}
    base["train"].update(epochs=10, optimizer="adam", loss="ce", batch_size=16)
    base["stopping"].update(restarts=1, patience=3)
    base["probe"].update(activations_every=2, every=every)
    configs = make_configs(base, [{"train.lr": 0.05}, {"train.lr": 1.0},
                                  {"train.lr": 1e-6}, {"train.lr": 0.01, "train.beta1": 0.5}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    reasons = [[a.end_reason for a in r.attempts] for r in records]
    assert sum(len(r) > 1 for r in reasons) >= 2 and ["max_epochs"] in reasons, reasons
    frame = records[3].metrics.to_frame()
    assert set(frame.scope) == {"step", "act", "epoch", "final"}
    assert frame.query("scope == 'step'").step.nunique() == 30 // every  # the kept steps


@pytest.mark.slow
@pytest.mark.parametrize("batch", [0, 16])
def test_a_cohort_without_the_probe_compiles_a_program_without_it(batch):
    # probe=False: the program computes none of the probe's quantities (a package of its
    # own), and the records are those of the eager cohort without the probe: epoch and
    # final metrics, attempts with restarts, weights; no step or activation rows
    base = copy.deepcopy(SMALL)
    base["data"] = {"name": "gaussians", "k": 3, "n": 60}
    base["train"].update(epochs=10, optimizer="adam", loss="ce", batch_size=batch)
    base["stopping"].update(restarts=1, patience=3)
    configs = make_configs(base, [{"train.lr": 0.05}, {"train.lr": 1.0},
                                  {"train.lr": 1e-6}, {"train.lr": 0.01, "train.beta1": 0.5}])
    before = aot_package.compiled_calls()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="mlplab:")   # no fallback to eager
        got = train_cohort(configs, dtype=torch.float64, compile=True, probe=False)
    assert aot_package.compiled_calls() > before
    assert any(p.label and "no probe" in repr(k) for (k, _), p in aot_package._CACHE.items())
    want = train_cohort(configs, dtype=torch.float64, probe=False)
    for g, w in zip(got, want):
        assert_same_record(g, replace(w, source="engine"), tol=1e-7)
        assert set(g.metrics.to_frame().scope) == {"epoch", "final"}
    assert any(len(r.attempts) > 1 for r in got)


@pytest.mark.parametrize("schedule", ["none", "plateau", "cosine"])
def test_the_inputs_taken_from_the_last_call_are_the_walked_ones(schedule, monkeypatch):
    # between restarts the package's inputs are the last call's outputs taken as they are
    # (CompiledEpoch._inputs): every call's inputs must be, one for one, the tensors that
    # walking the state's nest gives; the program runs uncompiled here (no build)
    def obtain(key, fn, args, sig, label="", free=None, options=None):
        flat = aot_package._Flat(fn, args)
        return aot_package.Package(lambda *t: list(flat(*t)), sig, label, "eager", 0.0)

    monkeypatch.setattr(compiled, "obtain", obtain)
    taken = compiled.CompiledEpoch._inputs
    calls = {"fast": 0, "walked": 0}

    def checked(self, live, lr_floor, perm):
        got, walked = taken(self, live, lr_floor, perm)
        want = aot_package.leaves(self._args(live, live.stop(), lr_floor, perm))
        assert len(got) == len(want) and all(a is b for a, b in zip(got, want))
        calls["walked" if walked else "fast"] += 1
        return got, walked

    monkeypatch.setattr(compiled.CompiledEpoch, "_inputs", checked)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=25, schedule={"name": schedule})
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    configs = make_configs(base, [{"train.lr": 1e-4}, {"train.lr": 0.3}, {"train.lr": 0.05}])
    records = train_cohort(configs, dtype=torch.float64, compile=True)
    assert any(len(r.attempts) > 1 for r in records)      # restarts: the nest walked again
    assert calls["fast"] > calls["walked"] > 0


def test_an_epoch_of_too_many_steps_trains_eagerly_and_says_why():
    configs = make_configs(SMALL, [{"train.lr": 0.1, "train.batch_size": 1},
                                   {"train.lr": 0.2, "train.batch_size": 1}])
    with pytest.warns(UserWarning, match=r"training eagerly, not compiled: an epoch of \d+ "
                                         r"minibatch steps \(train.batch_size 1\) is more "
                                         r"than the 16 a compiled epoch writes out"):
        got = train_cohort(configs, dtype=torch.float64, compile=True)
    want = train_cohort(configs, dtype=torch.float64)
    assert got[0].metrics.to_frame().equals(want[0].metrics.to_frame())


@pytest.mark.slow
def test_train_compile_flag_stores_cohort_runs(tmp_path, capsys):
    # the cohort of the quick bench's W1 (mlplab.bench.workloads): one package serves this
    # test and test_quick_bench_reports_the_compile_time, whichever builds it
    out = tmp_path / "store"
    w1 = ["--set", "data.n=4", "--set", "data.noise=0.0", "--set", "data.split=[1.0, 0.0, 0.0]",
          "--activation", "relu", "--init", "xavier_uniform", "--loss", "mse", "--optimizer",
          "momentum", "--lr", "0.02", "--momentum", "0.9", "--set", "stopping.restarts=0",
          "--set", "stopping.patience=1000000000"]
    assert main(["train", "--dataset", "xor", "--hidden", "4", "--epochs", "20", *w1,
                 "--batch-size", "0", "--seeds", "3", "--compile", "--out", str(out),
                 "--no-report", "--quiet"]) == 0
    runs = Store(out).runs()
    assert len(runs) == 3 and {r.status for r in runs} == {"done"}
    assert {r.source for r in runs} == {"cohort"}


@pytest.mark.slow
def test_quick_bench_reports_the_compile_time():
    result = run_bench(quick=True, compile=True)
    w1, w2 = result.workloads
    assert result.compile and w1.compiled and w1.compile_seconds is not None
    assert w2.compiled and w2.compile_seconds is not None      # 3 minibatch steps an epoch
    assert w1.losses_match and w2.losses_match
    table = result.summary()
    for w in (w1, w2):
        assert w.compile_how in ("built", "loaded")  # loaded: an earlier run cached it
    assert "compile" in table and ("Compiled epochs: the first run" in table
                                   if w1.compile_how == "built" else
                                   "the package came from the cache" in table)
    assert "Not compiled" not in table


@pytest.mark.slow
def test_the_console_script_says_why_it_trains_eagerly_in_one_line(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mlplab", "train", "--dataset", "xor",
                          "--hidden", "4", "--epochs", "3", "--batch-size", "2", "--seeds", "2",
                          "--compile", "--out", str(tmp_path / "s"), "--no-report", "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "mlplab: training eagerly, not compiled: an epoch of "), out.stderr
    assert lines[0].endswith("minibatch steps (train.batch_size 2) is more than the 16 a "
                             "compiled epoch writes out; a larger batch size compiles"), lines
