"""The curvature probes of a model (issue 22): the estimators of
:mod:`mlplab.probe.curvature` applied to mlplab's MLP (both engines, a cohort's rows
``[K, P]`` at once: :class:`MLPCurvature`) and to any ``nn.Module`` of the user's loop
(:class:`ModuleCurvature`).

For the MLP the loss of one flat row is written out (:func:`mlp_loss`), and the gradient
noise scale has a closed form from the per-example output gradients
(:func:`mlp_noise_scale`, equal to the ``vmap``-ed autograd of
:func:`~mlplab.probe.curvature.grad_noise_scale`); for a module the parameters are one
row through ``torch.func.functional_call``.

>>> import torch
>>> targets(torch.tensor([0, 2]), "softmax", "ce", 3, torch.float32).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .curvature import NOISE_MAX_EXAMPLES, LossFn, measure, preconditioner


# ---- the loss of mlplab's MLP, as a function of one flat row ---------------------------
def targets(y: Tensor, head_output: str, head_loss: str, out_dim: int, dtype: torch.dtype
            ) -> Tensor:
    """Labels ``y [B]`` as the float targets :func:`mlp_loss` reads: ``[B, 1]`` 0/1 for a
    sigmoid head, one-hot ``[B, C]`` otherwise (no integer indexing under ``vmap``)."""
    if head_output == "sigmoid":
        return y.to(dtype).unsqueeze(-1)
    return (y.unsqueeze(-1) == torch.arange(out_dim, device=y.device)).to(dtype)


def mlp_loss(spec, head) -> LossFn:   # noqa: ANN001  (StackedMLP, Head)
    """``loss(row [P], x [B, d], t [B, o])``: the mean loss of the MLP ``spec`` whose
    parameters are ``row``, equal to :func:`mlplab.model.loss.batch_loss` of its output
    (the binary cross-entropy from the logit, without torch's clamp of the logs at -100:
    the same value wherever the clamp is idle, and twice differentiable everywhere)."""
    from mlplab.model.stacked import _activate

    import torch.nn.functional as F

    segments, sizes = spec.segments(), spec.sizes

    def loss(row: Tensor, x: Tensor, t: Tensor) -> Tensor:
        h = x
        for i, ((fan_in, fan_out), (lo, mid, hi)) in enumerate(zip(sizes, segments)):
            w, b = row[lo:mid].reshape(fan_out, fan_in), row[mid:hi]
            h = h @ w.transpose(0, 1) + b
            if i < len(sizes) - 1:
                h = _activate(spec, h)
        if head.output == "sigmoid":
            if head.loss == "bce":
                return (F.softplus(h) - t * h).mean()
            return (torch.sigmoid(h) - t).pow(2).mean()
        if head.loss == "ce":
            return -(t * F.log_softmax(h, dim=-1)).sum(-1).mean()
        pred = torch.softmax(h, dim=-1) if head.output == "softmax" else h
        return (pred - t).pow(2).mean()
    return loss


def _head_loss(head, z: Tensor, t: Tensor) -> Tensor:   # noqa: ANN001
    """Per-example losses ``[..., B]`` from the logits ``z [..., B, o]`` (as :func:`mlp_loss`)."""
    import torch.nn.functional as F

    if head.output == "sigmoid":
        if head.loss == "bce":
            return (F.softplus(z) - t * z).mean(-1)
        return (torch.sigmoid(z) - t).pow(2).mean(-1)
    if head.loss == "ce":
        return -(t * F.log_softmax(z, dim=-1)).sum(-1)
    pred = torch.softmax(z, dim=-1) if head.output == "softmax" else z
    return (pred - t).pow(2).mean(-1)


def _stacked_forward(spec, rows: Tensor, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:  # noqa: ANN001
    """Layer inputs ``[K, B, in]`` (the first ``[B, in]``) and pre-activations ``[K, B, out]``
    of the K MLPs whose parameters are ``rows [K, P]``."""
    from mlplab.model.stacked import _activate

    hs, zs, h = [x], [], x
    k = rows.shape[0]
    for i, ((fan_in, fan_out), (lo, mid, hi)) in enumerate(zip(spec.sizes, spec.segments())):
        w, b = rows[:, lo:mid].reshape(k, fan_out, fan_in), rows[:, mid:hi]
        z = torch.matmul(h, w.transpose(-1, -2)) + b[:, None, :]      # [K, B, out]
        zs.append(z)
        if i < len(spec.sizes) - 1:
            h = _activate(spec, z)
            hs.append(h)
    return hs, zs


def mlp_noise_scale(spec, head) -> Callable[[Tensor, Tensor, Tensor], Tensor]:  # noqa: ANN001
    """:func:`grad_noise_scale` of K MLPs without materialising per-example gradients: a
    Linear layer's per-example gradient is the outer product of the loss gradient at its
    output ``d_i`` and its input ``h_i``, so its squared norm is ``|d_i|^2 (|h_i|^2 + 1)``
    (weight and bias), summed over layers."""
    def noise(rows: Tensor, x: Tensor, t: Tensor) -> Tensor:
        x, t = x[:NOISE_MAX_EXAMPLES], t[:NOISE_MAX_EXAMPLES]
        rows = rows.detach().requires_grad_(True)
        with torch.enable_grad():
            hs, zs = _stacked_forward(spec, rows, x)
            per = _head_loss(head, zs[-1], t)                          # [K, B]
            ds = torch.autograd.grad(per.sum(), zs, retain_graph=True)  # each [K, B, out]
            (mean,) = torch.autograd.grad(per.mean(-1).sum(), rows)    # [K, P]
        b = per.shape[-1]
        sq = sum(d.pow(2).sum(-1) * (h.pow(2).sum(-1) + 1) for d, h in zip(ds, hs))  # [K, B]
        mean_sq = mean.detach().pow(2).sum(-1)
        trace_cov = (sq.sum(-1) - b * mean_sq) / max(b - 1, 1)
        return (trace_cov / mean_sq).detach()
    return noise


def mlp_example_loss(loss: LossFn) -> LossFn:
    """One example's loss from a batch loss: ``x_i [d]``, ``t_i [o]``."""
    return lambda row, xi, ti: loss(row, xi.unsqueeze(0), ti.unsqueeze(0))



