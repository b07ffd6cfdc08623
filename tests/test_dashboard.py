"""The dashboard's callbacks, called directly on a real store of tiny trained runs: the
runs table, the run page drawn from the figure-data records, compare, the store-level
figures, the HTTP guard on run ids, read-only access, loopback binding and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from realparts import import_or_skip

from mlplab.config import from_dict, to_dict
from mlplab.engine.reference import train
from mlplab.figures.data_run import load_run_figdata
from mlplab.store.store import Store

dash = import_or_skip("dash")

from mlplab.dashboard import callbacks as cb  # noqa: E402
from mlplab.dashboard import create_app, overview, server, views  # noqa: E402

BASE = {"data": {"name": "xor", "n": 60, "noise": 0.15},
        "model": {"hidden": [4], "activation": "relu"},
        "train": {"optimizer": "momentum", "lr": 0.1, "epochs": 12, "batch_size": 16},
        "stopping": {"patience": 3, "restarts": 1, "target": 0.2},
        "probe": {"boundary_snapshots": 4, "activations_every": 5}}
STAGE0_LRS = (0.03, 0.3)
STAGE1_OPTIMIZERS = ("momentum", "adam")
SEEDS = (0, 1)


def _config(name: str, **overrides: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(BASE))
    raw["name"] = name
    for key, value in overrides.items():
        section, field = key.split(".")
        raw[section][field] = value
    return raw


def _write(store: Store, run_id: str, raw: dict[str, Any], sweep_id: str | None = None) -> str:
    store.write_run(train(from_dict(raw), run_id=run_id), sweep_id=sweep_id)
    return run_id


def build_store(root: Path) -> dict[str, Any]:
    """A store like a small staged sweep writes (two stages, two seeds each), plus a
    3-class run outside the sweep, a running and a failed run. Returns what it holds."""
    store = Store(root)
    configs, stages = [], []
    for stage, values in ((0, STAGE0_LRS), (1, STAGE1_OPTIMIZERS)):
        for v in values:
            key = "train.lr" if stage == 0 else "train.optimizer"
            params = {key: v} if stage == 0 else {"train.lr": STAGE0_LRS[1], key: v}
            ids = [_write(store, f"st{stage}-{v}-s{s}",
                          _config("staged", **params, **{"train.seed": s}), "sweep-1") for s in SEEDS]
            scores = [store.run(i).val_loss for i in ids]
            configs.append({"config_id": f"c{stage}-{v}", "params": params, "stage": stage,
                            "run_ids": ids, "score": float(np.median(scores))})
        mine = [c for c in configs if c["stage"] == stage]
        best = min(mine, key=lambda c: c["score"])
        stages.append({"stage": stage, "keys": [key], "winner": {key: best["params"][key]},
                       "score": best["score"], "config_id": best["config_id"], "n_configs": len(mine)})
    store.put_sweep("sweep-1", "staged", "staged", {"strategy": "staged"}, status="done",
                    summary={"select": {"metric": "val_loss", "statistic": "median", "mode": "min"},
                             "stages": stages, "configs": configs})
    gauss = _write(store, "gauss-tanh", _config("gauss", **{"data.name": "gaussians", "data.k": 3,
                                                            "model.activation": "tanh",
                                                            "train.optimizer": "adam",
                                                            "train.lr": 0.05}))
    probe_run = _probe_run(root)
    running = _config("later", **{"train.seed": 7})
    store.mark("still-running", "later", to_dict(from_dict(running)), "running")
    store.mark("broke", "later", to_dict(from_dict(running)), "failed", error="RuntimeError: boom")
    return {"store": store, "sweep_runs": [i for c in configs for i in c["run_ids"]],
            "gauss": gauss, "probe": probe_run, "running": "still-running", "failed": "broke"}


def _probe_run(root: Path) -> str:
    """A run recorded by mlplab.Probe in a plain PyTorch loop on a user's model."""
    import torch

    from mlplab.run import Probe

    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(32, 3, generator=gen)
    y = x.sum(dim=1, keepdim=True)
    probe = Probe(net, out=root, name="mine", optimizer=opt)
    for epoch in range(3):
        for _ in range(4):
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            loss.backward()
            probe.step(loss)
            opt.step()
        probe.epoch(train_loss=loss.item())
    return probe.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Any]:
    return build_store(tmp_path_factory.mktemp("dashboard") / "store")


