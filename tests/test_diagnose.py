"""``mlplab diagnose``: every detector on a synthetic history built to show it (and quiet
on a healthy one), deliberately broken real trainings that must produce their finding,
healthy real trainings that produce no severe one, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import mlplab
from mlplab.config import ConfigError, from_dict
from mlplab.diagnose.findings import diagnose, diagnose_path, format_findings
from mlplab.diagnose.history import Finding
from mlplab.engine.reference import train
from mlplab.metrics import MetricsLog
from mlplab.run import run_config
from mlplab.store.store import StoreError

MLPLAB = Path(sys.executable).parent / "mlplab"
STEPS, PER_EPOCH, ACT_EVERY = 60, 2, 5
EPOCHS = STEPS // PER_EPOCH
LAYERS = ("layer1", "layer2", "layer3")


# -- synthetic histories --------------------------------------------------------------
def healthy() -> dict:
    """A run that learns smoothly: the baseline every variant breaks in one way."""
    t, e = np.arange(STEPS), np.arange(EPOCHS)
    return {"loss": np.exp(-t / 20),
            "grad": {layer: g * np.exp(-t / 40) for layer, g in zip(LAYERS, (0.5, 0.6, 0.4))},
            "ratio": {layer: np.full(STEPS, 1e-3) for layer in LAYERS},
            "dead": {layer: np.zeros(STEPS // ACT_EVERY) for layer in LAYERS[:-1]},
            "sat": {layer: np.zeros(STEPS // ACT_EVERY) for layer in LAYERS[:-1]},
            "train_loss": np.exp(-e / 10), "val_loss": np.exp(-e / 10) * 1.05 + 0.01}


def frame_of(h: dict, attempt: int = 0, log: MetricsLog | None = None):
    log = MetricsLog() if log is None else log
    t = np.arange(STEPS)
    log.add_arrays(attempt, t, t // PER_EPOCH, "step", "", "loss", h["loss"])
    for layer in LAYERS:
        log.add_arrays(attempt, t, t // PER_EPOCH, "step", layer, "grad_norm_w", h["grad"][layer])
        log.add_arrays(attempt, t, t // PER_EPOCH, "step", layer, "update_ratio_w", h["ratio"][layer])
        log.add_arrays(attempt, t, t // PER_EPOCH, "step", layer, "weight_norm_w", np.ones(STEPS))
    a = t[::ACT_EVERY]
    for layer in LAYERS[:-1]:
        log.add_arrays(attempt, a, a // PER_EPOCH, "act", layer, "dead_frac", h["dead"][layer])
        log.add_arrays(attempt, a, a // PER_EPOCH, "act", layer, "sat_frac", h["sat"][layer])
    e = np.arange(EPOCHS)
    for metric in ("train_loss", "val_loss"):
        log.add_arrays(attempt, (e + 1) * PER_EPOCH, e, "epoch", "", metric, h[metric])
    return log.to_frame()


def _set(path: str, start: int, value: float | Callable) -> Callable[[dict], None]:
    """A change to the healthy history: ``h[path][start:] = value`` (or value(old))."""
    def change(h: dict) -> None:
        keys = path.split(".")
        arr = h[keys[0]] if len(keys) == 1 else h[keys[0]][keys[1]]
        arr[start:] = value(arr[start:]) if callable(value) else value
    return change


VARIANTS = {   # name: (changes, expected kind, layer, step where it began, severity)
    "nan loss": ([_set("loss", 35, lambda v: v * 1e3), _set("loss", 50, np.nan)],
                 "divergence", None, 35, "severe"),
    "nan only at the end": ([_set("loss", 59, np.inf)], "divergence", None, 59, "severe"),
    "exploding grads": ([_set("grad.layer1", 30, lambda v: v * 1e4)],
                        "exploding_gradients", "layer1", 30, "severe"),
    "vanishing from the start": ([_set("grad.layer1", 0, lambda v: v * 1e-4)],
                                 "vanishing_gradients", "layer1", 0, "severe"),
    "vanishing later": ([_set("grad.layer2", 20, lambda v: v * 3e-3)],
                        "vanishing_gradients", "layer2", 20, "warning"),
    "dead units": ([_set("dead.layer2", 5, 0.75)], "dead_relus", "layer2", 25, "warning"),
    "all units dead": ([_set("dead.layer1", 0, 1.0)], "dead_relus", "layer1", 0, "severe"),
    "saturated units": ([_set("sat.layer1", 2, 0.6)], "saturation", "layer1", 10, "severe"),
    "plateau": ([_set("train_loss", 5, 0.7), _set("val_loss", 5, 0.75), _set("loss", 10, 0.7)],
                "plateau", None, 12, "warning"),
    "oscillation": ([_set("train_loss", 10, lambda v: 0.6 + 0.2 * (np.arange(len(v)) % 2))],
                    "oscillation", None, 22, "warning"),
    "overfitting": ([_set("val_loss", 13, lambda v: 0.35 + 0.05 * np.arange(len(v)))],
                    "overfitting", None, 28, "warning"),
    "lr too high": ([_set("ratio.layer2", 0, 0.5)], "lr_too_high", "layer2", 0, "warning"),
    "lr too low": ([*(_set(f"ratio.{layer}", 0, 1e-7) for layer in LAYERS),
                    _set("loss", 0, lambda v: 1.0 - 1e-4 * np.arange(len(v)))],
                   "lr_too_low", None, 0, "warning"),
}


def test_a_healthy_history_has_no_findings() -> None:
    assert diagnose(frame_of(healthy()), {"layers": list(LAYERS)}) == []


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_detector_fires_on_the_history_built_to_show_it(name: str) -> None:
    changes, kind, layer, step, severity = VARIANTS[name]
    h = healthy()
    for change in changes:
        change(h)
    findings = diagnose(frame_of(h), {"layers": list(LAYERS)})
    mine = [f for f in findings if f.kind == kind]
    assert len(mine) == 1, [(f.kind, f.layer) for f in findings]
    f = mine[0]
    assert (f.layer, f.step, f.severity, f.attempt) == (layer, step, severity, 0), f
    assert f.epoch == (step // PER_EPOCH if kind not in ("plateau", "oscillation", "overfitting")
                       else step // PER_EPOCH - 1)     # epoch findings: steps by the epoch's end
    assert f.evidence and all(isinstance(v, float) for v in f.evidence.values())
    assert f.message and f.hint
    json.dumps(f.to_dict(), allow_nan=False)            # evidence is JSON-safe


def test_layers_of_different_sizes_compare_by_rms_gradient_per_weight() -> None:
    h = healthy()
    h["grad"]["layer2"] *= 5e-3                 # norm 7.5e-3 of the output layer's
    frame = frame_of(h)
    found = diagnose(frame, {"layers": list(LAYERS)})
    assert [(f.kind, f.layer) for f in found] == [("vanishing_gradients", "layer2")]
    # ... but layer2 has 1 weight and the output 10 000: per weight it gets 0.75 as much
    counts = {"layer1": 100, "layer2": 1, "layer3": 10_000}
    assert diagnose(frame, {"layers": list(LAYERS), "weight_counts": counts}) == []
    sizes = {"layers": list(LAYERS), "layer_sizes": [10, 10, 1, 10_000]}   # an MLP's sizes
    assert diagnose(frame, sizes) == []


def test_attempts_best_all_or_one() -> None:
    log = MetricsLog()
    broken = healthy()
    broken["dead"]["layer1"][:] = 1.0
    frame_of(broken, attempt=0, log=log)
    frame = frame_of(healthy(), attempt=1, log=log)
    info = {"layers": list(LAYERS), "best_attempt": 1}
    assert diagnose(frame, info) == []
    assert [f.attempt for f in diagnose(frame, info, attempt="all")] == [0]
    assert [f.kind for f in diagnose(frame, info, attempt=0)] == ["dead_relus"]
    assert [f.kind for f in diagnose(frame, {"layers": list(LAYERS)})] == []   # last attempt
    with pytest.raises(ConfigError, match="--attempt.*0, 1"):
        diagnose(frame, info, attempt=5)


def test_edges_empty_and_non_finite_histories() -> None:
    assert diagnose(MetricsLog().to_frame()) == []
    log = MetricsLog()
    log.add_arrays(0, np.arange(4), 0, "step", "", "loss", [np.nan] * 4)
    (f,) = diagnose(log.to_frame())
    assert f.kind == "divergence" and f.step == 0
    assert f.to_dict()["evidence"]["initial_loss"] is None   # NaN is not JSON
    assert format_findings([]).startswith("no findings")
    with pytest.raises(Exception):
        f.kind = "other"                                   # findings are frozen


# -- real trainings ---------------------------------------------------------------------
def _run(**sections: dict):
    base = {"data": {"name": "xor", "n": 100}, "train": {"epochs": 10},
            "stopping": {"restarts": 0, "patience": 1000}, "probe": {"boundary_snapshots": 0}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    rec = train(from_dict(base))
    info = {**rec.info, "config": rec.config, "best_attempt": rec.best_attempt}
    return diagnose(rec.metrics.to_frame(), info)


BROKEN = {   # name: (config sections, kind, layer, latest step it may begin at)
    "lr 50 diverges": ({"data": {"name": "gaussians", "n": 100}, "model": {"hidden": [8]},
                        "train": {"lr": 50.0}}, "divergence", None, 3),
    "lr 50 explodes the gradients": ({"data": {"name": "gaussians", "n": 100},
                                      "model": {"hidden": [8]}, "train": {"lr": 50.0}},
                                     "exploding_gradients", "layer*", 8),
    "8 sigmoid layers with N(0, 1) vanish": ({"model": {"hidden": [8] * 8, "activation": "sigmoid",
                                                        "init": "normal(1.0)"}},
                                             "vanishing_gradients", "layer1", 0),
    "sigmoid with N(0, 25) saturates": ({"model": {"hidden": [8, 8, 8], "activation": "sigmoid",
                                                   "init": "normal(5.0)"}, "train": {"seed": 1}},
                                        "saturation", "layer*", 0),
    "ReLU with bias -5 dies": ({"model": {"hidden": [8], "bias_init": "constant(-5)"}},
                               "dead_relus", "layer1", 0),
    "lr 1e-7 is too low": ({"model": {"hidden": [8]}, "train": {"lr": 1e-7}}, "lr_too_low", None, 0),
    "lr 1e-7 plateaus": ({"model": {"hidden": [8]}, "train": {"lr": 1e-7}}, "plateau", None, 6),
    "lr 3 full batch oscillates": ({"data": {"name": "gaussians", "n": 150}, "model": {"hidden": [16]},
                                    "train": {"optimizer": "sgd", "lr": 3.0, "batch_size": 0,
                                              "epochs": 30}}, "oscillation", None, 5),
    "a wide net on a tiny training set overfits": (
        {"data": {"name": "gaussians", "n": 60, "spread": 1.5, "split": [0.3, 0.7, 0.0]},
         "model": {"hidden": [64, 64]},
         "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 0, "epochs": 60}},
        "overfitting", None, 10),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BROKEN))
def test_a_deliberately_broken_training_is_diagnosed(name: str) -> None:
    sections, kind, layer, latest = BROKEN[name]
    findings = _run(**sections)
    mine = [f for f in findings if f.kind == kind]
    assert mine, [(f.kind, f.layer, f.step) for f in findings]
    f = mine[0]
    if layer == "layer*":
        assert f.layer is not None and f.layer.startswith("layer")
    else:
        assert f.layer == layer
    assert 0 <= f.step <= latest


HEALTHY = {
    "XOR 2-4-1 that converges": {"model": {"hidden": [4], "init": "he_uniform"},
                                 "train": {"optimizer": "adam", "lr": 0.02, "epochs": 100,
                                           "seed": 1}},
    "5-class mixture with Adam": {"data": {"name": "gaussians", "n": 300},
                                  "model": {"hidden": [16, 16]},
                                  "train": {"optimizer": "adam", "lr": 0.01, "epochs": 40}},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HEALTHY))
def test_a_healthy_training_has_no_severe_findings(name: str) -> None:
    findings = _run(**HEALTHY[name])
    assert not [f for f in findings if f.severity in ("warning", "severe")], format_findings(findings)


# -- files, command line, the exported name ------------------------------------------
def mlplab_cli(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLPLAB_DEBUG"}
    return subprocess.run([str(MLPLAB), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def dead_store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dead")
    run_config(from_dict({"name": "dead", "data": {"name": "xor", "n": 60},
                              "model": {"hidden": [8], "bias_init": "constant(-5)"},
                              "train": {"epochs": 5}, "stopping": {"restarts": 1, "patience": 2},
                              "probe": {"boundary_snapshots": 0}}), out, report=False, quiet=True)
    return out


@pytest.mark.slow
def test_the_console_script_prints_findings_and_json(dead_store: Path) -> None:
    out = mlplab_cli("diagnose", dead_store)
    assert out.returncode == 0, out.stderr
    assert "[severe] dead_relus in layer1, from step 0" in out.stdout and "hint:" in out.stdout
    (run_dir,) = (dead_store / "runs").iterdir()
    out = mlplab_cli("diagnose", run_dir, "--json", "--attempt", "all")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert {f["attempt"] for f in found} == {0, 1}
    assert {(f["kind"], f["layer"], f["severity"]) for f in found} >= {("dead_relus", "layer1", "severe")}
    bad = mlplab_cli("diagnose", run_dir, "--attempt", "7")
    assert bad.returncode == 2 and "--attempt" in bad.stderr and "0, 1" in bad.stderr


def test_a_store_of_several_runs_needs_a_run_id(dead_store: Path, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "two"
    shutil.copytree(dead_store, store)
    run_config(from_dict({"name": "other", "data": {"name": "xor", "n": 40},
                              "train": {"epochs": 2}, "stopping": {"restarts": 0},
                              "probe": {"boundary_snapshots": 0}}), store, report=False, quiet=True)
    with pytest.raises(StoreError, match="2 finished runs.*dead-"):
        diagnose_path(store)
    run_id = next(p.name for p in (store / "runs").iterdir() if p.name.startswith("dead"))
    assert [f.kind for f in diagnose_path(store, run_id)] == [f.kind for f in diagnose_path(dead_store)]
    with pytest.raises(StoreError, match="no run or store"):
        diagnose_path(tmp_path / "missing")


@pytest.mark.slow
def test_mlplab_diagnose_is_the_function_whatever_was_imported_first(dead_store: Path) -> None:
    assert mlplab.Finding is Finding
    assert [f.kind for f in mlplab.diagnose.findings(dead_store)] == [f.kind for f in diagnose_path(dead_store)]
    code = ("import mlplab.diagnose.findings, mlplab, sys; "
            "print(len(mlplab.diagnose.findings(sys.argv[1])), mlplab.diagnose.findings is not None)")
    out = subprocess.run([sys.executable, "-c", code, str(dead_store)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(diagnose_path(dead_store))), "True"]
