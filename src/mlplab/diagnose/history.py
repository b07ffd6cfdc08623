"""One attempt's recorded history, reshaped for reading, and the :class:`Finding`
records that detectors (:mod:`mlplab.diagnose.detectors`, :mod:`mlplab.diagnose.curves`) draw from it.

:func:`history_of` turns the tidy ``metrics.parquet`` rows of one attempt
(:mod:`mlplab.metrics`) into wide tables indexed by step or epoch. Pure: no I/O.

A condition holds *persistently* from a record (:func:`onset`) when it holds there and
on at least ``PERSIST_SHARE`` (80%) of the records from there to the end, over at least
``PERSIST_MIN_RECORDS`` (3) records: a passing blip is not reported, and neither is a
problem that was overcome. ``EARLY_RECORDS`` (10) records make "the start" of a series.

>>> from mlplab.metrics import MetricsLog
>>> log = MetricsLog()
>>> for step, loss in enumerate([1.0, 0.5]):
...     log.add(0, step, 0, "step", "", "loss", loss)
...     log.add(0, step, 0, "step", "layer1", "grad_norm_w", 0.1)
>>> h = history_of(log.to_frame(), attempt=0)
>>> h.loss().tolist(), h.layers
([1.0, 0.5], ('layer1',))
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplab.metrics import natural_key


SEVERITIES = ("info", "warning", "severe")
EARLY_RECORDS = 10
PERSIST_SHARE = 0.8
PERSIST_MIN_RECORDS = 3


def layer_label(name: str) -> str:
    """How messages name a layer: ``layer2`` as is, a user's module name quoted
    (``layer 'encoder.0'``)."""
    return name if re.fullmatch(r"layer\d+", name) else f"layer '{name}'"


@dataclass(frozen=True)
class History:
    """The series of one attempt: long rows by scope, read as wide tables on demand."""

    attempt: int
    layers: tuple[str, ...]        # parameterised layers, input to output
    step_rows: pd.DataFrame        # scope "step": columns step, epoch, layer, metric, value
    act_rows: pd.DataFrame         # scope "act": the same columns
    epochs: pd.DataFrame           # index epoch; columns metric names and "step"
    step_epoch: pd.Series          # step -> epoch, for every recorded step
    info: dict[str, Any]

    def loss(self) -> pd.Series:
        """The minibatch loss by step (NaN/inf kept: they are evidence)."""
        return self.model_series("loss")

    def model_series(self, metric: str) -> pd.Series:
        """A model-level step metric (``layer == ""``) by step."""
        rows = self.step_rows
        rows = rows[(rows["metric"] == metric) & (rows["layer"] == "")]
        return pd.Series(rows["value"].to_numpy(float), index=rows["step"].to_numpy(), name=metric)

    def layer_table(self, metric: str, which: str = "steps") -> pd.DataFrame:
        """``metric`` by step, one column per layer (in layer order)."""
        rows = self.step_rows if which == "steps" else self.act_rows
        rows = rows[(rows["metric"] == metric) & (rows["layer"] != "")]
        if rows.empty:
            return pd.DataFrame()
        table = rows.pivot(index="step", columns="layer", values="value").sort_index()
        order = [c for c in self.layers if c in table.columns]
        order += sorted((c for c in table.columns if c not in order), key=natural_key)
        return table[order]

    def epoch_of(self, step: int) -> int:
        """The epoch a step belongs to (the last epoch recorded at or before it)."""
        if len(self.step_epoch) and step in self.step_epoch.index:
            return int(self.step_epoch[step])
        if not self.epochs.empty and "step" in self.epochs:
            before = self.epochs.index[self.epochs["step"] < step]
            return int(before[-1]) + 1 if len(before) else 0
        return 0

    def epoch_step(self, epoch: int) -> int:
        """Steps taken at the end of ``epoch``."""
        return int(self.epochs.loc[epoch, "step"])

    @property
    def output_layer(self) -> str | None:
        return self.layers[-1] if self.layers else None


def history_of(frame: pd.DataFrame, attempt: int, info: dict[str, Any] | None = None) -> History:
    """The history of ``attempt`` in a metrics frame (:mod:`mlplab.metrics` columns)."""
    info = dict(info or {})
    rows = frame[frame["attempt"] == attempt]
    cols = ["step", "epoch", "layer", "metric", "value"]

    def scope(name: str) -> pd.DataFrame:
        sub = rows.loc[rows["scope"] == name, cols]
        return sub.drop_duplicates(["step", "metric", "layer"], keep="last").sort_values("step")

    step_rows, act_rows = scope("step"), scope("act")
    ep = rows[rows["scope"] == "epoch"].drop_duplicates(["epoch", "metric"], keep="last")
    if ep.empty:
        epochs = pd.DataFrame()
    else:
        epochs = ep.pivot(index="epoch", columns="metric", values="value").sort_index()
        epochs["step"] = ep.groupby("epoch")["step"].max()
    first = step_rows.drop_duplicates("step")
    step_epoch = pd.Series(first["epoch"].to_numpy(), index=first["step"].to_numpy())
    seen = set(step_rows["layer"]) - {""}
    layers = [name for name in info.get("layers", []) if name in seen]
    layers += sorted(seen - set(layers), key=natural_key)
    return History(attempt, tuple(layers), step_rows, act_rows, epochs, step_epoch, info)


def persistent_onset(mask: np.ndarray, share: float, min_records: int) -> int | None:
    """First index ``i`` where ``mask[i]`` holds and keeps holding for at least
    ``share`` of the records from ``i`` to the end, over at least ``min_records``
    records (fewer if the series is shorter). None if there is none.

    >>> persistent_onset(np.array([0, 0, 1, 1, 0, 1, 1, 1], bool), 0.8, 3)
    2
    >>> persistent_onset(np.array([1, 1, 0, 0, 0, 0], bool), 0.8, 3) is None
    True
    """
    mask = np.asarray(mask, bool)
    n = len(mask)
    if n == 0:
        return None
    need = min(min_records, n)
    tail_true = np.cumsum(mask[::-1])[::-1]            # trues from i to the end
    tail_len = n - np.arange(n)
    ok = mask & (tail_len >= need) & (tail_true >= share * tail_len)
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


def finite_prefix(values: np.ndarray) -> np.ndarray:
    """The values before the first NaN/inf."""
    values = np.asarray(values, float)
    bad = np.flatnonzero(~np.isfinite(values))
    return values[:bad[0]] if len(bad) else values


def safe_median(values: Any) -> float:
    """Median of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what, how bad, where, since when, the numbers, and what to try."""

    kind: str                  # divergence, exploding_gradients, vanishing_gradients, ...
    severity: str              # info, warning, severe
    layer: str | None          # the layer concerned, None for the whole model
    step: int                  # step (of the attempt) where it began
    epoch: int                 # epoch that step belongs to
    attempt: int
    evidence: dict[str, float] = field(default_factory=dict)
    message: str = ""
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite evidence values become None."""
        d = asdict(self)
        d["evidence"] = {k: (float(v) if math.isfinite(float(v)) else None)
                         for k, v in self.evidence.items()}
        return d