@pytest.fixture(scope="module")
def root(built) -> Path:
    return built["store"].root


def _figures(component: Any) -> dict[str, Any]:
    """``{graph id: figure}`` of every dcc.Graph in a component tree."""
    found = {}

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for n in node:
                walk(n)
            return
        if isinstance(node, dash.dcc.Graph):
            found[node.id] = node.figure
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str):
            walk(children)

    walk(component)
    return found


def _text(component: Any) -> str:
    """All strings in a component tree, joined."""
    if isinstance(component, str):
        return component
    if isinstance(component, (int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return "" if children is None else _text(children)


def _finite(values: Any) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


# ------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("path, page, run_id", [
    ("/", "overview", ""), (None, "overview", ""), ("/compare", "compare", ""),
    ("/compare/", "compare", ""), ("/run/abc-1", "run", "abc-1"),
    ("/run/..%2F..%2Fetc%2Fpasswd", "run", "../../etc/passwd"), ("/elsewhere", "not_found", ""),
])
def test_route_maps_paths_to_pages(path, page, run_id):
    r = cb.route(path)
    assert (r.page, r.run_id) == (page, run_id)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..", "a/../../b", "/etc/passwd", "",
                                 "x" * 200, "a b", ".hidden"])
def test_page_for_a_bad_run_id_is_not_found_and_reads_nothing(root, bad):
    page = views.page_for(root, "/run/" + bad, "")
    assert page.id == "not-found"
    assert views.run_body(root, bad).id == "not-found"
    assert views.safe_run_version(root, bad) is None


# ------------------------------------------------------------------------------- runs table


def test_table_view_sorts_like_python_with_missing_last(built, root):
    runs = built["store"].runs()
    view = cb.table_view(root, "", "val_loss", descending=False)
    assert view.total == view.matched == len(runs)
    have = [r["run_id"] for r in view.rows]
    done = sorted((r for r in runs if r.val_loss is not None), key=lambda r: r.val_loss)
    missing = {r.run_id for r in runs if r.val_loss is None}
    assert {built["running"], built["failed"], built["probe"]} <= missing
    assert have[:len(done)] == [r.run_id for r in done]
    assert set(have[len(done):]) == missing
    desc = cb.table_view(root, "", "val_loss", descending=True).rows
    assert [r["val_loss"] for r in desc[:len(done)]] == sorted((r.val_loss for r in done), reverse=True)
    assert {r["run_id"] for r in desc[len(done):]} == missing
    created = [r["run_id"] for r in cb.table_view(root, "", "created").rows]
    assert created == [r.run_id for r in runs]


def test_table_view_filters_by_config_key_column_and_words(built, root):
    view = cb.table_view(root, "train.optimizer=adam status=done", "run_id")
    expected = sorted(r.run_id for r in built["store"].runs()
                      if r.status == "done" and r.config["train"]["optimizer"] == "adam")
    assert [r["run_id"] for r in view.rows] == expected and view.matched == len(expected)
    assert view.total == len(built["store"].runs())
    words = cb.table_view(root, "tanh GAUSS", "run_id")
    assert [r["run_id"] for r in words.rows] == [built["gauss"]]
    assert cb.table_view(root, "sweep_id=sweep-1").matched == len(built["sweep_runs"])
    assert cb.table_view(root, "no-such-word").rows == []


def test_table_view_names_a_bad_filter_key_and_still_shows_runs(built, root):
    view = cb.table_view(root, "colour=red", "created")
    assert "colour" in view.error and "train.lr" in view.error
    assert view.matched == len(built["store"].runs())


def test_table_view_pages_and_clamps(built, root):
    n = len(built["store"].runs())
    pages = [cb.table_view(root, "", "run_id", page=p, page_size=3) for p in range(5)]
    assert pages[0].n_pages == math.ceil(n / 3)
    seen = [r["run_id"] for v in pages[:pages[0].n_pages] for r in v.rows]
    assert seen == sorted(r.run_id for r in built["store"].runs())
    assert cb.table_view(root, "", "run_id", page=99, page_size=3).page == pages[0].n_pages - 1
    assert cb.table_view(root, "", "run_id", page=-4, page_size=3).page == 0
    assert cb.table_view(root, "", "not-a-column").rows == cb.table_view(root, "", "created").rows


