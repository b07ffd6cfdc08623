"""The curvature probe of a cohort: batched measurements between the steps of an epoch.

:class:`CohortCurvature` measures every model's curvature at once
(:class:`mlplab.probe.curvature.MLPCurvature`) after each step where a running model is
due; the eager cohort loop (:mod:`mlplab.engine.cohort`) calls it by name.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mlplab.config import RunConfig
from mlplab.model.mlp import Head
from mlplab.model.stacked import StackedMLP
from mlplab.probe.curvature import MLPCurvature
from .cohort_state import CohortState
from .reference import Tensors


class CohortCurvature:
    """The curvature probe of a cohort (``probe.curvature_every > 0``): after each step
    where a running model is due (its attempt step a multiple of ``every``), every
    model's curvature at once, batched (:class:`mlplab.probe.curvature.MLPCurvature`);
    the records keep each model's due steps only."""

    def __init__(self, every: int, spe: int, probe: MLPCurvature) -> None:
        self.every, self.spe, self.probe = every, spe, probe
        self.steps: list[int] = []             # cohort steps measured
        self.values: list[Tensor] = []         # [K, M] each

    @staticmethod
    def of(cfg: RunConfig, spec: StackedMLP, head: Head, data: Tensors,
           spe: int) -> "CohortCurvature | None":
        if cfg.probe.curvature_every <= 0:
            return None
        return CohortCurvature(cfg.probe.curvature_every, spe, MLPCurvature(
            spec, head, data.x_probe, data.y_train[:len(data.x_probe)], cfg.train.optimizer))

    def at(self, live: CohortState, ge: int, running_epochs: np.ndarray
           ) -> Callable[[int], None] | None:
        """This epoch's callback for :func:`_epoch_steps`, None when no step is due."""
        base = (np.unique(running_epochs) * self.spe).tolist()
        due = {j for j in range(self.spe) if any((b + j) % self.every == 0 for b in base)}
        if not due:
            return None

        def measure(j: int) -> None:
            if j not in due:
                return
            hyper = live.hyper._asdict()
            fields = live.opt_state._asdict()
            state = {k: v[0] for k, v in fields.items() if isinstance(v, tuple) and v}
            state["count"] = fields["count"]
            values = self.probe.measure(live.flat, hyper, state)
            self.steps.append(ge * self.spe + j)
            self.values.append(torch.stack(list(values.values()), dim=1))   # [K, M]
            self.names = list(values)
        return measure

    def recorded(self) -> tuple[list[int], np.ndarray, list[str]] | None:
        """(cohort steps, values ``[S, K, M]``, metric names), None if none measured."""
        if not self.steps:
            return None
        return self.steps, torch.stack(self.values).cpu().numpy(), self.names
