"""What an export reads from a store: the selected runs, each run's files read once (a
damaged run skipped with a warning naming its file), its series as tagged curves and its
configuration as flat parameters.

Tags: a model-level metric is its name (``val_loss``), a per-layer one ``name/layer``
(``grad_norm_w/layer1``). The kept attempt's series carry the plain tags; the other
attempts of the run (restarts that were not kept) the same under ``attempt-<n>/``, so
that every tag is one curve whose steps are the stored steps.

>>> series_tag("grad_norm_w", "layer1"), series_tag("val_loss", "", attempt=0, kept=1)
('grad_norm_w/layer1', 'attempt-0/val_loss')
>>> flat_params({"model": {"hidden": [8, 8], "activation": "tanh"}, "train": {"lr": 0.1}})
{'model.hidden': '8,8', 'model.activation': 'tanh', 'train.lr': 0.1}
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from mlplab.store.runfiles import read_tensors, tensors_name
from mlplab.store.store import RunInfo, Store
from mlplab.store.table import filter_runs

if TYPE_CHECKING:
    import pandas as pd

WHICH = ("init", "best", "last")       # the weights an attempt stores
# the run's outcome from the index (what ``mlplab runs`` shows), exported as summary/<column>
SUMMARY = ("best_value", "val_loss", "val_acc", "test_loss", "test_acc", "train_loss",
           "restarts", "epochs", "wall_time")


class Damaged(Exception):
    """A run file that cannot be read: ``path`` and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} cannot be read ({reason})")
        self.path = path


@dataclass(frozen=True)
class RunData:
    """One run as an export needs it: the index record, the folder and, for a finished
    run, its series; ``kept`` is the attempt the run kept."""
    info: RunInfo
    folder: Path
    frame: "pd.DataFrame | None"        # metrics.parquet; None for a run without files
    kept: int

    @property
    def finished(self) -> bool:
        return self.frame is not None


@dataclass
class ExportResult:
    """What an export did: the runs written, those already there (unchanged) and those
    skipped with the reason."""
    target: str
    exported: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)       # run id -> why

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "exported": self.exported, "unchanged": self.unchanged,
                "skipped": self.skipped}

    def text(self) -> str:
        lines = [f"exported {len(self.exported)} run(s) to {self.target}"
                 + (f", {len(self.unchanged)} already there" if self.unchanged else "")
                 + (f", {len(self.skipped)} skipped" if self.skipped else "")]
        lines += [f"  skipped {run_id}: {why}" for run_id, why in self.skipped.items()]
        return "\n".join(lines)


def select_runs(store: Store, filters: Iterable[str] = ()) -> list[RunInfo]:
    """The store's runs that match every ``key=value`` of ``filters`` (the ``mlplab runs
    --filter`` rule: a runs column such as status or sweep_id, or a dotted config key)."""
    return filter_runs(store.runs(), filters)


def read_runs(store: Store, runs: Iterable[RunInfo], result: ExportResult,
              statuses: tuple[str, ...] = ("done",)) -> Iterator[RunData]:
    """Each run of ``runs`` whose status is one of ``statuses``, read (:func:`read_run`).
    A damaged one (marked so, or a file that does not read) is skipped with a warning
    naming its file; any other status is skipped quietly. Both are noted in
    ``result.skipped``."""
    for info in runs:
        if info.status == "damaged":
            why = "marked damaged by mlplab check" + (f" ({info.error})" if info.error else "")
        elif info.status not in statuses:
            why = f"status {info.status}"
        else:
            try:
                yield read_run(store, info)
                continue
            except Damaged as e:
                why = str(e)
        if info.status in ("damaged", "done"):
            warnings.warn(f"mlplab: skipped run '{info.run_id}': {why}", stacklevel=2)
        result.skipped[info.run_id] = why


def read_run(store: Store, info: RunInfo) -> RunData:
    """``info``'s folder and series; raises :class:`Damaged` naming a file that does not
    read (a ``done`` run must have ``config.json`` and ``metrics.parquet``)."""
    folder = store.run_dir(info.run_id)
    if info.status != "done":
        return RunData(info, folder, None, info.best_attempt or 0)
    for name in ("config.json", "metrics.parquet"):
        if not (folder / name).is_file():
            raise Damaged(folder / name, "missing")
    try:
        json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise Damaged(folder / "config.json", str(e)) from None
    try:
        frame = store.metrics(info.run_id)
    except Exception as e:     # pyarrow raises its own kinds for a truncated or foreign file
        raise Damaged(folder / "metrics.parquet", f"{type(e).__name__}: {e}") from None
    return RunData(info, folder, frame, info.best_attempt or 0)


