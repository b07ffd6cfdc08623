"""Hyper-parameter importance and parallel coordinates: calibrated on synthetic runs
(a key with no effect gets a near-zero share, a seed that decides the outcome a large one),
then on a real XOR seed study, where the initialisation explains most of the spread."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from realparts import import_or_skip

from mlplab.figures.data_importance import SEED_FACTOR, importance_info
from mlplab.figures.data_parallel import parallel_info

import_or_skip("optuna")

from mlplab.stats.importance import EVALUATORS, param_importances  # noqa: E402


def synthetic_runs(n_seeds: int = 5, seed_effect: float = 1.0, lr_effect: float = 0.3,
                   noise: float = 0.01, rng_seed: int = 0) -> list[SimpleNamespace]:
    """Runs over lr × init × seeds whose val_loss depends on lr and on the seed only: the
    init is swept but has no effect."""
    rng = np.random.default_rng(rng_seed)
    per_seed = rng.normal(0, 1, n_seeds)
    runs = []
    for lr in (0.01, 0.1, 1.0):
        for init in ("xavier_uniform", "he_normal", "orthogonal"):
            for s in range(n_seeds):
                loss = lr_effect * math.log10(lr) + seed_effect * per_seed[s] + rng.normal(0, noise)
                runs.append(SimpleNamespace(
                    config={"model": {"init": init}, "train": {"lr": lr, "seed": s}},
                    val_loss=loss, status="done"))
    return runs


def test_a_key_without_effect_gets_a_near_zero_share_under_both_evaluators():
    runs = synthetic_runs()
    info = importance_info(runs, "val_loss")
    assert importance_info(runs, "val_loss") == info       # deterministic
    assert info.evaluators == EVALUATORS
    assert set(info.factors) == {"model.init", "train.lr", SEED_FACTOR}
    for e in info.evaluators:
        assert info.share(e, "model.init") < 0.05, (e, info.shares)
        assert math.isclose(sum(info.shares[info.evaluators.index(e)]), 1.0)
    # the seed decides most of the spread here; fANOVA sees it over the whole spread
    assert info.share("fANOVA", SEED_FACTOR) > 0.6
    assert info.share("fANOVA", "train.lr") > info.share("fANOVA", "model.init")


def test_without_a_seed_effect_the_seed_gets_a_near_zero_share():
    info = importance_info(synthetic_runs(seed_effect=0.0), "val_loss")
    assert info.share("fANOVA", SEED_FACTOR) < 0.05
    assert info.share("fANOVA", "train.lr") > 0.9


def test_fewer_than_two_swept_keys_give_no_chart_and_say_why():
    runs = [r for r in synthetic_runs() if r.config["model"]["init"] == "he_normal"]
    info = importance_info(runs, "val_loss")
    assert info.shares == () and "train.lr" in info.reason and "at least two" in info.reason


def test_runs_without_a_finite_value_are_left_out_and_counted():
    runs = synthetic_runs()
    runs[0].val_loss = math.nan
    runs[1].val_loss = None
    info = importance_info(runs, "val_loss")
    assert (info.n_runs, info.n_dropped) == (len(runs) - 2, 2)


def test_a_factor_of_many_categories_and_a_constant_one():
    rng = np.random.default_rng(1)
    shapes = [(4,), (8,), (16,), (4, 4), (8, 8), (16, 16), (4, 8), (8, 4), (2,), (32,)]
    pick = rng.integers(0, len(shapes), 80)
    y = np.array([len(shapes[i]) for i in pick]) + rng.normal(0, 0.01, 80)
    shares = param_importances({"hidden": [shapes[i] for i in pick], "same": [1] * 80,
                                "noise": rng.choice(["a", "b"], 80)}, y)
    for e in EVALUATORS:
        assert shares[e]["same"] == 0.0
        assert shares[e]["hidden"] > 0.8, shares


def _optuna_fanova(factors: dict, y: np.ndarray, seed: int) -> dict[str, float]:
    """Optuna's own fANOVA evaluator (public API) on a study of the same runs and
    distributions as :func:`param_importances` reads them."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    from mlplab.stats.importance import _choice, _distributions

    varied = {k: [_choice(v) for v in c] for k, c in factors.items()}
    columns, dists = _distributions(varied, many_categories=False)
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(
        params={k: col[i] for k, col in columns.items()}, distributions=dists, value=float(v))
        for i, v in enumerate(y)])
    return optuna.importance.get_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=seed))


