"""The host's side of a cohort: what it knows of each model, and when it asks the device.

A cohort's stopping state lives on the device as ``[K]`` tensors; reading them back is a
sync (on CUDA the host waits for every queued kernel). :class:`HostSync` is the one place
that decides when the loop reads them; :class:`HostView` is what the host knows between
reads: each model's attempt, its epoch (counted on the host in between) and whether it is
done.

>>> sync = HostSync(every=8, epochs=20, peek=True)
>>> [e for e in range(1, 21) if sync.should_sync(e)]
[8, 16, 20]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlplab.config import RunConfig
from . import stopping
from .cohort_state import CohortState
from .trace import epoch_span

# full-batch cohorts without restarts read the stopping flags every this many epochs
CHECK_EVERY = 8


@dataclass(frozen=True)
class HostSync:
    """When the cohort loop reads the ``[K]`` stopping flags back to the host."""

    every: int       # epochs between reads
    epochs: int      # the last epoch is always read
    peek: bool       # between reads, ask whether every model trains (cheap on a CPU only)

    @staticmethod
    def of(cfg: RunConfig, steps_per_epoch: int, device: torch.device) -> "HostSync":
        """Every epoch where the host acts on an ended attempt at once: a restart (a fresh
        row, the next seed) or a minibatch order (not drawn for a model that is done).
        A full-batch cohort without restarts only needs to know when all are done: its
        ended models are frozen by the masks, so it reads every ``CHECK_EVERY`` epochs."""
        every = 1 if cfg.stopping.restarts > 0 or steps_per_epoch > 1 else CHECK_EVERY
        return HostSync(every, cfg.train.epochs, device.type == "cpu")

    def should_sync(self, epoch: int) -> bool:
        """Read the flags after the cohort's ``epoch``-th epoch (counted from 1)?"""
        return epoch % self.every == 0 or epoch >= self.epochs

    def all_active(self, synced: bool, view: "HostView", active: torch.Tensor) -> bool:
        """Whether every model is known to train next epoch (the eager step then updates
        in place, without masks): after a read the host knows; between reads a CPU cohort
        asks the device (one bool, microseconds), a CUDA one takes the masked step rather
        than wait for the device."""
        if synced:
            return not view.any_done
        return self.peek and bool(active.all())


@dataclass
class HostView:
    """What the host knows of each model, brought up to date by :meth:`read`."""

    attempts: list[int]          # the attempt each model is in
    epoch: np.ndarray            # [K] int64, epoch within it (counted between reads)
    done: np.ndarray             # [K] bool, ended with no restart to follow
    # attempts as an array, replaced (never edited) on a restart: the timeline keeps it
    attempt_row: np.ndarray = field(init=False)
    any_done: bool = False       # done.any(), kept (numpy costs more than the question)
    restarted: bool = False      # running models may be at different epochs

    def __post_init__(self) -> None:
        self.attempt_row = np.asarray(self.attempts, dtype=np.int64)

    @staticmethod
    def start(k: int) -> "HostView":
        """K models in their first attempt, at epoch 0."""
        return HostView([0] * k, np.zeros(k, dtype=np.int64), np.zeros(k, dtype=bool))

    def running_epochs(self) -> np.ndarray:
        """The epochs of the models still training."""
        return self.epoch[~self.done] if self.any_done else self.epoch

    def span(self) -> tuple[int, int]:
        """``(min, max)`` of the running models' epochs (all equal while no model is done
        and none restarted: then without numpy)."""
        if not self.any_done and not self.restarted:
            return (int(self.epoch[0]),) * 2
        return epoch_span(self.epoch[~self.done])

    def advance(self) -> None:
        """One epoch more for every model the host believes running."""
        if self.any_done:
            self.epoch[~self.done] += 1
        else:
            self.epoch += 1

    def read(self, live: CohortState) -> dict[int, str]:
        """One sync: the models whose attempt ended since the last read, with why; each
        model's epoch taken from the device. The caller decides which restart
        (:meth:`restart`); the others are done."""
        active, codes, epochs = torch.stack([live.active.long(), live.end_code,
                                             live.epoch]).cpu().numpy()      # [K] each
        self.epoch[:] = epochs
        ks = np.flatnonzero((active == 0) & ~self.done)
        if len(ks) == 0:
            return {}
        self.done[ks] = True
        self.any_done = True
        return {k: stopping.reason_of(c) for k, c in zip(ks.tolist(), codes[ks].tolist())}

    def restart(self, ks: list[int]) -> None:
        """Models ``ks`` start their next attempt, at epoch 0."""
        for k in ks:
            self.attempts[k] += 1
        self.done[ks] = False
        self.epoch[ks] = 0
        self.any_done, self.restarted = bool(self.done.any()), True
        self.attempt_row = np.asarray(self.attempts, dtype=np.int64)
