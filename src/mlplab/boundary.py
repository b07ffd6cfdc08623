"""Decision-boundary snapshots: a grid over the input plane and class probabilities on it.

2-D inputs use their own plane; higher-dimensional inputs use the plane of the first two
principal components of the training inputs, through the training mean. Stored per
attempt as ``boundary.safetensors`` with tensors ``grid_u [G]``, ``grid_v [G]``,
``center [d]``, ``basis [2, d]``, ``epochs [S]`` and ``probs [S, G, G, C]`` (float16;
``C = 1`` holding P(class 1) for a sigmoid head).

>>> import numpy as np
>>> g = make_grid(np.random.default_rng(0).normal(size=(50, 3)).astype("float32"), size=8)
>>> g.points.shape
torch.Size([64, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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


def pack(grid: BoundaryGrid, epochs: list[int], probs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors stored in ``boundary.safetensors``; ``probs`` items ``[G*G, C]``."""
    g = len(grid.grid_u)
    stacked = torch.stack([p.reshape(g, g, -1) for p in probs]).to(torch.float16)
    return {"grid_u": grid.grid_u, "grid_v": grid.grid_v, "center": grid.center,
            "basis": grid.basis, "epochs": torch.tensor(epochs, dtype=torch.int64),
            "probs": stacked}