@pytest.mark.parametrize("picked, page_ids, checked, expected", [
    ([], ["a", "b"], [["a"], []], ["a"]),
    (["a"], ["a", "b"], [[], ["b"]], ["b"]),
    (["x", "a"], ["a", "b"], [["a"], ["b"]], ["x", "a", "b"]),
    (None, [], [], []),
    (["x"], ["a"], [None], ["x"]),
])
def test_merge_picked_keeps_other_pages(picked, page_ids, checked, expected):
    assert cb.merge_picked(picked, page_ids, checked) == expected


def test_query_strings():
    assert cb.runs_from_search("?runs=a,b,a&x=1") == ["a", "b"]
    assert cb.runs_from_search("") == []
    assert cb.filter_from_search("?filter=train.lr%3D0.1+relu") == "train.lr=0.1 relu"
    assert cb.compare_href([]) == "/compare"


# ------------------------------------------------------------------------------- live


def test_signature_changes_when_the_store_is_written_not_when_read(tmp_path):
    store = Store(tmp_path / "s")
    before = cb.store_signature(store.root)
    for _ in range(2):
        cb.table_view(store.root)
        cb.status_counts(store.root)
    assert cb.store_signature(store.root) == before
    raw = _config("x", **{"train.epochs": 2})
    store.mark("new-run", "x", to_dict(from_dict(raw)), "running")
    after = cb.store_signature(store.root)
    assert after != before
    assert cb.status_counts(store.root)["running"] == 1
    version = cb.run_version(store.root, "new-run")
    _write(store, "new-run", raw)
    assert cb.store_signature(store.root) != after
    assert cb.run_version(store.root, "new-run") != version
    assert cb.status_counts(store.root) == {"done": 1, "running": 0, "pending": 0, "failed": 0,
                                            "interrupted": 0}


# ------------------------------------------------------------------------------- run page


def test_run_figures_draw_the_figure_data_records(built, root):
    run_id = built["sweep_runs"][0]
    data = load_run_figdata(built["store"], run_id)
    figs = _figures(views.run_body(root, run_id))
    assert {"fig-loss", "fig-grad_norm", "fig-weight_norm", "fig-update_ratio", "fig-dist_init",
            "fig-activations", "fig-init", "fig-boundary", "fig-boundary_evolution",
            "fig-network"} <= set(figs)
    loss = figs["fig-loss"]
    val = [t for t in loss.data if t.name == "val loss"]
    assert len(val) == len(data.loss.curves) == built["store"].run(run_id).n_attempts
    for trace, curve in zip(val, data.loss.curves):
        np.testing.assert_allclose(_finite(trace.y), curve.val_loss)
        np.testing.assert_allclose(np.asarray(trace.x, float), curve.x)
    grad = next(s for s in data.series if s.family == "grad_norm")
    drawn = [t for t in figs["fig-grad_norm"].data if t.name == "layer1" and t.yaxis == "y"]
    want = [c for c in grad.curves if c.layer == "layer1" and c.part == "w"]
    assert len(drawn) == len(want) > 0
    for trace, curve in zip(drawn, want):
        np.testing.assert_allclose(_finite(trace.y), curve.y)
    assert figs["fig-grad_norm"].layout.yaxis.type == "log"
    boxes = [t for t in figs["fig-init"].data if t.type == "box"]
    for box, w in zip(boxes, data.init.weights):
        np.testing.assert_allclose(np.asarray(box.y, float), w)
    heat = next(t for t in figs["fig-boundary"].data if t.type == "heatmap")
    np.testing.assert_allclose(np.asarray(heat.z, float), data.boundary.probs[..., 1], atol=1e-4)
    steps = figs["fig-boundary_evolution"].layout.sliders[0].steps
    assert [int(s.label) - 1 for s in steps] == list(data.boundary.snapshot_epochs)
    assert figs["fig-boundary_evolution"].layout.sliders[0].active == len(steps) - 1
    for i, step in enumerate(steps):   # each step shows exactly its snapshot's surface
        visible = step.args[0]["visible"]
        shown = [t for t, v in zip(figs["fig-boundary_evolution"].data, visible) if v and
                 t.type == "heatmap"]
        assert len(shown) == 1
        np.testing.assert_allclose(np.asarray(shown[0].z, float),
                                   data.boundary.snapshots[i][..., 1], atol=1e-4)


