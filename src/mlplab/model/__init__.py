"""The network: the MLP and its output head, losses, the stacked form of K same-shape
models (one flat parameter tensor, one forward for all), and decision-boundary grids.

    head.py      the output head (:class:`Head`) resolved for a dataset's classes, no torch
    mlp.py       layer sizes, activations, named initialisers, ``build_mlp``
    loss.py      losses and accuracy for a head, one model or a cohort
    stacked.py   K models as ``flat [K, P]``: forward, written-out gradient, evaluation
    boundary.py  the grid over the input plane that boundary snapshots are taken on
"""

from __future__ import annotations

from mlplab import lazy_exports

# public name -> module that defines it: loaded when first used, so that importing a
# torch-free module of this package (head.py) does not import torch
_EXPORTS = {"Head": "head", "resolve_head": "head", "build_mlp": "mlp", "StackedMLP": "stacked"}

__all__ = ["Head", "StackedMLP", "build_mlp", "resolve_head"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
