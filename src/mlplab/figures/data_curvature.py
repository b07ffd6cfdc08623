"""Figure data of a run's curvature probe (``probe.curvature_every``): sharpness, lr x
sharpness against the optimizer's stability bound, the Hessian trace and the gradient
noise scale, by attempt, laid end to end as :mod:`mlplab.figures.data_run` lays a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .arrays import frozen_array
from .data_spans import AttemptSpan

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class CurvatureCurve:
    """One attempt's curvature series (``probe.curvature_every``), NaN where not measured."""

    attempt: int
    x: np.ndarray                 # [T] steps over all attempts
    sharpness: np.ndarray         # [T] top Hessian eigenvalue
    stability: np.ndarray         # [T] lr x (preconditioned) sharpness
    hess_trace: np.ndarray        # [T]
    grad_noise_scale: np.ndarray  # [T]


@dataclass(frozen=True)
class CurvatureInfo:
    """The curvature probe's series and the optimizer's bound on lr x sharpness."""

    bound: float | None           # stability bound (2 for gradient descent), None: unknown
    curves: tuple[CurvatureCurve, ...]
    spans: tuple[AttemptSpan, ...]


def curvature_info(frame: "pd.DataFrame", spans: Sequence[AttemptSpan],
                   bound: float | None = None) -> CurvatureInfo | None:
    """The curvature series by attempt, None when the run measured none."""
    from mlplab.metrics import CURVATURE_METRICS

    rows = frame[(frame["scope"] == "step") & (frame["layer"] == "")
                 & frame["metric"].isin(CURVATURE_METRICS)]
    if rows.empty:
        return None
    start = {s.attempt: s.start_step for s in spans}
    curves = []
    for attempt, part in rows.groupby("attempt", sort=True):
        table = part.pivot_table(index="step", columns="metric", values="value",
                                 aggfunc="last", dropna=False).sort_index()
        col = lambda m: frozen_array(table[m].to_numpy(np.float64) if m in table  # noqa: E731
                                     else np.full(len(table), math.nan))
        x = table.index.to_numpy(np.float64) + start.get(int(attempt), 0)
        curves.append(CurvatureCurve(int(attempt), frozen_array(x), *(col(m) for m in
                                                                      CURVATURE_METRICS)))
    return CurvatureInfo(None if bound is None else float(bound), tuple(curves), tuple(spans))


def stability_bound_of(info: Mapping[str, Any], config: Mapping[str, Any]) -> float | None:
    """The run's bound on lr x sharpness: its info's, else its optimizer's in the table."""
    bound = info.get("stability_bound")
    if isinstance(bound, (int, float)):
        return float(bound)
    from mlplab.optim.table import OPTIMIZERS, stability_bound

    name = (config.get("train") or {}).get("optimizer")
    return stability_bound(name, info.get("optimizer_hyper") or {}) if name in OPTIMIZERS \
        else None
