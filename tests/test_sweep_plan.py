"""Sweep planning: the strict sweep block, grid / random / staged planners, stage
hand-over, budgets, cohort units and the statistics over seeds. No training here."""

from __future__ import annotations

import math
import statistics as pystats
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlplab.config import ConfigError, from_dict, with_overrides
from mlplab.sweep import load_sweep, parse_sweep
from mlplab.progress import ProgressBar
from mlplab.sweep.commit import Driver
from mlplab.sweep.driver import _staged
from mlplab.sweep.plan import (config_id, draw, hand_over, plan_grid, plan_random, plan_stage,
                               planned_total, run_id_for, seed_runs, sweep_id_for)
from mlplab.sweep.spec import DEFAULT_STAGES, Distribution
from mlplab.sweep.summary import (RunOutcome, config_entry, quantile, statistic)
from mlplab.sweep.units import plan_units, split_sizes

BASE = from_dict({"name": "t", "data": {"name": "xor", "n": 40}, "train": {"epochs": 5}})


def spec_of(block):
    return parse_sweep(block, BASE)


# --------------------------------------------------------------------------- grid


def test_grid_gives_the_product_in_order_with_each_config_exactly():
    spec = spec_of({"grid": {"train.lr": [0.01, 0.1], "model.hidden": [[4], [8, 8]]}})
    cands = plan_grid(spec, BASE)
    expected = [(0.01, (4,)), (0.01, (8, 8)), (0.1, (4,)), (0.1, (8, 8))]
    assert [(c.config.train.lr, c.config.model.hidden) for c in cands] == expected
    for c, (lr, hidden) in zip(cands, expected):
        want = with_overrides(BASE, {"train.lr": lr, "model.hidden": list(hidden)})
        assert c.config == want                 # nothing else changed
        assert c.params_dict() == {"train.lr": lr, "model.hidden": hidden}


def test_grid_duplicates_are_planned_once():
    spec = spec_of({"grid": {"train.lr": [0.1, 0.1, 0.02]}})
    assert [c.config.train.lr for c in plan_grid(spec, BASE)] == [0.1, 0.02]


def test_seeds_repeat_each_config_with_consecutive_seeds_and_stable_ids():
    base = with_overrides(BASE, {"train.seed": 7})
    spec = parse_sweep({"seeds": 3, "grid": {"train.lr": [0.01, 0.1]}}, base)
    runs = seed_runs(plan_grid(spec, base), spec.seeds, "s-1")
    assert [(r.config.train.lr, r.config.train.seed) for r in runs] == [
        (0.01, 7), (0.01, 8), (0.01, 9), (0.1, 7), (0.1, 8), (0.1, 9)]
    assert len({r.run_id for r in runs}) == 6
    assert len({r.config_id for r in runs}) == 2          # seeds share the configuration id
    again = seed_runs(plan_grid(spec, base), spec.seeds, "s-1")
    assert [r.run_id for r in again] == [r.run_id for r in runs]
    assert all(r.run_id.startswith("s-1-") for r in runs)
    assert run_id_for("s-1", runs[0].config) != run_id_for("s-1", runs[1].config)


def test_sweep_id_depends_on_the_file_content_only():
    block = {"grid": {"train.lr": [0.1]}}
    a = sweep_id_for("t", BASE, block)
    assert a == sweep_id_for("t", BASE, {"grid": {"train.lr": [0.1]}})
    assert a != sweep_id_for("t", BASE, {"grid": {"train.lr": [0.2]}})
    assert a != sweep_id_for("t", with_overrides(BASE, {"train.epochs": 6}), block)


def test_budget_caps_runs_and_epochs():
    spec = spec_of({"seeds": 2, "budget": {"runs": 5, "epochs": 3},
                    "grid": {"train.lr": [0.01, 0.1, 1.0], "train.epochs": [2, 10]}})
    assert planned_total(spec, BASE) == 4               # two whole configurations of 2 seeds
    cands = plan_grid(spec, BASE)
    assert sorted({c.config.train.epochs for c in cands}) == [2, 3]


# --------------------------------------------------------------------------- random


