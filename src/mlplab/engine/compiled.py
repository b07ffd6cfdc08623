"""One epoch of a whole cohort as one compiled program (AOTInductor).

In eager PyTorch a full-batch epoch of a small network costs about 55 kernel launches
(forward, backward, the optimizer update, the evaluation and the stopping rule), each a
few microseconds on ``[K]`` or ``[K, P]`` tensors: launch overhead, not arithmetic. Here
the same epoch is one function of tensors that inductor compiles into a few fused loops:
the forward and backward written as multiplies and sums with the model dimension K
innermost (``[units, B, K]``: the loops vectorise across models rather than across
layers 2 or 4 wide), the masked :class:`~mlplab.optim.batched.BatchedOptimizer` step, the
evaluation at the new weights, :func:`mlplab.engine.cohort_state.fold_epoch` (the engine's own
stopping rule) and the probe's step norms and activation statistics (the latter from the
evaluation's own forward: the probe batch is the head of the training set).

A minibatch epoch is compiled too, up to ``MAX_STEPS`` steps: each model's batches
gathered by its own order (``perm``), the steps written out one after another in the
batched-matmul layout of :mod:`mlplab.model.stacked` (its products stay MKL calls; the rest
fuses), each step's probe norms, then the evaluation and the stopping rule. The
parameters after each step come back so that the trace computes the activation
statistics of the steps that record them. Everything on the host (the timeline, the
trace's chunks, snapshots, restarts, the batch orders) is unchanged: the cohort calls this
in place of its eager epoch.

The function is exported (``torch.export``) and compiled ahead of time into an
AOTInductor package, a shared library called from C++ with no per-call Python wrapper.
Packages are kept in :func:`mlplab.engine.aot_package.cache_dir` under a name that digests
everything they assume (the kind of cohort, every input's shape, layout and dtype with the
number of models K left open, torch, the CPU's vector instructions, mlplab's own source),
so building one costs ~15-30 s (full batch; ~70 s for W2's 11 minibatch steps) once per
machine and kind of cohort, whatever its K (a single model has its own), and loading it
milliseconds after that. The package checks nothing about its inputs, so the cohort
checks their layout before the first calls and after restarts.

A cohort trained without the probe (``probe=False``) gets a program that computes none of
the probe's quantities: a package of its own (W1's epoch ~45 us instead of ~75).

Asked for with ``compile=True`` in :func:`mlplab.engine.cohort.train_cohort` or
``mlplab train --compile``. Results agree with the eager cohort to float32 rounding, not
bit for bit (fused loops sum in another order). Where compiling is not possible (no C++
compiler, more than ``MAX_STEPS`` steps an epoch, an unwritable cache) the cohort says
why once and trains eagerly.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from mlplab.config import RunConfig
from mlplab.metrics import ACT_METRICS
from mlplab.model.mlp import Head
from mlplab.model.stacked import (Forward, StackedMLP, _accuracy, _activate, _activation_backward,
                                  _grads, _layers_forward, _loss, _loss_and_output_grad, layers)
from mlplab.optim.batched import BatchedOptimizer
from mlplab.probe.norms import activation_stats
from .aot_package import Package, leaves, obtain, signature, unflattener
from .grad_clip import clip_grad_norm_
from .cohort_state import CohortState, EpochStop, fold_epoch
from .reference import Tensors
from .trace import Trace, segment_sizes, step_norms_klast, step_norms_rows


# a minibatch epoch is compiled as its steps written out one after another: its build
# grows with them (W2's 11 steps: ~1 min), so longer epochs train eagerly
MAX_STEPS = 16
# inductor settings of a minibatch epoch's build: a value of more than 8 operations (an
# optimizer's per-model coefficients, bias corrections with their powers) is computed once
# into its own buffer, not again inside every [K, P] loop that reads it (W2's epoch ~9%
# shorter; a full-batch W1 epoch, all small loops, was slower with it: 0.08 vs 0.06 ms)
MINIBATCH_OPTIONS = {"realize_opcount_threshold": 8}


def why_not(cfg: RunConfig, steps: int) -> str | None:
    """Why this cohort (``steps`` optimizer steps an epoch) cannot train compiled, or None
    when it can."""
    if cfg.probe.curvature_every > 0:
        return (f"the curvature probe (probe.curvature_every {cfg.probe.curvature_every}) "
                "measures between the steps of an epoch, which a compiled epoch runs as one "
                "program; probe.curvature_every 0 compiles")
    if steps > MAX_STEPS:
        return (f"an epoch of {steps} minibatch steps (train.batch_size "
                f"{cfg.train.batch_size}) is more than the {MAX_STEPS} a compiled epoch "
                "writes out; a larger batch size compiles")
    return None


def _klast_params(spec: StackedMLP, flat: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Each layer of ``flat [K, P]`` as ``(w [out, in, K], b [out, K])`` (strided views)."""
    ft = flat.t()                                                     # [P, K]
    k = ft.shape[-1]
    return [(ft[lo:mid].view(fan_out, fan_in, k), ft[mid:hi])
            for (fan_in, fan_out), (lo, mid, hi) in zip(spec.sizes, spec.segments())]


