"""Figure data for one run: plain frozen records computed from the store, apart from drawing.

Every ``*_info`` function is pure: it takes what the store holds (the metrics frame, the
attempts, a state dict, the boundary tensors) and returns a frozen ``*Info`` record of
numpy arrays and plain values. :mod:`mlplab.figures.draw_run` draws these records as PNGs; the
dashboard can draw the same records interactively. :func:`load_run_figdata` reads a run
from a store and builds all of them at once.

Runs with restarts are laid end to end: the x axis counts epochs (or steps) over all
attempts, and :class:`AttemptSpan` says where each attempt starts and why it ended.

>>> import pandas as pd
>>> frame = pd.DataFrame({"attempt": [0, 0], "step": [3, 6], "epoch": [0, 1],
...     "scope": "epoch", "layer": "", "metric": "val_loss", "value": [0.5, 0.25]})
>>> loss_info(frame, attempt_spans(frame, ()), monitor="val_loss").curves[0].val_loss.tolist()
[0.5, 0.25]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from mlplab.config import parse_init

from mlplab.metrics import natural_key

from .arrays import frozen_array, layer_weights
from .data_spans import AttemptSpan, attempt_spans

if TYPE_CHECKING:
    import pandas as pd

    from mlplab.store.store import Store

# Update ratios above this come from dividing by a zero previous weight (zero-initialised
# biases clamp the denominator to the smallest float); they are undefined and left out.
UNDEFINED_RATIO = 1e6
# A smoothed line (rolling median) is drawn over per-step series longer than this.
SMOOTH_ABOVE = 200
# Rule of thumb for healthy training: each step changes weights by about 1e-3 of their norm.
UPDATE_RATIO_REFERENCE = 1e-3

# family -> (title, y label for weights, y label for biases, log y, reference line)
FAMILIES: dict[str, tuple[str, str, str, bool, float | None]] = {
    "grad_norm": ("Gradient L2 norm per layer", "‖∂L/∂W‖ (log scale)", "‖∂L/∂b‖ (log scale)",
                  True, None),
    "weight_norm": ("Weight and bias L2 norm per layer", "‖W‖", "‖b‖", False, None),
    "update_ratio": ("Update / weight ratio per layer, ‖Δw‖ / ‖w‖ per step",
                     "‖ΔW‖ / ‖W‖ (log scale)", "‖Δb‖ / ‖b‖ (log scale)", True, UPDATE_RATIO_REFERENCE),
    "dist_init": ("Distance from initialisation per layer", "‖W − W₀‖", "‖b − b₀‖", False, None),
}


# ----------------------------------------------------------------------------- loss


@dataclass(frozen=True)
class LossCurve:
    """One attempt's curves; x counts epochs trained over all attempts (1 = first epoch)."""

    attempt: int
    x: np.ndarray             # [E]
    train_loss: np.ndarray    # [E]
    val_loss: np.ndarray      # [E] (nan where not recorded)
    train_acc: np.ndarray     # [E]
    val_acc: np.ndarray       # [E]


@dataclass(frozen=True)
class LossInfo:
    """Train and val loss/accuracy of every attempt, with restarts and stopping points."""

    monitor: str
    target: float | None
    x_label: str
    curves: tuple[LossCurve, ...]
    spans: tuple[AttemptSpan, ...]
    per_step: bool            # True: no epoch records (a Probe run), x counts steps


def _by_x(rows: "pd.DataFrame", metric: str, x: str) -> "pd.Series":
    sel = rows[rows["metric"] == metric]
    return sel.groupby(x)["value"].last()


