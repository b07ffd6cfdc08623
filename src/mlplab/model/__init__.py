"""The network: the MLP and its output head, losses, the stacked form of K same-shape
models (one flat parameter tensor, one forward for all), and decision-boundary grids.

    head.py      the output head (:class:`Head`) resolved for a dataset's classes, no torch
    mlp.py       layer sizes, activations, named initialisers, ``build_mlp``
    loss.py      losses and accuracy for a head, one model or a cohort
    stacked.py   K models as ``flat [K, P]``: forward, written-out gradient, evaluation
    boundary.py  the grid over the input plane that boundary snapshots are taken on
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it: loaded when first used, so that importing a
# torch-free module of this package (head.py) does not import torch
_EXPORTS = {"Head": "head", "resolve_head": "head", "build_mlp": "mlp", "StackedMLP": "stacked"}

__all__ = ["Head", "StackedMLP", "build_mlp", "resolve_head"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlplab.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
