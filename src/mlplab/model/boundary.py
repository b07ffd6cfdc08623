"""Decision-boundary snapshots: a grid over the input plane and class probabilities on it.

2-D inputs use their own plane; higher-dimensional inputs use the plane of the first two
principal components of the training inputs, through the training mean. Stored per
attempt, under ``boundary/`` in its ``attempt-<n>.safetensors``
(:mod:`mlplab.store.runfiles`), as ``grid_u [G]``, ``grid_v [G]``, ``center [d]``,
``basis [2, d]``, ``epochs [S]`` and the network's parameters at each snapshot epoch,
``params.<state_dict key> [S, ...]``: a few hundred bytes where the
probabilities on the grid take tens of kB, and most runs of a sweep are never drawn.
:func:`with_probabilities` adds ``probs [S, G, G, C]`` (``C = 1`` holding P(class 1) for
a sigmoid head) when a figure needs them; files that already hold ``probs`` (float16,
written before the parameters were stored) are read as they are.

>>> import numpy as np
>>> g = make_grid(np.random.default_rng(0).normal(size=(50, 3)).astype("float32"), size=8)
>>> g.points.shape
torch.Size([64, 3])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .mlp import Head

GRID_SIZE = 48
MARGIN = 0.25   # share of the data range added on each side


@dataclass(frozen=True)
class BoundaryGrid:
    grid_u: torch.Tensor     # [G] coordinates along the first axis of the plane
    grid_v: torch.Tensor     # [G]
    center: torch.Tensor     # [d]
    basis: torch.Tensor      # [2, d] rows span the plane
    points: torch.Tensor     # [G*G, d] input-space points, row-major over (v, u)


def make_grid(x_train: np.ndarray, size: int = GRID_SIZE) -> BoundaryGrid:
    """A ``size x size`` grid covering the training inputs (or their top-2 PCA plane)."""
    x = np.asarray(x_train, dtype=np.float64)
    d = x.shape[1]
    if d == 2:
        center, basis = np.zeros(2), np.eye(2)
    else:
        center = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - center, full_matrices=False)
        basis = vt[:2] if d > 1 else np.vstack([np.eye(1), np.zeros((1, 1))])
        if basis.shape[0] < 2:
            basis = np.vstack([basis, np.zeros((1, d))])
    coords = (x - center) @ basis.T                     # [N, 2]
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    pad = MARGIN * np.maximum(hi - lo, 1e-3)
    u = np.linspace(lo[0] - pad[0], hi[0] + pad[0], size)
    v = np.linspace(lo[1] - pad[1], hi[1] + pad[1], size)
    uu, vv = np.meshgrid(u, v)                           # [G, G], rows follow v
    plane = np.stack([uu.ravel(), vv.ravel()], axis=1)   # [G*G, 2]
    points = center + plane @ basis                      # [G*G, d]
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return BoundaryGrid(as_t(u), as_t(v), as_t(center), as_t(basis), as_t(points))


def project(x: np.ndarray, grid: BoundaryGrid) -> np.ndarray:
    """Coordinates of inputs ``x [N, d]`` in the grid's plane, ``[N, 2]``."""
    return (np.asarray(x, np.float64) - grid.center.numpy()) @ grid.basis.numpy().T


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """``count`` evenly spaced epochs from the first to the last (0-based, unique)."""
    if count <= 0:
        return []
    return sorted({int(round(e)) for e in np.linspace(0, epochs - 1, count)})


def plane_points(grid_u: np.ndarray, grid_v: np.ndarray, center: np.ndarray,
                 basis: np.ndarray) -> np.ndarray:
    """Input-space points ``[G*G, d]`` of the grid, row-major over (v, u)."""
    uu, vv = np.meshgrid(np.asarray(grid_u, np.float64), np.asarray(grid_v, np.float64))
    return np.asarray(center, np.float64) + np.stack([uu.ravel(), vv.ravel()], 1) @ \
        np.asarray(basis, np.float64)


def pack(grid: BoundaryGrid, epochs: list[int] | torch.Tensor,
         states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The boundary tensors an attempt stores (under ``boundary/``); ``states``: the network's
    ``state_dict`` at each of the ``epochs`` (a list, or an int64 tensor kept as it is),
    stacked (``"0.weight": [S, out, in]``, ...)."""
    return {"grid_u": grid.grid_u, "grid_v": grid.grid_v, "center": grid.center,
            "basis": grid.basis, "epochs": torch.as_tensor(epochs, dtype=torch.int64),
            **{f"params.{key}": t.contiguous() for key, t in states.items()}}


def with_probabilities(packed: dict[str, torch.Tensor], activation: str, negative_slope: float,
                       head: "Head") -> dict[str, torch.Tensor]:
    """``packed`` with ``probs [S, G, G, C]`` (float32) computed from its snapshot
    parameters, for an mlplab MLP with this hidden ``activation`` and ``head``; returned
    as it is when it holds ``probs`` already.

    >>> from mlplab.model.mlp import Head
    >>> g = make_grid(np.array([[0., 0.], [1., 1.]], dtype="float32"), size=3)
    >>> w = torch.zeros(2, 1, 2); b = torch.tensor([[-9.], [9.]])   # 2 snapshots, 2-1 net
    >>> p = with_probabilities(pack(g, [0, 5], {"0.weight": w, "0.bias": b}), "relu", 0.01,
    ...                        Head("sigmoid", "mse", 1))["probs"]
    >>> p.shape, round(float(p[0].max()), 4), round(float(p[1].min()), 4)
    (torch.Size([2, 3, 3, 1]), 0.0001, 0.9999)
    """
    from .stacked import StackedMLP, probabilities

    if "probs" in packed:
        return packed
    layer_keys = sorted({k[len("params."):].rsplit(".", 1)[0] for k in packed
                         if k.startswith("params.")}, key=int)
    params = [(packed[f"params.{k}.weight"], packed[f"params.{k}.bias"]) for k in layer_keys]
    spec = StackedMLP(tuple((w.shape[-1], w.shape[-2]) for w, _ in params), tuple(layer_keys),
                      activation, negative_slope, head.output)
    points = torch.as_tensor(plane_points(packed["grid_u"], packed["grid_v"], packed["center"],
                                          packed["basis"]), dtype=params[0][0].dtype)
    g_u, g_v = len(packed["grid_u"]), len(packed["grid_v"])
    probs = probabilities(spec, params, points, head).float()              # [S, G*G, C]
    return {**packed, "probs": probs.reshape(len(probs), g_v, g_u, -1)}
