"""The curvature probe's cost (``mlplab bench --curvature``): W2's cohort with the probe,
with and without curvature every ``CURVATURE_EVERY`` steps, alternately.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .workloads import median_times, workloads

CURVATURE_EVERY = 10         # steps between curvature records in the measurement
CURVATURE_EPOCHS = 10        # W2's cohort for this many epochs (110 steps): seconds


@dataclass(frozen=True)
class CurvatureCost:
    """The cohort with the probe, with and without curvature every ``every`` steps."""

    workload: str
    models: int
    steps: int                        # per model
    every: int
    measurements: int                 # curvature records per model
    probe_seconds: float              # median, probe on, curvature off
    curvature_seconds: float          # median, probe on, curvature every `every` steps
    ratio: float                      # curvature_seconds / probe_seconds
    ms_per_measurement: float         # the extra time per curvature record (all K models)
    runs: int

    def summary(self) -> str:
        return (f"curvature: {self.workload} cohort (K={self.models}, {self.steps} steps) with "
                f"the probe and curvature every {self.every} steps took {self.ratio:.2f}x the "
                f"probe alone ({self.curvature_seconds:.2f} s against {self.probe_seconds:.2f} s,"
                f" median of {self.runs}); {self.ms_per_measurement:.1f} ms per curvature record"
                f" of all {self.models} models (sharpness, Hessian trace, noise scale, "
                "stability).")


def curvature_cost(device: torch.device, quick: bool = False, repeats: int = 3
                   ) -> CurvatureCost:
    """Time W2's cohort (``CURVATURE_EPOCHS`` epochs) with the probe, with and without
    ``probe.curvature_every = CURVATURE_EVERY``, alternately; the medians count."""
    from mlplab.config import with_overrides
    from mlplab.engine.cohort import train_cohort

    w = workloads(quick)[1]
    epochs = 2 if quick else CURVATURE_EPOCHS
    base = [with_overrides(c, {"train.epochs": epochs}) for c in w.configs]
    curv = [with_overrides(c, {"probe.curvature_every": CURVATURE_EVERY}) for c in base]
    records, (plain, with_curv), runs = median_times(
        [lambda: train_cohort(curv, device=device), lambda: train_cohort(base, device=device)],
        1 if quick else repeats)
    steps = records[0].attempts[0].steps
    measured = -(-steps // CURVATURE_EVERY)
    with_curv, plain = plain, with_curv           # runs[0] was the curvature cohort
    return CurvatureCost(w.name, len(base), steps, CURVATURE_EVERY, measured, plain, with_curv,
                         with_curv / plain, 1e3 * (with_curv - plain) / measured, runs)
