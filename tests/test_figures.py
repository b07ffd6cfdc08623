"""Every figure renders (PNG of the intended size, not blank) for a run with restarts, a
5-class run, a CSV run with 6 inputs and a store of 50 runs; one colour per layer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from mlplab.figures import draw_run as F
from mlplab.figures import draw_model as FM
from mlplab.figures import draw_store as FS
from mlplab.config import from_dict
from mlplab.figures.data_limit import runs_bayes_limit
from mlplab.figures.data_params import param_curve_info
from mlplab.figures.data_run import LayerCurve, LayerSeriesInfo, RunFigureData, load_run_figdata
from mlplab.figures.data_store import MAX_BARS, StoreFigureData, load_store_figdata, success_info
from mlplab.report.build import draw_all, write_run_figures
from mlplab.stats import bayes_limit
from mlplab.store.store import Store

import figstores
from figstores import fake_run

RUN_FIGURES: dict[str, Callable[[RunFigureData], Any]] = {
    "loss": lambda d: F.draw_loss(d.loss),
    "grad_norm": lambda d: F.draw_layer_series(d.series[0]),
    "weight_norm": lambda d: F.draw_layer_series(d.series[1]),
    "update_ratio": lambda d: F.draw_layer_series(d.series[2]),
    "dist_init": lambda d: F.draw_layer_series(d.series[3]),
    "init_weights": lambda d: F.draw_init_dist(d.init),
    "activations": lambda d: F.draw_activations(d.activations),
    "boundary": lambda d: FM.draw_boundary(d.boundary),
    "boundary_evolution": lambda d: FM.draw_boundary_evolution(d.boundary),
    "network": lambda d: FM.draw_network(d.network),
}
STORE_FIGURES: dict[str, Callable[[StoreFigureData], Any]] = {
    "lr_curve": lambda d: FS.draw_param_curve(d.lr_curve),
    "param_model.init": lambda d: FS.draw_param_curve(next(p for p in d.params if p.x_key == "model.init")),
    "comparison": lambda d: FS.draw_comparison(d.comparison),
    "success": lambda d: FS.draw_success(d.success),
    "stages": lambda d: FS.draw_stages(d.stages[0]),
}


def assert_png(path: Path, fig: Any) -> None:
    """The PNG exists, is ``figsize * DPI`` pixels and has something drawn on it."""
    assert path.is_file() and path.stat().st_size > 5000
    width, height = (round(v) for v in fig.get_size_inches() * F.DPI)
    img = imread(path)
    assert img.shape[:2] == (height, width)
    rgb = img[..., :3]
    assert rgb.std() > 0.05                                   # not one flat colour
    assert (rgb.min(axis=-1) < 0.9).mean() > 0.02             # at least 2% non-white pixels


@pytest.fixture(scope="module", params=["restarts", "five_class", "csv6"])
def run_data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RunFigureData:
    store = Store(figstores.built(tmp_path_factory, request.param))
    return load_run_figdata(store, store.runs()[0].run_id)


@pytest.mark.slow
def test_a_probe_run_on_a_users_model_renders(tmp_path_factory: pytest.TempPathFactory,
                                              tmp_path: Path) -> None:
    store = Store(figstores.built(tmp_path_factory, "probe"))
    data = load_run_figdata(store, store.runs()[0].run_id)
    assert data.boundary is None and data.network is None      # no architecture known
    assert data.init.layers == ("0", "3", "4") and data.init.shapes == ((4, 1, 3), (24,), (1, 24))
    assert data.activations.kind == "both"
    files = write_run_figures(data, tmp_path)
    assert {f.name for f in files} == set(RUN_FIGURES) - {"boundary", "boundary_evolution", "network"}
    for name in ("loss", "init_weights", "activations"):
        fig = RUN_FIGURES[name](data)
        assert_png(tmp_path / f"{name}.png", fig)
    assert len(F.draw_loss(data.loss).axes) == 1                # no accuracy recorded: one panel


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> StoreFigureData:
    return load_store_figdata(Store(figstores.built(tmp_path_factory, "many")))


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_FIGURES)
def test_every_run_figure_renders(run_data: RunFigureData, name: str, tmp_path: Path) -> None:
    fig = RUN_FIGURES[name](run_data)
    assert_png(F.save_figure(fig, tmp_path / f"{name}.png"), fig)
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
    assert any(t.strip() for t in titles), "a figure says what it shows"
    if name != "network":
        assert any(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes), "labelled axes"


@pytest.mark.slow
@pytest.mark.parametrize("name", STORE_FIGURES)
def test_every_store_figure_renders_for_50_runs(many: StoreFigureData, name: str, tmp_path: Path) -> None:
    assert many.n_runs == 50
    fig = STORE_FIGURES[name](many)
    assert_png(F.save_figure(fig, tmp_path / f"{name}.png"), fig)
    assert all(ax.get_xlabel() for ax in fig.axes if ax.axison)


def test_the_50_run_store_has_every_store_figure(many: StoreFigureData) -> None:
    assert {g.label for g in many.lr_curve.groups} == set(figstores.OPTIMIZERS)
    assert [p.x_key for p in many.params] == ["train.lr", "train.optimizer", "model.init"]
    init = many.params[2]
    assert init.x_scale == "category" and init.categories == tuple(sorted(figstores.INITS))
    assert set(many.comparison.panels) == set(figstores.INITS)
    assert set(many.comparison.lines) == set(figstores.OPTIMIZERS)
    assert sum(b.n_runs for b in many.success.bars) == 50
    assert [s.keys for s in many.stages[0].stages] == [("train.lr",), ("train.optimizer",)]


@pytest.mark.slow
def test_write_run_figures_writes_all_ten(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    store = Store(figstores.built(tmp_path_factory, "restarts"))
    data = load_run_figdata(store, store.runs()[0].run_id)
    files = write_run_figures(data, tmp_path)
    assert {f.name for f in files} == set(RUN_FIGURES)
    assert all(f.caption for f in files)
    (tmp_path / "stale.png").write_bytes(b"")
    draw_all([], tmp_path)                                  # a rebuild drops figures no longer drawn
    assert not (tmp_path / "stale.png").exists() and not list(tmp_path.glob("*.png"))


def _rgb(c: Any) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in to_rgb(c))


def test_one_colour_per_layer_in_every_figure(tmp_path_factory: pytest.TempPathFactory) -> None:
    store = Store(figstores.built(tmp_path_factory, "five_class"))
    data = load_run_figdata(store, "gauss5")
    layers = ("layer1", "layer2", "layer3")
    colors = {k: _rgb(v) for k, v in F.layer_colors(layers).items()}
    assert len(set(colors.values())) == 3

    def line_colors(fig: Any) -> dict[str, set]:
        seen: dict[str, set] = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                if line.get_label() in layers:
                    seen.setdefault(line.get_label(), set()).add(_rgb(line.get_color()))
        return seen

    for fig in [F.draw_layer_series(s) for s in data.series] + [F.draw_activations(data.activations)]:
        for layer, found in line_colors(fig).items():
            assert found == {colors[layer]}, (layer, found)
    init = F.draw_init_dist(data.init)
    boxes = [p for p in init.axes[0].patches]
    assert [_rgb(p.get_facecolor()) for p in boxes] == [colors[l] for l in layers]
    heads = [t for t in FM.draw_network(data.network).axes[0].texts if "units)" in t.get_text()]
    assert [_rgb(t.get_color()) for t in heads[1:]] == [colors[l] for l in layers]


def test_gradient_norms_and_update_ratios_use_a_log_axis(run_data: RunFigureData) -> None:
    grad, weight, ratio, _ = (F.draw_layer_series(s) for s in run_data.series)
    assert grad.axes[0].get_yscale() == "log" and ratio.axes[0].get_yscale() == "log"
    assert weight.axes[0].get_yscale() == "linear"


def test_restarts_are_marked_on_the_loss(tmp_path_factory: pytest.TempPathFactory) -> None:
    store = Store(figstores.built(tmp_path_factory, "restarts"))
    data = load_run_figdata(store, "xor-restarts")
    fig = F.draw_loss(data.loss)
    ax = fig.axes[0]
    restart_x = [s.start_epoch + 0.5 for s in data.loss.spans[1:]]
    vertical = [l.get_xdata()[0] for l in ax.get_lines() if l.get_linestyle() == "--"]
    assert restart_x and vertical == pytest.approx(restart_x)
    labels = ax.get_legend_handles_labels()[1]
    assert "restart (fresh init)" in labels and "stopping point" in labels
    assert any(label.startswith("kept weights") for label in labels)


def test_an_all_zero_gradient_keeps_a_linear_axis_without_warnings() -> None:
    x = np.arange(5.0)
    curve = LayerCurve("layer1", "w", 0, x, np.zeros(5), None)
    info = LayerSeriesInfo("grad_norm", "Gradient", ("w", "b"), True, None, ("layer1",), (curve,), (), 0)
    fig = F.draw_layer_series(info)
    assert fig.axes[0].get_yscale() == "linear"
    assert any("zero" in t.get_text() for t in fig.axes[0].texts)


@pytest.mark.slow
def test_two_hundred_configurations_stay_readable(tmp_path: Path) -> None:
    runs = [fake_run(f"r{i}", 10 ** (-3 + 3 * i / 199), "sgd" if i % 2 else "adam", seed=i % 4,
                     val_loss=0.1 + (i % 7) / 10, target=0.3, met=i % 3 == 0) for i in range(200)]
    succ = success_info(runs, {})
    assert succ.n_configs == 200 and len(succ.bars) == MAX_BARS
    fig = FS.draw_success(succ)
    assert fig.get_size_inches()[1] < 16
    assert_png(F.save_figure(fig, tmp_path / "success.png"), fig)
    lr = FS.draw_param_curve(param_curve_info(runs))
    assert_png(F.save_figure(lr, tmp_path / "lr.png"), lr)


def test_a_categorical_key_renders_with_one_tick_per_category(tmp_path: Path) -> None:
    import dataclasses

    hidden = ([4], [8], [16], [8, 8], [32, 32, 32])
    runs = []
    for i in range(40):
        run = fake_run(f"r{i}", 0.1, ("sgd", "adam")[i % 2], seed=i // 10,
                       val_loss=math.nan if i == 3 else 0.05 + (i % 5) / 10 + 0.01 * (i // 10))
        config = {**run.config, "model": {**run.config["model"], "hidden": hidden[i % 5]}}
        runs.append(dataclasses.replace(run, config=config))
    info = param_curve_info(runs, "model.hidden")
    assert info.x_scale == "category" and info.categories == ("4", "8", "16", "8-8", "32-32-32")
    fig = FS.draw_param_curve(info)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(info.categories)
    assert ax.get_xlabel() == "model.hidden" and "val_loss vs model.hidden" in ax.get_title()
    assert_png(F.save_figure(fig, tmp_path / "param_model.hidden.png"), fig)


def test_one_run_has_no_set_figures_but_its_success(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = load_store_figdata(Store(figstores.built(tmp_path_factory, "restarts")))
    assert data.n_runs == 1 and data.lr_curve is None and data.params == () and data.comparison is None
    assert len(data.success.bars) == 1 and data.success.bars[0].with_restarts == 1
    assert math.isfinite(data.success.targets[0])


def _bayes_lines(fig: Any) -> list[float]:
    return [float(line.get_ydata()[0]) for ax in fig.axes for line in ax.get_lines()
            if line.get_gid() == "bayes-limit"]


def test_accuracy_figures_draw_the_bayes_limit(tmp_path_factory: pytest.TempPathFactory,
                                               many: StoreFigureData, tmp_path: Path) -> None:
    store = Store(figstores.built(tmp_path_factory, "many"))
    acc = load_store_figdata(store, "val_acc")
    limit = bayes_limit(from_dict(store.runs()[0].config).data).accuracy
    assert acc.bayes.accuracy == many.bayes.accuracy == limit
    for fig in (FS.draw_param_curve(acc.lr_curve), FS.draw_comparison(acc.comparison)):
        assert set(_bayes_lines(fig)) == {limit}
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert f"Bayes limit {100 * limit:.1f} %" in texts
    assert_png(F.save_figure(fig, tmp_path / "comparison.png"), fig)
    for fig in (FS.draw_param_curve(many.lr_curve), FS.draw_comparison(many.comparison),
                FS.draw_stages(many.stages[0])):
        assert _bayes_lines(fig) == []                       # a loss: no limit drawn


def test_user_data_has_no_bayes_line() -> None:
    import dataclasses

    runs = [fake_run(f"r{i}", (0.01, 0.1)[i % 2], seed=i // 2, val_loss=0.2 + i / 50) for i in range(8)]
    runs = [dataclasses.replace(r, val_acc=0.8, config={**r.config, "data": {"name": "csv:my.csv"}})
            for r in runs]
    info = param_curve_info(runs, metric="val_acc", limit=runs_bayes_limit(runs))
    assert info.bayes_limit is None and _bayes_lines(FS.draw_param_curve(info)) == []


def test_the_best_and_its_ties_are_marked_and_explained() -> None:
    noise = (0.0, 0.02, -0.01, 0.03, 0.01, -0.02, 0.015, 0.005)
    values = {0.01: 0.5, 0.1: 0.1, 0.3: 0.1}                  # 0.1 and 0.3 identical, 0.01 worse
    runs = [fake_run(f"{lr}-{s}", lr, seed=s, val_loss=v + n) for lr, v in values.items()
            for s, n in enumerate(noise)]
    info = param_curve_info(runs)
    assert info.groups[0].tied.tolist() == [False, True, True]
    fig = FS.draw_param_curve(info)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "best" in labels and "tied with the best" in labels
    assert "2 of 3 tied with the best" in ax.get_title()
    band = ax.collections[1]                                 # the group's interval band
    lows = band.get_paths()[0].vertices[:, 1]
    assert lows.min() == pytest.approx(info.groups[0].ci_low.min())
    succ = [fake_run(f"s{lr}-{s}", lr, seed=s, target=0.3, met=v + n < 0.3) for lr, v in values.items()
            for s, n in enumerate(noise)]
    bars = FS.draw_success(success_info(succ, {})).axes[0]
    ticks = [t.get_text() for t in bars.get_yticklabels()]
    assert ticks[0].endswith("★ best") and ticks[1].endswith("= best") and ticks[2] == "lr=0.01"
