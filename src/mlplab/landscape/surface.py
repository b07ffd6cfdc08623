"""The loss surface around trained weights, on flat parameter rows.

Every point of a line or a plane in weight space is one row of ``rows [R, P]`` in the
layout of :mod:`mlplab.model.stacked`, so a whole slice is evaluated as one batched
forward of all its points (:func:`losses`), as the cohort engine evaluates its models.

- :func:`line_rows`: ``(1 - a) * start + a * end`` for each ``a`` (interpolation between
  the initial and final weights, or between the final weights of two seeds);
- :func:`filter_normalized`: a direction rescaled filter by filter (Li et al. 2018,
  "Visualizing the loss landscape of neural nets"): each unit's incoming weights get the
  norm of the same unit's weights, bias entries are zeroed (their "ignore biases" choice);
- :func:`plane_rows`: a grid ``center + u * d1 + v * d2`` of two such directions;
- :func:`path_directions`: the plane of a training path instead (its two principal
  directions, Li et al.'s choice for paths);
- :func:`project`: where weights (a training path) fall in that plane (least squares);
- :func:`barrier`: the largest excess of the loss along a line over the straight line
  between its end losses (Frankle et al. 2020, "Linear mode connectivity").

>>> import torch
>>> from mlplab.model.stacked import StackedMLP
>>> spec = StackedMLP(((2, 3), (3, 1)), ("0", "2"), "relu", 0.01, "sigmoid")
>>> w = torch.randn(spec.n_params, generator=torch.Generator().manual_seed(0))
>>> d = filter_normalized(torch.ones(spec.n_params), w, spec)
>>> rows = lambda t: t[:6].view(3, 2).norm(dim=1)      # the first layer's 3 filters
>>> torch.allclose(rows(d), rows(w)), float(d[6:9].abs().sum())     # biases: zero
(True, 0.0)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mlplab.model.mlp import Head
from mlplab.model.stacked import StackedMLP, eval_scratch, evaluate, layers

TINY = 1e-10   # keeps a zero filter of the direction from dividing by zero


def filter_normalized(direction: Tensor, weights: Tensor, spec: StackedMLP) -> Tensor:
    """``direction [P]`` with each filter (row of a layer's weight matrix: one unit's
    incoming weights) rescaled to the norm of the same filter of ``weights [P]``, and its
    bias entries set to zero."""
    out = torch.zeros_like(direction)
    for (d_w, _), (w, _), (o_w, _) in zip(layers(spec, direction), layers(spec, weights),
                                          layers(spec, out)):
        o_w.copy_(d_w * (w.norm(dim=-1, keepdim=True) / (d_w.norm(dim=-1, keepdim=True) + TINY)))
    return out


def random_directions(spec: StackedMLP, center: Tensor, seed: int) -> Tensor:
    """Two filter-normalised Gaussian directions around ``center [P]``: ``[2, P]``."""
    gen = torch.Generator().manual_seed(int(seed))
    raw = torch.randn(2, spec.n_params, generator=gen, dtype=center.dtype)
    return torch.stack([filter_normalized(r.to(center.device), center, spec) for r in raw])


def path_directions(path: Tensor, center: Tensor) -> tuple[Tensor, np.ndarray]:
    """The two principal directions of a training path ``path [S, P]`` about ``center [P]``
    (orthonormal rows ``[2, P]``) and the share of the path's spread each explains; Li et
    al.'s choice for drawing a path, which random directions in a large space miss."""
    offset = (path - center).double()                                # [S, P]
    _, sing, vt = torch.linalg.svd(offset, full_matrices=False)
    share = (sing ** 2 / (sing ** 2).sum().clamp_min(TINY)).numpy()
    dirs = vt[:2].to(center.dtype)
    if len(dirs) < 2:                                                # one point: any second axis
        dirs = torch.cat([dirs, torch.zeros_like(dirs)])
    return dirs, np.pad(share[:2], (0, max(0, 2 - len(share))))


def line_rows(start: Tensor, end: Tensor, alphas: Tensor) -> Tensor:
    """``(1 - a) * start + a * end`` for each of ``alphas [A]``: ``[A, P]`` (``start``,
    ``end`` ``[P]``; or ``[M, P]`` each, giving ``[M, A, P]``)."""
    a = alphas.to(start.dtype).unsqueeze(-1)                        # [A, 1]
    return torch.lerp(start.unsqueeze(-2), end.unsqueeze(-2), a)    # [(M,) A, P]


def plane_rows(center: Tensor, directions: Tensor, us: Tensor, vs: Tensor) -> Tensor:
    """``center + u * d1 + v * d2`` over the grid: ``[V * U, P]``, row-major over (v, u)."""
    vv, uu = torch.meshgrid(vs.to(center.dtype), us.to(center.dtype), indexing="ij")
    coef = torch.stack([uu.reshape(-1), vv.reshape(-1)], dim=1)     # [V*U, 2]
    return center + coef @ directions                               # [V*U, P]


def losses(spec: StackedMLP, head: Head, rows: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The loss of every row of ``rows [R, P]`` on ``x [N, d]``, ``y [N]``: ``[R]``, one
    batched forward (in cache-sized blocks of rows, as the engine evaluates a cohort)."""
    scratch = eval_scratch(spec, len(rows), x.shape[0], x)
    return evaluate(spec, layers(spec, rows), x, y, head, scratch)[0]


def project(points: Tensor, center: Tensor, directions: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``[S, 2]`` of ``points [S, P]`` in the plane ``center + span(d1, d2)``
    (least squares) and each point's share of its distance from ``center`` that lies off
    the plane ``[S]`` (0: in the plane)."""
    offset = (points - center).double()                              # [S, P]
    basis = directions.double().T                                    # [P, 2]
    coef = torch.linalg.lstsq(basis, offset.T).solution.T            # [S, 2]
    off = (offset - coef @ basis.T).norm(dim=1)
    share = off / offset.norm(dim=1).clamp_min(TINY)
    return coef.numpy(), share.numpy()


def barrier(alphas: np.ndarray, values: np.ndarray) -> float:
    """The loss barrier along a line: ``max_a L(a) - ((1 - a) L(0) + a L(1))`` (0 when
    the loss never rises above the straight line between the ends; NaN when a loss is).

    >>> barrier(np.array([0, .5, 1]), np.array([.1, .6, .3]))
    0.4
    """
    a, v = np.asarray(alphas, np.float64), np.asarray(values, np.float64)
    if not np.isfinite(v).all():
        return float("nan")
    return round(float(max(0.0, np.max(v - ((1 - a) * v[0] + a * v[-1])))), 12)
