"""K same-shape MLPs as one flat parameter tensor: forward, loss gradient, evaluation.

A cohort keeps every model's parameters in one row of ``flat: [K, P]`` (the Linear
layers' weight then bias, in order, each flattened). The layers are views into it, so
the batched optimizer updates all K models with one call on one tensor, and the probe
reads per-layer segments of it. The batched forward is one ``bmm``/``matmul`` per layer
over ``[K, B, d]``; the backward through the Linear layers and activations is written
out (two matmuls and one activation derivative per layer), and so is every head's loss
gradient. Activations are kept batch last, ``[K, units, B]``; losses equal
:func:`mlplab.model.loss.batch_loss`'s.

>>> import torch
>>> from mlplab.config import ModelConfig
>>> from mlplab.model.mlp import build_mlp, resolve_head
>>> head = resolve_head(ModelConfig(), "auto", 2)
>>> nets = [build_mlp(ModelConfig(hidden=(4,)), head, 2, seed=s) for s in range(3)]
>>> spec = StackedMLP.of(nets[0], "relu", 0.01, head.output)
>>> flat = torch.stack([flatten_state(spec, n.state_dict()) for n in nets])   # [K=3, P=17]
>>> x = torch.rand(5, 2)
>>> torch.allclose(forward(spec, layers(spec, flat), x)[1], nets[1](x))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .loss import batch_loss, bce_grad, bce_terms
from .mlp import Head, linear_layers


@dataclass(frozen=True)
class StackedMLP:
    """The shape and functions of one MLP; its parameters live in ``flat [..., P]`` rows."""

    sizes: tuple[tuple[int, int], ...]   # (fan_in, fan_out) of each Linear layer
    keys: tuple[str, ...]                # state_dict prefix of each Linear layer ("0", "2", ...)
    activation: str                      # hidden activation (model.ACTIVATIONS)
    negative_slope: float
    output: str                          # head output: sigmoid, softmax or linear

    @staticmethod
    def of(net: nn.Module, activation: str, negative_slope: float, output: str) -> "StackedMLP":
        """The spec of ``net`` (an :func:`mlplab.model.mlp.build_mlp` network)."""
        linears = linear_layers(net)
        return StackedMLP(tuple((m.in_features, m.out_features) for _, m in linears),
                          tuple(name for name, _ in linears), activation, negative_slope, output)

    @property
    def n_params(self) -> int:
        return sum(i * o + o for i, o in self.sizes)

    def segments(self) -> list[tuple[int, int, int]]:
        """``(start, weight_end, bias_end)`` of each layer within a row of ``flat``."""
        out, start = [], 0
        for fan_in, fan_out in self.sizes:
            out.append((start, start + fan_in * fan_out, start + fan_in * fan_out + fan_out))
            start = out[-1][2]
        return out


def flatten_state(spec: StackedMLP, state: dict[str, Tensor]) -> Tensor:
    """One model's ``state_dict`` as a flat row ``[P]`` in ``spec``'s order."""
    return torch.cat([t for key in spec.keys
                      for t in (state[f"{key}.weight"].reshape(-1), state[f"{key}.bias"])])


def state_of(spec: StackedMLP, row: Tensor) -> dict[str, Tensor]:
    """A flat row ``[P]`` as an ``nn.Sequential`` state_dict (fresh contiguous tensors)."""
    out = {}
    for key, (w, b) in zip(spec.keys, layers(spec, row)):
        out[f"{key}.weight"], out[f"{key}.bias"] = w.clone(), b.clone()
    return out


def layers(spec: StackedMLP, flat: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Views ``(w [..., out, in], b [..., out])`` of each layer into ``flat [..., P]``."""
    lead = flat.shape[:-1]
    return [(flat[..., lo:mid].view(*lead, fan_out, fan_in), flat[..., mid:hi])
            for (fan_in, fan_out), (lo, mid, hi) in zip(spec.sizes, spec.segments())]