def test_multiclass_boundary_shows_each_class_where_it_wins(built, root):
    data = load_run_figdata(built["store"], built["gauss"])
    fig = _figures(views.run_body(root, built["gauss"]))["fig-boundary"]
    heats = [t for t in fig.data if t.type == "heatmap"]
    assert len(heats) == data.boundary.probs.shape[-1] == 3
    winner = data.boundary.probs.argmax(-1)
    for k, h in enumerate(heats):
        z = _finite(np.asarray(h.z, dtype=object).ravel()).reshape(winner.shape)
        assert np.array_equal(np.isfinite(z), winner == k)


def test_activation_shares_follow_the_activation(built, root):
    relu = load_run_figdata(built["store"], built["sweep_runs"][0]).activations
    tanh = load_run_figdata(built["store"], built["gauss"]).activations
    assert (relu.kind, tanh.kind) == ("dead", "saturated")
    for run_id, info, field in ((built["sweep_runs"][0], relu, "dead"),
                                (built["gauss"], tanh, "saturated")):
        fig = _figures(views.run_body(root, run_id))["fig-activations"]
        shares = [t for t in fig.data if t.yaxis == "y" and t.mode == "lines"]
        assert len(shares) == len(info.curves) > 0
        for trace, curve in zip(shares, info.curves):
            np.testing.assert_allclose(_finite(trace.y), getattr(curve, field))
        assert fig.layout.yaxis.title.text == f"{field} share"


def test_a_probe_run_from_a_users_loop_has_its_series_and_no_boundary(built, root):
    figs = _figures(views.run_body(root, built["probe"]))
    assert {"fig-loss", "fig-grad_norm", "fig-activations"} <= set(figs)
    assert "fig-boundary" not in figs and "fig-network" not in figs
    data = load_run_figdata(built["store"], built["probe"])
    loss = [t for t in figs["fig-loss"].data if t.name == "train loss"]
    assert len(loss) == len(data.loss.curves)
    np.testing.assert_allclose(_finite(loss[0].y), data.loss.curves[0].train_loss)


def test_run_body_has_findings_attempts_and_config(built, root):
    from mlplab.diagnose.findings import diagnose_path

    # adam at lr 0.3 on this net: diagnose finds something (too high a learning rate)
    with_findings = [r for r in built["sweep_runs"] if diagnose_path(root, r)]
    assert with_findings
    run_id = with_findings[0]
    text = _text(views.run_body(root, run_id))
    for f in diagnose_path(root, run_id):
        assert f.message in text and f.kind.replace("_", " ") in text
    for a in built["store"].attempts(run_id):
        assert a.end_reason in text
    assert "Findings" in text and "Configuration" in text
    assert f"lr: {built['store'].run(run_id).config['train']['lr']}" in text
    quiet = next(r for r in built["sweep_runs"] if not diagnose_path(root, r))
    assert "No problems found." in _text(views.run_body(root, quiet))


def test_run_body_of_unfinished_runs_says_why(built, root):
    running = _text(views.run_body(root, built["running"]))
    assert "not finished" in running and not _figures(views.run_body(root, built["running"]))
    assert "boom" in _text(views.run_body(root, built["failed"]))
    assert views.run_body(root, "no-such-run").id == "not-found"


# ------------------------------------------------------------------------------- compare


def test_compare_overlays_loss_and_grad_norm_of_each_run(built, root):
    a, b = built["sweep_runs"][0], built["gauss"]
    body = views.compare_body(root, [a, b, "../../etc/passwd", built["running"]])
    figs = _figures(body)
    loss = figs["compare-loss"]
    assert {t.legendgroup for t in loss.data} == {a, b}
    for run_id in (a, b):
        data = load_run_figdata(built["store"], run_id)
        vals = [t for t in loss.data if t.legendgroup == run_id and t.line.dash == "solid"]
        assert len(vals) == len(data.loss.curves)
        np.testing.assert_allclose(_finite(vals[0].y), data.loss.curves[0].val_loss)
    grad = figs["compare-grad"]
    assert {t.legendgroup for t in grad.data} == {a, b}
    assert [a.text for a in grad.layout.annotations] == ["layer1", "layer2"]
    text = _text(body)
    assert "../../etc/passwd (not in this store)" in text and f"{built['running']} (running)" in text
    assert not _figures(views.compare_body(root, []))


# ------------------------------------------------------------------------------- overview


