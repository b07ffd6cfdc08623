"""Several full-batch epochs of a cohort to one call of its compiled program.

A full-batch epoch of a small network is one compiled program of ~55 us (W1); one
call an epoch adds the call and the host's work around it (the timeline, the trace's
hand-over, the stopping flags), about as much again. :func:`make_block` writes
``BLOCK_EPOCHS`` epochs of :func:`mlplab.engine.compiled.make_epoch` one after another into
one program. Each epoch folds the engine's stopping rule on the device as it does one
epoch a call, so a model whose attempt ends inside a block is frozen by the masks from
that epoch on; the host then records the block epoch by epoch (:class:`EpochsRun`), in
the order and with the masks the one-epoch calls give, and reads the flags, restarts and
finishes attempts after it. Every model's stop point, restarts, best weights and records
are those of one epoch a call; a model's restart only comes up to ``BLOCK_EPOCHS - 1``
epochs of the cohort later (the models are independent rows).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from mlplab.config import RunConfig
from .cohort_state import EpochStop
from .trace import Trace

# full-batch epochs run this many to a call of the compiled program (:func:`make_block`):
# the call's own cost and the host's work around it are paid once a block (W1: ~55 us of
# program and ~100 us of host an epoch, one epoch a call). 8 is HostSync.CHECK_EVERY, how
# often a cohort without restarts reads its stopping flags anyway
BLOCK_EPOCHS = 8


def epochs_per_call(cfg: RunConfig, steps: int) -> int:
    """Epochs of one call of the compiled program: ``BLOCK_EPOCHS`` for a full-batch
    epoch (``steps`` 1) without an lr schedule, else 1. The host sets a schedule's lr
    before each epoch, and draws each running model's minibatch order before it (a
    model that ended must not draw); neither can wait for the end of a block."""
    return BLOCK_EPOCHS if steps == 1 and cfg.train.schedule.name == "none" else 1


def make_block(epoch: Callable[..., tuple[Any, ...]], n: int) -> Callable[..., tuple[Any, ...]]:
    """``n`` full-batch epochs of ``epoch`` (:func:`make_epoch`'s) one after another, as a
    pure function of the same inputs: ``(flat', opt_state', stop', rows [n, K, M], values
    [n, 4, K], act_rows [n, K, M_act] or None, active [n, K], flats [n, K, P])``, epoch
    i's outputs as ``epoch`` gives them, ``active[i]`` the models that trained in it and
    ``flats[i]`` the parameters after it. Every epoch folds the stopping rule, so a model
    whose attempt ends in epoch i is frozen by the masks from there on, as it is between
    the host's reads of one epoch a call: the host learns of the end after the block and
    recovers the epoch from the state (the attempt's epoch count, end code, best epoch and
    weights were kept at the end)."""
    def block(flat: Tensor, init: Tensor, opt_state: Any, hyper: Any, stop: EpochStop,
              lr_floor: Tensor | None, perm: Tensor | None, x: Tensor, y: Tensor,
              x_val: Tensor, y_val: Tensor) -> tuple[Any, ...]:
        first = stop.active
        rows, values, act_rows, active, flats = [], [], [], [], []
        for _ in range(n):
            active.append(stop.active)
            flat, opt_state, stop, step_rows, vals, act_row, _ = epoch(
                flat, init, opt_state, hyper, stop, lr_floor, perm, x, y, x_val, y_val)
            rows.append(step_rows[0])                              # [K, M]
            values.append(vals)                                    # [4, K]
            flats.append(flat)
            if act_row is not None:
                act_rows.append(act_row)                           # [K, M_act]
        return flat, opt_state, stop._replace(ended=first & ~stop.active), \
            torch.stack(rows), torch.stack(values), \
            torch.stack(act_rows) if act_rows else None, torch.stack(active), \
            torch.stack(flats)

    return block


class EpochsRun(NamedTuple):
    """What one call of the compiled program did, epoch by epoch (``n`` epochs of ``S``
    steps), for the host to record in order."""

    rows: Tensor                 # [n * S, K, M] each step's loss and norms
    values: Tensor               # [n, 4, K] train loss, acc, val loss, acc
    act_rows: Tensor | None      # [n, K, M_act] full batch with hidden layers
    afters: Tensor | None        # [S, K, P] minibatch: the parameters after each step
    active: Tensor               # [n, K] the models that trained in each epoch
    flats: Tensor                # [n, K, P] the parameters after each epoch
    lr: Tensor | None            # [K] the epoch's lr (reduce-on-plateau only, n 1)

    @property
    def epochs(self) -> int:
        return len(self.values)

    def record(self, i: int, trace: Trace, step: int, traced: Sequence[bool],
               acts: Sequence[bool]) -> None:
        """Epoch i into the trace, as cohort steps ``step``, ``step + 1``, ..
        (``traced``, ``acts``: :meth:`Trace.add_epoch`'s, the host's for that epoch)."""
        s = len(self.rows) // self.epochs
        trace.add_epoch(step, self.rows[i * s:(i + 1) * s], traced, acts,
                        None if self.act_rows is None else self.act_rows[i], self.afters)
        trace.record_epoch(self.values[i], self.active[i], self.lr)
