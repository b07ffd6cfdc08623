"""Selection that knows about seed noise: select rules, ties with the winner, racing
(seeds added only where the leader is not yet separated), and the grouped runs table and
`mlplab compare` on a real store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.config import ConfigError, from_dict
from mlplab.store.groups import compare_groups, group_rows
from mlplab.stats import summarize
from mlplab.sweep import parse_sweep, run_sweep
from mlplab.sweep.select import leader, overlaps, tied_with

BASE = {"name": "race", "data": {"name": "xor", "n": 40, "noise": 0.1},
        "model": {"hidden": [8]}, "train": {"epochs": 60, "batch_size": 0, "optimizer": "adam"},
        "stopping": {"restarts": 0, "patience": 60}, "probe": {"boundary_snapshots": 0}}


def _entry(cid: str, values: list[float]) -> dict:
    s = summarize(values, statistic="median")
    return {"config_id": cid, "values": values, "score": s.median, "ci": [s.ci_low, s.ci_high]}


def test_seeds_and_rule_are_parsed_and_bad_values_named():
    base = from_dict({"data": {"name": "xor"}})
    spec = parse_sweep({"grid": {"train.lr": [0.1]}, "seeds": {"min": 3, "max": 12, "step": 3},
                        "select": {"metric": "val_acc", "rule": "lower_ci"}}, base)
    assert (spec.seeds, spec.seeds_max, spec.seeds_step) == (3, 12, 3)
    assert (spec.select.rule, spec.select.mode) == ("lower_ci", "max")
    assert parse_sweep({"grid": {"train.lr": [0.1]}, "seeds": 4}, base).seeds_max == 4
    with pytest.raises(ConfigError, match="sweep.select.rule"):
        parse_sweep({"grid": {"train.lr": [0.1]}, "select": {"rule": "luckiest"}}, base)
    with pytest.raises(ConfigError, match="sweep.seeds.max"):
        parse_sweep({"grid": {"train.lr": [0.1]}, "seeds": {"min": 5, "max": 2}}, base)
    with pytest.raises(ConfigError, match="sweep.seeds"):
        parse_sweep({"strategy": "optuna", "space": {"train.lr": {"log_uniform": [0.01, 0.1]}},
                     "seeds": {"min": 3, "max": 6}}, base)


def test_lower_ci_prefers_a_sure_configuration_to_a_lucky_one():
    lucky = _entry("lucky", [0.99, 0.50, 0.98, 0.55, 0.97, 0.52])       # median 0.75, wide
    sure = _entry("sure", [0.80, 0.81, 0.79, 0.80, 0.82, 0.80])         # median 0.80, narrow
    shaky = _entry("shaky", [0.99, 0.99, 0.30, 0.99, 0.30, 0.99])       # median 0.99, wide
    entries = [lucky, sure, shaky]
    assert leader(entries, "max", "median", "best")["config_id"] == "shaky"
    assert leader(entries, "max", "median", "lower_ci")["config_id"] == "sure"


def test_ties_are_what_a_paired_test_cannot_separate():
    best = _entry("best", [0.1, 0.12, 0.11, 0.1, 0.13, 0.1, 0.12, 0.11])
    twin = _entry("twin", [0.11, 0.1, 0.12, 0.11, 0.1, 0.12, 0.11, 0.1])
    worse = _entry("worse", [0.4, 0.42, 0.41, 0.39, 0.43, 0.4, 0.41, 0.42])
    few = _entry("few", [0.5, 0.6])                         # two seeds separate nothing
    tied = tied_with(best, [best, twin, worse, few], "min")
    assert [e["config_id"] for e in tied] == ["best", "twin", "few"]
    assert overlaps(best, twin) and not overlaps(best, worse)


@pytest.mark.slow
def test_racing_adds_seeds_only_where_the_leader_is_not_separated(tmp_path: Path):
    # lr 0.05 and 0.06 are close; 1e-4 barely trains in 60 epochs: a clear loser
    sweep = {"strategy": "grid", "seeds": {"min": 4, "max": 12, "step": 4},
             "select": {"metric": "val_loss"}, "grid": {"train.lr": [0.05, 0.06, 1e-4]}}
    result = run_sweep({**BASE, "sweep": sweep}, out=tmp_path, workers=1, quiet=True, report=False)
    seeds = {e["params"]["train.lr"]: e["n_seeds"] for e in result.data["configs"]}
    assert seeds[1e-4] == 4                                # separated after the first round
    assert seeds[0.05] > 4 and seeds[0.06] > 4             # still overlapping: raced on
    race = result.data["racing"]
    assert race["runs"] == sum(seeds.values()) == result.data["n_runs"]
    assert race["runs_at_max_everywhere"] == 3 * 12
    assert race["saved"] == 36 - race["runs"] > 0
    for e in result.data["configs"]:
        s = summarize([v for v in e["values"] if v is not None], statistic="median")
        assert e["ci"] == pytest.approx([s.ci_low, s.ci_high])
    loser = next(e for e in result.data["configs"] if e["params"]["train.lr"] == 1e-4)
    assert not loser["tied_with_best"]
    assert "racing (seeds 4..12)" in result.summary()


@pytest.fixture(scope="module")
def two_optimizers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("groups")
    sweep = {"strategy": "grid", "seeds": 8, "grid": {"train.optimizer": ["adam", "sgd"]}}
    run_sweep({**BASE, "train": {**BASE["train"], "lr": 0.05}, "sweep": sweep}, out=out,
              workers=1, quiet=True, report=False)
    return out


@pytest.mark.slow
def test_grouped_runs_table_has_n_median_and_interval(two_optimizers: Path, capsys):
    rows = group_rows(two_optimizers, ["train.optimizer"], metric="val_loss")
    assert [r["train.optimizer"] for r in rows] == ["adam", "sgd"]
    for r in rows:
        assert r["n"] == r["n_done"] == r["n_finite"] == 8
        assert r["ci_low"] <= r["median"] <= r["ci_high"]
    assert main(["runs", str(two_optimizers), "--group-by", "train.optimizer", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))
    assert [r["n"] for r in printed] == [8, 8]
    assert main(["runs", str(two_optimizers), "--group-by", "config"]) == 0
    assert "95% CI" in capsys.readouterr().out
    assert main(["runs", str(two_optimizers), "--group-by", "train.nope"]) == 2
    assert "train.nope" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_pairs_by_seed_and_states_the_test(two_optimizers: Path, capsys):
    result = compare_groups(two_optimizers, "train.optimizer=adam", "train.optimizer=sgd")
    c = result["comparison"]
    assert c["paired"] and c["test"] == "paired permutation" and c["n_a"] == 8
    assert c["diff_low"] <= c["diff"] <= c["diff_high"]
    assert 0 <= c["prob_a_better"] <= 1 and 0 < c["p_value"] <= 1
    assert result["a"]["n"] == result["b"]["n"] == 8
    assert main(["compare", str(two_optimizers), "train.optimizer=adam", "train.optimizer=sgd"]) == 0
    text = capsys.readouterr().out
    assert "paired permutation" in text and "P(A better)" in text
    assert main(["compare", str(two_optimizers), "train.optimizer=adam", "train.optimizer=rmsprop"]) == 2
    assert "train.optimizer=rmsprop" in capsys.readouterr().err
    # an A/A comparison is not significant
    same = compare_groups(two_optimizers, "train.optimizer=adam", "train.optimizer=adam")
    assert same["comparison"]["diff"] == 0 and not same["significant"]
    assert math.isfinite(same["comparison"]["p_value"])


def test_an_unreachable_ray_address_is_refused_quickly_and_leaves_no_store(tmp_path: Path, capsys):
    import socket
    import time

    with socket.socket() as s:                   # a port that was free a moment ago: closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(json.dumps({**BASE, "sweep": {"grid": {"train.lr": [0.1]}}}))
    start = time.perf_counter()
    code = main(["sweep", str(sweep_file), "--backend", "ray", "--address", f"127.0.0.1:{port}",
                 "--out", str(tmp_path / "store")])
    assert code == 2 and time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert "--address" in err and f"127.0.0.1:{port}" in err and "nothing answered" in err
    assert not (tmp_path / "store").exists()
    assert main(["sweep", str(sweep_file), "--backend", "ray", "--address", "nohost",
                 "--out", str(tmp_path / "store")]) == 2
    assert "host:port" in capsys.readouterr().err
