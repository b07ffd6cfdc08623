"""Figure data that needs the trained network: the decision boundary and the network diagram.

The kept network is evaluated on the boundary grid (2-D inputs: their plane; more
dimensions: the plane of the first two principal components through the training mean,
as :mod:`mlplab.model.boundary` stores it), so the picture, the accuracy printed on it and the
diagram's unit maps all come from the same weights. Snapshots over training come from
the attempt's ``boundary/`` tensors.

>>> import numpy as np
>>> full_probs(np.array([[[0.25]]], dtype=np.float16)).tolist()
[[[0.75, 0.25]]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .arrays import as_numpy, frozen_array, layer_weights

if TYPE_CHECKING:
    import torch

    from mlplab.data import Dataset
    from mlplab.store.store import Store

# The diagram draws at most this many units per layer (the rest are counted, not drawn).
MAX_NODES = 12


@dataclass(frozen=True)
class BoundaryInfo:
    """Class probabilities over a grid of the input plane, with the data drawn on it."""

    attempt: int
    grid_u: np.ndarray        # [G] first plane axis
    grid_v: np.ndarray        # [G] second plane axis
    probs: np.ndarray         # [G, G, C] class probabilities of the kept weights (rows: v)
    class_names: tuple[str, ...]
    axis_labels: tuple[str, str]
    plane_note: str           # "" for 2-D inputs, else how the plane was chosen
    train_xy: np.ndarray      # [N, 2] training inputs in the plane
    train_y: np.ndarray       # [N]
    test_xy: np.ndarray       # [M, 2]
    test_y: np.ndarray        # [M]
    train_acc: float
    test_acc: float
    snapshot_epochs: tuple[int, ...]   # epochs (0-based, within the attempt) of the snapshots
    snapshots: np.ndarray     # [S, G, G, C]


@dataclass(frozen=True)
class NetworkInfo:
    """A TensorFlow-Playground-like view: weights between units, and what each unit
    computes over the input plane (``maps``, only for the first MAX_NODES units)."""

    layer_sizes: tuple[int, ...]          # [d_in, h1, ..., out]
    node_names: tuple[tuple[str, ...], ...]   # per column, e.g. ("x0", "x1"), ("h1.1", ...)
    weights: tuple[np.ndarray, ...]       # per layer [out, in]
    biases: tuple[np.ndarray, ...]        # per layer [out]
    layers: tuple[str, ...]
    activation: str
    output: str
    maps: tuple[np.ndarray, ...] | None   # per column [units shown, G, G]


def full_probs(probs: Any) -> np.ndarray:
    """``[..., C]`` class probabilities; a stored sigmoid ``[..., 1]`` (P of class 1)
    becomes ``[..., 2]``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[-1] == 1:
        p = np.concatenate([1.0 - p, p], axis=-1)
    return p


def boundary_info(packed: Mapping[str, Any], final_probs: np.ndarray | None, data: "Dataset | None",
                  class_names: Sequence[str], attempt: int = 0,
                  accuracy: tuple[float, float] = (math.nan, math.nan)) -> BoundaryInfo:
    """The boundary record from stored grid tensors (the ``boundary/`` tensors' keys; the
    snapshots may be absent) and the kept weights' probabilities ``[G, G, C]``."""
    np_ = as_numpy
    u, v = np_(packed["grid_u"]), np_(packed["grid_v"])
    center, basis = np_(packed["center"]).astype(np.float64), np_(packed["basis"]).astype(np.float64)
    snaps = full_probs(np_(packed["probs"])) if "probs" in packed else np.zeros((0, len(v), len(u), 2))
    epochs = tuple(int(e) for e in np_(packed["epochs"]).tolist()) if "epochs" in packed else ()
    probs = full_probs(final_probs) if final_probs is not None else snaps[-1]
    d = len(center)
    empty = np.zeros((0, 2))
    if data is not None:
        proj = lambda x: (np.asarray(x, np.float64) - center) @ basis.T  # noqa: E731
        train_xy, test_xy = proj(data.x_train), proj(data.x_test)
        train_y, test_y = data.y_train, data.y_test
        names = data.feature_names
    else:
        train_xy = test_xy = empty
        train_y = test_y = np.zeros(0, np.int64)
        names = ()
    if d == 2 and np.allclose(basis, np.eye(2)) and len(names) == 2:
        axes, note = (str(names[0]), str(names[1])), ""
    else:
        axes = ("PC1", "PC2")
        note = f"{d} inputs shown in the plane of their first two principal components"
    return BoundaryInfo(
        attempt=attempt, grid_u=frozen_array(u), grid_v=frozen_array(v), probs=frozen_array(probs),
        class_names=tuple(str(c) for c in class_names), axis_labels=axes, plane_note=note,
        train_xy=frozen_array(train_xy), train_y=frozen_array(train_y, np.int64), test_xy=frozen_array(test_xy),
        test_y=frozen_array(test_y, np.int64), train_acc=float(accuracy[0]), test_acc=float(accuracy[1]),
        snapshot_epochs=epochs, snapshots=frozen_array(snaps))


