"""The loss landscape of a stored run and the learning-rate finder (mlplab.landscape).

Interpolation ends equal the losses of the stored initial and final weights (computed by
the reference path, an ``nn.Module``), filter normalisation matches its definition, the
slice is centred on the final weights, old stores say what is missing, and the finder's
suggestion on the W2 mixture is where a full lr sweep trains best."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import mlplab
from mlplab.cli import main
from mlplab.config import ConfigError, from_dict
from mlplab.landscape.finder import lr_find, suggest, sweep_block, write_sweep
from mlplab.landscape.of_run import landscape
from mlplab.landscape.surface import (filter_normalized, line_rows, path_directions, project,
                                      random_directions)
from mlplab.model.stacked import StackedMLP, layers
from mlplab.store.store import StoreError


def _store(tmp_path, seeds=3, **probe):
    cfg = from_dict({"name": "x", "data": {"name": "xor", "n": 60},
                     "model": {"hidden": [5, 3]},
                     "train": {"epochs": 12, "lr": 0.1, "batch_size": 16},
                     "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 4, **probe}})
    ids = mlplab.run_config(cfg, tmp_path, seeds=seeds, report=False, quiet=True)
    return tmp_path, ids


def _reference_loss(store_dir, run_id, which):
    """The training loss of stored weights, through the nn.Module and the engine's evaluate."""
    from mlplab.data import load_data
    from mlplab.engine.reference import evaluate
    from mlplab.model.mlp import Head

    store = mlplab.Store(store_dir)
    doc = store.run_doc(run_id)
    net = store.load_model(run_id, which=which)
    data = load_data(from_dict(doc["config"]).data)
    return evaluate(net, torch.as_tensor(data.x_train), torch.as_tensor(data.y_train),
                    Head(**doc["info"]["head"]))[0]


def test_interpolation_ends_are_the_initial_and_final_losses(tmp_path):
    root, ids = _store(tmp_path)
    doc = landscape(root / "runs" / ids[0], grid=5, points=11, figures=False, directions="path")
    line = doc["interpolation"]["train_loss"]
    assert line[0] == pytest.approx(_reference_loss(root, ids[0], "init"), rel=1e-5)
    assert line[-1] == pytest.approx(_reference_loss(root, ids[0], "best"), rel=1e-5)
    assert line[0] != pytest.approx(line[-1])
    # every partner line starts at this run's final loss and ends at the partner's
    partners = doc["barrier"]["partners"]
    assert sorted(p["run_id"] for p in partners) == sorted(ids[1:])
    for p in partners:
        assert p["train_loss"][0] == pytest.approx(line[-1], rel=1e-5)
        assert p["train_loss"][-1] == pytest.approx(_reference_loss(root, p["run_id"], "best"),
                                                    rel=1e-5)
        assert p["barrier"] >= 0
    assert doc["barrier"]["summary"]["n"] == 2
    # the slice is centred on the final weights; the path starts at the initial ones
    plane = doc["plane"]
    assert plane["train_loss"][2][2] == pytest.approx(line[-1], rel=1e-5)
    assert plane["path"]["epochs"][0] == -1 and plane["path"]["epochs"][-1] == 11
    assert plane["path"]["train_loss"][0] == pytest.approx(line[0], rel=1e-5)
    assert plane["kind"] == "path" and max(plane["path"]["off_plane"]) < 1
    on_disk = json.loads((root / "runs" / ids[0] / "landscape.json").read_text())
    assert on_disk["interpolation"]["alphas"] == doc["interpolation"]["alphas"]


def test_filter_normalisation_matches_its_definition():
    spec = StackedMLP(((3, 4), (4, 4), (4, 2)), ("0", "2", "4"), "tanh", 0.01, "linear")
    gen = torch.Generator().manual_seed(1)
    w, d = torch.randn(2, spec.n_params, generator=gen)
    out = filter_normalized(d, w, spec)
    for (dw, _), (ww, _), (ow, ob) in zip(layers(spec, d), layers(spec, w), layers(spec, out)):
        for i in range(ww.shape[0]):      # each unit's incoming weights: one filter
            assert torch.linalg.vector_norm(ow[i]) == pytest.approx(
                float(torch.linalg.vector_norm(ww[i])), rel=1e-6)
            assert torch.allclose(ow[i] / ow[i].norm(), dw[i] / dw[i].norm(), atol=1e-6)
        assert torch.count_nonzero(ob) == 0
    dirs = random_directions(spec, w, seed=3)
    assert dirs.shape == (2, spec.n_params)
    assert torch.equal(dirs, random_directions(spec, w, seed=3))