def test_store_level_figures_show_sweep_lr_success_and_stages(built, root):
    sweeps, groups, group, metrics, metric, figures, xs, x = overview.store_level(root, None, None)
    assert "sweep-1" in _text(sweeps) or "staged" in _text(sweeps)
    assert group == "auto" and metric == "val_loss" and x == "train.lr"
    assert {"train.lr", "train.optimizer", "model.activation"} <= {o["value"] for o in xs}
    assert "train.optimizer" in [g["value"] for g in groups]
    figs = _figures(figures)
    assert "fig-success" in figs and any(k.startswith("fig-stages") for k in figs)
    stages = next(v for k, v in figs.items() if k.startswith("fig-stages"))
    titles = " ".join(a.text for a in stages.layout.annotations)
    assert "winner lr=0.3" in titles or "winner lr=0.03" in titles
    success = figs["fig-success"]
    n_done = sum(r.status == "done" and (r.config.get("stopping") or {}).get("target") is not None
                 for r in built["store"].runs())
    assert n_done == len(built["sweep_runs"]) + 1
    assert sum(success.data[0].customdata[i][1] for i in range(len(success.data[0].y))) == n_done
    lr = overview.param_figure(root, "none", "val_loss", "train.lr")
    medians = [t for t in lr.data if t.mode == "lines+markers"]
    done_lrs = {r.config["train"]["lr"] for r in built["store"].runs(status="done")}
    assert {*STAGE0_LRS, 0.05} <= done_lrs
    assert len(medians) == 1 and list(medians[0].x) == sorted(done_lrs)
    by_opt = overview.param_figure(root, "train.optimizer", "val_acc")
    optimizers = {r.config["train"]["optimizer"] for r in built["store"].runs(status="done")}
    assert {"momentum", "adam"} <= optimizers
    assert {t.name.split(" (")[0] for t in by_opt.data if t.mode == "lines+markers"} == optimizers


def test_the_overview_shows_parallel_coordinates_and_importance_with_the_seed(built, root):
    grid = overview.store_level(root, None, None)[5]
    figures = _figures(grid)
    parallel = figures["fig-parallel"].data[0]
    keys = overview.snapshot(root).keys
    labels = [d.label.replace(" (log)", "") for d in parallel.dimensions]
    assert labels == [*keys, "median val_loss"]
    assert list(parallel.line.color) == list(parallel.dimensions[-1].values)
    # the importance has its own callback: the overview holds a card that says it is
    # being computed, and the callback's figure fills it
    assert "fig-importance" not in figures and "being computed" in str(grid)
    importance = overview.importance_figure(root)
    # a bar per key and the seed, per evaluator
    bars = [t for t in importance.data if t.type == "bar"]
    assert [t.name for t in bars] == ["fANOVA", "PED-ANOVA"]
    assert all(abs(sum(t.x) - 1) < 1e-9 for t in bars)
    assert any("train.seed" in y for y in bars[0].y)


def test_the_x_axis_can_be_any_varying_key(built, root):
    done = [r for r in built["store"].runs(status="done") if r.config]
    _, _, _, _, _, _, xs, x = overview.store_level(root, "auto", "val_loss", "model.activation")
    assert x == "model.activation"
    assert overview.store_level(root, "auto", "val_loss", "no.such.key")[-1] == "train.lr"
    fig = overview.param_figure(root, "none", "val_loss", "model.activation")
    assert fig.layout.xaxis.type == "category" and "val_loss vs model.activation" in fig.layout.title.text
    act_of = {r.run_id: str(r.config["model"].get("activation")) for r in done}   # probe run: None
    acts = ["None", "relu", "tanh"]
    assert set(act_of.values()) == set(acts)
    (median,) = [t for t in fig.data if t.name.startswith("all runs") and t.error_y.array is not None]
    assert list(median.x) == acts
    for act, y in zip(acts, median.y):
        vals = [r.val_loss for r in done if act_of[r.run_id] == act and r.val_loss is not None]
        assert y == pytest.approx(np.median(vals)) if vals else y is None
    dots = [t for t in fig.data if t.mode == "markers" and t.showlegend is False]
    assert sorted(dots[0].x) == sorted(act_of.values())
    by_opt = overview.param_figure(root, "auto", "val_acc", "train.optimizer")
    optimizers = sorted({r.config["train"]["optimizer"] for r in done})
    assert {"adam", "momentum"} < set(optimizers)                  # and the probe run's SGD
    assert by_opt.layout.xaxis.categoryarray == tuple(optimizers)
    groups = [t for t in by_opt.data if t.showlegend is not False and t.legendgroup != "ties"]
    assert {tuple(t.x) for t in groups} == {tuple(optimizers)}
    lr = overview.param_figure(root, "none", "val_loss", "train.lr")
    assert lr.layout.xaxis.type == "log" and "val_loss vs train.lr" in lr.layout.title.text
    one = overview.param_figure(root, "none", "val_loss", "no.such.key")     # a single value: None
    assert not one.data and "fewer than two values of no.such.key" in str(one.layout)


