"""``mlplab bench --quick``: structure and sanity of the result (no speed asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mlplab.bench import BenchResult, run_bench
from mlplab.bench.workloads import median_times, workloads


def test_quick_bench_result_structure():
    result = run_bench(quick=True)
    assert isinstance(result, BenchResult) and result.quick and result.device == "cpu"
    assert [w.name for w in result.workloads] == ["W1", "W2"]
    for w in result.workloads:
        for value in (w.ratio, w.probe_overhead, w.baseline_rate, w.cohort_rate, w.noprobe_rate):
            assert math.isfinite(value) and value > 0
        assert 0 < w.baseline_models < w.models
        assert w.ratio == w.cohort_rate / w.baseline_rate
        assert w.losses_match and w.models_agreeing == w.baseline_models, w   # trained alike
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["workloads"][0]["models"] == result.workloads[0].models
    table = result.summary()
    assert "W1" in table and "W2" in table and "scaled per model" in table


def test_full_workloads_are_the_issues():
    w1, w2 = workloads(quick=False)
    assert len(w1.configs) == 256 and len(w1.baseline_models) == 16
    c = w1.configs[0]
    assert (c.model.hidden, c.train.optimizer, c.train.lr, c.train.momentum, c.train.epochs,
            c.train.batch_size, c.data.n) == ((4,), "momentum", 0.02, 0.9, 1000, 0, 4)
    assert len({c.train.seed for c in w1.configs}) == 256
    assert len(w2.configs) == 64
    lrs = [c.train.lr for c in w2.configs]
    assert math.isclose(lrs[0], 1e-4) and math.isclose(lrs[-1], 1e-1)
    assert w2.configs[0].model.hidden == (16, 16) and w2.configs[0].train.optimizer == "adam"


@pytest.mark.slow
def test_bench_script_runs_quick():
    script = Path(__file__).resolve().parents[1] / "bench" / "run_bench.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--json"], check=True,
                         capture_output=True, text=True, timeout=300)
    assert [w["name"] for w in json.loads(out.stdout)["workloads"]] == ["W1", "W2"]


@pytest.mark.slow
def test_cohort_phases_script_accounts_for_the_whole_cohort():
    script = Path(__file__).resolve().parents[1] / "bench" / "cohort_phases.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--json", "--rounds", "1",
                          "--loop-models", "1"], check=True, capture_output=True, text=True,
                         timeout=300)
    result = json.loads(out.stdout)
    assert list(result) == ["W1", "W2"]
    for r in result.values():
        phases = r["phases"]
        assert {"steps", "end of epoch", "flush", "records", "other"} <= set(phases)
        assert all(phases[p] > 0 for p in ("steps", "end of epoch", "flush", "records"))
        parts = sum(v for k, v in phases.items() if k != "total")
        assert math.isclose(parts, phases["total"], rel_tol=1e-9)
        assert r["ceiling"]["total"] == min(r["ceiling"].values())   # the sum is slowest


def test_median_times_alternates_and_runs_until_the_rounds_had_their_time():
    calls: list[str] = []
    clock = iter(range(1000))

    def run(name: str, seconds: float):
        def go():
            calls.append(name)
            time.sleep(seconds)
            return next(clock)
        return go

    first, medians, rounds = median_times([run("a", 0.01), run("b", 0.005)], 2, 0.1)
    assert calls[:4] == ["a", "b", "a", "b"]           # alternating, a before b
    assert calls.count("a") == calls.count("b") == rounds
    assert 3 <= rounds <= 7                             # 0.1 s at most 0.015 s a round
    assert first == 0                                   # the first result of runs[0]
    assert medians[0] >= 0.01 and 0.005 <= medians[1] < medians[0]
    _, _, rounds = median_times([run("a", 0.0)], 3)
    assert rounds == 3                                  # repeats when no time is asked


@pytest.mark.slow
def test_a_cohort_that_cannot_compile_says_why_in_the_table():
    # batch size 1: an epoch of more minibatch steps than a compiled epoch writes out
    from dataclasses import replace

    from mlplab.bench import _compile_sentence, _run_workload

    w = workloads(quick=True)[1]
    w = replace(w, configs=[replace(c, train=replace(c.train, batch_size=1))
                            for c in w.configs])
    result = _run_workload(w, torch.device("cpu"), 1, compile=True)
    assert not result.compiled and result.compile_how is None
    assert result.eager_why.startswith("training eagerly, not compiled: an epoch of ")
    assert "is more than the 16 a compiled epoch writes out" in result.eager_why
    assert _compile_sentence(result, True) == \
        f" Not compiled, the cohort ran eagerly; it said: {result.eager_why}."
    assert _compile_sentence(result, False) == ""
