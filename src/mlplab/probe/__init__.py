"""Measurements (SPEC §5): per-layer gradient, weight and update norms, activation
statistics, and :class:`Probe` for the user's own training loop on any ``nn.Module``.

    norms.py       the norms and activation statistics, pure functions of tensors
    paramnorms.py  the per-parameter norms the user-loop probe takes, a few kernels a step
    curvature.py   sharpness, Hessian trace, gradient noise scale, stability (torch.func,
                   batched over a cohort), every probe.curvature_every steps
    curvature_probe.py  those estimators on mlplab's MLP (MLPCurvature, both engines) and on
                   any nn.Module (ModuleCurvature, the user-loop probe)
    user.py        :class:`Probe`: hooks, step and epoch records, a run record at the end
"""

from __future__ import annotations

from .norms import activation_stats as activation_stats
from .norms import layer_norms as layer_norms
from .user import Probe as Probe

__all__ = ["Probe", "activation_stats", "layer_norms"]