@pytest.mark.parametrize("case", range(6))
def test_fanova_shares_are_optunas(case):
    """The vectorised fANOVA (mlplab.stats.fanova) gives Optuna's evaluator's shares on the
    same study: log-scale floats, integers, few categories (one-hot), many categories
    (integer codes), a plain float; random sizes and effects."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(case)
    n = int(rng.integers(12, 300))
    lr = rng.choice([1e-3, 1e-2, 0.1, 1.0, 3.0], n)
    act = rng.choice(["relu", "tanh", "gelu"], n)
    hidden = rng.integers(1, 20, n)
    opt = rng.choice(list("abcdefghij"), n)
    u = rng.uniform(-2, 5, n)
    w = rng.uniform(0, 2, 5)
    y = (w[0] * np.log10(lr) + w[1] * (act == "relu") + w[2] * 0.1 * hidden
         + w[3] * (opt < "c") + w[4] * 0.1 * u * u + rng.normal(0, 0.3, n))
    factors = {"lr": lr.tolist(), "act": act.tolist(), "hidden": hidden.tolist(),
               "opt": opt.tolist(), "u": u.tolist()}
    ours = param_importances(factors, y, seed=case)["fANOVA"]
    theirs = _optuna_fanova(factors, y, seed=case)
    assert set(theirs) == set(ours)
    for k in theirs:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-12), (k, ours, theirs)


def test_fanova_without_main_effects_gives_no_factor_a_share():
    """y = a XOR b: each factor alone explains nothing (the variance is all interaction);
    the shares of main effects say so instead of splitting 1 evenly."""
    a = np.array([0, 1] * 20)
    b = np.repeat([0, 1], 20)
    shares = param_importances({"a": a.tolist(), "b": b.tolist()}, (a ^ b).astype(float))
    assert shares["fANOVA"] == {"a": 0.0, "b": 0.0}


@pytest.mark.parametrize("module, named", [("optuna", "Optuna"), ("sklearn", "scikit-learn")])
def test_without_the_extra_the_chart_says_what_to_install(monkeypatch, module, named):
    import sys

    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)               # as if not installed
    info = importance_info(synthetic_runs(), "val_loss")
    assert info.shares == ()
    assert info.reason == f"{named} is not installed (pip install 'mlplab[optuna]')"


def test_param_importances_rejects_non_finite_values():
    with pytest.raises(ValueError, match="finite"):
        param_importances({"a": [1, 2]}, [0.0, math.nan])


def test_parallel_coordinates_one_line_per_configuration_and_axis_per_key():
    runs = synthetic_runs(n_seeds=4)
    info = parallel_info(runs, "val_loss")
    assert info.n_configs == 9 and info.n_seeds.tolist() == [4] * 9
    assert [(a.key, a.kind) for a in info.axes] == [("model.init", "category"), ("train.lr", "log")]
    init = info.axes[0]
    assert sorted(init.ticks) == ["he_normal", "orthogonal", "xavier_uniform"]
    assert sorted(set(init.values.tolist())) == [0, 1, 2]
    # the colour is the median over the configuration's seeds, with its interval
    lr = info.axes[1]
    for c in range(info.n_configs):
        mine = [r.val_loss for r in runs if r.config["train"]["lr"] == lr.values[c]
                and r.config["model"]["init"] == init.ticks[int(init.values[c])]]
        assert len(mine) == 4 and np.isclose(info.median[c], np.median(mine))
    assert np.all(info.low <= info.median) and np.all(info.median <= info.high)


def test_parallel_coordinates_need_a_swept_key():
    runs = [r for r in synthetic_runs() if r.config["train"]["lr"] == 0.1
            and r.config["model"]["init"] == "he_normal"]
    assert parallel_info(runs, "val_loss") is None


def test_the_figures_draw_their_records():
    from mlplab.figures.draw_sweep import draw_importance, draw_parallel

    runs = synthetic_runs(n_seeds=4)
    fig = draw_parallel(parallel_info(runs, "val_loss"))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["model.init", "train.lr (log)", "val_loss"]
    fig = draw_importance(importance_info(runs, "val_loss"))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "train.seed (the initialisation)"
    assert len(fig.axes[0].patches) == 3 * len(EVALUATORS)


@pytest.mark.slow
def test_the_seed_explains_most_of_the_xor_seed_study(tmp_path):
    """The seed study's 2-4-1 ReLU net with momentum: whether it learns XOR depends on the
    initialisation; two swept keys that barely matter leave the seed the largest share."""
    import mlplab
    from mlplab.store.store import Store

    for init in ("xavier_uniform", "he_uniform"):
        for lr in (0.02, 0.025):
            cfg = mlplab.from_dict({
                "name": "seed-study", "data": {"name": "xor", "n": 80},
                "model": {"hidden": [4], "activation": "relu", "init": init},
                "train": {"optimizer": "momentum", "lr": lr, "momentum": 0.9, "loss": "mse",
                          "epochs": 150, "batch_size": 0},
                "stopping": {"restarts": 0, "patience": 400},
                "probe": {"activations_every": 50, "boundary_snapshots": 0}})
            mlplab.run_config(cfg, tmp_path, seeds=16, report=False, quiet=True)
    info = importance_info(Store(tmp_path).runs(status="done"), "val_loss")
    assert info.n_runs == 64
    assert info.share("fANOVA", SEED_FACTOR) > 0.5, info.shares
    assert info.share("fANOVA", SEED_FACTOR) > max(info.share("fANOVA", k)
                                                   for k in ("train.lr", "model.init"))


# ---- computed once per set of finished runs, kept in the store -------------------------------

def cached_runs(**kw) -> list[SimpleNamespace]:
    """Synthetic runs with ids (the cache's key names them) and an accuracy too."""
    return [SimpleNamespace(run_id=f"r{i}", val_acc=0.5 - 0.1 * r.val_loss, **vars(r))
            for i, r in enumerate(synthetic_runs(**kw))]


def entries(root) -> list:
    return sorted((root / "cache").glob("importance-*.json"))


def no_evaluation(*_a, **_k):
    raise AssertionError("the importance was evaluated again")


def test_the_importance_is_computed_once_and_read_back_from_the_store(tmp_path, monkeypatch):
    import mlplab.stats.importance as imp

    runs = cached_runs()
    first = importance_info(runs, "val_loss", tmp_path)
    assert first == importance_info(runs, "val_loss") and len(entries(tmp_path)) == 1
    monkeypatch.setattr(imp, "param_importances", no_evaluation)
    assert importance_info(runs, "val_loss", tmp_path) == first       # read, not evaluated
    # another metric value, another run, another metric: other inputs, evaluated again
    for changed, metric in ((runs[:-1], "val_loss"), (runs, "val_acc")):
        with pytest.raises(AssertionError, match="evaluated again"):
            importance_info(changed, metric, tmp_path)
    moved = [SimpleNamespace(**{**vars(r), "val_loss": r.val_loss + (i == 3)})
             for i, r in enumerate(runs)]
    with pytest.raises(AssertionError, match="evaluated again"):
        importance_info(moved, "val_loss", tmp_path)


@pytest.mark.parametrize("damage", [b"\x00\xff\xfe garbage \x80", b"{\"kind\": \"importance\"",
                                    b"[1, 2, 3]", "shares out of range", "another digest", b""])
def test_a_damaged_cache_entry_is_recomputed_never_trusted(tmp_path, damage):
    import json

    runs = cached_runs()
    first = importance_info(runs, "val_loss", tmp_path)
    (path,) = entries(tmp_path)
    if damage == "shares out of range":
        doc = json.loads(path.read_text())
        doc["value"]["shares"][0][0] = 7.0
        path.write_text(json.dumps(doc))
    elif damage == "another digest":
        doc = json.loads(path.read_text())
        doc["digest"] = "0" * 64
        path.write_text(json.dumps(doc))
    else:
        path.write_bytes(damage)
    assert importance_info(runs, "val_loss", tmp_path) == first       # recomputed, same answer
    assert json.loads(path.read_text())["value"]["shares"] == [list(r) for r in first.shares]


def test_the_dashboard_reads_the_cache_but_never_writes_it(tmp_path, monkeypatch):
    import mlplab.stats.importance as imp

    runs = cached_runs()
    info = importance_info(runs, "val_loss", tmp_path, write=False)
    assert not (tmp_path / "cache").exists()
    importance_info(runs, "val_loss", tmp_path)                        # the report fills it
    monkeypatch.setattr(imp, "param_importances", no_evaluation)
    assert importance_info(runs, "val_loss", tmp_path, write=False) == info


def test_an_unwritable_store_still_gets_its_importance(tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    runs = cached_runs()
    assert importance_info(runs, "val_loss", tmp_path) == importance_info(runs, "val_loss")


def _compute_in_a_process(root: str, rng_seed: int) -> tuple:
    info = importance_info(cached_runs(rng_seed=rng_seed), "val_loss", root)
    return info.shares


def test_processes_writing_and_reading_one_store_at_once_agree(tmp_path):
    """Six real processes evaluate and store the importance of three sets of runs at once
    (two writers per entry, racing on the same file and on pruning); every answer equals
    the one computed without a cache, and what is left in the store reads back the same."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    seeds = [0, 1, 2] * 2
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        got = list(pool.map(_compute_in_a_process, [str(tmp_path)] * len(seeds), seeds))
    for s, shares in zip(seeds, got):
        assert shares == importance_info(cached_runs(rng_seed=s), "val_loss").shares
    assert len(entries(tmp_path)) == 3
    assert not list((tmp_path / "cache").glob(".*.tmp"))                # no half-written file
    for s in (0, 1, 2):
        assert importance_info(cached_runs(rng_seed=s), "val_loss", tmp_path).shares == got[s]


def test_the_reports_section_fills_the_cache_the_dashboard_reads(tmp_path, monkeypatch):
    import mlplab.stats.importance as imp
    from mlplab.dashboard.plots_sweep import store_importance_figure
    from mlplab.report.sweep import hyperparameter_figures

    runs = cached_runs()
    _, info = hyperparameter_figures(runs, "val_loss", store_root=tmp_path)
    assert info.shares and len(entries(tmp_path)) == 1
    monkeypatch.setattr(imp, "param_importances", no_evaluation)
    fig = store_importance_figure(tmp_path, runs, "val_loss")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [list(t.x) for t in bars] == [list(row) for row in info.shares]
