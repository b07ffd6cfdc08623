"""Gradient clipping by global norm: the one rule both engines and the compiled epoch use.

``torch.nn.utils.clip_grad_norm_``'s rule (the norm of all of a model's gradients
together; scaled by ``max_norm / (norm + 1e-6)`` where that is below 1), for gradients
with leading model dimensions: the one-model engine passes its parameters' gradients
(``batch_dims=0``), a cohort its ``[K, P]`` rows (``batch_dims=1``), and each of the K
models is clipped by its own norm.

>>> import torch
>>> g = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
>>> clip_grad_norm_([g], 1.0, batch_dims=1).tolist()
[5.0, 0.5]
>>> [round(v, 4) for v in g.flatten().tolist()]
[0.6, 0.8, 0.3, 0.4]
"""

from __future__ import annotations

from typing import Sequence

import torch

from mlplab.probe.norms import l2

# added to the norm before dividing, as torch.nn.utils.clip_grad_norm_ does
EPS = 1e-6


def clip_grad_norm_(grads: Sequence[torch.Tensor], max_norm: float,
                    batch_dims: int = 0) -> torch.Tensor:
    """Scale ``grads`` in place so that each model's global norm is at most ``max_norm``;
    returns the norms before clipping (``[K]``, or a scalar with ``batch_dims=0``).
    ``batch_dims``: the leading model dimensions every gradient shares."""
    norms = [l2(g, batch_dims) for g in grads]
    # one tensor (a cohort's flat rows): its norm is the total, without a stack of one
    total = norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms), dim=0)
    coef = (max_norm / (total + EPS)).clamp(max=1.0)                     # [K] or []
    for g in grads:
        g.mul_(coef.reshape(coef.shape + (1,) * (g.dim() - batch_dims)))
    return total
