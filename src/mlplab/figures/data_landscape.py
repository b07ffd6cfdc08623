"""Figure data of a run's loss landscape (``landscape.json``, :mod:`mlplab.landscape`) and
of a learning-rate finder's result, as frozen records the PNGs and the dashboard draw.

>>> doc = {"run_id": "r", "interpolation": {"alphas": [0, 1], "train_loss": [.7, .1],
...        "val_loss": [.7, .2]}, "barrier": {"alphas": [0, 1], "partners": [], "summary": None},
...        "plane": {"u": [-1, 1], "v": [-1, 1], "train_loss": [[1, 2], [3, None]], "path": None}}
>>> info = landscape_info(doc)
>>> float(info.plane.loss[1, 1]), info.plane.path is None
(nan, True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .arrays import frozen_array


def _array(values: Any) -> np.ndarray:
    """A JSON list (``null`` for a non-finite number) as a read-only float array."""
    return frozen_array(np.array(values, dtype=object).astype(np.float64)
                        if values is not None else [])


@dataclass(frozen=True)
class LineCurve:
    label: str
    values: np.ndarray           # [A] loss at each alpha


@dataclass(frozen=True)
class LineInfo:
    """Losses along straight lines in weight space, ``alphas`` from 0 (start) to 1 (end)."""

    title: str
    start: str                   # what alpha = 0 is
    end: str                     # what alpha = 1 is
    alphas: np.ndarray           # [A]
    curves: tuple[LineCurve, ...]
    note: str                    # the barrier heights, or why there are none


@dataclass(frozen=True)
class PathInfo:
    epochs: tuple[int, ...]      # -1: the initial weights
    u: np.ndarray                # [S] coordinates in the plane
    v: np.ndarray
    off_plane: np.ndarray        # [S] share of each point's distance that lies off the plane


@dataclass(frozen=True)
class PlaneInfo:
    """The loss on a 2-D slice ``final + u d1 + v d2`` and the training path on it."""

    u: np.ndarray                # [U]
    v: np.ndarray                # [V]
    loss: np.ndarray             # [V, U]
    path: PathInfo | None
    directions: str              # how the two directions were chosen, in words
    kind: str = "random"         # random (filter-normalised) or path (its principal directions)


@dataclass(frozen=True)
class LandscapeInfo:
    run_id: str
    interpolation: LineInfo
    barrier: LineInfo
    plane: PlaneInfo


def _barrier_note(b: Mapping[str, Any]) -> str:
    s = b.get("summary")
    if not s or not s.get("n"):
        return "no other seed of this configuration in the store"
    fmt = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
    return (f"barrier height: median {fmt(s['median'])}, 95% CI [{fmt(s['ci_low'])}, "
            f"{fmt(s['ci_high'])}], n={s['n']}")


def landscape_info(doc: Mapping[str, Any]) -> LandscapeInfo:
    """The records of a ``landscape.json`` document."""
    li = doc["interpolation"]
    interp = LineInfo("Initial to final weights", "initial", "final", _array(li["alphas"]),
                      (LineCurve("train loss", _array(li["train_loss"])),
                       LineCurve("val loss", _array(li.get("val_loss")))), "")
    b = doc["barrier"]
    partners = tuple(LineCurve(f"seed {p.get('seed')} (barrier {p['barrier']:.3g})"
                               if p.get("barrier") is not None else f"seed {p.get('seed')}",
                               _array(p["train_loss"])) for p in b.get("partners", []))
    barrier = LineInfo("To the other seeds' final weights", "this run",
                       "other seed", _array(b["alphas"]), partners, _barrier_note(b))
    pl, path = doc["plane"], doc["plane"].get("path")
    path_info = None if not path else PathInfo(tuple(int(e) for e in path["epochs"]),
                                               _array(path["u"]), _array(path["v"]),
                                               _array(path["off_plane"]))
    plane = PlaneInfo(_array(pl["u"]), _array(pl["v"]), _array(pl["train_loss"]), path_info,
                      pl.get("directions", ""), pl.get("kind", "random"))
    return LandscapeInfo(str(doc["run_id"]), interp, barrier, plane)


def load_landscape_info(run_dir: Path) -> LandscapeInfo | None:
    """The records of ``run_dir/landscape.json``, or None when the run has none."""
    path = Path(run_dir) / "landscape.json"
    return landscape_info(json.loads(path.read_text())) if path.is_file() else None


def landscape_text(doc: Mapping[str, Any]) -> str:
    """A ``landscape.json`` document in a few lines for people (the CLI and the report)."""
    line = [v for v in doc["interpolation"]["train_loss"] if v is not None]
    text = [f"run {doc['run_id']} (attempt {doc['attempt']}, {doc['which']} weights), "
            f"loss on the {doc['loss_on']}",
            f"  initial -> final weights: loss {_num(line[0] if line else None)} -> "
            f"{_num(line[-1] if line else None)}, highest on the line "
            f"{_num(max(line, default=None))}",
            "  " + _barrier_note(doc["barrier"])
            + ("" if doc["barrier"].get("summary") else " (train with --seeds N, or name "
               "another configuration with --seeds-of)")]
    path = doc["plane"].get("path")
    text.append(f"  slice: the training path drawn through {len(path['epochs'])} points" if path
                else "  slice: no weight snapshots kept (probe.boundary_snapshots: 0): no path")
    text += [f"  figure: {f}" for f in doc.get("figures", [])]
    return "\n".join(text)


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}"


@dataclass(frozen=True)
class LrFindInfo:
    """A learning-rate finder's result: the final loss per lr over seeds (median and its
    interval), the suggestion with its interval, and the single-run range test."""

    lrs: np.ndarray              # [L]
    median: np.ndarray           # [L] median final loss over seeds (NaN: all diverged)
    low: np.ndarray              # [L] its 95 % interval
    high: np.ndarray
    per_seed: np.ndarray         # [L, S] final losses (NaN: diverged)
    suggested: float
    suggested_low: float
    suggested_high: float
    range_lrs: np.ndarray        # [T] the range test's lr at each step
    range_loss: np.ndarray       # [T] its smoothed loss
    range_suggested: float | None
    title: str


def lr_find_info(doc: Mapping[str, Any]) -> LrFindInfo:
    """The record of an ``lr-find`` result document (:func:`mlplab.landscape.lr_find`)."""
    g, s, r = doc["grid"], doc["suggestion"], doc["range_test"]
    return LrFindInfo(_array(g["lrs"]), _array([p["median"] for p in g["summary"]]),
                      _array([p["ci_low"] for p in g["summary"]]),
                      _array([p["ci_high"] for p in g["summary"]]), _array(g["final_loss"]),
                      float(s["lr"]), float(s["low"]), float(s["high"]), _array(r["lrs"]),
                      _array(r["smoothed_loss"]), r.get("suggested"), str(doc.get("title", "")))
