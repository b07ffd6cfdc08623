"""What a cohort records while it trains.

:class:`Trace` holds preallocated device buffers. In the step loop only raw tensors are
copied into them (parameters before and after the update, the gradient, the loss); the
probe's quantities (the norms of :func:`mlplab.probe.norms.layer_norms`, one sum per layer
segment over every buffered step, and :func:`mlplab.probe.norms.activation_stats`) are computed
from those buffers a chunk of steps at a time, for all K models in a few large operations.
:class:`Timeline` is the host's record of which attempt and epoch each model was in.
:func:`mlplab.engine.records.build_records` turns both into the run records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mlplab.metrics import ACT_METRICS, layer_name
from mlplab.model.stacked import StackedMLP, hidden_pre_activations, layers
from mlplab.probe.norms import (STEP_NORMS, STEP_ROWS, activation_stats, fill_step_rows_,
                                segment_norms, step_metrics, step_rows)

TRACE_BYTES = 4 * 2 ** 20    # device memory for the step buffers of one chunk (4 MiB: cache-sized, 4% faster than 32 on W2)
MAX_CHUNK = 256              # steps per chunk at most
# elements of a block of the activation statistics' forwards (a layer's [rows, units, B]):
# fewer, larger operations (W2 compiled, 110 statistics of 64 models: 59 ms at 2 ** 18,
# 51 at 2 ** 19, 49 at 2 ** 20; the scratch is three blocks, 12 MB of float32)
BLOCK_ELEMENTS = 2 ** 20
FIRST_ROWS_BYTES = 64 * 2 ** 20   # the recorded rows' first buffer at most (it grows after)


@dataclass(frozen=True)
class FinishedAttempt:
    """One ended attempt of one model, on the host."""

    model: int
    attempt: int
    seed: int
    end_reason: str
    epochs: int
    best_epoch: int
    best_value: float
    init: Tensor                 # [P] rows in the StackedMLP layout
    kept: Tensor                 # [P] best if restored, else last
    last: Tensor                 # [P]
    snapshots: Tensor | None     # [S, P] parameters at boundary.snapshot_epochs


def epoch_span(running_epochs: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of the running models' epochs, ``(0, 0)`` when none runs."""
    return (int(running_epochs.min()), int(running_epochs.max())) \
        if len(running_epochs) else (0, 0)


class Timeline:
    """Host log of each model's attempt and epoch at every epoch of the cohort loop."""

    def __init__(self, spe: int, every: int, act_every: int):
        self.spe, self.every, self.act_every = spe, every, act_every
        self.attempt: list[np.ndarray] = []     # [K] per cohort epoch
        self.epoch: list[np.ndarray] = []

    def start_epoch(self, attempts: np.ndarray, epochs: np.ndarray) -> None:
        """``attempts [K]`` is kept by reference (the caller replaces, never edits it)."""
        self.attempt.append(attempts)
        self.epoch.append(epochs.copy())

    def traced_steps(self, running_epochs: np.ndarray,
                     span: tuple[int, int] | None = None) -> tuple[list[bool], list[bool]]:
        """Per step of this epoch: does any running model record step metrics / activations?
        ``span``: ``(min, max)`` of ``running_epochs`` if the caller knows it."""
        lo, hi = span if span is not None else epoch_span(running_epochs)
        # attempt step of each j = 0 (plain ints when every model is in one epoch: the
        # common case, and ten times faster than numpy on a few values)
        base = [lo * self.spe] if lo == hi else (np.unique(running_epochs) * self.spe).tolist()
        acts = [any((b + j) % self.act_every == 0 for b in base) for j in range(self.spe)]
        norms = [self.every == 1 or any((b + j) % self.every == 0 for b in base)
                 for j in range(self.spe)]
        return [a or b for a, b in zip(norms, acts)], acts