def test_random_draws_stay_in_their_space_and_repeat_with_the_seed():
    block = {"strategy": "random", "n": 60, "seed": 3,
             "space": {"train.lr": {"log_uniform": [1.0e-4, 1.0]},
                       "train.momentum": {"uniform": [0.5, 0.9]},
                       "data.n": {"int": [40, 42]},
                       "model.hidden": {"choice": [[4], [8, 8]]}}}
    cands = plan_random(spec_of(block), BASE)
    assert len(cands) == 60
    for c in cands:
        assert 1e-4 <= c.config.train.lr <= 1.0
        assert 0.5 <= c.config.train.momentum <= 0.9
        assert c.config.model.hidden in ((4,), (8, 8))
    assert {c.config.data.n for c in cands} == {40, 41, 42}    # int bounds are inclusive
    assert [c.config for c in plan_random(spec_of(block), BASE)] == [c.config for c in cands]
    other = plan_random(spec_of({**block, "seed": 4}), BASE)
    assert [c.config for c in other] != [c.config for c in cands]


def test_log_uniform_is_uniform_in_log_space():
    rng = np.random.default_rng(0)
    d = Distribution("log_uniform", 1e-4, 1.0)
    logs = np.log10([draw(d, rng) for _ in range(4000)])
    counts, _ = np.histogram(logs, bins=4, range=(-4, 0))
    assert counts.min() > 850 and counts.max() < 1150      # ~1000 per decade pair


def test_random_choice_only_space_removes_repeats():
    spec = spec_of({"strategy": "random", "n": 30, "space": {"train.optimizer": {"choice": ["sgd", "adam"]}}})
    assert sorted(c.config.train.optimizer for c in plan_random(spec, BASE)) == ["adam", "sgd"]


# --------------------------------------------------------------------------- staged


def test_default_stages_are_lr_then_shape_then_optimizer():
    spec = spec_of({"strategy": "staged"})
    assert spec.stages == DEFAULT_STAGES
    assert [[k for k, _ in s] for s in spec.stages] == [["train.lr"], ["model.hidden"], ["train.optimizer"]]


def test_stage_sweeps_its_keys_with_the_rest_fixed_at_the_winners():
    spec = spec_of({"strategy": "staged", "stages": [{"train.lr": [0.01, 0.1]},
                                                     {"model.hidden": [[4], [8]]}]})
    first = plan_stage(spec, BASE, 0, {})
    assert [c.config for c in first] == [with_overrides(BASE, {"train.lr": v}) for v in (0.01, 0.1)]
    carried = hand_over({}, first[1])
    assert carried == {"train.lr": 0.1}
    second = plan_stage(spec, BASE, 1, carried)
    assert [(c.config.train.lr, c.config.model.hidden) for c in second] == [(0.1, (4,)), (0.1, (8,))]
    assert [c.stage for c in second] == [1, 1]


def test_retune_lr_adds_factors_of_the_best_lr_to_later_stages():
    spec = spec_of({"strategy": "staged", "retune_lr": [0.5, 1, 2],
                    "stages": [{"train.lr": [0.01, 0.1]}, {"train.optimizer": ["sgd", "adam"]}]})
    second = plan_stage(spec, BASE, 1, {"train.lr": 0.1})
    assert [(c.config.train.optimizer, c.config.train.lr) for c in second] == [
        ("sgd", 0.05), ("sgd", 0.1), ("sgd", 0.2), ("adam", 0.05), ("adam", 0.1), ("adam", 0.2)]
    assert len(plan_stage(spec, BASE, 0, {})) == 2        # the first stage is not re-tuned


class FakeDriver:
    """Stands in for the executor: a run's val_loss is a known function of its config."""

    sweep_id = "fake"
    runs_of = Driver.runs_of            # the planned runs, as the real driver plans them

    def __init__(self, loss, spec):
        self.loss, self.spec, self.outcomes, self.trained, self.seeds = loss, spec, {}, [], {}
        self._planned = {}                  # runs_of's plans, as the real driver keeps them
        self.bar = ProgressBar(0, quiet=True)

    def execute(self, runs):
        for r in runs:
            if r.run_id not in self.outcomes:
                self.trained.append(r.run_id)
                v = self.loss(r.config)
                self.outcomes[r.run_id] = RunOutcome(r.run_id, "done", {"val_loss": v, "best": v})