def loss_info(frame: "pd.DataFrame", spans: Sequence[AttemptSpan], monitor: str = "val_loss",
              target: float | None = None) -> LossInfo:
    """Per-attempt loss and accuracy curves from the epoch records (step ``loss`` when a
    run has no epoch records, as a user's loop with a Probe may)."""
    epoch_rows = frame[(frame["scope"] == "epoch") & (frame["layer"] == "")]
    per_step = epoch_rows.empty
    curves = []
    for span in spans:
        if per_step:
            rows = frame[(frame["scope"] == "step") & (frame["attempt"] == span.attempt)]
            train = _by_x(rows, "loss", "step")
            x = train.index.to_numpy(np.float64) + span.start_step
            nan = np.full(len(x), math.nan)
            curves.append(LossCurve(span.attempt, frozen_array(x), frozen_array(train.to_numpy()),
                                    frozen_array(nan), frozen_array(nan), frozen_array(nan)))
            continue
        rows = epoch_rows[epoch_rows["attempt"] == span.attempt]
        epochs = np.sort(rows["epoch"].unique())
        cols = [_by_x(rows, m, "epoch").reindex(epochs).to_numpy(np.float64)
                for m in ("train_loss", "val_loss", "train_acc", "val_acc")]
        x = epochs.astype(np.float64) + span.start_epoch + 1
        curves.append(LossCurve(span.attempt, frozen_array(x), *(frozen_array(c) for c in cols)))
    return LossInfo(monitor=monitor, target=target,
                    x_label="step (all attempts)" if per_step else "epoch (all attempts, end to end)",
                    curves=tuple(curves), spans=tuple(spans), per_step=per_step)


# ----------------------------------------------------------------------------- per-layer series


@dataclass(frozen=True)
class LayerCurve:
    """One layer's weight (``part="w"``) or bias (``"b"``) series in one attempt."""

    layer: str
    part: str
    attempt: int
    x: np.ndarray             # [T] steps over all attempts
    y: np.ndarray             # [T] (nan where undefined)
    y_smooth: np.ndarray | None  # [T] rolling median for long series


@dataclass(frozen=True)
class LayerSeriesInfo:
    """A per-layer step series (gradient norm, weight norm, update ratio, distance from init)."""

    family: str
    title: str
    y_labels: tuple[str, str]  # weights, biases
    log_y: bool
    reference: float | None   # a guide line (the 1e-3 rule for update ratios)
    layers: tuple[str, ...]
    curves: tuple[LayerCurve, ...]
    spans: tuple[AttemptSpan, ...]
    undefined: int            # points left out as undefined (see UNDEFINED_RATIO)