def _same(a: Any, b: Any) -> bool:
    """Equal field by field through frozen records, tuples and arrays (nan equals nan)."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_the_overview_draws_the_reports_store_figure_data(built, root):
    from mlplab.figures.data_store import load_store_figdata

    shown = overview.store_figdata(root)
    report = load_store_figdata(Store(root, readonly=True))
    assert shown.comparison is not None and shown.success is not None and shown.stages
    # the metric-vs-key curve of the key shown first only (the others when picked)
    assert [p.x_key for p in shown.params] == ["train.lr"] == [p.x_key for p in report.params][:1]
    assert _same(shown, dataclasses.replace(report, params=report.params[:1]))
    other = "val_acc" if report.metric == "val_loss" else "val_loss"
    assert not _same(shown, load_store_figdata(Store(root, readonly=True), other))
    _, _, _, _, metric, figures, _, _ = overview.store_level(root, None, None)
    assert metric == report.metric
    figs = _figures(figures)
    assert len(figs["fig-success"].data[0].y) == len(report.success.bars)
    assert len([k for k in figs if k.startswith("fig-stages")]) == len(report.stages)
    lines = [t for t in figs["fig-comparison"].data if t.mode == "lines" and t.fill is None]
    medians = [t for t in lines if t.name in report.comparison.lines]
    assert len(medians) == len(report.comparison.curves)
    # each seed's curve drawn thin: one trace per line, a gap (NaN) after each seed's curve
    per_seed = [t for t in lines if t.name.endswith(" seeds")]
    assert len(per_seed) == len(report.comparison.curves)
    assert sum(int(np.isnan(np.asarray(t.y, float)).sum()) for t in per_seed) == \
        sum(c.n_seeds for c in report.comparison.curves)
    # few plotly objects: four traces a line, the ties two a panel
    assert len(figs["fig-comparison"].data) <= 4 * len(report.comparison.curves) + \
        2 * len(report.comparison.panels)
    assert figs["fig-comparison"].layout.title.text.startswith(f"{report.comparison.metric} per epoch")


# ------------------------------------------------------------------------------- HTTP


class _OpenRecorder:
    """Paths opened while active (an audit hook cannot be removed, so it is switched)."""

    active: list[str] | None = None

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.active is not None and event == "open" and isinstance(args[0], (str, os.PathLike)):
            cls.active.append(os.path.abspath(os.fspath(args[0])))


sys.addaudithook(_OpenRecorder.hook)


@pytest.mark.parametrize("path", [
    "/run/../../etc/passwd", "/run/..%2F..%2Fetc%2Fpasswd", "/run/..%2Fsecret.txt",
    "/api/run/..%2F..%2Fsecret.txt", "/api/run/../secret.txt", "/run/no-such-run",
    "/api/run/no-such-run", "/run/%2Fetc%2Fpasswd", "/api/run/.."])
def test_a_run_path_outside_the_store_gets_404_and_reads_nothing(root, path):
    secret = root.parent / "secret.txt"
    secret.write_text("top secret")
    client = create_app(root).server.test_client()
    _OpenRecorder.active = []
    try:
        response = client.get(path)
    finally:
        opened, _OpenRecorder.active = _OpenRecorder.active, None
    assert response.status_code == 404
    assert b"secret" not in response.data
    store_dir = str(root.resolve())
    outside = [p for p in opened if not p.startswith(store_dir) and not p.endswith((".py", ".pyc"))
               and "site-packages" not in p]
    assert outside == []


def test_api_run_returns_the_index_row_and_attempts(built, root):
    run_id = built["sweep_runs"][0]
    client = create_app(root).server.test_client()
    got = client.get(f"/api/run/{run_id}").get_json()
    info = built["store"].run(run_id)
    assert got["run"]["run_id"] == run_id and got["run"]["val_loss"] == pytest.approx(info.val_loss)
    assert got["run"]["config"] == info.config
    assert [a["end_reason"] for a in got["attempts"]] == [a.end_reason for a in
                                                         built["store"].attempts(run_id)]
    page = client.get(f"/run/{run_id}")
    assert page.status_code == 200 and b"mlplab" in page.data
    assert b"https://" not in page.data and b"http://" not in page.data


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith("-shm")}


def test_the_dashboard_never_writes_the_store(built, root):
    before = _files(root)
    create_app(root)
    cb.table_view(root, "relu", "val_loss", True)
    overview.store_level(root, None, None)
    overview.param_figure(root, "auto", "val_loss", "model.activation")
    overview.importance_figure(root)
    for run_id in [*built["sweep_runs"][:2], built["gauss"], built["running"]]:
        views.run_body(root, run_id)
    views.compare_body(root, built["sweep_runs"][:2])
    assert _files(root) == before


def test_create_app_rejects_a_directory_that_is_not_a_store(tmp_path):
    from mlplab.store.store import StoreError

    with pytest.raises(StoreError, match="no mlplab store"):
        create_app(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- serving


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("127.0.0.2", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("::", False),
                                            ("example.org", False)])
def test_loopback_hosts(host, loopback):
    assert server.is_loopback(host) is loopback
    assert (server.exposure_warning(host, 8050) is None) is loopback


def test_serve_warns_when_bound_elsewhere(root, monkeypatch, capsys):
    bound = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, host, port, debug: bound.append((host, port)))
    server.serve(root, host="0.0.0.0", port=8123)     # app.run replaced: nothing listens
    server.serve(root, port=8124)
    assert bound == [("0.0.0.0", 8123), ("127.0.0.1", 8124)]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "0.0.0.0:8123" in err and "--host 127.0.0.1" in err


@pytest.mark.parametrize("port", [0, 65536, -1, True, "8050", 80.5])
def test_serve_refuses_a_bad_port_before_anything_listens(root, monkeypatch, port):
    from mlplab.config import ConfigError

    bound = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, host, port, debug: bound.append(port))
    with pytest.raises(ConfigError, match="--port"):
        server.serve(root, port=port)
    assert bound == []


def test_cli_names_the_extra_when_dash_is_missing(root, monkeypatch, capsys):
    from mlplab import cli

    for name in [m for m in sys.modules if m == "mlplab.dashboard" or m.startswith("mlplab.dashboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dash", None)     # import dash now raises ImportError
    assert cli.main(["dashboard", str(root)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'mlplab[dashboard]'" in err and "dash" in err


def test_cli_dashboard_on_a_missing_store_is_a_user_error(tmp_path, capsys):
    from mlplab import cli

    assert cli.main(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert "no mlplab store" in capsys.readouterr().err



# ------------------------------------------------------------------------------- intervals and ties


def _seeded(values: dict[float, float], **extra: Any) -> list:
    """Eight seeds per learning rate: ``value + noise`` (the same noise for every lr)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from figstores import fake_run

    noise = (0.0, 0.02, -0.01, 0.03, 0.01, -0.02, 0.015, 0.005)
    return [fake_run(f"{lr}-{s}", lr, seed=s, val_loss=v + n, **extra) for lr, v in values.items()
            for s, n in enumerate(noise)]


