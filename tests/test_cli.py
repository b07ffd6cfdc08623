"""The installed ``mlplab`` console script, run as a user would: train, runs, help, and
bad input that must exit 2 with a one-paragraph message naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.config import from_dict
from mlplab.engine.reference import train
from mlplab.store.store import Store

MLPLAB = Path(sys.executable).parent / "mlplab"
QUICK = ["--n", "40", "--epochs", "5", "--restarts", "0", "--no-report",
         "--set", "probe.boundary_snapshots=0"]


def mlplab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLPLAB_DEBUG"}
    return subprocess.run([str(MLPLAB), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def test_the_console_script_is_installed() -> None:
    assert MLPLAB.is_file() and os.access(MLPLAB, os.X_OK)


@pytest.mark.slow
def test_help_is_fast_because_nothing_heavy_is_imported() -> None:
    out = mlplab("--help")
    assert out.returncode == 0
    for command in ("train", "runs", "sweep", "report", "diagnose", "dashboard", "bench", "demo"):
        assert command in out.stdout
    code = ("import sys, mlplab.cli; mlplab.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'matplotlib', 'dash', 'ray')"
            " if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "[]", loaded.stderr


@pytest.mark.slow
def test_python_dash_m_mlplab() -> None:
    out = subprocess.run([sys.executable, "-m", "mlplab", "train", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--config" in out.stdout and "--set" in out.stdout


@pytest.mark.slow
def test_train_with_flags_and_set(tmp_path) -> None:
    out = mlplab("train", "--dataset", "xor", "--hidden", "4", "--activation", "relu",
                 "--init", "xavier_uniform", "--optimizer", "momentum", "--lr", "0.02",
                 "--momentum", "0.9", "--loss", "mse", "--seed", "3", "--json",
                 "--set", "train.weight_decay=1e-4", "--set", "model.bias_init=constant(0.1)",
                 "--out", tmp_path / "x", *QUICK)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (row,) = doc["runs"]
    assert row["status"] == "done" and row["config"].startswith("xor [4] relu xavier_uniform momentum")
    info = Store(tmp_path / "x", readonly=True).run(row["run_id"])
    cfg = info.config
    assert (cfg["train"]["weight_decay"], cfg["train"]["momentum"], cfg["train"]["seed"]) == (1e-4, 0.9, 3)
    assert cfg["model"]["bias_init"] == "constant(0.1)" and cfg["data"]["n"] == 40
    assert cfg["train"]["loss"] == "mse" and info.epochs == 5
    listed = mlplab("runs", tmp_path / "x")
    assert listed.returncode == 0 and row["run_id"] in listed.stdout


@pytest.mark.slow
def test_train_with_yaml_and_toml_configs_and_flags_over_them(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(
        "name: from-yaml\ndata: {name: moons, n: 40}\ntrain: {optimizer: adam, lr: 0.01}\n")
    (tmp_path / "c.toml").write_text(
        'name = "from-toml"\n[data]\nname = "moons"\nn = 40\n[train]\noptimizer = "adam"\n')
    for name in ("c.yaml", "c.toml"):
        out = mlplab("train", "--config", tmp_path / name, "--lr", "0.05", "--quiet",
                     "--out", tmp_path / "s", *QUICK[2:])
        assert out.returncode == 0, out.stderr
    runs = {r.name: r.config for r in Store(tmp_path / "s", readonly=True).runs()}
    assert set(runs) == {"from-yaml", "from-toml"}
    for config in runs.values():   # the file's values, with --lr winning over the file
        assert (config["data"]["name"], config["train"]["optimizer"]) == ("moons", "adam")
        assert (config["train"]["lr"], config["train"]["epochs"], config["data"]["n"]) == (0.05, 5, 40)


@pytest.fixture(scope="module")
def store_of_three(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    store = Store(root)
    for i, (opt, lr) in enumerate([("sgd", 0.5), ("adam", 0.01), ("sgd", 0.05)]):
        cfg = from_dict({"name": f"r{i}", "data": {"name": "xor", "n": 40},
                         "train": {"optimizer": opt, "lr": lr, "epochs": 8, "seed": i},
                         "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 0}})
        store.write_run(train(cfg, run_id=f"r{i}"))
    return root


@pytest.mark.slow
def test_runs_table_sort_filter_and_json(store_of_three: Path) -> None:
    table = mlplab("runs", store_of_three)
    assert table.returncode == 0
    header, *lines = table.stdout.strip().splitlines()
    assert header.split()[:3] == ["run_id", "config", "status"] and len(lines) == 3
    rows = json.loads(mlplab("runs", store_of_three, "--json").stdout)
    assert [r["run_id"] for r in rows] == ["r0", "r1", "r2"]
    by_loss = json.loads(mlplab("runs", store_of_three, "--sort", "val_loss", "--json").stdout)
    losses = [r["val_loss"] for r in by_loss]
    assert losses == sorted(losses)
    desc = json.loads(mlplab("runs", store_of_three, "--sort=-val_loss", "--json").stdout)
    assert [r["run_id"] for r in desc] == [r["run_id"] for r in reversed(by_loss)]
    sgd = json.loads(mlplab("runs", store_of_three, "--filter", "train.optimizer=sgd",
                            "--json").stdout)
    assert [r["run_id"] for r in sgd] == ["r0", "r2"]
    both = json.loads(mlplab("runs", store_of_three, "--filter", "train.optimizer=sgd",
                             "--filter", "train.lr=0.05", "--filter", "status=done",
                             "--json").stdout)
    assert [r["run_id"] for r in both] == ["r2"]
    code = ("import sys; from mlplab.cli import main; main(['runs', sys.argv[1]]); "
            "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'matplotlib') if m in sys.modules),"
            " file=sys.stderr)")
    light = subprocess.run([sys.executable, "-c", code, str(store_of_three)], capture_output=True,
                           text=True, timeout=60)
    assert light.stderr.strip() == "[]" and "r0" in light.stdout   # `runs` answers without torch
    sorted_table = mlplab("runs", store_of_three, "--sort", "val_loss", "--desc")
    assert [line.split()[0] for line in sorted_table.stdout.strip().splitlines()[1:]] == \
        [r["run_id"] for r in desc]


def test_the_console_script_ends_after_exit_handlers_and_flushed_output(store_of_three) -> None:
    """As the console script (no argv) the process ends right after the command, skipping
    the interpreter's teardown: the exit handlers libraries registered still run, all of a
    long output arrives, and the exit code is the command's (2 for a missing store)."""
    code = ("import atexit, sys; from mlplab.cli import main; "
            "atexit.register(lambda: print('handler ran', file=sys.stderr)); "
            "sys.argv = ['mlplab', *sys.argv[1:]]; main(); print('after main', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "runs", str(store_of_three), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.splitlines() == ["handler ran"]
    assert [r["run_id"] for r in json.loads(done.stdout)] == ["r0", "r1", "r2"]
    missing = subprocess.run([sys.executable, "-c", code, "runs", str(store_of_three / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.splitlines()[-1] == "handler ran"
    assert "error" in missing.stderr


# Bad input, one row per mistake: tests/test_bad_input.py.


@pytest.mark.slow
def test_argparse_mistakes_exit_2_too() -> None:
    for args in (["train", "--lrr", "0.1"], ["runs"], ["frobnicate"], []):
        out = mlplab(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "usage: mlplab" in out.stderr