def test_staged_sweep_hands_each_winner_to_the_next_stage():
    spec = spec_of({"strategy": "staged", "seeds": 2,
                    "stages": [{"train.lr": [0.001, 0.01, 0.1]},
                               {"model.hidden": [[4], [8], [16]]},
                               {"train.optimizer": ["sgd", "adam"]}]})

    def loss(cfg):   # best lr 0.01 for any shape; best shape [8] only at that lr; adam best
        return (abs(math.log10(cfg.train.lr) + 2) + abs(cfg.model.hidden[0] - 8) / 4
                + (0.0 if cfg.train.optimizer == "adam" else 0.5) + 0.01 * cfg.train.seed)

    fake, info = FakeDriver(loss, spec), {}
    cands = _staged(fake, spec, BASE, info)
    assert [s["winner"] for s in info["stages"]] == [
        {"train.lr": 0.01}, {"model.hidden": [8]}, {"train.optimizer": "adam"}]
    assert [s["score"] for s in info["stages"]] == pytest.approx([1.505, 0.505, 0.005])
    assert len(cands) == 3 + 3 + 2
    # the winner of one stage appears again in the next: trained once, reused
    assert len(fake.trained) == len(set(fake.trained)) == 2 * (3 + 2 + 2)


def test_staged_budget_stops_at_the_stage_where_it_runs_out():
    spec = spec_of({"strategy": "staged", "budget": {"runs": 4},
                    "stages": [{"train.lr": [0.01, 0.1, 1.0]}, {"model.hidden": [[4], [8], [16]]}]})
    fake, info = FakeDriver(lambda cfg: cfg.train.lr, spec), {}
    cands = _staged(fake, spec, BASE, info)
    assert len(cands) == 4 and info["truncated"]
    assert [s["n_configs"] for s in info["stages"]] == [3, 1]


# --------------------------------------------------------------------------- strictness


@pytest.mark.parametrize("block, key", [
    ({"strategy": "grids", "grid": {"train.lr": [0.1]}}, "sweep.strategy"),
    ({"seeds": 0, "grid": {"train.lr": [0.1]}}, "sweep.seeds"),
    ({"grid": {"train.lr": [0.1]}, "select": {"statistic": "best"}}, "sweep.select.statistic"),
    ({"grid": {"train.lr": [0.1]}, "select": {"metric": "loss"}}, "sweep.select.metric"),
    ({"grid": {"train.lrr": [0.1]}}, "sweep.grid.train.lrr"),
    ({"grid": {"model.activation": ["relu", "swish"]}}, "sweep.grid.model.activation"),
    ({"grid": {"train.lr": []}}, "sweep.grid.train.lr"),
    ({"grid": {"train.lr": [-1.0]}}, "sweep.grid.train.lr"),
    ({"grid": {"name": ["x"]}}, "sweep.grid.name"),
    ({"strategy": "grid"}, "sweep.grid"),
    ({"grid": {"train.lr": [0.1]}, "n": 5}, "sweep.n"),
    ({"grid": {"train.lr": [0.1]}, "budget": {"runs": 0}}, "sweep.budget.runs"),
    ({"grid": {"train.lr": [0.1]}, "budget": {"time": 3}}, "sweep.budget.time"),
    ({"grid": {"train.lr": [0.1]}, "sed": 1}, "sweep.sed"),
    ({"strategy": "random", "space": {"train.lr": {"log_uniform": [0, 1]}}}, "sweep.space.train.lr.log_uniform"),
    ({"strategy": "random", "space": {"train.lr": {"uniform": [1, 0.1]}}}, "sweep.space.train.lr.uniform"),
    ({"strategy": "random", "space": {"train.lr": {"normal": [0, 1]}}}, "sweep.space.train.lr"),
    ({"strategy": "random", "space": {"train.lr": [0.1]}}, "sweep.space.train.lr"),
    ({"strategy": "random", "space": {"train.epochs": {"int": [1.5, 3]}}}, "sweep.space.train.epochs.int"),
    ({"strategy": "random", "n": 0, "space": {"train.lr": {"choice": [0.1]}}}, "sweep.n"),
    ({"strategy": "staged", "stages": []}, "sweep.stages"),
    ({"strategy": "staged", "stages": [{"train.lr": [0.1]}, {"model.hiden": [[4]]}]}, "sweep.stages[1].model.hiden"),
    ({"strategy": "staged", "retune_lr": [0, 1]}, "sweep.retune_lr"),
    ({"strategy": "optuna", "space": {"train.lr": {"choice": [0.1]}}, "optuna": {"sampler": "grid"}},
     "sweep.optuna.sampler"),
    ({"strategy": "optuna", "space": {"train.lr": {"choice": [0.1]}}, "optuna": {"pruner": "sha"}},
     "sweep.optuna.pruner"),
    ({"strategy": "optuna", "space": {"train.lr": {"choice": [0.1]}}, "optuna": {"storage": "db.sqlite"}},
     "sweep.optuna.storage"),
    ({"strategy": "optuna", "space": {"train.lr": {"choice": [0.1]}}, "optuna": {"n_trials": -1}},
     "sweep.optuna.n_trials"),
])
def test_bad_sweep_values_name_their_key(block, key):
    with pytest.raises(ConfigError) as e:
        parse_sweep(block, BASE)
    assert e.value.key == key
    assert key in str(e.value)


