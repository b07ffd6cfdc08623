"""Compiled cohort epochs (``train_cohort(compile=True)``): the same records as the
single-model engine, in float64, and a clean eager fallback where compiling is not
possible. Each distinct network shape costs a compile (seconds), so the tests share a few."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from mlplab import cohort_compiled
from mlplab.bench import run_bench
from mlplab.cli import main
from mlplab.cohort import train_cohort
from mlplab.engine import train
from mlplab.store import Store
from test_cohort import SMALL, assert_same_record, make_configs

FULL = copy.deepcopy(SMALL)
FULL["train"].update(batch_size=0, optimizer="momentum")


def _compiled(configs, dtype=torch.float64):
    """``train_cohort(compile=True)``, checking that the epochs really ran compiled."""
    before = cohort_compiled.compiled_calls()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="mlplab:")   # no fallback to eager
        records = train_cohort(configs, dtype=dtype, compile=True)
    assert cohort_compiled.compiled_calls() > before
    return records


def _graphs() -> int:
    """Graphs dynamo has compiled in this process (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def test_compiled_restarts_and_plateaus_equal_separate_runs():
    # models restart after plateaus at different epochs; probe every step, activations
    # every third, boundary snapshots: every record as the engine's
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=20)
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    configs = make_configs(base, [{"train.lr": 1e-4}, {"train.lr": 0.3},
                                  {"train.lr": 0.05}, {"train.lr": 3e-3, "train.momentum": 0.5}])
    records = _compiled(configs)
    for cfg, rec in zip(configs, records):
        assert_same_record(rec, train(cfg, dtype=torch.float64), tol=1e-7)
    ends = [[(a.end_reason, a.epochs) for a in r.attempts] for r in records]
    assert any(len(e) == 3 for e in ends) and any(len(e) == 1 for e in ends)


def test_a_second_cohort_of_the_same_kind_reuses_the_compiled_epoch():
    # same shapes and stopping rule; other seeds, lrs and restarts (the host's business)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=20)
    base["stopping"].update(restarts=2, patience=4, min_delta=1e-3)
    _compiled(make_configs(base, [{"train.lr": 0.2}, {"train.lr": 0.1}, {"train.lr": 0.01},
                                  {"train.lr": 0.02}]))
    first, graphs = dict(cohort_compiled.compile_seconds()), _graphs()
    base["stopping"]["restarts"] = 0
    records = _compiled(make_configs(base, [{"train.lr": 0.3, "train.seed": 7 + i}
                                            for i in range(4)]))
    assert cohort_compiled.compile_seconds() == first and _graphs() == graphs  # no recompile
    assert all(r.source == "cohort" and len(r.attempts) == 1 for r in records)


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


def test_a_failing_compiler_falls_back_to_the_eager_cohort(monkeypatch):
    def broken(fn, **_):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler here\nsecond line")
        return call

    monkeypatch.setattr(cohort_compiled, "_CACHE", {})
    monkeypatch.setattr(cohort_compiled.torch, "compile", broken)
    base = copy.deepcopy(FULL)
    base["train"].update(epochs=6)
    configs = make_configs(base, [{"train.lr": 0.1}, {"train.lr": 0.3}])
    with pytest.warns(UserWarning, match="torch.compile failed, training eagerly "
                                         r"\(RuntimeError: no C\+\+ compiler here\)"):
        got = train_cohort(configs, dtype=torch.float64, compile=True)
    want = train_cohort(configs, dtype=torch.float64)
    for a, b in zip(got, want):
        assert a.metrics.to_frame().equals(b.metrics.to_frame())   # the eager path, exactly
    with warnings.catch_warnings():                  # known broken: eager without a retry
        warnings.filterwarnings("error", message="mlplab:")
        train_cohort(configs, dtype=torch.float64, compile=True)


def test_a_minibatch_cohort_trains_eagerly_and_says_why():
    configs = make_configs(SMALL, [{"train.lr": 0.1}, {"train.lr": 0.2}])
    with pytest.warns(UserWarning, match="only full-batch cohorts are compiled"):
        got = train_cohort(configs, dtype=torch.float64, compile=True)
    want = train_cohort(configs, dtype=torch.float64)
    assert got[0].metrics.to_frame().equals(want[0].metrics.to_frame())


def test_train_compile_flag_stores_cohort_runs(tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["train", "--dataset", "xor", "--hidden", "4", "--epochs", "15",
                 "--batch-size", "0", "--seeds", "3", "--compile", "--out", str(out),
                 "--no-report", "--quiet"]) == 0
    runs = Store(out).runs()
    assert len(runs) == 3 and {r.status for r in runs} == {"done"}
    assert {r.source for r in runs} == {"cohort"}


def test_quick_bench_reports_the_compile_time():
    result = run_bench(quick=True, compile=True)
    w1, w2 = result.workloads
    assert result.compile and w1.compiled and w1.compile_seconds is not None
    assert not w2.compiled and w2.compile_seconds is None      # minibatch: eager
    assert w1.losses_match and w2.losses_match
    table = result.summary()
    assert "compile" in table and "Compiled epochs: the first run" in table
    assert "Not compiled (only full-batch cohorts are)" in table