def recorded_steps(steps: int, every: int, act_every: int) -> tuple[int, int]:
    """How many of an attempt's first ``steps`` steps record step metrics or activation
    statistics (either), and how many activation statistics (steps 0, every, 2 every..)."""
    def multiples(n: int) -> int:
        return -(-steps // n)
    both = every * act_every // math.gcd(every, act_every)
    return multiples(every) + multiples(act_every) - multiples(both), multiples(act_every)


def _empty(like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``like.new_empty(shape)``; on a CPU from numpy's allocator, which asks Linux for
    huge pages for large arrays: one page fault per 2 MiB instead of per 4 KiB when the
    array is first written (W1's 17.6 MB of step rows: 2.8 against 8.3 ms)."""
    if like.device.type != "cpu" or like.dtype not in _NUMPY_DTYPES:
        return like.new_empty(shape)
    return torch.from_numpy(np.empty(shape, dtype=_NUMPY_DTYPES[like.dtype]))


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class _Rows:
    """Rows ``[S, K, M]`` (S recorded steps, K models, M columns) in one device tensor
    that grows by half when full: each flushed chunk is copied into its place once, and
    the records read each model's ``[S, M]`` from it as a view (no transpose: to_frame
    reads a step's M values together, :meth:`~mlplab.metrics.MetricsLog.add_block`)."""

    def __init__(self, like: Tensor, k: int, m: int, capacity: int):
        """Room for ``capacity`` steps at first (at most ``FIRST_ROWS_BYTES``)."""
        self.n = 0
        capacity = min(capacity, FIRST_ROWS_BYTES // max(1, k * m * like.element_size()))
        self._buf = _empty(like, (max(1, capacity), k, m))

    def take(self, s: int) -> Tensor:
        """The next ``s`` rows ``[s, K, M]`` (contiguous), for the caller to fill."""
        if self.n + s > len(self._buf):
            grown = _empty(self._buf, (max(self.n + s, len(self._buf) * 3 // 2),
                                       *self._buf.shape[1:]))
            grown[:self.n].copy_(self._buf[:self.n])
            self._buf = grown
        self.n += s
        return self._buf[self.n - s:self.n]

    def add(self, blocks: list[Tensor]) -> None:
        """Append blocks of rows ``[s, K, M]``."""
        torch.cat(blocks, out=self.take(sum(len(b) for b in blocks)))

    def array(self) -> np.ndarray:
        """All rows on the host, ``[S, K, M]`` (a view of the buffer on a CPU)."""
        return self._buf[:self.n].cpu().numpy()


class Trace:
    """Preallocated device buffers of the probe's raw inputs, and what was computed from
    them. ``init`` is the live ``[K, P]`` tensor of each model's initialisation;
    ``expected``: steps likely to record step metrics and activation statistics
    (:func:`recorded_steps`; the buffers for them grow if there are more)."""

    def __init__(self, spec: StackedMLP, init: Tensor, probe: bool, plateau_lr: bool,
                 x_probe: Tensor, expected: tuple[int, int] = (1, 1)):
        k, p = init.shape
        self.spec, self.init, self.x_probe = spec, init, x_probe
        self._act_scratch: Tensor | None = None   # made at the first activation statistics
        per_step = (len(STEP_ROWS) * k * p + k) * init.element_size()
        self.chunk = max(1, min(MAX_CHUNK, TRACE_BYTES // per_step)) if probe else 0
        # [C, 5, K, P] per step, the STEP_ROWS: the step loop copies the parameters after
        # and before the update and the gradient, flush fills the differences (update,
        # distance from init), so that one segment_norms call reduces all five
        self.raw = init.new_empty(self.chunk, len(STEP_ROWS), k, p)
        self.loss = init.new_empty(self.chunk, k, 1)       # [C, K, 1]
        # one view per slot, made once: the step loop then only copies
        self.rows = [(r[_ROW["prev"]], r[_ROW["after"]], r[_ROW["grad"]], l[:, 0])
                     for r, l in zip(self.raw.unbind(0), self.loss.unbind(0))]
        self._segments = segment_sizes(spec)
        self.n = 0
        self._precomputed = False            # the open chunk's slots came by add_epoch
        # add_epoch keeps the caller's fresh tensors (no copy): [s, K, M], [1, K, M_act]
        # rows, [A, K, P] parameters
        self._norm_rows: list[Tensor] = []
        self._act_rows: list[Tensor] = []
        self._afters: list[Tensor] = []
        self._slot_steps: list[int] = []
        self._slot_act: list[bool] = []
        self.steps: list[int] = []           # cohort step of every flushed slot
        self.act_steps: list[int] = []
        # [S, K, M]: columns step_columns(), act_columns()
        self.step_rows = _Rows(init, k, len(self.step_columns()), expected[0] if probe else 0)
        self.act_rows = _Rows(init, k, len(self.act_columns()), expected[1] if probe else 0)
        self._plateau_lr = plateau_lr
        # each epoch's values [4, K], who trained [K] and (plateau) lr [K], never written to
        self._epoch_values: list[Tensor] = []
        self._epoch_active: list[Tensor] = []
        self._epoch_lr: list[Tensor] = []

    def step_columns(self) -> list[tuple[str, str]]:
        names = [("", "loss")]
        for i in range(len(self.spec.sizes)):
            names += [(layer_name(i), m + wb) for wb in ("_w", "_b") for m in STEP_NORMS]
        return names

    def act_columns(self) -> list[tuple[str, str]]:
        return [(layer_name(i), m) for i in range(len(self.spec.sizes) - 1) for m in _ACTS]

    def open_slot(self, step: int, act: bool) -> int:
        """The raw buffer's row for cohort step ``step`` (flushes a full chunk first, or
        the rows :meth:`add_epoch` kept)."""
        if self.n == self.chunk or (self.n and self._precomputed):
            self.flush()
        self._precomputed = False
        self._slot_steps.append(step)
        self._slot_act.append(act)
        self.n += 1
        return self.n - 1

    @torch.no_grad()
    def flush(self) -> None:
        """Compute the probe's quantities of the buffered steps for all K models: every
        per-layer norm of every step, one reduction per weight and bias segment."""
        s = self.n
        if s == 0:
            return
        raw = self.raw[:s]                                                # [S, 5, K, P]
        act_rows = [i for i, a in enumerate(self._slot_act) if a]
        if act_rows and len(self.spec.sizes) > 1:                       # [A, K, M_act]
            if self._act_rows:
                self.act_rows.add(self._act_rows)
            else:
                self.act_rows.take(len(act_rows)).copy_(self._activations(
                    torch.cat(self._afters) if self._precomputed else
                    raw[act_rows, _ROW["after"]]))                        # after [A, K, P]
            self.act_steps += [self._slot_steps[i] for i in act_rows]
        if self._precomputed:
            self.step_rows.add(self._norm_rows)                            # [S, K, M]
            self._norm_rows, self._act_rows, self._afters = [], [], []
        else:
            fill_step_rows_(list(raw.unbind(1)), self.init)               # [S, K, P] each
            torch.cat([self.loss[:s], step_norms(raw, self._segments)], dim=2,
                      out=self.step_rows.take(s))
        self.steps += self._slot_steps
        self._slot_steps, self._slot_act, self.n = [], [], 0

    def add_epoch(self, step: int, rows: Tensor, traced: Sequence[bool],
                  acts: Sequence[bool], act_row: Tensor | None = None,
                  afters: Tensor | None = None) -> None:
        """The step metrics of an epoch's S steps, already computed (``rows [S, K, M]``,
        :meth:`step_columns`, as the compiled epoch gives them; cohort steps ``step``,
        ``step + 1``, ..): those ``traced`` are kept, and for those in ``acts`` the
        activation statistics, either computed (``act_row [K, M_act]``, a one-step epoch)
        or from the parameters after each step (``afters [S, K, P]``: at the flush). Kept
        as they are, not copied: the caller must not change them afterwards (the compiled
        epoch's outputs are new tensors every call). Flushed ``MAX_CHUNK`` steps at a
        time, so that the activation statistics run on many steps at once."""
        js = [j for j, t in enumerate(traced) if t]
        if not js:
            return
        if self.n and (not self._precomputed or self.n + len(js) > MAX_CHUNK):
            self.flush()
        self._precomputed = True
        self._norm_rows.append(rows if len(js) == len(rows) else rows[js])
        self._slot_steps += [step + j for j in js]
        self._slot_act += [acts[j] for j in js]
        self.n += len(js)
        if act_row is not None and acts[0]:
            self._act_rows.append(act_row.unsqueeze(0))                    # [1, K, M_act]
        elif afters is not None and any(acts):
            self._afters.append(afters[[j for j in js if acts[j]]])         # [A, K, P]

    def _activations(self, params: Tensor) -> Tensor:
        """Activation statistics on the probe batch for params ``[A, K, P]`` -> [A, K, M]."""
        a, k, p = params.shape
        flat = params.reshape(a * k, p)
        widest = max(o for _, o in self.spec.sizes[:-1]) * len(self.x_probe)
        rows = min(max(1, BLOCK_ELEMENTS // max(1, widest)), a * k)
        # [3, E]: two layers' outputs in turn, the centred values; made at the first
        # statistics, again when a larger block comes (a compiled minibatch epoch's flush
        # can hold more steps than the raw buffer's chunk)
        if self._act_scratch is None or self._act_scratch.shape[-1] < rows * widest:
            self._act_scratch = flat.new_empty(3, rows * widest)
        parts = []
        for lo in range(0, a * k, rows):
            stats = []
            for pre in hidden_pre_activations(self.spec, layers(self.spec, flat[lo:lo + rows]),
                                              self.x_probe, self._act_scratch[:2]):
                values = activation_stats(pre, self.spec.activation, batch_last=True,
                                          scratch=self._act_scratch[2])     # [rows] each
                stats += [values[m] for m in _ACTS]
            parts.append(torch.stack(stats, dim=1))                        # [rows, M]
        return torch.cat(parts).view(a, k, -1)                              # [A, K, M]

    def record_epoch(self, values: list[Tensor] | Tensor, active: Tensor,
                     lr: Tensor | None, fresh: bool = False) -> None:
        """Store train loss/acc, val loss/acc (each ``[K]``, or stacked ``[4, K]``) and who
        trained this epoch. ``fresh``: ``values [4, K]`` and ``active`` are new tensors
        that nothing writes to afterwards (the compiled epoch's outputs): kept as they
        are, not copied."""
        if isinstance(values, Tensor):
            self._epoch_values.append(values if fresh else values.clone())
        else:
            self._epoch_values.append(torch.stack(values))
        self._epoch_active.append(active if fresh else active.clone())
        if self._plateau_lr:
            self._epoch_lr.append(lr.clone())

    def epoch_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``values [E, 4, K]`` (in the trace's dtype: to_frame makes them float64),
        ``active [E, K]``, ``lr [E, K]`` (plateau schedule only)."""
        k, device = self.init.shape[0], self.init.device
        stack = lambda ts, empty: torch.stack(ts) if ts else empty  # noqa: E731
        vals = stack(self._epoch_values, self.init.new_empty(0, 4, k)).cpu().numpy()
        active = stack(self._epoch_active, torch.empty(0, k, dtype=torch.bool, device=device))
        lr = stack(self._epoch_lr, torch.empty(0, k, dtype=torch.float64, device=device)) \
            if self._plateau_lr else None
        return vals, active.cpu().numpy(), None if lr is None else lr.cpu().numpy()


_ROW = {row: i for i, row in enumerate(STEP_ROWS)}   # a trace step's rows, by name
_ACTS = ACT_METRICS                                   # the order of act_columns()


def segment_sizes(spec: StackedMLP) -> list[int]:
    """Sizes of each layer's weight and of its bias within a row of P parameters."""
    return [n for lo, mid, end in spec.segments() for n in (mid - lo, end - mid)]


def step_norms(raw: Tensor, segments: list[int]) -> Tensor:
    """The per-layer norms of :func:`mlplab.probe.norms.layer_norms` of steps whose rows
    ``raw [S, 5, K, P]`` are the :data:`~mlplab.probe.norms.STEP_ROWS` (differences filled
    in): ``[S, K, M - 1]`` (a view), the columns of :meth:`Trace.step_columns` after the
    loss. ``segments``: the sizes of each layer's weight, then its bias, in a row."""
    s, _, k, p = raw.shape
    # the Probe's own segment norms (a product with a 0/1 segment matrix would be faster
    # on tiny layers, but 0 * inf = NaN there spreads one layer's overflow to every layer)
    norms = segment_norms(raw.reshape(-1, p), segments) \
        .view(s, len(STEP_ROWS), k, len(segments) // 2, 2)                 # [S, 5, K, L, 2]
    return _norm_columns(norms.permute(0, 1, 3, 4, 2)).transpose(1, 2)


def step_norms_rows(after: Tensor, prev: Tensor, grad: Tensor, init: Tensor,
                    segments: list[int]) -> Tensor:
    """:func:`step_norms` of one step from its rows ``[K, P]``, reduced in that layout
    (each segment contiguous in a model's row), as the compiled minibatch epoch, whose
    tensors are ``[K, P]`` row-major, wants it: ``[K, M - 1]``. (Its layers of 16 or
    more units make segments a vector or longer: W2's compiled epoch took medians of 6.7
    and 7.4 ms against 8.0 and 10.2 ms reducing them models innermost, which transposed
    five ``[K, P]`` tensors a step.)"""
    return step_norms(torch.stack(step_rows(after, prev, grad, init)).unsqueeze(0), segments)[0]


def step_norms_klast(after: Tensor, prev: Tensor, grad: Tensor, init: Tensor,
                     segments: list[int]) -> Tensor:
    """:func:`step_norms` of one step from its rows ``[K, P]``, reduced with the models
    innermost (``[5, P, K]``: the compiled epoch's loops then run along K, not along
    segments of 1 to 8 parameters): ``[M - 1, K]`` in the same column order."""
    raw = torch.stack(step_rows(after.t(), prev.t(), grad.t(), init.t()))  # [5, P, K]
    norms = segment_norms(raw, segments)                                   # [5, 2L, K]
    return _norm_columns(norms.view(1, len(STEP_ROWS), -1, 2, norms.shape[-1]))[0]


def _norm_columns(norms: Tensor) -> Tensor:
    """Segment norms ``[S, 5, L, 2 (w, b), K]`` of the STEP_ROWS as the step columns
    ``[S, M - 1, K]``: per layer and w/b, the STEP_NORMS (:func:`step_metrics`; the order
    of :meth:`Trace.step_columns`)."""
    metrics = step_metrics(list(norms.unbind(1)))                          # [S, L, 2, K]
    return torch.stack(metrics, dim=3).flatten(1, 3)                       # [S, L*2*4, K]