def test_a_sweep_file_error_names_the_file_and_line(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\ndata: {name: xor}\nsweep:\n  strategy: grid\n  seeds: -2\n"
                 "  grid: {train.lr: [0.1]}\n")
    with pytest.raises(ConfigError, match=r"sweep\.seeds.*bad\.yaml, line 5"):
        load_sweep(f)
    f.write_text("name: nosweep\ndata: {name: xor}\n")
    with pytest.raises(ConfigError, match="sweep"):
        load_sweep(f)


def test_an_unnamed_sweep_file_takes_the_file_name(tmp_path: Path):
    f = tmp_path / "my_sweep.yaml"
    f.write_text("sweep: {grid: {train.lr: [0.1]}}\n")
    base, spec = load_sweep(f)
    assert base.name == "my_sweep" and spec.strategy == "grid" and spec.seeds == 1


@pytest.mark.parametrize("name", ["staged-xor", "optim-init-gaussians", "random-spiral",
                                  "optuna-moons"])
def test_example_sweep_files_parse(name: str):
    root = Path(__file__).resolve().parents[1] / "examples"
    base, spec = load_sweep(root / f"{name}.yaml")
    assert planned_total(spec, base) > 0


# --------------------------------------------------------------------------- units


def test_units_group_cohort_mates_and_split_to_the_cap():
    spec = spec_of({"seeds": 7, "grid": {"train.lr": [0.01, 0.1], "model.hidden": [[4], [8]]}})
    runs = seed_runs(plan_grid(spec, BASE), spec.seeds, "u")
    units = plan_units(runs, workers=1, max_cohort=5)
    by_id = {r.run_id: r for r in runs}
    assert sorted(r for u in units for r in u.run_ids) == sorted(by_id)     # each run once
    for u in units:
        shapes = {by_id[r].config.model.hidden for r in u.run_ids}
        assert len(shapes) == 1                                    # one shape per cohort
        assert len(u) <= 5
    # lr and seed differ inside a cohort: 14 runs of one shape -> 5 + 5 + 4
    assert sorted(len(u) for u in units) == [4, 4, 5, 5, 5, 5]
    assert [u.index for u in units] == list(range(len(units)))


def test_units_spread_over_workers_and_respect_memory():
    spec = spec_of({"seeds": 8, "grid": {"train.lr": [0.01]}})
    runs = seed_runs(plan_grid(spec, BASE), spec.seeds, "u")
    assert [len(u) for u in plan_units(runs, workers=1)] == [8]
    assert [len(u) for u in plan_units(runs, workers=2)] == [4, 4]
    assert [len(u) for u in plan_units(runs, workers=1, memory=1)] == [1] * 8


def test_units_balance_the_workers_where_cohorts_stay_large():
    # bench/sweep-1000.yaml's shape: 5 cohort groups of 200 runs (one per optimizer)
    spec = spec_of({"seeds": 20, "grid": {"train.lr": [0.01 * i for i in range(1, 11)],
                                          "train.optimizer": ["sgd", "momentum", "rmsprop", "adam",
                                                              "adagrad"]}})
    runs = seed_runs(plan_grid(spec, BASE), spec.seeds, "u")
    two = plan_units(runs, workers=2)
    assert [len(u) for u in two] == [100] * 10            # 5 units each, not 600 runs against 400
    # cohorts are not cut below BALANCE_MIN_COHORT to balance: 4 workers still get 200-run
    # groups cut in two (ten units), not in four
    assert [len(u) for u in plan_units(runs, workers=4)] == [100] * 10
    assert {len(u) for u in plan_units(runs, workers=1)} == {200}