def test_lines_and_projection():
    a, b = torch.zeros(4), torch.arange(4.0)
    rows = line_rows(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(rows[0], a) and torch.equal(rows[-1], b) and torch.equal(rows[1], b / 2)
    dirs = torch.eye(4)[:2]
    coords, off = project(torch.tensor([[2.0, -1.0, 0, 0], [0, 0, 3.0, 4.0]]), a, dirs)
    assert coords[0].tolist() == pytest.approx([2, -1]) and off.tolist() == pytest.approx([0, 1])


def test_a_path_in_a_plane_lies_in_the_plane_of_its_principal_directions():
    gen = torch.Generator().manual_seed(2)
    center, basis = torch.randn(30, generator=gen), torch.randn(2, 30, generator=gen)
    path = center + torch.randn(7, 2, generator=gen) @ basis           # [7, 30] in one plane
    dirs, share = path_directions(path, center)
    coords, off = project(path, center, dirs)
    assert off.max() < 1e-5 and share.sum() == pytest.approx(1.0)
    assert torch.allclose(dirs @ dirs.T, torch.eye(2), atol=1e-5)
    back = center + torch.as_tensor(coords, dtype=torch.float32) @ dirs
    assert torch.allclose(back, path, atol=1e-4)


def test_an_old_run_without_initial_weights_names_the_file(tmp_path):
    root, ids = _store(tmp_path, seeds=1)
    from safetensors.torch import load_file, save_file

    path = root / "runs" / ids[0] / "attempt-0.safetensors"
    save_file({k: t for k, t in load_file(path).items() if not k.startswith("init/")}, path)
    with pytest.raises(StoreError, match="attempt-0.safetensors' holds no init weights"):
        landscape(root, figures=False)
    assert main(["landscape", str(root)]) == 2


def test_a_run_of_the_older_layout_draws_and_names_its_missing_file(tmp_path):
    from mlplab.store.store import Store
    from test_store import _as_older_layout

    root, ids = _store(tmp_path, seeds=1)
    before = landscape(root, figures=False)
    _as_older_layout(Store(root), ids[0])
    after = landscape(root, figures=False)         # its initial weights and path, read as before
    assert after["interpolation"]["train_loss"] == before["interpolation"]["train_loss"]
    assert after["plane"]["path"]["epochs"] == before["plane"]["path"]["epochs"] == [-1, 0, 4, 7, 11]
    (root / "runs" / ids[0] / "attempt-0" / "init.safetensors").unlink()
    with pytest.raises(StoreError, match="attempt-0/init.safetensors' holds no init weights"):
        landscape(root, figures=False)


def test_without_snapshots_the_slice_has_no_path_and_the_cli_draws(tmp_path, capsys):
    root, ids = _store(tmp_path, seeds=1, boundary_snapshots=0)
    assert main(["landscape", str(root / "runs" / ids[0]), "--grid", "7", "--points", "5"]) == 0
    out = capsys.readouterr().out
    assert "no path" in out and "no other seed" in out
    folder = root / "runs" / ids[0]
    assert json.loads((folder / "landscape.json").read_text())["plane"]["path"] is None
    assert sorted(p.name for p in (folder / "landscape").glob("*.png")) == ["interpolation.png",
                                                                            "slice.png"]
    assert main(["landscape", str(root), "--grid", "1"]) == 2
    assert main(["landscape", str(root), "--seeds-of", "nope"]) == 2
    assert main(["landscape", str(root), "--directions", "path"]) == 2   # no snapshots: no path


@pytest.mark.slow
def test_the_report_and_the_dashboard_show_the_landscape(tmp_path):
    root, ids = _store(tmp_path, seeds=2)
    folder = root / "runs" / ids[0]
    landscape(folder, grid=5, points=5)
    for png in (folder / "landscape").glob("*.png"):   # the report draws them again from the JSON
        png.unlink()
    html = mlplab.build_report(folder).read_text()
    assert "Loss landscape of" in html and 'data-name="slice"' in html
    assert (folder / "landscape" / "slice.png").is_file()
    from mlplab.dashboard.views import run_body     # the dashboard's run page draws it too

    page = str(run_body(root, ids[0]))
    assert "fig-landscape_lines" in page and "fig-landscape_slice" in page
    assert "fig-landscape_lines" not in str(run_body(root, ids[1]))


def test_the_package_stays_callable_once_a_submodule_is_imported(tmp_path):
    import mlplab.landscape.surface  # noqa: F401

    root, ids = _store(tmp_path, seeds=1)              # one seed: the reference engine
    doc = mlplab.landscape(root, grid=3, points=3, figures=False)
    assert doc["run_id"] == ids[0] and doc["plane"]["path"]["epochs"] == [-1, 0, 4, 7, 11]


def test_the_suggestion_is_the_lowest_median_and_divergence_counts_as_worst():
    lrs = np.array([0.001, 0.01, 0.1, 1.0])
    losses = np.array([[.9, .8, .9, .85, .9], [.3, .35, .32, .31, .3], [.2, .25, .22, .21, .2],
                       [.01, np.nan, np.nan, np.nan, .01]])
    s = suggest(lrs, losses)
    assert s["lr"] == pytest.approx(0.1) and s["index"] == 2 and not s["at_edge"]
    assert s["low"] <= s["lr"] <= s["high"] <= 1.0
    noisy = np.array([[.5, .5, .5, .5], [.3, .1, .3, .1], [.1, .3, .1, .3], [.9, .9, .9, .9]])
    s = suggest(lrs, noisy)                     # two lrs trade places over seeds: an interval
    assert s["low"] == pytest.approx(0.01) and s["high"] == pytest.approx(0.1)


def test_lr_find_runs_one_cohort_and_seeds_a_sweep(tmp_path, capsys):
    from mlplab.config_file import load_config
    from mlplab.sweep.spec import parse_sweep

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("name: c\ndata: {name: xor, n: 40}\ntrain: {epochs: 4}\n")
    code = main(["lr-find", str(cfg_file), "--seeds", "2", "--points", "4", "--range-steps",
                 "20", "--out", str(tmp_path / "lf"), "--write-sweep", str(tmp_path / "s.yaml"),
                 "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["grid"]["final_loss"]) == 4 and len(doc["grid"]["final_loss"][0]) == 2
    assert doc["epochs"] == 4 and (tmp_path / "lf" / "lr_find.png").is_file()
    swept = load_config(tmp_path / "s.yaml")
    spec = parse_sweep(swept.sweep, swept)
    lr = doc["suggestion"]["lr"]
    first = dict(spec.stages[0])["train.lr"]
    assert lr == pytest.approx(min(first, key=lambda v: abs(np.log(v / lr))), rel=1e-2)
    assert main(["lr-find", str(cfg_file), "--seeds", "0"]) == 2
    assert main(["lr-find", str(cfg_file), "--lr-min", "1", "--lr-max", "0.1"]) == 2


def test_sweep_block_keeps_the_interval_and_a_neighbour_each_side():
    doc = {"grid": {"lrs": [1e-3, 1e-2, 1e-1, 1.0, 10.0]}, "seeds": 3,
           "suggestion": {"lr": 0.1, "low": 0.01, "high": 0.1, "index": 2}}
    block = sweep_block(doc)
    assert block["stages"][0] == {"train.lr": [0.001, 0.01, 0.1, 1.0]} and block["seeds"] == 3


@pytest.mark.slow
def test_the_finder_on_the_w2_mixture_points_where_a_full_sweep_trains_best():
    """W2 (bench): 5-class mixture, 2-16-16-5 ReLU, CE, Adam, minibatch 64. The finder's
    short runs (15 epochs) suggest an lr within one grid step (half a decade) of the lr whose
    full-length runs (100 epochs, early stopping) reach the lowest median validation loss."""
    from mlplab.engine.cohort import train_cohort

    cfg = from_dict({"name": "w2", "data": {"name": "gaussians", "k": 5, "n": 1000},
                     "model": {"hidden": [16, 16], "activation": "relu"},
                     "train": {"loss": "ce", "optimizer": "adam", "batch_size": 64,
                               "epochs": 100},
                     "stopping": {"restarts": 0, "patience": 20},
                     "probe": {"boundary_snapshots": 0}})
    lrs = np.geomspace(1e-4, 1.0, 9)
    doc = lr_find(cfg, seeds=4, lr_min=1e-4, lr_max=1.0, points=9, epochs=15, range_steps=100)
    full = train_cohort([replace(cfg, name=f"lr{i}-{s}", train=replace(cfg.train, lr=float(lr),
                                                                       seed=s))
                         for i, lr in enumerate(lrs) for s in range(3)])
    val = np.array([r.attempts[r.best_attempt].val_loss for r in full]).reshape(len(lrs), 3)
    best_full = lrs[int(np.argmin(np.median(val, axis=1)))]
    step = np.log10(lrs[1] / lrs[0])
    assert abs(np.log10(doc["suggestion"]["lr"] / best_full)) <= step + 1e-9
    s = doc["suggestion"]
    assert s["low"] / 10 ** step <= best_full * (1 + 1e-9) and best_full <= s["high"] * 10 ** step
    assert 1e-4 < doc["range_test"]["suggested"] < 1.0


def test_bad_landscape_arguments_are_config_errors(tmp_path):
    root, ids = _store(tmp_path, seeds=1, boundary_snapshots=0)
    other = from_dict({"name": "y", "data": {"name": "xor", "n": 60}, "model": {"hidden": [2]},
                       "train": {"epochs": 2}, "probe": {"boundary_snapshots": 0}})
    (other_id,) = mlplab.run_config(other, tmp_path, report=False, quiet=True)
    from mlplab.store.groups import config_key

    with pytest.raises(ConfigError, match="same network"):
        landscape(root, ids[0], config_key(mlplab.Store(root).run(other_id).config),
                  figures=False)
    with pytest.raises(ConfigError, match="which"):
        landscape(root, which="init")
    with pytest.raises(StoreError, match="no run or store"):
        landscape(tmp_path / "missing")


def test_write_sweep_refuses_a_missing_config(tmp_path):
    doc = {"grid": {"lrs": [0.1, 1.0]}, "seeds": 2, "title": "t",
           "suggestion": {"lr": 0.1, "low": 0.1, "high": 0.1, "index": 0}}
    with pytest.raises(ConfigError, match="--config"):
        write_sweep(doc, tmp_path / "nope.yaml", tmp_path / "s.yaml")
