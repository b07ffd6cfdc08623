"""Optimizers: one table of every optimizer (name, hyper-parameters and defaults), the
``torch.optim`` factory the reference engine uses, the batched rule a cohort uses (every
state tensor and hyper-parameter with a leading ``[K]``), its in-place form, and the
learning-rate schedules.

    batched.py   (init, update) pairs for K models at once, written as the textbook rule
    inplace.py   the same steps in place, for the common case of every model active
    schedule.py  per-epoch learning-rate schedules, plateau reduction
"""

from __future__ import annotations

from .batched import BatchedOptimizer as BatchedOptimizer
from .batched import make_optimizer as make_optimizer

__all__ = ["BatchedOptimizer", "make_optimizer"]
