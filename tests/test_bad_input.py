"""Bad input, one table: every row is a user's mistake that must exit 2 with nothing on
stdout and a one-paragraph message on stderr naming the key or file, the value and what is
allowed: never a traceback, never a run that quietly reads the input some other way."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlplab.config import from_dict
from mlplab.engine.reference import train
from mlplab.store.store import Store

MLPLAB = Path(sys.executable).parent / "mlplab"
SWEEP_BASE = "name: s\ndata: {name: xor, n: 40}\ntrain: {epochs: 2}\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    for i, opt in enumerate(("sgd", "adam")):
        cfg = from_dict({"name": f"r{i}", "data": {"name": "xor", "n": 40},
                         "train": {"optimizer": opt, "epochs": 4, "seed": i},
                         "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 0}})
        Store(root).write_run(train(cfg, run_id=f"r{i}"))
    return root


def _files(d: Path) -> dict[str, str]:
    """The bad files the table's rows read, written into ``d``; name -> path."""
    texts = {
        "unknown.yaml": "name: x\ntrain:\n  lr: 0.1\n  optimiser: adam\n",
        "broken.yaml": "train:\n  lr: [0.1\n  epochs: 3\n",
        "broken.toml": "[train]\nlr = \n",
        "dup.yaml": "train:\n  lr: 0.1\n  lr: 5.0\n",
        "dup.toml": "[train]\nlr = 0.1\nlr = 5.0\n",
        "wrongtype.toml": '[train]\nlr = "fast"\n',
        "flat.yaml": "train: 0.1\n",
        "list.yaml": "- 1\n- 2\n",
        "config.txt": "name: x\n",
        "text.csv": "a,b,label\n1,x,0\n2,y,1\n3,z,0\n",
        "oneclass.csv": "a,b,label\n1,2,0\n2,3,0\n3,4,0\n",
        "header.csv": "a,b,label\n",
        "sw-head.yaml": SWEEP_BASE + "sweep:\n  grid:\n    train.loss: [mse, ce]\n"
                        "    model.output: [sigmoid]\n",
        "sw-nesterov.yaml": SWEEP_BASE + "sweep:\n  grid:\n    train.optimizer: [momentum, nesterov]\n"
                            "    train.momentum: [0, 0.9]\n",
        "sw-space.yaml": SWEEP_BASE + "model: {output: sigmoid}\nsweep:\n  strategy: random\n"
                         "  space:\n    train.loss: {choice: [mse, ce]}\n",
        "sw-staged.yaml": SWEEP_BASE + "sweep:\n  strategy: staged\n  stages:\n"
                          "    - {train.loss: [mse, ce]}\n    - {model.output: [auto, sigmoid]}\n",
        "sw-data.yaml": SWEEP_BASE + "sweep:\n  grid:\n    data.name: [xor, gaussians]\n"
                        "    train.loss: [bce]\n",
        "sw-strategy.yaml": SWEEP_BASE + "sweep: {strategy: bayes}\n",
        "sw-empty.yaml": SWEEP_BASE + "sweep: {grid: {}}\n",
        "sw-scalar.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: 0.1}}\n",
        "sw-normal.yaml": SWEEP_BASE + "sweep: {strategy: random, space: {train.lr: {normal: [0, 1]}}}\n",
        "sw-log.yaml": SWEEP_BASE + "sweep: {strategy: random, space: {train.lr: {log_uniform: [0, 1]}}}\n",
        "sw-seeds.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: [0.1]}, seeds: {min: 1, max: 5}}\n",
        "sw-seedmax.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: [0.1]}, seeds: {min: 5, max: 3}}\n",
        "sw-rule.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: [0.1]}, select: {rule: worst}}\n",
        "sw-none.yaml": SWEEP_BASE,
        "sw-n.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: [0.1]}, n: 5}\n",
        "sw-budget.yaml": SWEEP_BASE + "sweep: {grid: {train.lr: [0.1]}, budget: {runs: 0}}\n",
        "afile": "not a folder\n",
    }
    for name, text in texts.items():
        (d / name).write_text(text)
    (d / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    np.savez(d / "good.npz", x=np.zeros((40, 2)), y=np.arange(40) % 2)
    (d / "trunc.npz").write_bytes((d / "good.npz").read_bytes()[:200])
    np.savez(d / "noy.npz", x=np.zeros((40, 2)))
    with zipfile.ZipFile(d / "empty.npz", "w"):
        pass
    return {name: str(d / name) for name in [*texts, "latin1.yaml", "trunc.npz", "noy.npz",
                                             "empty.npz"]}


def bad_inputs(d: Path, store: Path) -> list[tuple[list[str], list[str]]]:
    """(arguments, words the message must hold): the key or file, and what is allowed."""
    f = _files(d)
    return [
        # train flags and --set
        (["train", "--hidden", "4,-2"], ["--hidden", "positive"]),
        (["train", "--hidden", "-4"], ["--hidden", "positive"]),
        (["train", "--hidden", "4x4"], ["--hidden", "sizes like 8,8"]),
        (["train", "--hidden", ""], ["model.hidden", "non-empty list"]),
        (["train", "--hidden", "4,0"], ["model.hidden", "positive"]),
        (["train", "--lr", "abc"], ["--lr (train.lr)", "a number"]),
        (["train", "--lr", "-0.1"], ["train.lr", "> 0"]),
        (["train", "--lr", "nan"], ["train.lr", "finite"]),
        (["train", "--lr", "1e39"], ["train.lr", "1e+39", "float32"]),
        (["train", "--set", "train.weight_decay=1e39"], ["train.weight_decay", "float32"]),
        (["train", "--set", "train.eps=-1e300"], ["train.eps", "float32"]),
        (["train", "--noise", "1e39"], ["data.noise", "float32"]),
        (["train", "--set", "data.spread=.inf"], ["data.spread", "finite"]),
        (["train", "--epochs", "2.5"], ["--epochs (train.epochs)", "an integer"]),
        (["train", "--set", "train.epochs=many"], ["train.epochs", "integer"]),
        (["train", "--seed", "99999999999999999999"], ["train.seed", "int64"]),
        (["train", "--init", "normal(1e200)"], ["model.init", "normal(1e200)", "1000"]),
        (["train", "--set", "model.bias_init=constant(1e5)"], ["model.bias_init", "constant(c)", "1000"]),
        (["train", "--set", "model.bias_init=uniform(-1)"], ["model.bias_init", "uniform(a)"]),
        (["train", "--init", "glorot"], ["model.init", "xavier_uniform"]),
        (["train", "--init", "he_normal(2)"], ["model.init", "without an argument"]),
        (["train", "--set", "model.layer_init={5: he_normal}"], ["model.layer_init.5", "layer indices"]),
        (["train", "--optimizer", "adma"], ["train.optimizer", "did you mean 'adam'"]),
        (["train", "--activation", "swish"], ["model.activation", "relu"]),
        (["train", "--loss", "hinge"], ["train.loss", "mse"]),
        (["train", "--dataset", "gaussians", "--loss", "bce"], ["train.loss", "sigmoid"]),
        (["train", "--loss", "ce", "--set", "model.output=sigmoid"], ["train.loss", "mse or bce"]),
        (["train", "--dataset", "gaussians", "--set", "model.output=sigmoid"], ["model.output", "softmax"]),
        (["train", "--optimizer", "nesterov", "--momentum", "0"], ["train.momentum", "nesterov"]),
        (["train", "--momentum", "1.5"], ["train.momentum", "[0, 1)"]),
        (["train", "--set", "data.split=[0.5, 0.5, 0.5]"], ["data.split", "summing to 1"]),
        (["train", "--set", "model.hidden=[8,"], ["model.hidden", "YAML value"]),
        (["train", "--set", "train={lr: 1, lr: 2}"], ["train", "duplicate key 'lr'"]),
        (["train", "--set", "stopping.patience"], ["--set", "KEY=VALUE"]),
        (["train", "--set", "train.schedule.name=warmup"], ["train.schedule.name", "cosine"]),
        (["train", "--set", "train.lrr=0.1"], ["train.lrr", "did you mean 'lr'"]),
        (["train", "--set", "trian.lr=0.1"], ["trian", "train"]),
        (["train", "--target", "good"], ["--target", "a number or auto"]),
        (["train", "--set", "stopping.monitor=accuracy"], ["stopping.monitor", "val_acc"]),
        (["train", "--set", "data.standardize=maybe"], ["data.standardize", "true or false"]),
        (["train", "--seeds", "0"], ["--seeds", ">= 1"]),
        (["train", "--device", "gpu0"], ["--device", "cpu"]),
        (["train", "--device", "cuda:7", "--seeds", "2"], ["--device", "cuda:7"]),
        # data: too few points, the user's files
        (["train", "--dataset", "moons", "--n", "1"], ["data.n", "every class", "1 of the 2"]),
        (["train", "--dataset", "gaussians", "--n", "6"], ["data.n", "of the 5 classes"]),
        (["train", "--dataset", "xor", "--n", "3"], ["data.n", "at least 4"]),
        (["train", "--dataset", "xorr"], ["data.name", "did you mean 'xor'"]),
        (["train", "--dataset", f"csv:{d}/missing.csv"], ["data.name", "missing.csv", "existing CSV"]),
        (["train", "--dataset", f"csv:{f['text.csv']}"], ["data.name", "numeric", "b"]),
        (["train", "--dataset", f"csv:{f['oneclass.csv']}"], ["data.label", "at least 2 classes"]),
        (["train", "--dataset", f"csv:{f['header.csv']}"], ["data.name", "data rows"]),
        (["train", "--dataset", f"csv:{f['text.csv']}", "--set", "data.label=colour"],
         ["data.label", "colour", "a column"]),
        (["train", "--dataset", f"npz:{f['trunc.npz']}"], ["data.name", "trunc.npz", ".npz archive"]),
        (["train", "--dataset", f"npz:{f['empty.npz']}"], ["data.name", "empty.npz", "found: none"]),
        (["train", "--dataset", f"npz:{f['noy.npz']}"], ["data.name", "noy.npz", "found: x"]),
        (["train", "--dataset", f"npz:{d}/missing.npz"], ["data.name", "existing .npz"]),
        # config files
        (["train", "--config", f"{d}/nope.yaml"], ["--config", "nope.yaml", "existing"]),
        (["train", "--config", f["unknown.yaml"]], ["unknown.yaml, line 4", "optimiser", "'optimizer'"]),
        (["train", "--config", f["broken.yaml"]], ["broken.yaml", "line 3", "valid YAML"]),
        (["train", "--config", f["broken.toml"]], ["broken.toml", "line 2", "valid TOML"]),
        (["train", "--config", f["dup.yaml"]], ["dup.yaml", "line 3", "duplicate key 'lr'"]),
        (["train", "--config", f["dup.toml"]], ["dup.toml", "line 3", "valid TOML"]),
        (["train", "--config", f["latin1.yaml"]], ["latin1.yaml", "UTF-8"]),
        (["train", "--config", f["wrongtype.toml"]], ["wrongtype.toml", "train.lr", "finite number"]),
        (["train", "--config", f["flat.yaml"]], ["flat.yaml", "'train'", "a mapping"]),
        (["train", "--config", f["list.yaml"]], ["list.yaml", "a mapping at the top level"]),
        (["train", "--config", f["config.txt"]], ["config.txt", ".toml"]),
        # sweep files: combinations checked before any store, then one key at a time
        (["sweep", f["sw-head.yaml"]], ["sweep.grid", "sw-head.yaml", "'train.loss'", "sigmoid"]),
        (["sweep", f["sw-nesterov.yaml"]], ["sweep.grid", "'train.momentum'", "nesterov"]),
        (["sweep", f["sw-space.yaml"]], ["sweep.space", "'train.loss'", "sigmoid"]),
        (["sweep", f["sw-staged.yaml"]], ["sweep.stages", "'train.loss'", "sigmoid"]),
        (["sweep", f["sw-data.yaml"]], ["sweep.grid", "gaussians", "'train.loss'", "sigmoid"]),
        (["sweep", f["latin1.yaml"]], ["latin1.yaml", "UTF-8"]),
        (["sweep", f["sw-strategy.yaml"]], ["sweep.strategy", "bayes", "grid, random"]),
        (["sweep", f["sw-empty.yaml"]], ["sweep.grid", "at least one dotted key"]),
        (["sweep", f["sw-scalar.yaml"]], ["sweep.grid.train.lr", "non-empty list"]),
        (["sweep", f["sw-normal.yaml"]], ["sweep.space.train.lr", "log_uniform"]),
        (["sweep", f["sw-log.yaml"]], ["sweep.space.train.lr.log_uniform", "0 < low"]),
        (["sweep", f["sw-seeds.yaml"]], ["sweep.seeds.min", ">= 2"]),
        (["sweep", f["sw-seedmax.yaml"]], ["sweep.seeds.max", ">= 5"]),
        (["sweep", f["sw-rule.yaml"]], ["sweep.select.rule", "worst", "lower_ci"]),
        (["sweep", f["sw-none.yaml"]], ["'sweep'", "sw-none.yaml", "a sweep: block"]),
        (["sweep", f["sw-n.yaml"]], ["sweep.n", "only with strategy random"]),
        (["sweep", f["sw-budget.yaml"]], ["sweep.budget.runs", ">= 1"]),
        (["sweep", f"{d}/nope.yaml"], ["nope.yaml", "existing"]),
        # stores: runs, compare, report, diagnose
        (["runs", f"{d}/no-store"], ["no-store", "no mlplab store"]),
        (["runs", f["afile"]], ["afile", "a store is a directory"]),
        (["runs", str(store), "--filter", "colour=red"], ["--filter", "colour", "dotted config key"]),
        (["runs", str(store), "--filter", "status"], ["--filter", "key=value"]),
        (["runs", str(store), "--filter", "model.hidden.0=4"], ["--filter", "model.hidden.0"]),
        (["runs", str(store), "--sort", "colour"], ["--sort", "colour", "val_loss"]),
        (["runs", str(store), "--group-by", "colour"], ["--group-by", "colour", "train.optimizer"]),
        (["runs", str(store), "--group-by", "train.optimizer", "--metric", "speed"], ["--metric", "speed"]),
        (["compare", str(store), "train.optimizer=sgd", "train.optimizer=rmsprop"],
         ["rmsprop", "matches finished runs"]),
        (["compare", str(store), "train.optimizer=sgd", "train.optimizer=adam", "--metric", "speed"],
         ["--metric", "speed", "val_loss"]),
        (["report", f"{d}/no-store"], ["no-store", "neither an mlplab store", "nor a run folder"]),
        (["diagnose", f"{d}/no-store"], ["no-store", "no run or store"]),
        (["diagnose", str(store), "--run-id", "r0", "--attempt", "x"], ["--attempt", "'x'", "all"]),
        (["diagnose", str(store), "--run-id", "r9"], ["r9"]),
        # the other commands
        (["dashboard", str(store), "--port", "99999"], ["--port", "99999", "1 to 65535"]),
        (["demo", "--out", f["afile"]], ["--out", "afile", "not a file"]),
        (["bench", "--quick", "--device", "tpu"], ["--device", "tpu", "cpu"]),
    ]


def argv(args: list[str], d: Path) -> list[str]:
    """A row's arguments, with --out (train, sweep) or --json (runs, bench, ...) after them."""
    if args[0] in ("train", "sweep"):
        return [*args, "--out", str(d / "out")]
    return [*args, "--json"] if args[0] in ("runs", "compare", "diagnose", "bench") else args


def rejected(args: list[str], words: list[str], returncode: int, stdout: str, stderr: str) -> str:
    """What is wrong with how a row was answered ('' when it was refused as it should be)."""
    message = stderr.strip()
    if returncode != 2 or stdout or "Traceback" in stderr or "\n" in message \
            or not message.startswith(f"mlplab {args[0]}: error:"):
        return f"rc={returncode} stdout={stdout[:200]!r} stderr={stderr[-400:]!r}"
    missing = [w for w in words if w not in message]
    return f"{message!r} lacks {missing}" if missing else ""


def test_bad_input_exits_2_with_one_paragraph_naming_the_key(tmp_path, store, capsys,
                                                             monkeypatch) -> None:
    from mlplab.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLPLAB_DEBUG", raising=False)
    rows = bad_inputs(tmp_path, store)
    assert len(rows) >= 60
    wrong = []
    for args, words in rows:
        try:
            returncode = main(argv(args, tmp_path))
        except SystemExit as exit_:            # argparse's own mistakes
            returncode = exit_.code
        out = capsys.readouterr()
        problem = rejected(args, words, returncode, out.out, out.err)
        if problem:
            wrong.append(f"{args}: {problem}")
    assert not wrong, f"{len(wrong)} of {len(rows)} rows:\n" + "\n".join(wrong)
    assert not (tmp_path / "out").exists(), "a rejected config or sweep must leave no store behind"


def test_the_dashboard_prints_an_ipv6_host_once_bracketed() -> None:
    from mlplab.dashboard.server import dashboard_url

    for host in ("::1", "[::1]"):
        assert dashboard_url(host, 8050) == "http://[::1]:8050/"
    assert dashboard_url("127.0.0.1", 8050) == "http://127.0.0.1:8050/"


@pytest.mark.slow
def test_the_console_script_rejects_every_row_the_same_way(tmp_path, store) -> None:
    # the whole table through the installed script, a few processes at a time
    rows = bad_inputs(tmp_path, store)
    env = {k: v for k, v in os.environ.items() if k != "MLPLAB_DEBUG"}
    wrong, running = [], []

    def collect(args, words, proc) -> None:
        stdout, stderr = proc.communicate(timeout=120)
        problem = rejected(args, words, proc.returncode, stdout, stderr)
        if problem:
            wrong.append(f"{args}: {problem}")

    for args, words in rows:
        if len(running) == 4:
            collect(*running.pop(0))
        running.append((args, words, subprocess.Popen(
            [str(MLPLAB), *argv(args, tmp_path)], cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env)))
    for item in running:
        collect(*item)
    assert not wrong, f"{len(wrong)} of {len(rows)} rows:\n" + "\n".join(wrong)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_reader_closing_the_pipe_ends_the_command_quietly(store) -> None:
    # `mlplab diagnose ... | head`: the reader has gone before the findings are printed
    with subprocess.Popen([str(MLPLAB), "diagnose", str(store), "--run-id", "r0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=120)
    assert stderr == "" and proc.returncode == 1, (proc.returncode, stderr)
