"""Training: the reference loop (one network, ``torch.optim``) and the cohort loop (K
networks as one vectorized program), with what both share: early stopping and restarts,
the trace a cohort keeps on the device, and the compiled epoch with its packages.

    reference.py    one configuration, one network at a time
    stopping.py     plateau, targets, why an attempt ended (both loops call it)
    grad_clip.py    gradient clipping by global norm (both loops and the compiled epoch)
    cohort.py       K configurations at once; cohort_state.py its state between steps,
                    host.py what the host knows of it and when it reads the device;
                    cohort_members.py which configurations can be one cohort (no torch)
    trace.py        what a cohort records while it trains; records.py the run records
    compiled.py     one epoch of a cohort as one AOTInductor program; aot_package.py
                    the packages on disk

Nothing here writes a store: an engine returns :class:`mlplab.record.RunRecord`s and
:mod:`mlplab.run` (or a sweep) writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cohort import train_cohort as train_cohort
    from .reference import train as train

__all__ = ["train", "train_cohort"]


def __getattr__(name: str) -> Any:
    # the loops load torch: imported when first used, so that reading a stopping rule
    # (engine.stopping, e.g. for a report) does not
    if name == "train":
        from .reference import train
        return train
    if name == "train_cohort":
        from .cohort import train_cohort
        return train_cohort
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