def _linear(h: Tensor, w: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """``w @ h + b`` per model, batch last: ``h [in, B]`` (shared) or ``[M, in, B]``,
    ``w [M, out, in]``, ``b [M, out]`` -> ``[M, out, B]`` (into ``out`` if given)."""
    if h.dim() == 2:                                 # a stride-0 batch: no copy of h
        h = h.expand(w.shape[0], *h.shape)
    if out is not None:
        return torch.baddbmm(b.unsqueeze(-1), w, h, out=out)
    return torch.baddbmm(b.unsqueeze(-1), w, h)


def _batch_last(x: Tensor) -> Tensor:
    """Inputs ``[B, d]`` or ``[M, B, d]`` as the views ``[d, B]`` or ``[M, d, B]``."""
    return x.transpose(-1, -2)


def _activate(spec: StackedMLP, z: Tensor) -> Tensor:
    name = spec.activation
    if name == "relu":
        return torch.relu(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, spec.negative_slope)
    if name == "elu":
        return F.elu(z)
    if name == "gelu":
        return F.gelu(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    return z


def _activation_backward(spec: StackedMLP, g: Tensor, z: Tensor, h: Tensor) -> Tensor:
    """Gradient through the hidden activation: the kernels torch's autograd itself runs."""
    aten, name = torch.ops.aten, spec.activation
    if name == "relu":
        return aten.threshold_backward(g, h, 0)
    if name == "leaky_relu":
        return aten.leaky_relu_backward(g, z, spec.negative_slope, False)
    if name == "elu":
        return aten.elu_backward(g, 1.0, 1, 1, False, z)
    if name == "gelu":
        return aten.gelu_backward(g, z, approximate="none")
    if name == "tanh":
        return aten.tanh_backward(g, h)
    if name == "sigmoid":
        return aten.sigmoid_backward(g, h)
    return g


def _head(spec: StackedMLP, z: Tensor) -> Tensor:
    return torch.sigmoid(z) if spec.output == "sigmoid" else z


Params = Sequence[tuple[Tensor, Tensor]]   # (w [M, out, in], b [M, out]) per layer
# elements of the widest activation per evaluation block
EVAL_BLOCK_ELEMENTS = 2 ** 17   # (half a MB of float32: cache-sized)
# elements of each of evaluate's two scratch buffers at most (8 MB of float32)
EVAL_SCRATCH_ELEMENTS = 2 ** 21

# Activations are kept batch last, [M, units, B]: a shared input is then one folded GEMM
# and the class dimension of a softmax is not the innermost one (log_softmax over a last
# dimension of 5 is ~20x slower than over the batch-last layout on CPU).


def _layers_forward(spec: StackedMLP, params: Params, x: Tensor) -> tuple[list[Tensor],
                                                                           list[Tensor]]:
    """Inputs of each layer and pre-activations, batch last."""
    hs, zs = [_batch_last(x)], []
    for i, (w, b) in enumerate(params):
        zs.append(_linear(hs[-1], w, b))                          # [M, out, B]
        if i < len(params) - 1:
            hs.append(_activate(spec, zs[-1]))
    return hs, zs


def _loss(z: Tensor, y: Tensor, head: Head) -> Tensor:
    """:func:`mlplab.model.loss.batch_loss` for the last pre-activation ``z [M, o, B]``."""
    out = torch.sigmoid(z) if head.output == "sigmoid" else z
    return batch_loss(out, y, head, class_dim=-2)                 # [M]


def _probabilities(z: Tensor, head: Head) -> Tensor:
    """Class probabilities ``[M, B, C]`` (``C = 1``, P(class 1), for a sigmoid head)."""
    if head.output == "sigmoid":
        return torch.sigmoid(z).clamp(0, 1).transpose(-1, -2)
    return torch.softmax(z, dim=-2).transpose(-1, -2)


def _accuracy(z: Tensor, y: Tensor, head: Head) -> Tensor:
    """:func:`mlplab.model.loss.accuracy` for ``z [M, o, B]``."""
    if head.output == "sigmoid":
        pred = torch.sigmoid(z[..., 0, :]) > 0.5                  # [M, B] bool
    else:   # max(...).indices is argmax (first maximum, NaN wins), and 7x faster here
        pred = z.max(-2).indices                                  # [M, B]
    return pred.eq(y).to(z.dtype).mean(-1)


_INPLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}


def _last_pre_activation(spec: StackedMLP, params: Params, x: Tensor,
                         scratch: Tensor | None = None) -> Tensor:
    """The forward's last pre-activation ``[M, o, B]``, hidden activations applied in
    place where torch has the in-place kernel (no fresh memory: on a CPU the page
    faults of a new MB-sized tensor cost as much as the op itself). ``scratch [2, E]``:
    buffers the layers' outputs take turns in, where they fit (the result is in one)."""
    h = _batch_last(x)
    for i, (w, b) in enumerate(params):
        need = w.shape[0] * w.shape[-2] * h.shape[-1]
        out = scratch[i % 2][:need].view(w.shape[0], w.shape[-2], h.shape[-1]) \
            if scratch is not None and need <= scratch.shape[-1] else None
        z = _linear(h, w, b, out=out)                             # [M, out, B]
        if i == len(params) - 1:
            return z
        inplace = _INPLACE.get(spec.activation)
        h = inplace(z) if inplace is not None else _activate(spec, z)
    raise ValueError("a network without layers")


@torch.no_grad()
def hidden_pre_activations(spec: StackedMLP, params: Params, x: Tensor,
                           scratch: Tensor) -> Iterator[Tensor]:
    """Each hidden layer's pre-activations ``[M, units, B]`` (batch last) in turn, computed
    into ``scratch [2, E]`` (``E >= M * widest hidden layer * B``), the layers taking
    turns in its two halves. A yielded tensor holds until the next one is asked for: then
    the activation is applied to it in place (where torch has the in-place kernel) and it
    feeds the next layer. No fresh memory per layer: on a CPU the page faults of new
    MB-sized tensors can cost more than the products themselves, and no copy of the
    pre-activations."""
    h = _batch_last(x)                                            # [d, B] or [M, d, B]
    inplace = _INPLACE.get(spec.activation)
    for i, (w, b) in enumerate(params[:-1]):
        m, units, n = w.shape[0], w.shape[-2], h.shape[-1]
        z = scratch[i % 2][:m * units * n].view(m, units, n)
        _linear(h, w, b, out=z)                                   # [M, units, B]
        yield z
        if i == len(params) - 2:             # the output layer's input: not needed
            return
        h = inplace(z) if inplace is not None else _activate(spec, z)


@torch.no_grad()
def forward(spec: StackedMLP, params: Params, x: Tensor) -> Tensor:
    """Outputs ``[M, B, o]`` of the M models whose layers are ``params`` (views from
    :func:`layers`) on ``x [B, d]`` (one batch for all) or ``x [M, B, d]``."""
    _, zs = _layers_forward(spec, params, x)
    return _head(spec, zs[-1]).transpose(-1, -2)


@torch.no_grad()
def probabilities(spec: StackedMLP, params: Params, x: Tensor, head: Head) -> Tensor:
    """Class probabilities ``[M, B, C]``, as the boundary snapshots store them."""
    _, zs = _layers_forward(spec, params, x)
    return _probabilities(zs[-1], head)


@torch.no_grad()
def evaluate(spec: StackedMLP, params: Params, x: Tensor, y: Tensor,
             head: Head, scratch: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Loss and accuracy ``[M]`` of each model on one dataset ``x [N, d]``, ``y [N]``.

    Runs over blocks of models (independent, so the values are the same bit for bit):
    with ``scratch [2, E]`` (:func:`eval_scratch`), as many models a block as their layer
    outputs fit in it, computed there (1.5x faster for 64 models of width 16 on 700
    points than fresh tensors); without, blocks whose activations fit a core's cache."""
    m, widest = params[0][0].shape[0], max(w.shape[-2] for w, _ in params)
    room = EVAL_BLOCK_ELEMENTS if scratch is None else scratch.shape[-1]
    per_block = max(1, room // (widest * x.shape[-2]))
    if per_block < m and x.dim() == 2:
        parts = [evaluate(spec, [(w[lo:lo + per_block], b[lo:lo + per_block])
                                 for w, b in params], x, y, head, scratch)
                 for lo in range(0, m, per_block)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    z = _last_pre_activation(spec, params, x, scratch)           # [M, o, N]
    return _loss(z, y, head), _accuracy(z, y, head)


def eval_scratch(spec: StackedMLP, models: int, points: int, like: Tensor) -> Tensor:
    """Buffers for :func:`evaluate` of ``models`` on up to ``points`` inputs: ``[2, E]``,
    room for every model's widest layer output, up to ``EVAL_SCRATCH_ELEMENTS`` each."""
    widest = max(o for _, o in spec.sizes)
    return like.new_empty(2, min(models * widest * points, EVAL_SCRATCH_ELEMENTS))


def _loss_and_output_grad(z: Tensor, y: Tensor, head: Head) -> tuple[Tensor, Tensor]:
    """Per-model loss ``[K]`` (as :func:`_loss`) and its gradient with respect to the last
    pre-activation ``z [K, o, B]``, written out for every head: the ops autograd runs
    through :func:`mlplab.model.loss.batch_loss`, so that the values agree with the engine's
    backward to rounding (tested against it for each head) and a compiled epoch needs no
    autograd."""
    inv_b = 1.0 / y.shape[-1]
    if head.output == "sigmoid":
        p = torch.sigmoid(z)                                      # [K, 1, B]
        target = y.to(z.dtype).unsqueeze(-2)                      # float: 0/1 are exact
        if head.loss == "mse":
            diff = p - target
            loss = (diff[..., 0, :] ** 2).mean(-1)                # as _loss
            return loss, torch.ops.aten.sigmoid_backward(diff * (2.0 * inv_b), p)
        # bce on the probabilities with torch's BCELoss gradient (mlplab.model.loss)
        loss = bce_terms(p[..., 0, :], target[..., 0, :]).mean(-1)  # as _loss
        return loss, torch.ops.aten.sigmoid_backward(bce_grad(p, target) * inv_b, p)
    if head.loss == "ce":
        logp = F.log_softmax(z, dim=-2)                           # [K, C, B]
        idx = y.expand(z.shape[:-2] + y.shape[-1:]).unsqueeze(-2)  # [K, 1, B]
        loss = -logp.gather(-2, idx).squeeze(-2).mean(-1)         # as _loss
        grad = logp.exp().mul_(inv_b)                             # (softmax - onehot) / B
        return loss, grad.scatter_add_(-2, idx, torch.full(idx.shape, -inv_b, dtype=z.dtype,
                                                           device=z.device))
    # mse on the k outputs (softmax or linear) against one-hot targets, mean over C * B
    classes = torch.arange(z.shape[-2], device=z.device).unsqueeze(-1)       # [C, 1]
    onehot = (y.unsqueeze(-2) == classes).to(z.dtype)                         # [.., C, B]
    pred = torch.softmax(z, dim=-2) if head.output == "softmax" else z
    diff = pred - onehot                                                      # [K, C, B]
    loss = (diff ** 2).mean((-2, -1))                                         # as _loss
    grad = diff * (2.0 * inv_b / z.shape[-2])
    if head.output == "softmax":
        grad = torch.ops.aten._softmax_backward_data(grad, pred, -2, z.dtype)
    return loss, grad


class Forward(NamedTuple):
    """One batched forward kept for its backward: layer inputs and pre-activations (batch
    last), the per-model loss ``[K]`` and its gradient at the last pre-activation."""

    hs: list[Tensor]             # [in, B] or [K, in, B] per layer
    zs: list[Tensor]             # [K, out, B] per layer
    loss: Tensor                 # [K]
    out_grad: Tensor             # [K, o, B]


@torch.no_grad()
def forward_loss(spec: StackedMLP, params: Params, x: Tensor, y: Tensor, head: Head) -> Forward:
    """The forward half of :func:`loss_and_grad`; ``accuracy(f.zs[-1], y, head)`` and
    ``f.loss`` equal :func:`evaluate`'s values on the same batch."""
    hs, zs = _layers_forward(spec, params, x)                     # batch last
    loss, g = _loss_and_output_grad(zs[-1], y, head)              # [K], [K, o, B]
    return Forward(hs, zs, loss, g)


def accuracy(z: Tensor, y: Tensor, head: Head) -> Tensor:
    """Per-model accuracy ``[K]`` from the last pre-activation ``z [K, o, B]``."""
    return _accuracy(z, y, head)


@torch.no_grad()
def backward_into(spec: StackedMLP, params: Params, fwd: Forward, grad_out: Tensor) -> None:
    """The backward half of :func:`loss_and_grad`: gradients into ``grad_out [K, P]``.
    ``params`` must still be the weights ``fwd`` was computed with."""
    torch.cat(_grads(spec, params, fwd), dim=-1, out=grad_out)


def _grads(spec: StackedMLP, params: Params, fwd: Forward) -> list[Tensor]:
    """Each layer's weight and bias gradient ``[K, out * in]``, ``[K, out]``, in the order
    of a ``flat`` row (concatenated: the ``[K, P]`` gradient)."""
    hs, zs, g = fwd.hs, fwd.zs, fwd.out_grad
    grads: list[Tensor] = []
    for i in range(len(params) - 1, -1, -1):
        h = hs[i]                                                 # [in, B] or [K, in, B]
        grad_w = torch.matmul(g, h.transpose(-1, -2))             # [K, out, in]
        grads = [grad_w.flatten(-2), g.sum(-1)] + grads           # bias grad [K, out]
        if i > 0:
            g = torch.bmm(params[i][0].transpose(-1, -2), g)      # [K, in, B]
            g = _activation_backward(spec, g, zs[i - 1], hs[i])
    return grads


@torch.no_grad()
def loss_and_grad(spec: StackedMLP, params: Params, x: Tensor, y: Tensor, head: Head,
                  grad_out: Tensor, fwd: Forward | None = None) -> Tensor:
    """Per-model mean loss ``[K]`` on a batch, writing each model's gradient into
    ``grad_out [K, P]`` (the layout of the ``flat`` that ``params`` are views of).

    ``x`` is ``[B, d]`` (full batch, shared) or ``[K, B, d]``; ``y`` is ``[B]`` or
    ``[K, B]``. Equals autograd of ``batch_loss(net(x), y).sum()`` model by model.
    ``fwd``: this batch's :func:`forward_loss` at the current weights, if already made.
    """
    fwd = forward_loss(spec, params, x, y, head) if fwd is None else fwd
    backward_into(spec, params, fwd, grad_out)
    return fwd.loss
