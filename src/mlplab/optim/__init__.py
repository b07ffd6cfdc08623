"""Optimizers: one table of every optimizer (name, hyper-parameters and defaults, its
``torch.optim`` class for the reference engine, its batched rule), the batched rules a
cohort uses (every state tensor and hyper-parameter with a leading ``[K]``), their in-place
form, and the learning-rate schedules.

    table.py     every optimizer, one row each: what config, engines and tests read
    batched.py   (init, update) pairs for K models at once, written as the textbook rule
    inplace.py   the same steps in place, for the common case of every model active
    schedule.py  per-epoch learning-rate schedules, plateau reduction

Importing the package (and the table) loads no torch, so that the config can read the table
and the CLI start fast; the batched names load torch when first used.
"""

from __future__ import annotations

from mlplab import lazy_exports

from .table import OPTIMIZERS as OPTIMIZERS
from .table import OptimizerSpec as OptimizerSpec

_TORCH_EXPORTS = {"BatchedOptimizer": "batched", "make_optimizer": "batched"}

__all__ = ["OPTIMIZERS", "BatchedOptimizer", "OptimizerSpec", "make_optimizer"]


__getattr__, __dir__ = lazy_exports(__name__, _TORCH_EXPORTS)