class MLPCurvature:
    """The curvature probe of mlplab's MLP on the fixed probe batch, for both engines:
    :meth:`measure` takes a cohort's rows ``[K, P]`` (one model: ``K = 1``) and keeps each
    model's top eigenvector as the next call's start (fewer power iterations)."""

    def __init__(self, spec, head, x_probe: Tensor, y_probe: Tensor,   # noqa: ANN001
                 optimizer: str) -> None:
        with torch.inference_mode(False):
            self.x = x_probe.clone()
            self.t = targets(y_probe, head.output, head.loss, head.out_dim, x_probe.dtype)
        self.loss = mlp_loss(spec, head)
        self.example_loss = mlp_example_loss(self.loss)
        self.noise = mlp_noise_scale(spec, head)
        self.optimizer = optimizer
        self._v: Tensor | None = None

    def measure(self, theta: Tensor, hyper: dict[str, Tensor],
                state: dict[str, Tensor] | None) -> dict[str, Tensor]:
        """``{metric: [K]}`` at ``theta [K, P]``; ``hyper``/``state`` as
        :func:`preconditioner` reads them."""
        pre = preconditioner(self.optimizer, hyper, state)
        v0 = self._v if self._v is not None and self._v.shape == theta.shape else None
        out, self._v = measure(self.loss, self.example_loss, theta, self.x, self.t, pre, v0,
                               self.noise)
        return out


# torch.optim classes -> the table's optimizer names (SGD: by its momentum and nesterov)
_TORCH_NAMES = {"Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop", "Adagrad": "adagrad"}


def table_name(optimizer: torch.optim.Optimizer | None) -> str | None:
    """The :mod:`mlplab.optim.table` name of a ``torch.optim`` optimizer, None if other."""
    if optimizer is None:
        return None
    cls = type(optimizer).__name__
    if cls == "SGD":
        group = optimizer.param_groups[0]
        return "nesterov" if group.get("nesterov") else \
            "momentum" if group.get("momentum", 0) > 0 else "sgd"
    return _TORCH_NAMES.get(cls)


def torch_hyper(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The table's hyper-parameters of a ``torch.optim`` optimizer's first group."""
    group = optimizer.param_groups[0]
    out = {k: float(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay", "eps",
                                          "alpha", "lr_decay") if k in group}
    if "betas" in group:
        out["beta1"], out["beta2"] = (float(b) for b in group["betas"])
    if "centered" in group:
        out["centered"] = float(bool(group["centered"]))
    return out


_TORCH_STATE = ("exp_avg_sq", "square_avg", "grad_avg", "sum")


class ModuleCurvature:
    """The curvature of ``loss_fn(model(x), y)`` on a fixed batch, for any ``nn.Module``
    (the user-loop :class:`~mlplab.probe.user.Probe`): its trainable parameters as one
    row ``[1, P]``, ``torch.func.functional_call`` with copies of its buffers."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 batch: tuple[Tensor, Tensor], optimizer: torch.optim.Optimizer | None) -> None:
        from torch.func import functional_call

        self.model, self.optimizer = model, optimizer
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in model.named_parameters() if p.requires_grad]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.x, self.y = (b.detach() for b in batch)
        self.name = table_name(optimizer)
        self.bound = None
        if self.name is not None:
            from mlplab.optim.table import stability_bound

            self.bound = stability_bound(self.name, torch_hyper(optimizer))

        def loss(row: Tensor, x: Tensor, y: Tensor) -> Tensor:
            parts = row.split(self.sizes)
            params = {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}
            buffers = {n: b.clone() for n, b in model.named_buffers()}
            return loss_fn(functional_call(model, {**params, **buffers}, (x,)), y)
        self.loss = loss
        self.example_loss = lambda row, xi, yi: loss(row, xi.unsqueeze(0), yi.unsqueeze(0))
        self._v: Tensor | None = None

    def measure(self, lr: float | None = None) -> dict[str, Tensor]:
        """``{metric: [1]}`` at the module's parameters now; ``lr``: the step's (by
        default the optimizer's now)."""
        theta = torch.cat([p.detach().reshape(-1) for p in self.params])[None]
        pre = None
        if self.name is not None:
            hyper = {k: torch.tensor([v], dtype=torch.float64)
                     for k, v in torch_hyper(self.optimizer).items()}
            if lr is not None:
                hyper["lr"] = torch.tensor([float(lr)], dtype=torch.float64)
            states = [self.optimizer.state.get(p, {}) for p in self.params]
            keys = [k for k in _TORCH_STATE if states and all(k in s for s in states)]
            state = None
            if keys and "step" in states[0]:
                state = {k: torch.cat([s[k].detach().reshape(-1) for s in states])[None]
                         for k in keys}
                state["count"] = torch.tensor([float(states[0]["step"])])
            pre = preconditioner(self.name, hyper, state)
            if pre.scale is None and state is None and self.name in _ADAPTIVE:
                pre = None                      # no state before the first step
        v0 = self._v if self._v is not None and self._v.shape == theta.shape else None
        out, self._v = measure(self.loss, self.example_loss, theta, self.x, self.y, pre, v0)
        return out


_ADAPTIVE = ("rmsprop", "adam", "adamw", "adagrad")