def test_plotly_param_figure_draws_the_records_intervals_dots_ties_and_limit():
    from mlplab.dashboard import plots_store
    from mlplab.figures.data_params import param_curve_info
    from mlplab.stats import BayesLimit

    runs = _seeded({0.01: 0.5, 0.1: 0.1, 0.3: 0.1})
    info = param_curve_info(runs, limit=BayesLimit(0.9, 0.0, "closed form"))
    (g,) = info.groups
    fig = plots_store.param_curve_figure(info)
    band = next(t for t in fig.data if t.fill == "toself")
    assert list(band.y) == pytest.approx(g.ci_high.tolist() + g.ci_low[::-1].tolist())
    dots = next(t for t in fig.data if t.mode == "markers" and t.showlegend is False)
    assert sorted(dots.y) == pytest.approx(sorted(r.val_loss for r in runs))    # every seed
    star = next(t for t in fig.data if t.name == "★ best")
    rings = next(t for t in fig.data if t.name == "○ tied with the best")
    assert list(star.x) == [0.1] and list(rings.x) == [0.3]
    assert not fig.layout.shapes                              # a loss: no Bayes limit
    acc = plots_store.param_curve_figure(dataclasses.replace(info, metric="val_acc", bayes_limit=0.9))
    (line,) = acc.layout.shapes
    assert line.y0 == line.y1 == 0.9 and "Bayes limit 90.0 %" in [a.text for a in acc.layout.annotations]
    cats = param_curve_info([dataclasses.replace(r, config={**r.config, "model": {
        **r.config["model"], "hidden": [int(100 * r.config["train"]["lr"])]}}) for r in runs], "model.hidden")
    fig = plots_store.param_curve_figure(cats)
    (g,) = cats.groups
    median = next(t for t in fig.data if t.error_y.array is not None)
    assert list(median.error_y.array) == pytest.approx((g.ci_high - g.median).tolist())
    assert list(median.error_y.arrayminus) == pytest.approx((g.median - g.ci_low).tolist())


