"""Losses and accuracy for a :class:`~mlplab.model.mlp.Head`, for one model or a cohort.

Every function takes network outputs with any leading model dimensions,
``out: [..., B, out_dim]`` and integer labels ``y: [B]`` (or ``[..., B]``), and reduces
over the batch only, returning ``[...]``: a scalar for one model, ``[K]`` for a cohort.

>>> import torch
>>> from mlplab.model.mlp import Head
>>> batch_loss(torch.tensor([[0.5], [0.5]]), torch.tensor([0, 1]), Head("sigmoid", "mse", 1))
tensor(0.2500)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mlp import Head


BCE_EPS = 1e-12   # torch's BCELoss: the gradient's denominator p (1 - p) is at least this


def bce_grad(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Torch's BCELoss gradient of :func:`bce_terms` with respect to ``p``, elementwise:
    ``(p - target) / max(p (1 - p), BCE_EPS)``, finite where ``p`` is exactly 0 or 1."""
    return (p - target) / ((1 - p) * p).clamp(min=BCE_EPS)


def bce_terms(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each probability ``p`` against its 0/1 ``target``, the logs
    clamped at -100 as torch's BCELoss does, so that log(0) stays finite."""
    logp = torch.clamp(torch.log(p), min=-100.0)
    log1mp = torch.clamp(torch.log1p(-p), min=-100.0)
    return -(target * logp + (1 - target) * log1mp)


class _BinaryCrossEntropy(torch.autograd.Function):
    """:func:`bce_terms` with torch's BCELoss gradient (:func:`bce_grad`). Autograd
    through the clamped logs would give 0/0 = NaN wherever a sigmoid rounds to exactly 0
    or 1 (float32: a logit beyond about +-17), and a confident model would then
    "diverge". Not BCELoss itself: it raises on a NaN probability, which must reach the
    loss so that a diverged model is seen as such."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, p: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p, target)
        return bce_terms(p, target)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor, None]:
        p, target = ctx.saved_tensors
        return grad * bce_grad(p, target), None


def batch_loss(out: torch.Tensor, y: torch.Tensor, head: Head, class_dim: int = -1) -> torch.Tensor:
    """Mean loss over the batch: ``out [..., B, o]``, ``y [B]`` -> ``[...]``.

    ``class_dim=-2`` reads ``out [..., o, B]`` instead (the cohort's batch-last layout).
    """
    batch_dim = -2 if class_dim == -1 else -1
    if head.output == "sigmoid":
        p = out.select(class_dim, 0)                      # [..., B] probabilities
        target = y.to(p.dtype).expand_as(p)
        if head.loss == "mse":
            return ((p - target) ** 2).mean(-1)
        if torch.is_grad_enabled() and p.requires_grad:
            return _BinaryCrossEntropy.apply(p, target).mean(-1)
        return bce_terms(p, target).mean(-1)
    if head.loss == "ce":
        logp = F.log_softmax(out, dim=class_dim)          # [..., B, C] or [..., C, B]
        shape = list(out.shape)
        shape[class_dim] = 1
        idx = y.unsqueeze(class_dim).expand(shape)        # [..., B, 1] or [..., 1, B]
        return -logp.gather(class_dim, idx).squeeze(class_dim).mean(-1)
    onehot = F.one_hot(y, head.out_dim).to(out.dtype)     # [B, C]
    if batch_dim == -1:
        onehot = onehot.transpose(-1, -2)                 # [C, B]
    pred = torch.softmax(out, dim=class_dim) if head.output == "softmax" else out
    return ((pred - onehot) ** 2).mean((-2, -1))


def predict(out: torch.Tensor, head: Head) -> torch.Tensor:
    """Predicted class ``[..., B]``."""
    if head.output == "sigmoid":
        return (out[..., 0] > 0.5).long()
    return out.argmax(-1)


def class_probabilities(out: torch.Tensor, head: Head) -> torch.Tensor:
    """Per-class probabilities ``[..., B, C]`` (C = 2 for a sigmoid head)."""
    if head.output == "sigmoid":
        p = out[..., 0].clamp(0, 1)
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(out, dim=-1)


def accuracy(out: torch.Tensor, y: torch.Tensor, head: Head) -> torch.Tensor:
    """Share of correct predictions over the batch, ``[...]``."""
    return (predict(out, head) == y).to(out.dtype).mean(-1)
