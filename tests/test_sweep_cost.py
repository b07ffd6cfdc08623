"""bench/sweep_cost.py's pieces that need no timing: the grid at each size, and the
synthetic store it makes from a real one (its timings live in the benchmark only)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mlplab.store.store import Store
from mlplab.sweep.driver import load_sweep
from mlplab.sweep.plan import planned_total

import figstores

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "sweep_cost.py"


@pytest.fixture(scope="module")
def sweep_cost():
    spec = importlib.util.spec_from_file_location("sweep_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("runs", [100, 1000, 10000])
def test_the_grid_has_as_many_runs_as_its_size(sweep_cost, tmp_path, runs) -> None:
    base, spec = load_sweep(sweep_cost.grid_file(runs, tmp_path))
    assert planned_total(spec, base) == runs
    assert base.train.epochs == 300 and base.stopping.restarts == 0 and base.probe.every == 1


def test_the_synthetic_store_holds_copies_that_read_like_the_runs(sweep_cost, tmp_path_factory,
                                                                  tmp_path) -> None:
    src = Store(figstores.built(tmp_path_factory, "many"), readonly=True)
    copy = Store(sweep_cost.synthetic_store(src.root, tmp_path / "three", 3), readonly=True)
    runs = src.runs()
    copied = copy.runs()
    assert len(copied) == 3 * len(runs)
    for r in runs[:3]:
        twin = copy.run(f"{r.run_id}.c2")
        assert (twin.val_loss, twin.config) == (r.val_loss, r.config)
        assert len(copy.curves("val_loss")) == 3 * len(src.curves("val_loss"))
        assert copy.attempts(twin.run_id)[0].epochs == src.attempts(r.run_id)[0].epochs
        assert copy.metrics(twin.run_id).equals(src.metrics(r.run_id))


def test_the_report_time_is_read_from_what_the_sweep_prints(sweep_cost) -> None:
    from mlplab.sweep.driver import SweepResult

    done = SweepResult("s", Path("out"), {}, Path("out/report.html"), 2.84)
    assert done.where() == "store: out   report: out/report.html (written in 2.8 s)"
    assert sweep_cost.report_time("...\n" + done.where()) == 2.8
    assert sweep_cost.report_time(SweepResult("s", Path("out"), {}).where()) is None
