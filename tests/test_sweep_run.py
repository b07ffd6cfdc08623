"""Sweeps end to end on the local process pool: the same runs with 1 and 2 workers,
failures and divergence recorded, resume after the driver or a worker is SIGKILLed,
the Optuna strategy, the example files and the command line."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from realparts import process_tree, start_process, stop_process

from mlplab.cli import main
from mlplab.config import from_dict
import mlplab.engine.cohort
from mlplab.report.build import best_run
from mlplab.store.store import Store, StoreError
from mlplab.sweep import load_sweep, run_sweep
from mlplab.sweep.executors import LocalExecutor, worker_context
from mlplab.sweep.worker import run_unit
from mlplab.sweep.plan import plan_grid, seed_runs, sweep_id_for
from mlplab.sweep.units import plan_units

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def xor_sweep(sweep: dict, **sections) -> dict:
    """A tiny XOR sweep: 40 points, full batch, a few epochs."""
    raw = {"name": "t", "data": {"name": "xor", "n": 40}, "model": {"hidden": [4]},
           "train": {"epochs": 4, "batch_size": 0},
           "stopping": {"restarts": 1, "patience": 2, "target": 0.2},
           "probe": {"boundary_snapshots": 2, "activations_every": 2}, "sweep": sweep}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


def run_files(out: Path) -> dict[str, dict[str, float]]:
    """mtime of every file of every run folder."""
    return {d.name: {str(f.relative_to(d)): f.stat().st_mtime_ns for f in d.rglob("*") if f.is_file()}
            for d in (out / "runs").iterdir()}


def assert_same_runs(a: Path, b: Path) -> None:
    sa, sb = Store(a, readonly=True), Store(b, readonly=True)
    ra, rb = {r.run_id: r for r in sa.runs()}, {r.run_id: r for r in sb.runs()}
    assert set(ra) == set(rb)
    for run_id, x in ra.items():
        y = rb[run_id]
        assert (x.status, x.n_attempts, x.epochs, x.end_reason) == (y.status, y.n_attempts, y.epochs, y.end_reason)
        for f in ("best_value", "val_loss", "val_acc", "test_loss", "train_loss"):
            assert getattr(x, f) == pytest.approx(getattr(y, f), rel=1e-6, abs=1e-7), (run_id, f)
        wa, wb = sa.weights(run_id), sb.weights(run_id)
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
        pd.testing.assert_frame_equal(sa.metrics(run_id), sb.metrics(run_id), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_runs(tmp_path: Path):
    src = xor_sweep({"seeds": 3, "grid": {"train.lr": [0.05, 0.5]}})
    base, spec = load_sweep(src)
    runs = seed_runs(plan_grid(spec, base), spec.seeds, "x")
    # one cohort of six on one worker, two cohorts of three on two workers
    assert [len(u) for u in plan_units(runs, 1)] == [6]
    assert [len(u) for u in plan_units(runs, 2)] == [3, 3]
    one = run_sweep(src, out=tmp_path / "w1", workers=1, quiet=True, report=False)
    two = run_sweep(src, out=tmp_path / "w2", workers=2, quiet=True, report=False)
    assert one.sweep_id == two.sweep_id
    assert len(Store(tmp_path / "w1").runs(sweep_id=one.sweep_id, status="done")) == 6
    assert_same_runs(tmp_path / "w1", tmp_path / "w2")
    assert one.data["configs"] == two.data["configs"]
    assert one.data["best"] == two.data["best"]


def test_forkserver_workers_see_the_drivers_environment_as_it_is_now(monkeypatch):
    # the forkserver starts with the first pool of a process and keeps that process's
    # environment: a later pool's workers must still see the driver's environment of now
    assert worker_context().get_start_method() == "forkserver"
    first = LocalExecutor(1)
    try:
        first.start()
        server_pid = first._get_pool().submit(os.getppid).result(timeout=120)
    finally:
        first.close()
    assert server_pid != os.getpid()               # forked by the server, not by this process
    monkeypatch.setenv("MLPLAB_TEST_MARK", "set after the forkserver started")
    monkeypatch.delenv("MLPLAB_CACHE_DIR", raising=False)
    later = LocalExecutor(1)
    try:
        pool = later._get_pool()
        assert pool.submit(os.getenv, "MLPLAB_TEST_MARK").result(timeout=120) \
            == "set after the forkserver started"
        assert pool.submit(os.getenv, "MLPLAB_CACHE_DIR").result(timeout=120) is None
        assert pool.submit(os.getppid).result(timeout=120) == server_pid   # the same server
        # the variable the forkserver set for itself before its imports (.worker_memory)
        # chose the worker's Arrow pool, though the worker's environment is the driver's
        assert pool.submit(eval, "__import__('pyarrow').default_memory_pool().backend_name"
                           ).result(timeout=120) == "system"
    finally:
        later.close()


def test_a_workers_first_unit_imports_nothing_heavy_the_preload_lacks():
    """What the forkserver preloads (WORKER_PRELOAD) is all a unit's training and encoding
    import that costs time: otherwise the first unit's timed training would include it
    (sympy through torch's symbolic shapes when networks were built on the meta device).
    Nor does the preload hold scipy: the unit brings its runs' Bayes limit, which the
    driver computed (plan_units), and the worker computes none."""
    base, spec = load_sweep(xor_sweep({"grid": {"train.lr": [0.01, 0.3]}}, probe={"every": 1}))
    unit, = plan_units(seed_runs(plan_grid(spec, base), 1, "u"), 1)
    assert unit.limits and all(limit["accuracy"] > 0.5 for limit in unit.limits)
    code = f"""
import importlib, json, sys
from mlplab.sweep.worker import WORKER_PRELOAD
for name in WORKER_PRELOAD:
    importlib.import_module(name)
before = set(sys.modules)
from mlplab.sweep.worker import run_unit
from mlplab.sweep.units import Unit
unit = Unit(0, *json.loads({json.dumps(json.dumps([unit.run_ids, unit.configs]))}),
            limits=tuple(json.loads({json.dumps(json.dumps(unit.limits))})))
result = run_unit(unit)
assert not result.failures and len(result.files) == len(unit), result.failures
print(" ".join(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    new = out.stdout.split()
    heavy = [m for m in new if m.split(".")[0] in ("scipy", "sympy", "sklearn", "matplotlib")
             or m.startswith(("torch._dynamo", "torch._inductor", "torch.fx"))]
    assert heavy == [], heavy
    assert len(new) < 20, new


def test_a_pool_whose_workers_die_while_starting_is_an_error_not_a_loop():
    # the units never start, so none is charged a try: without a limit the pool would be
    # rebuilt for ever
    from concurrent.futures import ProcessPoolExecutor

    class DyingAtStart(LocalExecutor):
        def _new_pool(self) -> ProcessPoolExecutor:
            return ProcessPoolExecutor(1, mp_context=worker_context(), initializer=os._exit,
                                       initargs=(3,))

    base, spec = load_sweep(xor_sweep({"grid": {"train.lr": [0.01, 0.3]}}))
    units = plan_units(seed_runs(plan_grid(spec, base), 1, "u"), 1)
    ex = DyingAtStart(1)
    try:
        with pytest.raises(RuntimeError, match="broke 3 times in a row"):
            list(ex.map_unordered(units))
    finally:
        ex.close()


@pytest.mark.slow
def test_a_compiled_sweep_gives_the_eager_sweeps_runs(tmp_path: Path, monkeypatch):
    # the worker builds the package into a cache of its own (a spawned process inherits
    # the environment): its file is the proof that the units ran compiled
    monkeypatch.setenv("MLPLAB_CACHE_DIR", str(tmp_path / "cache"))
    src = xor_sweep({"seeds": 3, "grid": {"train.lr": [0.05, 0.5]}})
    eager = run_sweep(src, out=tmp_path / "eager", workers=1, quiet=True, report=False)
    compiled = run_sweep(src, out=tmp_path / "compiled", workers=1, quiet=True, report=False,
                         compile=True)
    assert len(list((tmp_path / "cache" / "compiled").glob("*.pt2"))) == 1
    assert eager.sweep_id == compiled.sweep_id
    assert_same_runs(tmp_path / "eager", tmp_path / "compiled")


@pytest.mark.slow
def test_a_run_that_raises_and_one_that_diverges_are_recorded(tmp_path: Path):
    missing = f"csv:{tmp_path / 'missing.csv'}"
    src = xor_sweep({"grid": {"data.name": ["xor", missing], "train.lr": [0.1, 1.0e30]}},
                    train={"loss": "ce"}, stopping={"restarts": 0})
    result = run_sweep(src, out=tmp_path / "s", workers=2, quiet=True, report=False)
    store = Store(tmp_path / "s")
    runs = store.runs(sweep_id=result.sweep_id)
    assert len(runs) == 4
    by = {(r.config["data"]["name"], r.config["train"]["lr"]): r for r in runs}
    for lr in (0.1, 1.0e30):
        failed = by[(missing, lr)]
        assert failed.status == "failed" and "missing.csv" in failed.error
    diverged = by[("xor", 1.0e30)]
    assert diverged.status == "done" and diverged.end_reason == "diverged"
    assert diverged.val_loss is None                      # NaN is stored as NULL
    assert by[("xor", 0.1)].status == "done" and by[("xor", 0.1)].end_reason != "diverged"
    s = result.data
    assert (s["n_runs"], s["n_done"], s["n_failed"], s["n_diverged"]) == (4, 2, 2, 1)
    assert s["best"]["params"] == {"data.name": "xor", "train.lr": 0.1}
    assert store.sweeps()[0]["status"] == "done"


def test_a_cohort_that_raises_is_retried_run_by_run(tmp_path: Path, monkeypatch):
    base, spec = load_sweep(xor_sweep({"grid": {"train.lr": [0.01, 0.3, 0.1]}}))
    runs = seed_runs(plan_grid(spec, base), 1, "u")
    [unit] = plan_units(runs, 1)
    real = mlplab.engine.cohort.train_cohort

    def flaky(configs, run_ids=None, device="cpu"):
        if any(c.train.lr == 0.3 for c in configs):
            raise RuntimeError("lr 0.3 is cursed")
        return real(configs, run_ids=run_ids, device=device)

    monkeypatch.setattr(mlplab.engine.cohort, "train_cohort", flaky)
    result = run_unit(unit)
    assert [r.run_id for r in result.records] == [runs[0].run_id, runs[2].run_id]
    [(run_id, error)] = result.failures
    assert run_id == runs[1].run_id and error.startswith("RuntimeError: lr 0.3 is cursed")


# --------------------------------------------------------------------------- resume

SLOW_SWEEP = {  # eight cohorts (one per width), each a fraction of a second
    "name": "slow", "data": {"name": "xor", "n": 40},
    "train": {"epochs": 150, "batch_size": 0, "lr": 0.05},
    "stopping": {"restarts": 0, "patience": 1000},
    "probe": {"boundary_snapshots": 2},
    "sweep": {"grid": {"model.hidden": [[w] for w in range(2, 10)]}},
}


def long_sweep(epochs: int = 15000) -> dict:
    """SLOW_SWEEP with cohorts of ``epochs`` epochs that run them all (no early stop): each
    ~4 s on the development machine (1500 epochs took 1-3 s before the cohorts got
    faster, then 0.4 s, and a test that had to act while they ran lost the race)."""
    return {**SLOW_SWEEP, "train": {**SLOW_SWEEP["train"], "epochs": epochs},
            "stopping": {**SLOW_SWEEP["stopping"], "patience": epochs}}


def sweep_cmd(path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlplab", "sweep", str(path), "--out", str(out),
            "--quiet", "--no-report", *extra]


def done_ids(out: Path) -> set[str]:
    try:
        return {r.run_id for r in Store(out, readonly=True).runs(status="done")}
    except (StoreError, sqlite3.OperationalError):   # the sweep has not created its index yet
        return set()


def wait_until(cond, timeout: float, proc=None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"sweep exited early ({proc.returncode}) {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def spawned_workers(pid: int) -> list[int]:
    """The pool's worker processes of driver ``pid``: the children of its forkserver (not
    the server itself, nor the resource tracker)."""
    def cmdline(p: int) -> str:
        try:
            return Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return ""

    tree = process_tree(pid)
    servers = {info.pid for info in tree
               if info.ppid == pid and "multiprocessing.forkserver" in cmdline(info.pid)}
    return [info.pid for info in tree if info.ppid in servers]


def check_complete(out: Path, n: int) -> None:
    store = Store(out, readonly=True)
    runs = store.runs()
    assert len(runs) == n and all(r.status == "done" for r in runs)
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert folders == sorted(r.run_id for r in runs)           # each run once, no leftovers
    assert store.sweeps()[0]["status"] == "done"


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(tmp_path: Path):
    f, out = tmp_path / "slow.yaml", tmp_path / "out"
    f.write_text(yaml.safe_dump(SLOW_SWEEP))
    proc = start_process(sweep_cmd(f, out, "--workers", "1"))
    try:
        wait_until(lambda: len(done_ids(out)) >= 2, 240, proc, "two finished runs")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = done_ids(out)
        assert 2 <= len(before) < 8, "the sweep finished before it could be killed"
        files = {k: v for k, v in run_files(out).items() if k in before}
        finished = {r.run_id: r.finished for r in Store(out, readonly=True).runs(status="done")}
        # the orphaned worker notices its driver is gone and leaves
        wait_until(lambda: not process_tree(proc.pid), 20, None, "the orphaned worker to exit")
    finally:
        stop_process(proc)
    resumed = subprocess.run(sweep_cmd(f, out, "--workers", "2", "--resume"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    check_complete(out, 8)
    after = run_files(out)
    assert {k: after[k] for k in files} == files                  # not retrained, not rewritten
    store = Store(out, readonly=True)
    assert {r: store.run(r).finished for r in finished} == finished
    # running it again without --resume is refused, with exit code 2
    again = subprocess.run(sweep_cmd(f, out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr


@pytest.mark.slow
def test_the_sweep_survives_a_killed_worker(tmp_path: Path):
    f, out = tmp_path / "slow.yaml", tmp_path / "out"
    f.write_text(yaml.safe_dump(SLOW_SWEEP))
    proc = start_process(sweep_cmd(f, out, "--workers", "2"))
    try:
        wait_until(lambda: len(done_ids(out)) >= 1 and spawned_workers(proc.pid), 240, proc,
                   "a finished run")
        victim = spawned_workers(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=300) == 0, proc.log_tail()
    finally:
        stop_process(proc)
    check_complete(out, 8)
    files = run_files(out)
    resumed = subprocess.run(sweep_cmd(f, out, "--resume"), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert run_files(out) == files                               # nothing left to do


@pytest.mark.slow
def test_three_worker_deaths_charge_only_the_units_that_were_in_them(tmp_path: Path):
    # eight cohorts of seconds each on two workers; a worker is killed three times, as the
    # OOM killer would: before, the third break failed every unit left, started or not
    f, out = tmp_path / "slow.yaml", tmp_path / "out"
    f.write_text(yaml.safe_dump(long_sweep()))
    proc = start_process(sweep_cmd(f, out, "--workers", "2"))
    try:
        killed: set[int] = set()
        while len(killed) < 3:
            wait_until(lambda: set(spawned_workers(proc.pid)) - killed, 240, proc, "a live worker")
            time.sleep(1.5)                       # a fresh pool: let its workers take units
            victims = sorted(set(spawned_workers(proc.pid)) - killed)
            if not victims:
                continue
            try:
                os.kill(victims[0], signal.SIGKILL)
            except ProcessLookupError:            # the pool stopped it meanwhile
                continue
            killed.add(victims[0])
        assert proc.wait(timeout=600) == 0, proc.log_tail()
    finally:
        stop_process(proc)
    store = Store(out, readonly=True)
    failed = store.runs(status="failed")
    assert len(store.runs(status="done")) + len(failed) == 8
    # at most one unit can have been in the killed worker all three times
    assert len(failed) <= 1, [r.error for r in failed]
    assert [s["status"] for s in store.sweeps()] == ["done"]


# --------------------------------------------------------------------------- optuna


@pytest.mark.slow
def test_optuna_finds_the_known_best_and_keeps_its_study_in_the_store(tmp_path: Path):
    src = xor_sweep({"strategy": "optuna", "select": {"metric": "train_loss", "statistic": "mean"},
                     "space": {"train.lr": {"choice": [1.0e-5, 0.3]},
                               "model.hidden": {"choice": [[4], [8]]}},
                     "optuna": {"sampler": "tpe", "pruner": "median", "n_trials": 6}, "seed": 1},
                    train={"optimizer": "adam", "epochs": 25}, stopping={"restarts": 0, "target": None})
    out = tmp_path / "o"
    result = run_sweep(src, out=out, workers=2, quiet=True, report=False)
    assert result.best["params"]["train.lr"] == 0.3
    study = optuna.load_study(study_name=result.sweep_id, storage=f"sqlite:///{out / 'mlplab.sqlite'}")
    assert len(study.trials) == 6
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 6
    assert result.data["optuna"]["n_trials"] == 6
    assert {t.params["train.lr"] for t in finished} == {1.0e-5, 0.3}
    complete = [t for t in finished if t.value is not None]
    assert min(complete, key=lambda t: t.value).params["train.lr"] == 0.3
    assert Store(out).sweeps()[0]["summary"]["best"]["params"]["train.lr"] == 0.3


@pytest.mark.slow
def test_optuna_resume_retries_the_trials_a_killed_driver_left_running(tmp_path: Path):
    src = xor_sweep({"strategy": "optuna", "space": {"train.lr": {"choice": [0.01, 0.1, 0.3]}},
                     "optuna": {"sampler": "random", "pruner": "none", "n_trials": 2}})
    base, _ = load_sweep(src)
    out = tmp_path / "o"
    Store(out)                                  # the index file the study shares
    storage = f"sqlite:///{out / 'mlplab.sqlite'}"
    sweep_id = sweep_id_for(base.name, replace(base, sweep=None), src["sweep"])
    study = optuna.create_study(study_name=sweep_id, storage=storage)
    study.enqueue_trial({"train.lr": 0.3})
    stale = study.ask()                          # asked, never told: the driver died here
    assert stale.suggest_categorical("train.lr", [0.01, 0.1, 0.3]) == 0.3
    result = run_sweep(src, out=out, workers=1, quiet=True, report=False, resume=True)
    trials = optuna.load_study(study_name=sweep_id, storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].params == {"train.lr": 0.3}           # its values were tried again
    assert result.data["optuna"]["n_trials"] == 2 and result.data["n_configs"] == 2


@pytest.mark.slow
def test_the_report_after_a_resumed_sweep_checks_the_runs_it_did_not_write(tmp_path: Path,
                                                                          monkeypatch):
    """The report after a sweep leaves out of its check for damage only the runs this
    driver wrote (Driver.written); runs a resumed sweep found done are read back, and a
    damaged one is named."""
    import mlplab.store.check as check

    read_back = []
    real = check.check_run
    monkeypatch.setattr(check, "check_run", lambda folder, run, *a: read_back.append(run.run_id)
                        or real(folder, run, *a))
    src = xor_sweep({"grid": {"train.lr": [0.01, 0.3]}})
    out = tmp_path / "o"
    first = run_sweep(src, out=out, workers=1, quiet=True)
    assert read_back == [] and first.report_s is not None     # all four written just now
    runs = sorted(Store(out).runs(), key=lambda r: r.run_id)
    (out / "runs" / runs[0].run_id / "metrics.parquet").write_bytes(b"PAR1 not really")
    again = run_sweep(src, out=out, workers=1, quiet=True, resume=True)
    assert sorted(read_back) == [r.run_id for r in runs]
    assert again.sweep_id == first.sweep_id and again.report_s is not None
    html = (out / "report.html").read_text()
    assert "Damaged runs" in html and f"{runs[0].run_id}: metrics.parquet" in html
    assert Store(out).run(runs[0].run_id).status == "damaged"


# --------------------------------------------------------------------------- examples + CLI


def shrink(raw: dict) -> dict:
    raw = json.loads(json.dumps(raw))
    raw["data"]["n"] = 60
    raw["train"].update(epochs=2)
    raw["stopping"]["restarts"] = 0
    raw["sweep"]["seeds"] = 1
    if raw["sweep"]["strategy"] == "random":
        raw["sweep"]["n"] = 4
    if raw["sweep"]["strategy"] == "optuna":
        raw["sweep"]["optuna"]["n_trials"] = 3
    return raw


@pytest.mark.slow
@pytest.mark.parametrize("name, configs", [("staged-xor", 5 + 6 * 3 + 4 * 3),
                                           ("optim-init-gaussians", 12), ("random-spiral", 4),
                                           ("optuna-moons", 3)])
def test_example_sweeps_run(tmp_path: Path, name: str, configs: int):
    raw = shrink(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))
    result = run_sweep(raw, out=tmp_path / name, workers=1, quiet=True, report=name == "staged-xor")
    assert result.data["n_configs"] == configs and result.data["n_failed"] == 0
    assert result.best is not None
    text = result.summary()
    assert "best:" in text and str(tmp_path / name) in text
    if name == "staged-xor":
        assert [s["keys"][0] for s in result.data["stages"]] == ["train.lr", "model.hidden", "train.optimizer"]
        assert result.report is not None and result.report.is_file()
    json.dumps(result.to_dict())                                  # JSON-ready


def test_the_plain_example_config_trains(tmp_path: Path):
    from mlplab.config_file import load_config

    cfg = load_config(EXAMPLES / "xor.yaml", {"train.epochs": 2})
    assert cfg.name == "xor" and cfg.model.hidden == (4,) and cfg.train.optimizer == "momentum"


@pytest.mark.slow
def test_cli_sweep_prints_json_and_rejects_bad_input(tmp_path: Path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(xor_sweep({"grid": {"train.lr": [0.1, 0.2]}})))
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "1", "--json",
                 "--no-report"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_runs"] == 2 and doc["best"]["params"]["train.lr"] in (0.1, 0.2)
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    f.write_text(yaml.safe_dump(xor_sweep({"grid": {"train.lr": [0.1]}, "seeds": "many"})))
    assert main(["sweep", str(f), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "sweep.seeds" in err and "s.yaml" in err
    assert main(["sweep", str(f), "--backend", "ray", "--out", str(tmp_path / "q")]) == 2


@pytest.mark.slow
def test_results_do_not_depend_on_the_process(tmp_path: Path):
    """A sweep's run equals the same config trained by the cohort engine in this process."""
    result = run_sweep(xor_sweep({"grid": {"train.lr": [0.2]}}), out=tmp_path / "o", workers=1,
                       quiet=True, report=False)
    [run_id] = result.data["configs"][0]["run_ids"]
    cfg = from_dict(Store(tmp_path / "o").run_doc(run_id)["config"])
    [rec] = mlplab.engine.cohort.train_cohort([cfg], run_ids=[run_id])
    stored = Store(tmp_path / "o").run(run_id)
    assert stored.val_loss == pytest.approx(rec.best.val_loss, rel=1e-6)
    assert not math.isnan(stored.val_loss)


@pytest.mark.slow
def test_a_second_driver_on_the_same_sweep_is_refused_and_the_lock_dies_with_the_first(tmp_path: Path):
    f, out = tmp_path / "slow.yaml", tmp_path / "out"
    # each cohort a few seconds: the first driver is still at work when the second starts
    f.write_text(yaml.safe_dump(long_sweep()))
    proc = start_process(sweep_cmd(f, out, "--workers", "1"))
    try:
        wait_until(lambda: len(done_ids(out)) >= 1, 240, proc, "a finished run")
        second = subprocess.run(sweep_cmd(f, out, "--workers", "1", "--resume"),
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"pid {proc.pid}" in second.stderr and "being run by" in second.stderr
        os.kill(proc.pid, signal.SIGKILL)             # the lock goes with its process
        proc.wait(timeout=10)
        wait_until(lambda: not process_tree(proc.pid), 20, None, "the orphaned worker to exit")
    finally:
        stop_process(proc)
        assert len(done_ids(out)) < 8, "the first driver finished before the second started"
    resumed = subprocess.run(sweep_cmd(f, out, "--workers", "2", "--resume"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    check_complete(out, 8)                          # every run once: none trained twice


def _sweep_in_a_process(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """``mlplab sweep`` of a 4-run XOR grid (2 workers) in a fresh process into
    ``tmp_path / "o"``; its last line says whether the driver imported torch, and the exit
    code."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump(xor_sweep({"grid": {"train.lr": [0.1, 0.2]}, "seeds": 2})))
    code = ("import sys; from mlplab.cli import main; "
            "rc = main(['sweep', sys.argv[1], '--out', sys.argv[2], '--workers', '2', '--quiet',"
            " *sys.argv[3:]]); print('torch' in sys.modules, rc)")
    return subprocess.run([sys.executable, "-c", code, str(sweep), str(tmp_path / "o"), *flags],
                          capture_output=True, text=True, timeout=300)


def test_the_driver_of_a_local_cpu_sweep_never_imports_torch(tmp_path: Path):
    """Only the workers train: the driver process (the command line's) plans, writes and
    summarises without torch (its import, and its teardown at exit, cost seconds)."""
    out = _sweep_in_a_process(tmp_path, "--no-report")
    assert out.stdout.strip().splitlines()[-1] == "False 0", out.stderr
    assert len(Store(tmp_path / "o").runs(status="done")) == 4


def test_the_report_after_a_local_sweep_takes_its_network_figures_from_a_worker(tmp_path: Path):
    """The best run's figure data (its network evaluated with torch) is made in a process
    forked from the pool's forkserver, which imported torch for the units: the driver
    writes the whole report, the best run's boundary and network included, without it."""
    out = _sweep_in_a_process(tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "False 0", out.stderr
    store = Store(tmp_path / "o")
    best = best_run(store.runs())
    drawn = {p.stem for p in (store.run_dir(best.run_id) / "figures").glob("*.png")}
    assert {"boundary", "network"} <= drawn, drawn
    assert best.run_id in (tmp_path / "o" / "report.html").read_text()