def network_info(state: Mapping[str, Any], layers: Sequence[str], feature_names: Sequence[str],
                 class_names: Sequence[str], activation: str, output: str,
                 maps: Sequence[np.ndarray] | None = None) -> NetworkInfo:
    """The diagram record from a state dict (weights of the kept attempt)."""
    found = layer_weights(state, layers)
    sizes = [found[0][1].shape[1]] + [w.shape[0] for _, w, _ in found]
    names = [tuple(feature_names) if len(feature_names) == sizes[0] else
             tuple(f"x{j}" for j in range(sizes[0]))]
    for i, n in enumerate(sizes[1:-1]):
        names.append(tuple(f"h{i + 1}.{j + 1}" for j in range(n)))
    if output == "sigmoid":
        names.append((f"P({class_names[1] if len(class_names) > 1 else 1})",))
    elif len(class_names) == sizes[-1]:
        names.append(tuple(str(c) for c in class_names))
    else:
        names.append(tuple(f"y{j}" for j in range(sizes[-1])))
    return NetworkInfo(
        layer_sizes=tuple(int(s) for s in sizes), node_names=tuple(names),
        weights=tuple(frozen_array(w) for _, w, _ in found),
        biases=tuple(frozen_array(b if b is not None else np.zeros(w.shape[0])) for _, w, b in found),
        layers=tuple(l for l, _, _ in found), activation=activation, output=output,
        maps=None if maps is None else tuple(frozen_array(m) for m in maps))


def unit_maps(net: "torch.nn.Module", points: np.ndarray, grid_shape: tuple[int, int],
              output: str) -> tuple[list[np.ndarray], np.ndarray]:
    """What each unit of an mlplab MLP computes on the grid: per column (inputs, each
    hidden layer after its activation, outputs as class probabilities) ``[units, G, G]``
    for the first MAX_NODES units, and the class probabilities ``[G, G, C]``."""
    import torch

    from mlplab.model.loss import class_probabilities
    from mlplab.model.mlp import Head

    x = torch.as_tensor(points, dtype=torch.float32)                   # [G*G, d]
    g = lambda t: t[:, :MAX_NODES].T.reshape(-1, *grid_shape).double().numpy()  # noqa: E731
    columns = [g(x)]
    modules = list(net)
    linear_at = [i for i, m in enumerate(modules) if isinstance(m, torch.nn.Linear)]
    h = x
    with torch.no_grad():
        for i, m in enumerate(modules):
            h = m(h)
            if i - 1 in linear_at[:-1]:          # the activation after a hidden Linear
                columns.append(g(h))
        probs = class_probabilities(h, Head(output, "mse", h.shape[-1]))   # [G*G, C]
    shown = probs[:, 1:] if output == "sigmoid" else probs
    columns.append(g(shown))
    return columns, probs.reshape(*grid_shape, -1).double().numpy()


def boundary_and_network(store: "Store", run_id: str, attempt: int,
                         doc: Mapping[str, Any]) -> tuple[BoundaryInfo | None, NetworkInfo | None]:
    """Both records for a run of an mlplab MLP (``None, None`` for a Probe run on a
    user's model, whose architecture the store does not know)."""
    info, config = doc.get("info", {}), doc.get("config", {})
    if doc.get("source") == "probe" or "head" not in info:
        return None, None
    # both records evaluate the network: torch, with the model's own layers and head
    import torch

    from mlplab.config import ConfigError, from_dict
    from mlplab.data import load_data
    from mlplab.model.boundary import make_grid, plane_points
    from mlplab.model.loss import accuracy
    from mlplab.model.mlp import Head

    cfg = from_dict(config)
    try:
        data = load_data(cfg.data)
    except ConfigError:              # e.g. a csv: file that is no longer where it was
        data = None
    packed = store.boundary(run_id, attempt)
    if packed is None:
        if data is None:
            packed = None
        else:
            grid = make_grid(data.x_train)
            packed = {"grid_u": grid.grid_u, "grid_v": grid.grid_v, "center": grid.center,
                      "basis": grid.basis}
    net = store.load_model(run_id, attempt)
    head = Head(**info["head"])
    maps = None
    final = None
    acc = (math.nan, math.nan)
    if packed is not None:
        u, v = packed["grid_u"].numpy(), packed["grid_v"].numpy()
        points = plane_points(u, v, packed["center"].numpy(), packed["basis"].numpy())
        maps, final = unit_maps(net, points, (len(v), len(u)), head.output)
    if data is not None:
        with torch.no_grad():
            acc = tuple(float(accuracy(net(torch.as_tensor(x)), torch.as_tensor(y), head))
                        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)))
    class_names = info.get("class_names") or [str(i) for i in range(info.get("n_classes", 2))]
    boundary = None if packed is None else boundary_info(packed, final, data, class_names, attempt, acc)
    network = network_info(net.state_dict(), info.get("layers", []), info.get("feature_names", []),
                           class_names, config["model"]["activation"], head.output, maps)
    return boundary, network