def _klast_forward(spec: StackedMLP, params: list[tuple[Tensor, Tensor]], x: Tensor
                   ) -> tuple[list[Tensor], list[Tensor]]:
    """Layer inputs ``[in, B, 1 or K]`` and pre-activations ``[out, B, K]`` on ``x [B, d]``."""
    hs, zs = [x.t().unsqueeze(-1)], []                                # [d, B, 1]
    for i, (w, b) in enumerate(params):     # [o, i, 1, K] * [1, i, B, K] -> [o, B, K]
        zs.append((w.unsqueeze(2) * hs[-1].unsqueeze(0)).sum(1) + b.unsqueeze(1))
        if i < len(params) - 1:
            hs.append(_activate(spec, zs[-1]))
    return hs, zs


def _kob(z: Tensor) -> Tensor:
    """``[o, B, K]`` as the ``[K, o, B]`` view stacked.py's heads read."""
    return z.permute(2, 0, 1)


def _loss_and_grad(spec: StackedMLP, head: Head, flat: Tensor, x: Tensor, y: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """:func:`mlplab.model.stacked.loss_and_grad` in the K-innermost layout: loss ``[K]`` and the
    gradient ``[K, P]``."""
    params = _klast_params(spec, flat)
    hs, zs = _klast_forward(spec, params, x)
    loss, g = _loss_and_output_grad(_kob(zs[-1]), y, head)            # [K], [K, o, B]
    g = g.permute(1, 2, 0)                                            # [o, B, K]
    grads: list[Tensor] = []
    for i in range(len(params) - 1, -1, -1):
        h = hs[i]                           # [o, 1, B, K] * [1, i, B, K] -> [o, i, K]
        grads = [(g.unsqueeze(1) * h.unsqueeze(0)).sum(2).flatten(0, 1), g.sum(1)] + grads
        if i > 0:                           # [o, i, 1, K] * [o, 1, B, K] -> [i, B, K]
            g = (params[i][0].unsqueeze(2) * g.unsqueeze(1)).sum(0)
            g = _activation_backward(spec, g, zs[i - 1], hs[i])
    return loss, torch.cat(grads, dim=0).t()                          # [K], [K, P]


def _evaluate(spec: StackedMLP, head: Head, flat: Tensor, x: Tensor, y: Tensor
              ) -> tuple[tuple[Tensor, Tensor], list[Tensor]]:
    """Loss and accuracy ``[K]`` as :func:`mlplab.model.stacked.evaluate`, and the hidden layers'
    pre-activations ``[units, B, K]`` on the way."""
    zs = _klast_forward(spec, _klast_params(spec, flat), x)[1]
    z = _kob(zs[-1])                                                      # [K, o, B]
    return (_loss(z, y, head), _accuracy(z, y, head)), zs[:-1]


def _activation_rows(spec: StackedMLP, hidden: list[Tensor], n_probe: int) -> Tensor | None:
    """The trace's activation columns ``[K, M_act]`` (:meth:`Trace.act_columns`) from the
    hidden pre-activations ``[units, B, K]`` on the training set: the probe batch is its
    first ``n_probe`` examples (:func:`mlplab.engine.reference.to_tensors`), so the statistics are
    reductions of what the evaluation computed anyway. None without hidden layers."""
    if not hidden:
        return None
    rows = []
    for z in hidden:                        # [units, P, K] -> [K, units, P], batch last
        stats = activation_stats(_kob(z[:, :n_probe]), spec.activation, batch_last=True)
        rows += [stats[m] for m in ACT_METRICS]
    return torch.stack(rows, dim=1)


def _minibatch_step(spec: StackedMLP, head: Head, flat: Tensor, x: Tensor, y: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Loss ``[K]`` and gradient ``[K, P]`` on each model's own batch ``x [K, B, d]``,
    ``y [K, B]``: the eager step's batched matmuls (:mod:`mlplab.model.stacked`), which stay
    MKL calls inside the program."""
    params = layers(spec, flat)
    hs, zs = _layers_forward(spec, params, x)                       # batch last
    loss, g = _loss_and_output_grad(zs[-1], y, head)                 # [K], [K, o, B]
    return loss, torch.cat(_grads(spec, params, Forward(hs, zs, loss, g)), dim=-1)


def _evaluate_bmm(spec: StackedMLP, head: Head, flat: Tensor, x: Tensor, y: Tensor
                  ) -> tuple[Tensor, Tensor]:
    """Loss and accuracy ``[K]`` on a shared ``x [N, d]``, in the batched-matmul layout."""
    z = _layers_forward(spec, layers(spec, flat), x)[1][-1]             # [K, o, N]
    return _loss(z, y, head), _accuracy(z, y, head)


def make_epoch(spec: StackedMLP, head: Head, cfg: RunConfig, opt: BatchedOptimizer,
               val_is_train: bool, batch: int | None = None, probe: bool = True
               ) -> Callable[..., tuple[Any, ...]]:
    """The epoch as a pure function of tensors (compile it, or call it as it is):
    ``(flat, init, opt_state, hyper, stop, lr_floor, perm, x, y, x_val, y_val) -> (flat',
    opt_state', stop', step_rows, values, act_row, afters)``, with ``stop`` an
    :class:`EpochStop`, ``step_rows [S, K, M]`` each step's loss and per-layer norms (the
    probe's step metrics, the trace's columns, computed whether or not they are kept) and
    ``values [4, K]``: train loss, train acc, val loss, val acc at the new weights.

    Full batch (``batch`` None, ``perm`` None): one step, the network written with the
    models innermost; ``act_row [K, M_act]`` holds the activation statistics at the new
    weights (None without hidden layers) and ``afters`` is None. Minibatch: ``perm [K, N]``
    is each model's order of the training set this epoch, its ``S`` steps of ``batch``
    examples are written out one after another in the batched-matmul layout, and
    ``afters [S, K, P]`` are the parameters after each step (the trace computes the
    activation statistics of the steps that record them); ``act_row`` is None.

    ``probe`` False (a cohort trained without the probe): the program computes none of
    the probe's quantities; ``step_rows [S, K, 1]`` holds the loss only, and ``act_row``
    and ``afters`` are None."""
    clip, segments = cfg.train.clip_grad_norm, segment_sizes(spec)
    n_probe = cfg.probe.batch

    def update(flat: Tensor, grad: Tensor, opt_state: Any, hyper: Any, active: Tensor
               ) -> tuple[Tensor, Tensor, Any]:
        """The step from ``flat`` with ``grad`` clipped: new parameters, the gradient the
        step used (which the probe's norms are of, as the engine's) and the new state."""
        if clip is not None:
            grad = grad.contiguous()            # a fresh gradient: clipped in place
            clip_grad_norm_([grad], clip, batch_dims=1)
        new_flat = flat.clone()
        return new_flat, grad, opt.step([new_flat], [grad], opt_state, hyper, active)

    def epoch(flat: Tensor, init: Tensor, opt_state: Any, hyper: Any, stop: EpochStop,
              lr_floor: Tensor | None, perm: Tensor | None, x: Tensor, y: Tensor,
              x_val: Tensor, y_val: Tensor) -> tuple[Any, ...]:
        act_row = afters = None
        if perm is None:                                            # full batch
            loss, grad = _loss_and_grad(spec, head, flat, x, y)     # [K], [K, P]
            new_flat, grad, opt_state = update(flat, grad, opt_state, hyper, stop.active)
            rows = [torch.cat([loss.unsqueeze(0),                   # [K, M] views
                               step_norms_klast(new_flat, flat, grad, init, segments)]).t()
                    if probe else loss.unsqueeze(1)]
            tr, hidden = _evaluate(spec, head, new_flat, x, y)
            va = tr if val_is_train else _evaluate(spec, head, new_flat, x_val, y_val)[0]
            act_row = _activation_rows(spec, hidden, n_probe) if probe else None
        else:                                                       # minibatch steps
            # gathered batch last, [K, d, N] (a batch's [K, B, d] is a transposed view):
            # the first layer's weight gradient g @ x then reads x as MKL's fast
            # transposed case, not a [B, d] row-major matrix with d = 2 columns (W2: a
            # ~9% shorter epoch)
            xs, ys = x[perm].transpose(1, 2).contiguous(), y[perm]  # [K, d, N], [K, N]
            rows, kept, new_flat = [], [], flat
            for lo in range(0, perm.shape[1], batch):
                prev = new_flat
                loss, grad = _minibatch_step(spec, head, prev,
                                             xs[:, :, lo:lo + batch].transpose(1, 2),
                                             ys[:, lo:lo + batch])
                new_flat, grad, opt_state = update(prev, grad, opt_state, hyper,
                                                   stop.active)
                rows.append(torch.cat([loss.unsqueeze(1),                # [K, M]
                                       step_norms_rows(new_flat, prev, grad, init, segments)],
                                      dim=1) if probe else loss.unsqueeze(1))
                kept.append(new_flat)
            afters = torch.stack(kept) if probe else None             # [S, K, P]
            tr = _evaluate_bmm(spec, head, new_flat, x, y)
            va = tr if val_is_train else _evaluate_bmm(spec, head, new_flat, x_val, y_val)
        values = (tr[0], tr[1], va[0], va[1])
        # [K, P] row-major outputs, as the inputs: inductor may pick [P, K] order for its
        # buffers, and a stride change in the state fed back would recompile the epoch
        opt_state = type(opt_state)(*(f.contiguous() if isinstance(f, Tensor) else
                                      tuple(t.contiguous() for t in f) for f in opt_state))
        stop = fold_epoch(stop, new_flat, values, cfg, lr_floor)
        # the rows [S, K, M] as the trace keeps them (a full batch's transpose fuses into
        # their write)
        return new_flat, opt_state, stop._replace(best=stop.best.contiguous()), \
            torch.stack(rows).contiguous(), \
            torch.stack(values).to(flat.dtype), act_row, afters

    return epoch


# torch.compile's Python wrapper around a tiny fused kernel costs more than the kernel (W1:
# ~50 us of kernel in a ~130-200 us call) and compiles again in every process (3-13 s).
# An AOTInductor package (mlplab.engine.aot_package) runs the same inductor code from a C++
# wrapper (W1 ~110-125 us a call where torch.compile took ~140-200 us, measured side by
# side) and loads in milliseconds: the first build of a kind of cohort on a machine takes
# ~30 s, and every later process finds the package in the cache.


def _key(spec: StackedMLP, head: Head, cfg: RunConfig, val_is_train: bool,
         like: Tensor, batch: int | None = None, probe: bool = True) -> tuple[Any, ...]:
    """What the epoch's program depends on beyond its tensors' shapes (restarts are the
    host's business); ``batch``: the minibatch size, None for full batch; ``probe``:
    whether it computes the probe's quantities."""
    t = cfg.train
    return (spec, head, t.optimizer, t.epochs, t.clip_grad_norm, t.schedule,
            replace(cfg.stopping, restarts=0), val_is_train, cfg.probe.batch, batch,
            like.dtype, like.device.type) + (() if probe else ("no probe",))


def _model_dims(flat: list[Tensor], n_state: int) -> list[int | None] | None:
    """The models' dimension of each of the epoch's inputs: dimension 0 of the first
    ``n_state`` (the cohort's state), none of the data tensors after them. One package
    then serves cohorts of any K >= 2; a single model (K = 1) gets a package of its own."""
    if flat[0].shape[0] < 2:
        return None
    return [0] * n_state + [None] * (len(flat) - n_state)


def _relaid(sig: tuple[Any, ...], want: tuple[Any, ...]) -> list[int] | None:
    """The inputs whose :func:`signature` ``sig`` differs from the package's ``want`` only
    in not being contiguous as at the build, or None if any differs otherwise. Inductor
    may lay out an output otherwise than the graph's own strides say, and the state fed
    back then differs from the inputs the package was built for (seen: rmsprop's
    ``grad_avg`` in a full-batch epoch of two hidden layers, ``[K, P]`` with strides
    ``(1, K)``); a copy in the built layout costs one kernel."""
    if len(sig) != len(want):
        return None
    out = []
    for i, (got, built) in enumerate(zip(sig, want)):
        if got == built:
            continue
        if len(built) != 4 or built[1] != "C" or (got[0], got[2:]) != (built[0], built[2:]):
            return None
        out.append(i)
    return out


@dataclass
class CompiledEpoch:
    """The compiled epoch of one cohort, with the eager bookkeeping around each call."""

    key: tuple[Any, ...]
    fn: Callable[..., tuple[Any, ...]]   # the pure epoch (exported at the first build)
    data: Tensors
    hidden: bool                         # the network has hidden layers
    options: dict[str, Any] | None       # inductor settings of the build
    probe: bool = True                   # the program computes the probe's quantities
    compiled: Package | None = None      # at the first call
    calls: int = 0                       # epochs this cohort has run compiled
    _free: list[int | None] | None = None  # the models' dimension of each input
    _relaid: set[int] = field(default_factory=set)    # inputs made contiguous each call
    _outputs: Callable[[Sequence[Tensor]], Any] | None = None   # unflattener of the outputs
    _sizes: tuple[int, int] = (0, 0)     # tensors of the optimizer and the stopping state
    # what the last call left: the state's objects, the hyper-parameters with their
    # tensors and the call's flat outputs (:meth:`_inputs` takes the next inputs from them)
    _last: tuple[tuple[Any, ...], Any, list[Tensor], list[Tensor]] | None = None

    @staticmethod
    def of(spec: StackedMLP, head: Head, cfg: RunConfig, opt: BatchedOptimizer,
           data: Tensors, val_is_train: bool, batch: int, probe: bool = True
           ) -> "CompiledEpoch | None":
        """The compiled epoch for this cohort (minibatches of ``batch``; ``probe``: the
        probe's quantities computed), or None (with a warning saying why)."""
        n = len(data.y_train)
        reason = why_not(cfg, -(-n // batch))
        if reason is not None:
            warnings.warn(f"mlplab: training eagerly, not compiled: {reason}", stacklevel=3)
            return None
        batch_or_none = None if batch >= n else batch
        return CompiledEpoch(_key(spec, head, cfg, val_is_train, data.x_train, batch_or_none,
                                  probe),
                             make_epoch(spec, head, cfg, opt, val_is_train, batch_or_none,
                                        probe),
                             data, len(spec.sizes) > 1,
                             None if batch_or_none is None else MINIBATCH_OPTIONS, probe)

    def run(self, live: CohortState, trace: Trace, step: int, traced: Sequence[bool],
            acts: Sequence[bool], lr_floor: Tensor | None, perm: Tensor | None = None
            ) -> Tensor | None:
        """One epoch of every model, as the eager ``_epoch_steps``, ``end_epoch`` and
        ``apply_stopping_rule`` (``traced[j]``: step j's probe metrics go to the trace, as
        cohort step ``step + j``; ``acts[j]``: with activation statistics; ``perm [K, N]``:
        each model's order of the training set, for a minibatch epoch); returns the ``[K]`` mask of ended attempts,
        or None if the epoch cannot run compiled (then nothing changed: the caller trains
        eagerly)."""
        flat, walked = self._inputs(live, lr_floor, perm)
        # the package trusts its inputs' shapes and strides: checked at the first calls
        # and whenever the host replaced the state (a restart: the inputs were walked
        # afresh), as they are the previous call's outputs otherwise
        if self.compiled is None:
            args = self._args(live, live.stop(), lr_floor, perm)
            self._free = _model_dims(flat, len(flat) - len(leaves(args[-4:])))
            self.compiled = obtain(self.key, self.fn, args, signature(flat, self._free),
                                   f"{self.key[0].sizes} {self.key[2]}", self._free,
                                   self.options)
        c = self.compiled
        if c.failed is not None:
            if not c.warned:                     # once: a known failure is not retried
                c.warned = True
                warnings.warn(f"mlplab: compiling failed, training eagerly ({c.failed})",
                              stacklevel=3)
            return None
        if self.calls < 2 or walked:
            relaid = _relaid(signature(flat, self._free), c.signature)
            if relaid is None:
                warnings.warn("mlplab: the cohort's tensors changed layout, training eagerly",
                              stacklevel=3)
                return None
            self._relaid.update(relaid)
        for i in self._relaid:
            flat[i] = flat[i].contiguous()
        if self._outputs is None:
            # the outputs' nest: act_row (full batch, hidden layers) or afters (minibatch),
            # with the probe only
            t, probed, stop = live.flat, self.probe, live.stop()
            self._outputs = unflattener((
                t, live.opt_state, stop._replace(ended=live.active), t, t,
                t if probed and self.hidden and perm is None else None,
                t if probed and perm is not None else None))
            self._sizes = (len(leaves(live.opt_state)), len(leaves(stop)))
        raw = c.run(*flat)
        out = self._outputs(raw)
        self.calls += 1
        c.calls += 1
        new_flat, live.opt_state, stop, step_rows, values, act_row, afters = out
        live.forward = None
        trace.add_epoch(step, step_rows, traced, acts, act_row, afters)
        trace.record_epoch(values, live.active,        # both new tensors every call
                           live.hyper.lr if live.lr_plateau is not None else None, fresh=True)
        live.flat.copy_(new_flat)                # live.params are views of it
        live.take_stop(stop)
        same = self._last is not None and self._last[1] is live.hyper
        self._last = (_state_parts(live), live.hyper, raw,
                      self._last[3] if same else leaves(live.hyper))
        return stop.ended

    def _args(self, live: CohortState, stop: EpochStop, lr_floor: Tensor | None,
              perm: Tensor | None) -> tuple[Any, ...]:
        """The epoch function's arguments (the package's inputs are their leaves)."""
        d = self.data
        return (live.flat, live.init, live.opt_state, live.hyper, stop, lr_floor, perm,
                d.x_train, d.y_train, d.x_val, d.y_val)

    def _inputs(self, live: CohortState, lr_floor: Tensor | None, perm: Tensor | None
                ) -> tuple[list[Tensor], bool]:
        """The package's flat inputs, the leaves of :meth:`_args`, and whether they were
        walked afresh. While the host has left the state as the last call returned it (no
        restart since: its objects are the same), the optimizer and stopping state's
        tensors are that call's outputs, in order, taken as they are: walking the nest
        again cost ~3 us an epoch (W1's epoch: ~45)."""
        last = self._last
        if last is None or any(a is not b for a, b in zip(last[0], _state_parts(live))):
            return leaves(self._args(live, live.stop(), lr_floor, perm)), True
        raw, (n_opt, n_stop), d = last[2], self._sizes, self.data
        hyper = last[3] if last[1] is live.hyper else leaves(live.hyper)   # (a schedule's)
        return [live.flat, live.init, *raw[1:1 + n_opt], *hyper,
                *raw[1 + n_opt:1 + n_opt + n_stop],   # the stop state but `ended`, its last
                *leaves((lr_floor, perm)), d.x_train, d.y_train, d.x_val, d.y_val], False


def _state_parts(live: CohortState) -> tuple[Any, ...]:
    """The objects of ``live`` that a compiled epoch's outputs become (the optimizer state,
    then the stopping state's members in :class:`EpochStop`'s order)."""
    return (live.opt_state, live.plateau, live.best, live.lr_plateau, live.epoch, live.active,
            live.end_code)
