"""Figure data: the records computed from known histories, weights and run sets."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mlplab.config import ModelConfig, from_dict
from mlplab.figures.arrays import layer_weights
from mlplab.figures.data_model import boundary_info, full_probs, network_info, unit_maps
from mlplab.figures.data_params import param_curve_info, store_param_curves
from mlplab.figures.data_run import (SMOOTH_ABOVE, UNDEFINED_RATIO, activation_info,
                                     attempt_spans, expected_spread, init_dist_info,
                                     layer_series_info, load_run_figdata, loss_info,
                                     rolling_median)
from mlplab.figures.data_limit import runs_bayes_limit
from mlplab.figures.data_store import (comparison_info, config_label, flatten, load_store_figdata,
                                       seed_matrix, stage_info, success_info, varying_keys)
from mlplab.stats.ties import ties_with_best
from mlplab.metrics import MetricsLog
from mlplab.model.boundary import plane_points
from mlplab.model.mlp import build_mlp, resolve_head
from mlplab.stats import bayes_limit, compare, holm, success_rate, summarize
from mlplab.store.store import AttemptInfo, RunInfo, Store

import figstores
from figstores import fake_run


def attempt(n: int, epochs: int, steps: int, reason: str = "plateau", best_epoch: int = 0,
            met: bool = False, run_id: str = "r") -> AttemptInfo:
    return AttemptInfo(run_id, n, n, reason, epochs, steps, best_epoch, 0.1, 0.1, 1.0, 0.1, 1.0,
                       0.1, met, 0.0)


def two_attempt_frame() -> pd.DataFrame:
    """Attempt 0: 2 epochs of 3 steps; attempt 1: 3 epochs of 3 steps."""
    log = MetricsLog()
    for a, epochs in ((0, 2), (1, 3)):
        for e in range(epochs):
            for m, v in (("train_loss", 1.0 / (e + 1) + a), ("val_loss", 2.0 / (e + 1) + a),
                         ("train_acc", 0.1 * e), ("val_acc", 0.2 * e)):
                log.add(a, 3 * (e + 1), e, "epoch", "", m, v)
            for s in range(3 * e, 3 * e + 3):
                log.add(a, s, e, "step", "", "loss", 1.0)
                for layer in ("layer1", "layer2"):
                    log.add(a, s, e, "step", layer, "grad_norm_w", 10 * a + s + (layer == "layer2"))
                    log.add(a, s, e, "step", layer, "grad_norm_b", 0.5)
                    log.add(a, s, e, "step", layer, "update_ratio_w", 1e-3)
                    log.add(a, s, e, "step", layer, "update_ratio_b", 3e38 if s == 0 else 2e-3)
                log.add(a, s, e, "act", "layer1", "dead_frac", 0.25 * a)
                log.add(a, s, e, "act", "layer1", "sat_frac", 0.5)
                log.add(a, s, e, "act", "layer1", "act_mean", 0.1)
                log.add(a, s, e, "act", "layer1", "act_std", 1.0)
    return log.to_frame()


# ----------------------------------------------------------------------------- one run


def test_attempt_spans_lay_attempts_end_to_end() -> None:
    spans = attempt_spans(two_attempt_frame(), [attempt(0, 2, 6), attempt(1, 3, 9, "target")], 1)
    assert [(s.start_epoch, s.start_step, s.epochs, s.steps) for s in spans] == [(0, 0, 2, 6), (2, 6, 3, 9)]
    assert [s.kept for s in spans] == [False, True]
    assert spans[1].end_reason == "target"


def test_attempt_spans_without_attempt_rows_use_the_frame() -> None:
    spans = attempt_spans(two_attempt_frame(), [])
    assert [(s.start_epoch, s.start_step, s.epochs) for s in spans] == [(0, 0, 2), (2, 6, 3)]
    assert spans[-1].kept


def test_loss_info_offsets_restarts_and_keeps_values() -> None:
    frame = two_attempt_frame()
    info = loss_info(frame, attempt_spans(frame, [attempt(0, 2, 6), attempt(1, 3, 9)], 1),
                     "val_loss", 0.05)
    c0, c1 = info.curves
    assert c0.x.tolist() == [1.0, 2.0] and c1.x.tolist() == [3.0, 4.0, 5.0]
    assert c0.val_loss.tolist() == [2.0, 1.0]
    assert c1.train_loss.tolist() == pytest.approx([2.0, 1.5, 1 + 1 / 3])
    assert c1.val_acc.tolist() == pytest.approx([0.0, 0.2, 0.4])
    assert info.target == 0.05 and not info.per_step
    with pytest.raises(ValueError):     # records are read-only
        c0.x[0] = 5.0


def test_loss_info_falls_back_to_step_loss_for_a_probe_run() -> None:
    log = MetricsLog()
    for s in range(5):
        log.add(0, s, 0, "step", "", "loss", 5.0 - s)
    frame = log.to_frame()
    info = loss_info(frame, attempt_spans(frame, []))
    assert info.per_step and info.curves[0].train_loss.tolist() == [5, 4, 3, 2, 1]
    assert np.all(np.isnan(info.curves[0].val_loss))


def test_layer_series_offsets_steps_and_orders_weights_first() -> None:
    frame = two_attempt_frame()
    spans = attempt_spans(frame, [attempt(0, 2, 6), attempt(1, 3, 9)], 1)
    info = layer_series_info(frame, "grad_norm", ["layer1", "layer2"], spans)
    assert info.log_y
    keys = [(c.part, c.layer, c.attempt) for c in info.curves]
    assert keys[:4] == [("w", "layer1", 0), ("w", "layer1", 1), ("w", "layer2", 0), ("w", "layer2", 1)]
    c = next(c for c in info.curves if (c.part, c.layer, c.attempt) == ("w", "layer2", 1))
    assert c.x.tolist() == [6.0 + s for s in range(9)]
    assert c.y.tolist() == [10.0 + s + 1 for s in range(9)]
    assert all(c.y_smooth is None for c in info.curves)        # short series: no smoothing


def test_update_ratios_of_a_zero_bias_are_left_out() -> None:
    frame = two_attempt_frame()
    info = layer_series_info(frame, "update_ratio", ["layer1", "layer2"], attempt_spans(frame, []))
    bias = [c for c in info.curves if c.part == "b"]
    assert info.undefined == 4                          # step 0 of 2 attempts x 2 layers
    for c in bias:
        assert math.isnan(c.y[0]) and np.all(c.y[1:] == 2e-3)
    assert info.reference == pytest.approx(1e-3)
    assert UNDEFINED_RATIO < 3e38


def test_layer_series_rejects_unknown_family() -> None:
    frame = two_attempt_frame()
    with pytest.raises(ValueError, match="allowed"):
        layer_series_info(frame, "grad", ["layer1"], ())


def test_long_series_get_a_rolling_median() -> None:
    log = MetricsLog()
    y = np.random.default_rng(0).lognormal(size=SMOOTH_ABOVE + 40)
    log.add_arrays(0, np.arange(len(y)), 0, "step", "layer1", "grad_norm_w", y)
    frame = log.to_frame()
    info = layer_series_info(frame, "grad_norm", ["layer1"], attempt_spans(frame, []))
    c = info.curves[0]
    window = max(3, len(y) // 60)
    i = 100                                             # an inner point: a full centred window
    lo = i - window // 2
    assert c.y_smooth[i] == pytest.approx(np.median(y[lo:lo + window]))
    assert rolling_median(np.array([1.0, 9.0, 2.0]), 3).tolist() == [5.0, 2.0, 5.5]


def test_activation_info_picks_the_share_of_the_activation() -> None:
    frame = two_attempt_frame()
    spans = attempt_spans(frame, [])
    relu = activation_info(frame, ["layer1", "layer2"], "relu", spans)
    tanh = activation_info(frame, ["layer1", "layer2"], "tanh", spans)
    gelu = activation_info(frame, ["layer1"], "gelu", spans)
    assert relu.kind == "dead" and tanh.kind == "saturated" and gelu.kind is None
    assert relu.layers == ("layer1",)                   # the output layer has no act records
    assert relu.curves[1].dead.tolist() == [0.25] * 9 and relu.curves[1].x[0] == 6
    assert tanh.curves[0].saturated.tolist() == [0.5] * 6
    assert activation_info(frame, [], "", spans).kind == "both"     # a Probe's unknown activations


# ----------------------------------------------------------------------------- weights


def test_layer_weights_order_sequential_keys_naturally() -> None:
    state = {f"{i}.weight": torch.full((2, 2), float(i)) for i in (0, 2, 10)}
    state.update({f"{i}.bias": torch.zeros(2) for i in (0, 2, 10)})
    found = layer_weights(state, ["layer1", "layer2", "layer3"])
    assert [w[0, 0] for _, w, _ in found] == [0.0, 2.0, 10.0]
    named = layer_weights({"fc.weight": torch.ones(3, 2)}, ["fc"])
    assert named[0][0] == "fc" and named[0][2] is None


@pytest.mark.parametrize("spec, kind, value", [
    ("xavier_uniform", "bound", math.sqrt(6 / (300 + 200))),
    ("xavier_normal", "std", math.sqrt(2 / (300 + 200))),
    ("he_uniform", "bound", math.sqrt(6 / 300)),
    ("he_normal", "std", math.sqrt(2 / 300)),
    ("normal(0.3)", "std", 0.3),
    ("uniform(0.2)", "bound", 0.2),
])
def test_expected_spread_matches_the_drawn_weights(spec: str, kind: str, value: float) -> None:
    net = build_mlp(ModelConfig(hidden=(200,), init=spec), resolve_head(ModelConfig(), "auto", 3), 300, 0)
    info = init_dist_info(net.state_dict(), ["layer1", "layer2"], 0,
                          {"init": spec, "activation": "relu", "layer_init": {}})
    w = info.weights[0]
    assert info.shapes[0] == (200, 300)
    assert np.array_equal(w, net[0].weight.detach().double().numpy().ravel())
    assert info.expected_kind[0] == kind and info.expected[0] == pytest.approx(value)
    assert expected_spread(spec, 300, 200)[0] == pytest.approx(value)
    if kind == "bound":
        assert np.abs(w).max() <= value and np.abs(w).max() > 0.98 * value
    else:
        assert w.std() == pytest.approx(value, rel=0.03)


def test_init_dist_info_names_per_layer_overrides() -> None:
    model = ModelConfig(hidden=(4,), init="xavier_uniform", layer_init={"1": "normal(0.5)"})
    net = build_mlp(model, resolve_head(model, "auto", 2), 2, 0)
    info = init_dist_info(net.state_dict(), ["layer1", "layer2"], 1,
                          {"init": model.init, "layer_init": dict(model.layer_init), "activation": "relu"})
    assert info.schemes == ("xavier_uniform", "normal(0.5)") and info.expected[1] == 0.5
    assert info.attempt == 1


# ----------------------------------------------------------------------------- boundary, network


def test_full_probs_expands_a_sigmoid_unit() -> None:
    p = full_probs(np.array([[0.2], [0.9]]))
    assert np.allclose(p, [[0.8, 0.2], [0.1, 0.9]])
    assert full_probs(np.array([[0.2, 0.8]])).shape == (1, 2)


def test_boundary_info_projects_points_into_the_plane() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    center, basis = x.mean(0), np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:2]
    packed = {"grid_u": np.linspace(-2, 2, 5), "grid_v": np.linspace(-1, 1, 4), "center": center,
              "basis": basis, "epochs": np.array([0, 4]), "probs": rng.uniform(size=(2, 4, 5, 1))}

    class Data:
        x_train, y_train, x_test, y_test = x[:20], np.zeros(20, int), x[20:], np.ones(10, int)
        feature_names = ("a", "b", "c", "d")

    info = boundary_info(packed, None, Data, ["no", "yes"], attempt=2, accuracy=(0.9, 0.8))
    assert np.allclose(info.train_xy, (x[:20].astype(np.float64) - center) @ basis.T, atol=1e-6)
    assert info.axis_labels == ("PC1", "PC2") and "4 inputs" in info.plane_note
    assert info.snapshots.shape == (2, 4, 5, 2) and info.snapshot_epochs == (0, 4)
    assert np.array_equal(info.probs, info.snapshots[-1])   # no kept-weight probs: last snapshot
    assert (info.train_acc, info.test_acc, info.attempt) == (0.9, 0.8, 2)
    pts = plane_points(packed["grid_u"], packed["grid_v"], center, basis)
    assert pts.shape == (20, 4) and (pts[1] - pts[0]) @ basis[0] == pytest.approx(1.0)


def test_unit_maps_equal_a_hand_forward_pass() -> None:
    model = ModelConfig(hidden=(3,), activation="relu")
    head = resolve_head(model, "auto", 2)
    net = build_mlp(model, head, 2, seed=3)
    u, v = np.linspace(-1, 1, 6), np.linspace(0, 2, 5)
    points = plane_points(u, v, np.zeros(2), np.eye(2))
    maps, probs = unit_maps(net, points, (5, 6), head.output)
    w1, b1 = net[0].weight.detach().double().numpy(), net[0].bias.detach().double().numpy()
    w2, b2 = net[2].weight.detach().double().numpy(), net[2].bias.detach().double().numpy()
    hidden = np.maximum(points @ w1.T + b1, 0)                         # [30, 3]
    out = 1 / (1 + np.exp(-(hidden @ w2.T + b2)))                      # [30, 1]
    assert [m.shape for m in maps] == [(2, 5, 6), (3, 5, 6), (1, 5, 6)]
    assert maps[0][1] == pytest.approx(points[:, 1].reshape(5, 6))
    assert maps[1] == pytest.approx(hidden.T.reshape(3, 5, 6), abs=1e-5)
    assert maps[2][0] == pytest.approx(out[:, 0].reshape(5, 6), abs=1e-5)
    assert probs[..., 1] == pytest.approx(out[:, 0].reshape(5, 6), abs=1e-5)
    info = network_info(net.state_dict(), ["layer1", "layer2"], ["x0", "x1"], ["0", "1"], "relu",
                        head.output, maps)
    assert info.layer_sizes == (2, 3, 1)
    assert info.node_names == (("x0", "x1"), ("h1.1", "h1.2", "h1.3"), ("P(1)",))
    assert np.array_equal(info.weights[1], w2)


# ----------------------------------------------------------------------------- sets of runs


def test_flatten_and_varying_keys_ignore_seed_and_name() -> None:
    runs = [fake_run("a", 0.1, seed=0), fake_run("b", 0.1, seed=1), fake_run("c", 0.3, "adam")]
    assert flatten({"model": {"hidden": [4, 4]}}) == {"model.hidden": (4, 4)}
    assert varying_keys([r.config for r in runs]) == ["train.lr", "train.optimizer"]
    assert config_label(runs[2].config, ["train.lr", "train.optimizer"]) == "lr=0.3 optimizer=adam"
    # one dotted key string for every config (10,000 flat forms held 490,000 copies)
    a, b = (flatten({"train": {"lr": lr, "optimizer": "sgd"}}) for lr in (0.1, 0.3))
    assert all(x is y for x, y in zip(a, b)) and list(a) == ["train.lr", "train.optimizer"]


def test_lr_curve_quartiles_per_lr_and_group() -> None:
    vals = {0.01: [0.5, 0.4, 0.3, math.nan], 0.1: [0.2, 0.1, 0.3, 0.25]}
    runs = [fake_run(f"{lr}-{i}", lr, seed=i, val_loss=v) for lr, vs in vals.items() for i, v in enumerate(vs)]
    runs += [fake_run("adam", 0.1, "adam", val_loss=0.05)]
    info = param_curve_info(runs)
    assert info.group_key == "train.optimizer" and info.n_runs == 9
    assert info.x_key == "train.lr" and info.x_scale == "log" and info.categories == ()
    sgd = next(g for g in info.groups if g.label == "sgd")
    assert sgd.grid_x.tolist() == [0.01, 0.1]
    assert sgd.median.tolist() == pytest.approx([0.4, np.median([0.2, 0.1, 0.3, 0.25])])
    assert sgd.q25[1] == pytest.approx(np.percentile([0.2, 0.1, 0.3, 0.25], 25))
    assert sgd.q75[0] == pytest.approx(np.percentile([0.5, 0.4, 0.3], 75))
    assert sgd.n_bad.tolist() == [1, 0]
    assert param_curve_info([fake_run("x", 0.1), fake_run("y", 0.1, seed=1)]) is None


def test_lr_curve_groups_in_label_order_whatever_the_run_order() -> None:
    # the comparison's lines are sorted by label; the lr curve's groups must be too, so
    # one optimizer gets one colour in both figures
    runs = [fake_run(f"{o}-{lr}", lr, o) for o in ("sgd", "momentum", "adam") for lr in (0.01, 0.1)]
    assert [g.label for g in param_curve_info(runs).groups] == ["adam", "momentum", "sgd"]
    assert [g.label for g in param_curve_info(runs[::-1]).groups] == ["adam", "momentum", "sgd"]


def with_config(run: RunInfo, **keys: object) -> RunInfo:
    """``run`` with dotted config keys set (``model__hidden=[8, 8]`` sets model.hidden)."""
    config = copy.deepcopy(run.config)
    for dotted, value in keys.items():
        section, key = dotted.split("__")
        config.setdefault(section, {})[key] = value
    return dataclasses.replace(run, config=config)


def test_param_curve_for_a_linear_numeric_key() -> None:
    table = {0.0: [0.6, 0.4], 0.5: [0.3, 0.5, 0.4], 0.9: [0.2, math.inf]}
    runs = [with_config(fake_run(f"m{m}-{i}", 0.1, seed=i, val_loss=v), train__momentum=m)
            for m, vs in table.items() for i, v in enumerate(vs)]
    runs.append(with_config(fake_run("running", 0.1), train__momentum=2.0))
    runs[-1] = dataclasses.replace(runs[-1], status="running")      # not finished: left out
    info = param_curve_info(runs, "train.momentum", group_key="auto")
    assert info.x_scale == "linear" and info.group_key is None and info.n_runs == 7
    (g,) = info.groups
    assert g.label == "all runs" and g.grid_x.tolist() == [0.0, 0.5, 0.9]
    assert g.x.tolist() == [0.0, 0.0, 0.5, 0.5, 0.5, 0.9, 0.9]
    assert g.median.tolist() == pytest.approx([0.5, 0.4, 0.2])
    assert g.q25.tolist() == pytest.approx([np.percentile([0.6, 0.4], 25), 0.35, 0.2])
    assert g.n_bad.tolist() == [0, 0, 1]
    narrow = [with_config(fake_run(f"w{w}", 0.1), train__weight_decay=w) for w in (0.002, 0.005, 0.01)]
    assert param_curve_info(narrow, "train.weight_decay").x_scale == "linear"   # under a decade


def test_param_curve_for_hidden_sizes_is_categorical_and_sorted() -> None:
    spec = [([8, 8], "sgd", 0.2), ([4], "sgd", 0.5), ([4], "sgd", 0.3), ([16], "adam", 0.1),
            ([4], "adam", math.nan), ([16], "sgd", 0.25)]
    runs = [with_config(fake_run(f"h{i}", 0.1, opt, seed=i, val_loss=v), model__hidden=h)
            for i, (h, opt, v) in enumerate(spec)]
    info = param_curve_info(runs, "model.hidden", "val_loss")
    assert info.x_scale == "category" and info.categories == ("4", "16", "8-8")
    assert info.group_key == "train.optimizer"
    sgd = next(g for g in info.groups if g.label == "sgd")
    adam = next(g for g in info.groups if g.label == "adam")
    assert sgd.x.tolist() == [2, 0, 0, 1] and sgd.grid_x.tolist() == [0, 1, 2]
    assert sgd.median.tolist() == pytest.approx([0.4, 0.25, 0.2])
    assert adam.grid_x.tolist() == [0, 1] and adam.n_bad.tolist() == [1, 0]
    assert math.isnan(adam.median[0]) and adam.median[1] == pytest.approx(0.1)
    by_opt = param_curve_info(runs, "train.optimizer", "val_loss")
    assert by_opt.x_scale == "category" and by_opt.categories == ("adam", "sgd")
    assert by_opt.group_key is None                 # never grouped by the x key itself
    one = [with_config(r, model__hidden=[4]) for r in runs]
    assert param_curve_info(one, "model.hidden") is None
    assert param_curve_info(runs, "model.no_such_key") is None


def test_store_param_curves_lr_first_then_report_keys() -> None:
    runs = [with_config(fake_run(f"r{i}", lr, opt, seed=i, init=init), model__hidden=h,
                        train__batch_size=b)
            for i, (lr, opt, init, h, b) in enumerate([(0.01, "sgd", "he_normal", [4], 8),
                                                        (0.1, "adam", "xavier_uniform", [8], 32),
                                                        (1.0, "momentum", "he_normal", [4, 4], 128)])]
    curves = store_param_curves(runs)
    assert [c.x_key for c in curves] == ["train.lr", "train.optimizer", "model.hidden", "model.init",
                                         "train.batch_size"]
    assert curves[0].x_scale == "log" and curves[-1].x_scale == "log"
    assert store_param_curves(runs[:1]) == ()
    runs[0] = with_config(runs[0], model__activation="tanh")        # a fifth key: one too many
    assert [c.x_key for c in store_param_curves(runs)] == [
        "train.lr", "train.optimizer", "model.hidden", "model.activation", "model.init"]


def test_seed_matrix_carries_the_last_value_of_a_stopped_run() -> None:
    m = seed_matrix([np.array([3.0, 2.0, 1.0]), np.array([4.0]), np.array([1.0, np.inf])])
    assert m[1].tolist() == [4.0, 4.0, 4.0]
    assert m[0].tolist() == [3.0, 2.0, 1.0]
    assert np.isnan(m[2, 1:]).all()


def test_comparison_draws_each_cells_best_configuration() -> None:
    runs, curves = [], {}
    for opt in ("sgd", "adam"):
        for lr, final in ((0.01, 0.4), (0.1, 0.2 if opt == "sgd" else 0.6)):
            for s in range(3):
                r = fake_run(f"{opt}-{lr}-{s}", lr, opt, seed=s, init="he_normal")
                runs.append(r)
                curves[r.run_id] = np.linspace(1.0, final + 0.01 * s, 4 + s)
    info = comparison_info(runs, curves)
    assert info.panels == ("he_normal",) and info.lines == ("adam", "sgd") and info.several_configs
    sgd = next(c for c in info.curves if c.line == "sgd")
    assert "lr=0.1" in sgd.label and sgd.n_seeds == 3
    adam = next(c for c in info.curves if c.line == "adam")
    assert "lr=0.01" in adam.label
    ref = seed_matrix([curves[f"sgd-0.1-{s}"] for s in range(3)])
    assert sgd.median.tolist() == pytest.approx(np.median(ref, axis=0).tolist())
    assert sgd.q75.tolist() == pytest.approx(np.percentile(ref, 75, axis=0).tolist())
    assert sgd.epochs.tolist() == [1, 2, 3, 4, 5, 6]


def test_success_counts_first_attempts_restarts_and_attempts() -> None:
    runs = [fake_run(f"a{i}", 0.1, seed=i, target=0.1, met=i < 2) for i in range(3)]
    runs += [fake_run("b0", 0.3, seed=0, target=0.1, met=False), fake_run("nt", 0.5)]
    atts = {"a0": [attempt(0, 5, 5, met=True)],
            "a1": [attempt(0, 5, 5), attempt(1, 5, 5, met=True)],
            "a2": [attempt(0, 5, 5), attempt(1, 5, 5)], "b0": [attempt(0, 5, 5)]}
    info = success_info(runs, atts)
    assert info.targets == (0.1,) and info.n_configs == 2       # the run without target is left out
    a = info.bars[0]
    assert (a.label, a.n_runs, a.first_try, a.with_restarts, a.attempts_met, a.attempts) == \
        ("lr=0.1", 3, 1, 2, 2, 5)
    assert info.bars[1].with_restarts == 0
    assert success_info([fake_run("x", 0.1)], {}) is None


def test_stage_info_reads_the_sweep_summary() -> None:
    runs = [fake_run(f"r{i}", lr, val_loss=v) for i, (lr, v) in enumerate([(0.01, 0.3), (0.1, 0.1)])]
    summary = {"select": {"metric": "val_loss", "statistic": "median"},
               "configs": [{"config_id": "c0", "params": {"train.lr": 0.01}, "stage": 0,
                            "run_ids": ["r0"], "score": 0.3},
                           {"config_id": "c1", "params": {"train.lr": 0.1}, "stage": 0,
                            "run_ids": ["r1"], "score": 0.1}],
               "stages": [{"stage": 0, "keys": ["train.lr"], "winner": {"train.lr": 0.1},
                           "score": 0.1, "config_id": "c1"}]}
    info = stage_info({"sweep_id": "s", "name": "n", "summary": summary}, runs)
    st = info.stages[0]
    assert st.winner_label == "lr=0.1" and st.score == 0.1
    assert [(c.label, c.winner, c.values.tolist()) for c in st.candidates] == \
        [("lr=0.01", False, [0.3]), ("lr=0.1", True, [0.1])]
    assert stage_info({"summary": {}}, runs) is None


# ----------------------------------------------------------------------------- from a real store


@pytest.fixture(scope="module")
def restart_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(figstores.built(tmp_path_factory, "restarts"))


def test_run_figdata_agrees_with_the_store(restart_store: Store) -> None:
    run = restart_store.runs()[0]
    data = load_run_figdata(restart_store, run.run_id)
    atts = restart_store.attempts(run.run_id)
    assert len(atts) >= 2 and len(data.loss.curves) == len(atts)
    kept = atts[run.best_attempt]
    # the boundary is drawn from the kept weights: its accuracy is the stored one
    assert data.boundary.test_acc == pytest.approx(kept.test_acc)
    assert data.boundary.attempt == run.best_attempt
    frame = restart_store.metrics(run.run_id)
    val = frame[(frame.metric == "val_loss") & (frame.attempt == 1)].sort_values("epoch")["value"]
    assert data.loss.curves[1].val_loss.tolist() == pytest.approx(val.tolist())
    assert data.loss.curves[1].x[0] == atts[0].epochs + 1
    init = restart_store.weights(run.run_id, run.best_attempt, "init")
    assert np.array_equal(data.init.weights[0], init["0.weight"].double().numpy().ravel())
    assert data.network.layer_sizes == (2, 4, 1)
    cfg = from_dict(figstores.RESTART_CONFIG)
    assert data.activations.kind == "dead" and cfg.model.activation == "relu"


# ----------------------------------------------------------------------------- intervals, ties, Bayes limit

NOISE = (0.00, 0.02, -0.01, 0.03, 0.01, -0.02, 0.015, 0.005)      # one value per seed, shared


def seeded_runs(values_by_lr: dict[float, list[float]], optimizer: str = "sgd",
                first_seed: int = 0) -> list[RunInfo]:
    return [fake_run(f"{optimizer}-{lr}-{s}", lr, optimizer, seed=first_seed + s, val_loss=v)
            for lr, vals in values_by_lr.items() for s, v in enumerate(vals)]


def test_param_cells_carry_summarizes_interval_and_every_seed() -> None:
    table = {0.01: [0.5 + n for n in NOISE], 0.1: [0.1 + n for n in NOISE[:5]] + [math.nan],
             1.0: [0.3]}
    info = param_curve_info(seeded_runs(table))
    (g,) = info.groups
    assert g.seed.tolist() == list(range(8)) + list(range(6)) + [0]
    for k, lr in enumerate(g.grid_x):
        vals = np.array(table[lr])
        s = summarize(vals, statistic="median")
        assert (g.median[k], g.ci_low[k], g.ci_high[k]) == pytest.approx((s.median, s.ci_low, s.ci_high))
        assert sorted(g.value[g.x == lr].tolist()) == pytest.approx(sorted(vals.tolist()), nan_ok=True)
    assert g.ci_low[0] < g.median[0] < g.ci_high[0]
    assert g.ci_low[2] == g.ci_high[2] == 0.3                     # one seed: the point itself


def test_identical_configurations_tie_and_clearly_worse_ones_do_not() -> None:
    best = [0.1 + n for n in NOISE]
    worse = [0.5 + n for n in NOISE]
    table = {0.001: worse, 0.01: list(worse),            # an identical pair, clearly worse
             0.1: best, 0.3: list(best),                 # an identical pair at the top
             1.0: [v + 0.002 * (s % 2) for s, v in enumerate(best)]}   # within noise of the best
    info = param_curve_info(seeded_runs(table))
    (g,) = info.groups
    assert g.grid_x.tolist() == [0.001, 0.01, 0.1, 0.3, 1.0]
    assert g.tied.tolist() == [False, False, True, True, True]
    assert g.best.tolist() == [False, False, True, False, False]   # the first of the tied pair
    assert (info.n_tied, info.n_cells) == (3, 5)
    # the p-values are compare's, paired over the shared seeds, Holm-adjusted over the figure
    others = [worse, worse, best, table[1.0]]
    ties = ties_with_best([(range(8), v) for v in [worse, worse, best, best, table[1.0]]],
                          higher_is_better=False)
    expected = holm([compare(best, v, paired=True).p_value for v in others])
    assert ties.best == 2 and ties.paired.tolist() == [True, True, False, True, True]
    assert ties.p_adjusted[[0, 1, 3, 4]] == pytest.approx(expected)
    assert ties.p_adjusted[0] == ties.p_adjusted[1] < 0.05 <= ties.p_adjusted[3]


def test_ties_fall_back_to_an_unpaired_test_and_need_three_values() -> None:
    best, worse = [0.1 + n for n in NOISE], [0.5 + n for n in NOISE]
    ties = ties_with_best([(range(8), best), (range(10, 18), worse), (range(2), [0.9, 0.95]),
                           (range(3), [math.nan] * 3)], higher_is_better=False)
    assert ties.paired.tolist() == [False, False, False, False]      # no shared seeds: unpaired
    assert ties.p_adjusted[1] == pytest.approx(compare(best, worse, paired=False).p_value)
    assert ties.tied.tolist() == [True, False, True, False]          # 2 values cannot separate
    repeated = ties_with_best([([0, 0, 1, 1], [1.0, 1.1, 1.2, 1.3]), ([0, 1, 2, 3], [5.0, 6, 7, 8])],
                              higher_is_better=True)
    assert repeated.best == 1 and not repeated.paired[0]              # a seed twice: no pairs
    assert ties_with_best([(range(3), [math.nan] * 3)], higher_is_better=True).best == -1


def test_comparison_final_values_have_intervals_and_ties() -> None:
    runs, curves = [], {}
    finals = {"adam": [0.1 + n for n in NOISE], "sgd": [0.6 + n for n in NOISE],
              "momentum": [0.1 + n + 0.002 * (-1) ** s for s, n in enumerate(NOISE)]}
    for opt, vals in finals.items():
        for s, v in enumerate(vals):
            r = fake_run(f"{opt}-{s}", 0.1, opt, seed=s)
            runs.append(r)
            curves[r.run_id] = np.linspace(1.0, v, 5)
    info = comparison_info(runs, curves)
    by_line = {c.line: c for c in info.curves}
    for opt, c in by_line.items():
        s = summarize(finals[opt], statistic="median")
        assert (c.final_median, c.final_low, c.final_high) == pytest.approx((s.median, s.ci_low, s.ci_high))
        assert c.final.tolist() == pytest.approx(finals[opt]) and c.seed.tolist() == list(range(8))
        assert c.per_seed.shape == (8, 5)
    assert by_line["adam"].best and by_line["momentum"].tied and not by_line["sgd"].tied
    assert info.bayes_limit is None                                  # a loss has no Bayes limit


def test_success_rates_carry_wilson_intervals_and_ties() -> None:
    met = {0.1: [True] * 8, 0.3: [True] * 7 + [False], 0.01: [False] * 8}
    runs = [fake_run(f"{lr}-{s}", lr, seed=s, target=0.2, met=m) for lr, ms in met.items()
            for s, m in enumerate(ms)]
    info = success_info(runs, {})
    assert [b.label for b in info.bars] == ["lr=0.1", "lr=0.3", "lr=0.01"]
    for b in info.bars:
        assert b.restarts_rate == success_rate(b.with_restarts, b.n_runs)
        assert b.first_rate == success_rate(b.first_try, b.n_runs)
    assert [(b.best, b.tied) for b in info.bars] == [(True, True), (False, True), (False, False)]
    assert info.n_tied == 2 and info.bayes_limit is None             # a loss target


def test_stage_candidates_carry_intervals_and_ties_with_the_winner() -> None:
    vals = {0.01: [0.5 + n for n in NOISE], 0.1: [0.1 + n for n in NOISE],
            0.3: [0.1 + n + 0.002 * (-1) ** s for s, n in enumerate(NOISE)]}
    runs = seeded_runs(vals)
    configs = [{"config_id": f"c{lr}", "params": {"train.lr": lr}, "stage": 0,
                "run_ids": [f"sgd-{lr}-{s}" for s in range(8)], "score": float(np.median(v))}
               for lr, v in vals.items()]
    summary = {"select": {"metric": "val_loss", "statistic": "median", "mode": "min"}, "configs": configs,
               "stages": [{"stage": 0, "keys": ["train.lr"], "winner": {"train.lr": 0.1},
                           "score": configs[1]["score"], "config_id": "c0.1"}]}
    info = stage_info({"sweep_id": "s", "name": "n", "summary": summary}, runs)
    cands = info.stages[0].candidates
    for c, v in zip(cands, vals.values()):
        s = summarize(v, statistic="median")
        assert (c.ci_low, c.ci_high) == pytest.approx((s.ci_low, s.ci_high))
        assert c.seed.tolist() == list(range(8))
    assert [(c.winner, c.tied) for c in cands] == [(False, False), (True, True), (False, True)]
    # 0.001 worse on every seed: the pairs see it, though the spread over seeds is 20x larger
    shifted = [dataclasses.replace(r, val_loss=vals[0.1][s] + 0.001) for s, r in enumerate(runs[16:])]
    assert not stage_info({"summary": summary}, runs[:16] + shifted).stages[0].candidates[2].tied


def test_the_bayes_limit_comes_from_the_runs_dataset() -> None:
    runs = [with_config(r, data__noise=0.3) for r in seeded_runs({0.01: [0.5] * 3, 0.1: [0.2] * 3})]
    limit = runs_bayes_limit(runs)
    assert limit == bayes_limit(from_dict(runs[0].config).data)
    acc = param_curve_info(runs, metric="val_acc", limit=limit)
    assert acc.bayes_limit == limit.accuracy
    assert param_curve_info(runs, metric="val_loss", limit=limit).bayes_limit is None
    moons = [with_config(r, data__name="moons") for r in runs]        # Monte Carlo, cached
    assert runs_bayes_limit(moons) == bayes_limit(from_dict(moons[0].config).data)
    assert runs_bayes_limit(runs + moons) is None                    # two datasets: no single limit
    user = [with_config(r, data__name="csv:points.csv") for r in runs]
    assert runs_bayes_limit(user) is None
    assert param_curve_info(user, metric="val_acc", limit=runs_bayes_limit(user)).bayes_limit is None


@pytest.mark.slow
def test_a_real_stores_records_carry_its_bayes_limit(restart_store: Store,
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    data = load_store_figdata(restart_store)
    assert data.bayes == bayes_limit(from_dict(figstores.RESTART_CONFIG).data)
    csv = load_store_figdata(Store(figstores.built(tmp_path_factory, "csv6")))
    assert csv.bayes is None
    probe = Store(figstores.built(tmp_path_factory, "probe"))      # a user's loop: no dataset known
    assert runs_bayes_limit(probe.runs()) is None