def test_plotly_success_and_comparison_figures_draw_intervals():
    from mlplab.dashboard import plots_store
    from mlplab.figures.data_store import comparison_info, success_info

    runs = _seeded({0.01: 0.5, 0.1: 0.1, 0.3: 0.1}, target=0.3)
    runs = [dataclasses.replace(r, target_met=r.val_loss < 0.3) for r in runs]
    info = success_info(runs, {})
    fig = plots_store.success_figure(info)
    restarts = next(t for t in fig.data if t.name == "with restarts")
    bars = list(reversed(info.bars))
    assert list(restarts.error_x.array) == pytest.approx([b.restarts_rate.ci_high - b.restarts_rate.rate
                                                          for b in bars])
    assert list(restarts.y)[-2:] == ["lr=0.3 = best", "lr=0.1 ★ best"]
    assert "2 of 3 tied with the best" in fig.layout.title.text
    runs = [dataclasses.replace(r, config={**r.config, "train": {**r.config["train"], "optimizer": str(
        r.config["train"]["lr"])}}) for r in runs]
    comp = comparison_info(runs, {r.run_id: np.linspace(1.0, r.val_loss, 4) for r in runs})
    fig = plots_store.comparison_figure(comp)
    for c in comp.curves:
        final = next(t for t in fig.data if t.name == f"{c.line}: final median")
        assert list(final.y) == pytest.approx([c.final_median])
        assert list(final.error_y.arrayminus) == pytest.approx([c.final_median - c.final_low])
        dots = next(t for t in fig.data if t.name == f"{c.line}: final values")
        assert sorted(dots.y) == pytest.approx(sorted(c.final.tolist()))


def test_plotly_stage_figure_draws_every_seed_and_interval_in_three_traces_a_stage(built, root):
    from mlplab.dashboard import plots_store
    from mlplab.figures.data_store import load_store_figdata

    (info,) = load_store_figdata(Store(root, readonly=True)).stages
    fig = plots_store.stage_figure(info)
    assert len(fig.data) <= 3 * len(info.stages)
    for k, stage in enumerate(info.stages):
        axis = "x" if k == 0 else f"x{k + 1}"
        mine = [t for t in fig.data if (t.xaxis or "x") == axis]
        dots, *scores = mine
        assert sorted(dots.y) == pytest.approx(sorted(v for c in stage.candidates for v in c.values))
        for c in stage.candidates:
            (score,) = [t for t in scores if (c.winner and "(winner)" in t.text[0])
                        or (not c.winner and "(winner)" not in t.text[0])]
            at = [i for i, text in enumerate(score.text) if text.startswith(c.label + "<br>")]
            assert len(at) == 1
            assert score.y[at[0]] == pytest.approx(c.score)
            assert score.error_y.array[at[0]] == pytest.approx(max(c.ci_high - c.score, 0.0))
            assert score.marker.color == ("#1e8e3e" if c.winner else "#7f8c99")


def test_gc_paused_nests_and_restores_the_collectors_state():
    import gc

    from mlplab.store.table import gc_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with gc_paused():
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()           # the outer section is still running
        assert gc.isenabled()
        gc.disable()                            # off before: off after
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