def test_split_sizes():
    assert split_sizes(10, 4) == [4, 3, 3]
    assert split_sizes(8, 8) == [8]
    assert split_sizes(1, 5) == [1]
    assert sum(split_sizes(257, 256)) == 257 and max(split_sizes(257, 256)) <= 256


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("values", [[0.3, 0.1, 0.2], [0.5], [0.1, 0.4, 0.2, 0.9]])
def test_statistics_over_seeds_match_numpy(values):
    assert statistic(values, "mean", "min") == pytest.approx(np.mean(values))
    assert statistic(values, "median", "min") == pytest.approx(np.median(values))
    assert statistic(values, "worst", "min") == max(values)
    assert statistic(values, "worst", "max") == min(values)
    assert statistic(values, "mean_minus_std", "max") == pytest.approx(np.mean(values) - np.std(values))
    assert statistic(values, "mean_minus_std", "min") == pytest.approx(np.mean(values) + np.std(values))
    for q in (0.25, 0.5, 0.75):
        assert quantile(values, q) == pytest.approx(np.percentile(values, 100 * q))


def test_failed_seeds_count_as_the_worst_value():
    assert statistic([0.1, math.nan, 0.2], "median", "min") == pytest.approx(0.2)
    assert statistic([0.1, math.nan], "mean", "min") == math.inf
    assert statistic([0.9, math.nan], "worst", "max") == -math.inf
    assert quantile([1.0, math.inf, math.inf], 0.75) == math.inf


def test_config_entry_reports_spread_success_and_restarts():
    cfg = with_overrides(BASE, {"stopping.target": 0.2})
    spec = parse_sweep({"seeds": 4, "grid": {"train.lr": [0.1]}}, cfg)
    cand = plan_grid(spec, cfg)[0]
    runs = seed_runs([cand], 4, "c")
    vals = [0.1, 0.3, 0.15]
    outcomes = {r.run_id: RunOutcome(r.run_id, "done", {"val_loss": v}, n_attempts=2,
                                     attempts_met=int(v <= 0.2), target_met=v <= 0.2)
                for r, v in zip(runs, vals)}
    outcomes[runs[3].run_id] = RunOutcome(runs[3].run_id, "failed", {"val_loss": math.nan}, error="boom")
    e = config_entry(cand, runs, outcomes, spec.select)
    assert (e["n_seeds"], e["n_done"], e["n_failed"]) == (4, 3, 1)
    assert e["success_rate"] == pytest.approx(2 / 7)       # attempts: 2 + 2 + 2 + 1 (failed)
    assert e["run_success_rate"] == pytest.approx(2 / 4)
    assert e["median"] == pytest.approx(pystats.median([0.1, 0.3, 0.15, math.inf]))
    assert e["restarts_mean"] == pytest.approx(3 / 4)
    assert e["run_ids"] == [r.run_id for r in runs]
    assert e["config_id"] == config_id(cand.config) == config_id(replace(cand.config, name="other"))


def test_a_stage_reports_what_it_could_not_tell_from_its_winner():
    # the optimizer does not matter here (a loss of lr and seed only): every optimizer is
    # tied with the winner; the lr stage separates (paired over 8 seeds, 0.3 apart)
    spec = spec_of({"strategy": "staged", "seeds": 8,
                    "stages": [{"train.lr": [0.01, 0.1]},
                               {"train.optimizer": ["sgd", "adam", "rmsprop"]}]})
    fake, info = FakeDriver(lambda cfg: abs(math.log10(cfg.train.lr) + 2) * 0.3
                            + 0.01 * (cfg.train.seed % 3), spec), {}
    _staged(fake, spec, BASE, info)
    lr_stage, opt_stage = info["stages"]
    assert lr_stage["winner"] == {"train.lr": 0.01} and lr_stage["tied"] == []
    assert len(opt_stage["tied"]) == 2 and opt_stage["rule"] == "best"
    assert opt_stage["ci"][0] <= opt_stage["score"] <= opt_stage["ci"][1]