def make_finding(h: History, kind: str, severity: str, layer: str | None, step: int,
                 evidence: dict[str, float], message: str, hint: str,
                 epoch: int | None = None) -> Finding:
    """A :class:`Finding` of ``h``'s attempt; the epoch defaults to the step's."""
    epoch = h.epoch_of(int(step)) if epoch is None else int(epoch)
    return Finding(kind, severity, layer, int(step), epoch, h.attempt,
                   {k: float(v) for k, v in evidence.items()}, message, hint)


def onset(mask: np.ndarray) -> int | None:
    """Where a condition begins to hold persistently (:func:`persistent_onset` with
    ``PERSIST_SHARE`` and ``PERSIST_MIN_RECORDS``), or None."""
    return persistent_onset(mask, PERSIST_SHARE, PERSIST_MIN_RECORDS)


def initial_loss(h: History) -> float:
    """The first finite step loss (else the first epoch's train loss, else NaN)."""
    loss = h.loss().to_numpy()
    finite = loss[np.isfinite(loss)]
    if len(finite):
        return float(finite[0])
    if "train_loss" in h.epochs:
        return safe_median(h.epochs["train_loss"].to_numpy()[:1])
    return math.nan


def config_value(h: History, *keys: str) -> Any:
    """``info["config"][k1][k2]...`` or None (probe runs lack most keys)."""
    node: Any = h.info.get("config") or {}
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node