def rolling_median(y: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median ignoring nan (window clipped at the ends)."""
    import pandas as pd

    return pd.Series(y).rolling(window, center=True, min_periods=1).median().to_numpy()


def layer_series_info(frame: "pd.DataFrame", family: str, layers: Sequence[str],
                      spans: Sequence[AttemptSpan]) -> LayerSeriesInfo:
    """Curves of ``<family>_w`` and ``<family>_b`` per layer and attempt."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}: allowed {', '.join(FAMILIES)}")
    title, y_w, y_b, log_y, reference = FAMILIES[family]
    rows = frame[(frame["scope"] == "step") & frame["metric"].isin([f"{family}_w", f"{family}_b"])]
    layers = tuple(layers) + tuple(sorted(set(rows["layer"]) - set(layers) - {""}))
    start = {s.attempt: s.start_step for s in spans}
    curves, undefined = [], 0
    total = rows.groupby(["layer", "metric"]).size()      # points over all attempts
    for (attempt, layer, metric), part in rows.groupby(["attempt", "layer", "metric"], sort=True):
        part = part.sort_values("step")
        y = part["value"].to_numpy(np.float64).copy()
        if family == "update_ratio":
            bad = ~(y < UNDEFINED_RATIO)
            undefined += int(np.count_nonzero(bad & np.isfinite(y)))
            y[bad & np.isfinite(y)] = math.nan
        x = part["step"].to_numpy(np.float64) + start.get(int(attempt), 0)
        n = int(total[(layer, metric)])
        smooth = rolling_median(y, max(3, n // 60)) if n > SMOOTH_ABOVE else None
        curves.append(LayerCurve(str(layer), metric[-1], int(attempt), frozen_array(x), frozen_array(y),
                                 None if smooth is None else frozen_array(smooth)))
    order = {name: i for i, name in enumerate(layers)}
    curves.sort(key=lambda c: (c.part != "w", order.get(c.layer, len(order)), c.attempt))
    return LayerSeriesInfo(family, title, (y_w, y_b), log_y, reference, layers, tuple(curves),
                           tuple(spans), undefined)


# ----------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class ActivationCurve:
    layer: str
    attempt: int
    x: np.ndarray             # [T] steps over all attempts
    dead: np.ndarray          # [T] share of dead units (ReLU), 0..1
    saturated: np.ndarray     # [T] share of saturated units (sigmoid/tanh), 0..1
    mean: np.ndarray          # [T] pre-activation mean
    std: np.ndarray           # [T] pre-activation std


@dataclass(frozen=True)
class ActivationInfo:
    """Dead or saturated share of units and pre-activation statistics per hidden layer."""

    activation: str           # "" when unknown (a Probe on a user's model)
    kind: str | None          # "dead" (relu), "saturated" (sigmoid/tanh), "both" (unknown), None
    layers: tuple[str, ...]
    curves: tuple[ActivationCurve, ...]
    spans: tuple[AttemptSpan, ...]


def share_kind(activation: str) -> str | None:
    """Which share the probe records for an activation (see mlplab.probe.norms); ``"both"``
    when the activation is unknown, as in a user's model with ReLUs and sigmoids alike.

    >>> share_kind("relu"), share_kind("gelu"), share_kind("")
    ('dead', None, 'both')
    """
    if not activation:
        return "both"
    return {"relu": "dead", "tanh": "saturated", "sigmoid": "saturated"}.get(activation)


def activation_info(frame: "pd.DataFrame", layers: Sequence[str], activation: str,
                    spans: Sequence[AttemptSpan]) -> ActivationInfo:
    """Curves of the ``act`` records per hidden layer and attempt."""
    rows = frame[frame["scope"] == "act"]
    present = set(rows["layer"])
    layers = tuple(l for l in layers if l in present) + tuple(sorted(present - set(layers), key=natural_key))
    start = {s.attempt: s.start_step for s in spans}
    curves = []
    for layer in layers:
        for attempt, part in rows[rows["layer"] == layer].groupby("attempt", sort=True):
            steps = np.sort(part["step"].unique())
            get = lambda m: _by_x(part, m, "step").reindex(steps).to_numpy(np.float64)  # noqa: E731
            curves.append(ActivationCurve(
                layer, int(attempt), frozen_array(steps.astype(np.float64) + start.get(int(attempt), 0)),
                frozen_array(get("dead_frac")), frozen_array(get("sat_frac")),
                frozen_array(get("act_mean")), frozen_array(get("act_std"))))
    return ActivationInfo(activation, share_kind(activation), layers, tuple(curves), tuple(spans))


# ----------------------------------------------------------------------------- initial weights


@dataclass(frozen=True)
class InitDistInfo:
    """The initial weights of each layer (one box each) and the scheme's expected spread."""

    attempt: int
    layers: tuple[str, ...]
    schemes: tuple[str, ...]        # init spec per layer, e.g. "xavier_uniform"
    shapes: tuple[tuple[int, ...], ...]   # weight shape per layer ((fan_out, fan_in) for Linear)
    weights: tuple[np.ndarray, ...]       # flattened weights per layer
    expected: tuple[float | None, ...]    # uniform bound or normal std of the scheme
    expected_kind: tuple[str, ...]        # "bound", "std" or ""


def expected_spread(spec: str, fan_in: int, fan_out: int, activation: str = "relu",
                    negative_slope: float = 0.01) -> tuple[float | None, str]:
    """The bound (uniform schemes) or std (normal schemes) an init spec draws with,
    as :func:`mlplab.model.mlp.init_tensor_` draws it (He: the ReLU gain, or leaky ReLU's).

    >>> round(expected_spread("he_normal", 50, 10)[0], 3)
    0.2
    """
    name, param = parse_init(spec)
    gain2 = 2.0 / (1.0 + negative_slope ** 2) if activation == "leaky_relu" else 2.0
    table = {
        "xavier_uniform": (math.sqrt(6.0 / (fan_in + fan_out)), "bound"),
        "xavier_normal": (math.sqrt(2.0 / (fan_in + fan_out)), "std"),
        "he_uniform": (math.sqrt(3.0 * gain2 / fan_in), "bound"),
        "he_normal": (math.sqrt(gain2 / fan_in), "std"),
        "normal": (1.0 if param is None else param, "std"),
        "uniform": (1.0 if param is None else param, "bound"),
    }
    value, kind = table.get(name, (None, ""))
    return value, kind


def init_dist_info(state: Mapping[str, Any], layers: Sequence[str], attempt: int = 0,
                   model: Mapping[str, Any] | None = None) -> InitDistInfo:
    """Initial weights per layer from an ``init`` state dict; ``model`` (the config's
    model section) names each layer's scheme and its expected spread."""
    found = layer_weights(state, layers)
    schemes, expected, kinds = [], [], []
    for i, (_, w, _) in enumerate(found):
        spec = ""
        if model is not None:
            spec = dict(model.get("layer_init") or {}).get(str(i), model.get("init", ""))
        value, kind = (None, "")
        if spec and w.ndim == 2:
            value, kind = expected_spread(spec, w.shape[1], w.shape[0], model.get("activation", "relu"),
                                          model.get("negative_slope", 0.01))
        schemes.append(spec)
        expected.append(value)
        kinds.append(kind)
    return InitDistInfo(attempt, tuple(l for l, _, _ in found), tuple(schemes),
                        tuple(tuple(int(n) for n in w.shape) for _, w, _ in found),
                        tuple(frozen_array(w.ravel()) for _, w, _ in found), tuple(expected), tuple(kinds))


# ----------------------------------------------------------------------------- bundle


@dataclass(frozen=True)
class RunFigureData:
    """Everything the figures of one run draw."""

    run_id: str
    summary: str              # one-line config summary
    loss: LossInfo
    series: tuple[LayerSeriesInfo, ...]   # in FAMILIES order
    activations: ActivationInfo
    init: InitDistInfo | None
    boundary: "BoundaryInfo | None"
    network: "NetworkInfo | None"
    curvature: CurvatureInfo | None = None   # only when the run measured curvature


def load_run_figdata(store: "Store", run_id: str) -> RunFigureData:
    """Read one finished run from ``store`` and compute all its figure data."""
    from mlplab.store.store import StoreError
    from mlplab.store.table import config_summary
    from .data_curvature import curvature_info, stability_bound_of
    from .data_model import boundary_and_network

    run = store.run(run_id)
    doc = store.run_doc(run_id)
    info, config = doc.get("info", {}), doc.get("config", {})
    frame = store.metrics(run_id)
    attempts = store.attempts(run_id)
    spans = attempt_spans(frame, attempts, run.best_attempt)
    layers = tuple(info.get("layers") or sorted(set(frame["layer"]) - {""}, key=natural_key))
    stopping = config.get("stopping", {})
    model = config.get("model")
    kept = run.best_attempt or 0
    try:
        init_state = store.arrays(run_id, kept, "init")
    except StoreError:
        init_state = None
    boundary, network = boundary_and_network(store, run_id, kept, doc)
    return RunFigureData(
        run_id=run_id, summary=config_summary(config) if "model" in config else run.name,
        loss=loss_info(frame, spans, stopping.get("monitor", "val_loss"),
                       target if isinstance(target := stopping.get("target"), (int, float)) else None),
        series=tuple(layer_series_info(frame, f, layers, spans) for f in FAMILIES),
        activations=activation_info(frame, layers, (model or {}).get("activation", ""), spans),
        init=None if not init_state else init_dist_info(init_state, layers, kept, model),
        boundary=boundary, network=network,
        curvature=curvature_info(frame, spans, stability_bound_of(info, config)))


if TYPE_CHECKING:
    from .data_curvature import CurvatureInfo
    from .data_model import BoundaryInfo, NetworkInfo
