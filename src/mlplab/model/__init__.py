"""The network: the MLP and its output head, losses, the stacked form of K same-shape
models (one flat parameter tensor, one forward for all), and decision-boundary grids.

    mlp.py       layer sizes, activations, named initialisers, :class:`Head`, ``build_mlp``
    loss.py      losses and accuracy for a head, one model or a cohort
    stacked.py   K models as ``flat [K, P]``: forward, written-out gradient, evaluation
    boundary.py  the grid over the input plane that boundary snapshots are taken on
"""

from __future__ import annotations

from .mlp import Head as Head
from .mlp import build_mlp as build_mlp
from .mlp import resolve_head as resolve_head
from .stacked import StackedMLP as StackedMLP

__all__ = ["Head", "StackedMLP", "build_mlp", "resolve_head"]