def read_weights(run: RunData, which: str) -> dict[str, np.ndarray]:
    """The kept attempt's ``which`` weights as arrays ({} when the attempt has none);
    raises :class:`Damaged` for a file that does not read."""
    try:
        tensors = read_tensors(run.folder, run.kept, which) or {}
    except Exception as e:     # safetensors' own error for a damaged header or size
        raise Damaged(run.folder / tensors_name(run.folder, run.kept, which),
                      f"{type(e).__name__}: {e}") from None
    return {k: v.float().numpy() for k, v in tensors.items()}


def read_boundary(store: Store, run: RunData) -> dict[str, np.ndarray] | None:
    """The kept attempt's decision-boundary snapshots: ``epochs [S]`` and ``probs [S, G,
    G, C]`` (None when there are none); raises :class:`Damaged` for a file that does not read."""
    try:
        packed = store.boundary(run.info.run_id, run.kept)
    except Exception as e:
        raise Damaged(run.folder / tensors_name(run.folder, run.kept, "boundary"),
                      f"{type(e).__name__}: {e}") from None
    if packed is None:
        return None
    return {"epochs": packed["epochs"].numpy(), "probs": packed["probs"].float().numpy()}


def series_tag(metric: str, layer: str, attempt: int = 0, kept: int = 0) -> str:
    """The tag of one series (see the module's docstring)."""
    tag = f"{metric}/{layer}" if layer else metric
    return tag if attempt == kept else f"attempt-{attempt}/{tag}"


def tagged_series(run: RunData) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(tag, steps [n] int64, values [n] float64)`` of every series of the run, in the
    stored order (steps ascending within a series)."""
    frame = run.frame
    if frame is None or frame.empty:
        return
    steps, values = frame["step"].to_numpy("int64"), frame["value"].to_numpy("float64")
    groups = frame.groupby(["attempt", "metric", "layer"], sort=False).indices   # key -> rows
    for (attempt, metric, layer), rows in groups.items():
        rows = rows[np.argsort(steps[rows], kind="stable")]
        yield series_tag(metric, layer, int(attempt), run.kept), steps[rows], values[rows]


def epoch_end_steps(run: RunData, attempt: int) -> dict[int, int]:
    """Epoch -> the optimizer step at its end, for one attempt (from the epoch-level
    rows: the step each ``val_loss`` etc. was recorded at)."""
    frame = run.frame
    if frame is None or frame.empty:
        return {}
    rows = frame[(frame["attempt"] == attempt) & (frame["scope"] == "epoch")]
    return {int(e): int(s) for e, s in rows.groupby("epoch")["step"].max().items()}


def flat_params(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as dotted keys with scalar values: lists become ``"8,8"``, a
    mapping (per-layer init) its JSON, None ``"none"``; the sweep block is left out."""
    from mlplab.figures.data_configs import flatten

    out: dict[str, Any] = {}
    for key, value in flatten(config).items():
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        elif value is None:
            value = "none"
        out[key] = value
    return out


def swept_keys(runs: Iterable[RunInfo]) -> list[str]:
    """The keys a sweep varied for these runs (from each run's sweep entry), then those
    whose values differ among the runs, in first-seen order; ``name`` left out."""
    runs = list(runs)
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys((r.summary or {}).get("params") or {}))
    flats = [flat_params(r.config) for r in runs]
    for key in (flats[0] if flats else {}):
        if key != "name" and len({json.dumps(f.get(key), sort_keys=True) for f in flats}) > 1:
            keys.setdefault(key)
    return list(keys)


def summary_values(info: RunInfo) -> dict[str, float]:
    """``summary/<column>`` -> the index's value, for the :data:`SUMMARY` columns it has
    (``summary/val_loss`` is the kept network's, where the series' last ``val_loss`` is
    the last epoch's)."""
    return {f"summary/{c}": float(getattr(info, c)) for c in SUMMARY
            if getattr(info, c) is not None}


def run_tags(info: RunInfo) -> dict[str, str]:
    """The run's identity and outcome as text: run id, name, sweep, stage, trial, seed,
    status, end reason, restarts."""
    entry = info.summary or {}
    tags = {"mlplab.run_id": info.run_id, "mlplab.name": info.name,
            "mlplab.sweep_id": info.sweep_id, "mlplab.stage": entry.get("stage"),
            "mlplab.trial": entry.get("trial"), "mlplab.config_id": entry.get("config_id"),
            "mlplab.seed": info.seed, "mlplab.status": info.status,
            "mlplab.end_reason": info.end_reason, "mlplab.restarts": info.restarts,
            "mlplab.best_attempt": info.best_attempt}
    return {k: str(v) for k, v in tags.items() if v is not None}


def step_times(info: RunInfo, n: int) -> np.ndarray:
    """Wall-clock seconds for ``n`` records spread evenly over the run's time (the store
    keeps when a run started and finished, not when each value was measured)."""
    start = info.created or 0.0
    end = info.finished if info.finished and info.finished >= start else start
    return np.linspace(start, end, max(n, 1))[:n] if n else np.zeros(0)
