"""The loss landscape of a stored run (``mlplab landscape RUN``), written into its folder.

Three views of the training loss around the run's final weights (the kept attempt's
``best`` weights by default), each evaluated as one batched forward of all its points
(:mod:`mlplab.landscape.surface`):

- the straight line from the attempt's initial weights (its ``init/`` tensors) to them;
- the straight line from them to the final weights of every other seed of the same
  configuration in the store (the barrier height of each, and its median over partners
  with a 95 % interval);
- a 2-D slice along two random filter-normalised directions (Li et al. 2018), with the
  training path drawn on it: the initial weights and the weights at the decision-boundary
  snapshot epochs (its ``boundary/`` tensors), projected onto the plane (or, with
  ``directions="path"``, along the path's own two principal directions, where it lies).

The numbers go to ``RUN/landscape.json`` (strict JSON) and the figures to
``RUN/landscape/*.png``; the run's report and dashboard page show them.

>>> import tempfile, mlplab
>>> cfg = mlplab.from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 5}})
>>> with tempfile.TemporaryDirectory() as out:
...     _ = mlplab.run_config(cfg, out, seeds=2, report=False, quiet=True)
...     doc = landscape(out, run_id=mlplab.Store(out).runs()[0].run_id, grid=5, figures=False)
...     len(doc["interpolation"]["alphas"]), doc["barrier"]["summary"]["n"]
(41, 1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlplab import strictjson
from mlplab.config import ConfigError, from_dict
from mlplab.store.atomic import write_atomic
from mlplab.store.groups import config_key
from mlplab.store.models import locate_run
from mlplab.store.runfiles import read_tensors, tensors_name
from mlplab.store.store import Store, StoreError

LINE_POINTS = 41      # points along each line, both ends included
GRID = 31             # points along each axis of the 2-D slice
PLANE_MARGIN = 1.15   # the slice reaches this far past the farthest point of the path
FILE = "landscape.json"
FIGURES = "landscape"  # the folder of the PNGs inside the run's folder


class _Net:
    """A stored run's network as a flat-row spec, its head and its training data."""

    def __init__(self, store: Store, run_id: str):
        from mlplab.data import load_data
        from mlplab.engine.reference import to_tensors
        from mlplab.model.mlp import Head, build_mlp
        from mlplab.model.stacked import StackedMLP

        doc = store.run_doc(run_id)
        if doc.get("source") == "probe":
            raise StoreError(f"run '{run_id}' was recorded by a Probe on a user's model: its "
                             "network is not an mlplab MLP, so it has no landscape here")
        cfg = from_dict(doc["config"])
        self.head = Head(**doc["info"]["head"])
        net = build_mlp(cfg.model, self.head, doc["info"]["input_dim"], seed=0)
        self.spec = StackedMLP.of(net, cfg.model.activation, cfg.model.negative_slope,
                                  self.head.output)
        self.data = to_tensors(load_data(cfg.data), 1)
        self.config = doc["config"]

    def fits(self, state: dict[str, torch.Tensor]) -> bool:
        """Whether ``state`` holds weights of this network's shape."""
        want = {f"{k}.{p}": shape for k, (i, o) in zip(self.spec.keys, self.spec.sizes)
                for p, shape in (("weight", (o, i)), ("bias", (o,)))}
        return set(state) == set(want) and all(tuple(state[k].shape) == s
                                               for k, s in want.items())

    def row(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        from mlplab.model.stacked import flatten_state

        return flatten_state(self.spec, state).float()

    def losses(self, rows: torch.Tensor, split: str = "train") -> np.ndarray:
        from .surface import losses

        x, y = (self.data.x_train, self.data.y_train) if split == "train" else \
            (self.data.x_val, self.data.y_val)
        return losses(self.spec, self.head, rows, x, y).double().numpy()


def _weights(store: Store, run_id: str, attempt: int, which: str) -> dict[str, torch.Tensor]:
    try:
        return store.weights(run_id, attempt, which)
    except StoreError:
        folder = store.run_dir(run_id)
        path = folder / tensors_name(folder, attempt, which)
        raise StoreError(f"'{path}' holds no {which} weights: the landscape needs the attempt's"
                         f" {which} weights (runs written before mlplab kept them cannot be drawn)"
                         ) from None


def _interpolation(net: _Net, init: torch.Tensor, final: torch.Tensor,
                   points: int) -> dict[str, Any]:
    from .surface import line_rows

    alphas = np.linspace(0.0, 1.0, points)
    rows = line_rows(init, final, torch.as_tensor(alphas))                   # [A, P]
    return {"alphas": alphas, "train_loss": net.losses(rows),
            "val_loss": net.losses(rows, "val")}


def _partners(store: Store, run_id: str, seeds_of: str | None) -> list:
    """The other finished runs of the configuration: ``seeds_of`` (a configuration id, as
    ``mlplab runs --group-by config`` shows it) or the run's own."""
    own = store.run(run_id)
    key = seeds_of or config_key(own.config)
    runs = [r for r in store.runs(status="done") if config_key(r.config) == key]
    if seeds_of is not None and not runs:
        raise ConfigError("--seeds-of", seeds_of, "a configuration id of finished runs in "
                          f"'{store.root}' (mlplab runs {store.root} --group-by config)")
    return [r for r in runs if r.run_id != run_id]


def _barriers(net: _Net, store: Store, run_id: str, final: torch.Tensor, which: str,
              seeds_of: str | None, points: int) -> dict[str, Any]:
    from mlplab.stats import summarize

    from .surface import barrier, line_rows

    others = _partners(store, run_id, seeds_of)
    alphas = np.linspace(0.0, 1.0, points)
    out: dict[str, Any] = {"alphas": alphas, "partners": [], "summary": None}
    if not others:
        return out
    states = [_weights(store, r.run_id, r.best_attempt or 0, which) for r in others]
    for r, state in zip(others, states):
        if not net.fits(state):
            raise ConfigError("--seeds-of", seeds_of or config_key(r.config),
                              f"a configuration of the same network as run '{run_id}' "
                              f"({net.config['model'].get('hidden')} hidden units)")
    ends = torch.stack([net.row(state) for state in states])                 # [M, P]
    rows = line_rows(final.expand_as(ends), ends, torch.as_tensor(alphas))  # [M, A, P]
    values = net.losses(rows.flatten(0, 1)).reshape(len(others), points)    # [M, A]
    for r, v in zip(others, values):
        out["partners"].append({"run_id": r.run_id, "seed": (r.config.get("train") or {}).get(
            "seed"), "train_loss": v, "barrier": barrier(alphas, v)})
    heights = [p["barrier"] for p in out["partners"]]
    out["summary"] = summarize(heights, statistic="median").to_dict()
    return out


def _path(store: Store, run_id: str, attempt: int, net: _Net,
          init: torch.Tensor) -> tuple[list[int], torch.Tensor] | None:
    """Epochs (``-1``: the initial weights) and weights ``[S, P]`` along the training path,
    from the boundary snapshots; None when the attempt kept none."""
    packed = read_tensors(store.run_dir(run_id), attempt, "boundary")
    if packed is None:
        return None
    if f"params.{net.spec.keys[0]}.weight" not in packed:   # an old file: probabilities only
        return None
    states = {k[len("params."):]: t for k, t in packed.items() if k.startswith("params.")}
    rows = torch.stack([net.row({k: t[s] for k, t in states.items()})
                        for s in range(len(packed["epochs"]))])             # [S, P]
    return [-1] + packed["epochs"].tolist(), torch.cat([init[None], rows])


def _plane(net: _Net, final: torch.Tensor, path: tuple[list[int], torch.Tensor] | None,
           grid: int, seed: int, span: float | None, directions: str) -> dict[str, Any]:
    from .surface import path_directions, plane_rows, project, random_directions

    if directions == "path":
        if path is None:
            raise ConfigError("--directions", "path", "random: this run kept no weight "
                              "snapshots (probe.boundary_snapshots: 0)")
        dirs, share = path_directions(path[1], final)                       # [2, P]
        how = (f"the training path's two principal directions ({share[0]:.0%} and "
               f"{share[1]:.0%} of its spread; Li et al. 2018), in weight-space units")
    else:
        dirs = random_directions(net.spec, final, seed)                      # [2, P]
        how = "random, filter-normalised (Li et al. 2018)"
    out: dict[str, Any] = {"directions": how, "kind": directions, "seed": seed, "path": None}
    reach = 1.0 if directions == "random" else 0.0
    if path is not None:
        coords, off = project(path[1], final, dirs)
        out["path"] = {"epochs": path[0], "u": coords[:, 0], "v": coords[:, 1],
                       "off_plane": off, "train_loss": net.losses(path[1])}
        reach = max(reach, PLANE_MARGIN * float(np.abs(coords).max()))
    extent = float(span) if span is not None else (reach or 1.0)
    axis = np.linspace(-extent, extent, grid)
    rows = plane_rows(final, dirs, torch.as_tensor(axis), torch.as_tensor(axis))  # [G*G, P]
    out.update(u=axis, v=axis, train_loss=net.losses(rows).reshape(grid, grid))
    return out


def landscape(run: str | Path, run_id: str | None = None, seeds_of: str | None = None, *,
              which: str = "best", points: int = LINE_POINTS, grid: int = GRID,
              span: float | None = None, seed: int = 0, directions: str = "random",
              figures: bool = True) -> dict[str, Any]:
    """Compute the landscape of a run (a run folder, or a store and ``run_id``), write
    ``landscape.json`` and, with ``figures``, the PNGs into the run's folder, and return
    the document. ``which``: the final weights (``best`` or ``last``); ``span``: the half
    width of the slice in units of the directions (default: reach the whole path);
    ``seed``: of the random directions; ``directions``: ``random`` (filter-normalised) or
    ``path`` (the training path's principal directions: the path lies in the slice)."""
    if which not in ("best", "last"):
        raise ConfigError("which", which, "best or last")
    if directions not in ("random", "path"):
        raise ConfigError("directions", directions, "random or path")
    for key, value, least in (("points", points, 2), ("grid", grid, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(key, value, f"a whole number >= {least}")
    if span is not None and not (np.isfinite(span) and span > 0):
        raise ConfigError("span", span, "a positive number")
    root, rid = locate_run(Path(run), run_id)
    store = Store(root, readonly=True)
    info = store.run(rid)
    attempt = info.best_attempt or 0
    net = _Net(store, rid)
    init = net.row(_weights(store, rid, attempt, "init"))
    final = net.row(_weights(store, rid, attempt, which))
    with torch.no_grad():
        doc: dict[str, Any] = {
            "run_id": rid, "attempt": attempt, "which": which, "loss_on": "training set",
            "interpolation": _interpolation(net, init, final, points),
            "barrier": _barriers(net, store, rid, final, which, seeds_of, points),
            "plane": _plane(net, final, _path(store, rid, attempt, net, init), grid, seed, span,
                            directions)}
    folder = store.run_dir(rid)
    doc = strictjson.jsonable(doc)
    write_atomic(folder / FILE, strictjson.dumps(doc, indent=1))
    if figures:
        from mlplab.figures.data_landscape import landscape_info
        from mlplab.figures.draw_landscape import write_landscape_figures

        doc["figures"] = [str(p) for p in write_landscape_figures(landscape_info(doc),
                                                                  folder / FIGURES)]
    return doc
