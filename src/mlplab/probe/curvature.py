"""Curvature of the loss (issue 22): sharpness, Hessian trace, gradient noise scale and
stability, for one model or a cohort of K at once.

Everything is written for parameters as rows ``theta [K, P]`` and a function
``loss_fn(row [P], x, t) -> scalar``, the mean loss of one model on a batch; every
measurement is ``torch.func`` over it, ``vmap``-ed over the K models (no Python loop over
models):

- **sharpness**: the largest eigenvalue of the loss Hessian, by power iteration on
  Hessian-vector products (:func:`hessian_operator`: the ``vmap``-ed losses'
  gradient, differentiated again with the graph kept). Power iteration
  finds the eigenvalue of largest magnitude; where that is negative the iteration is run
  again on ``H - lambda I``, whose largest-magnitude eigenvalue is then the top one.
- **hess_trace**: Hutchinson's estimate ``mean_i v_i^T H v_i`` over Rademacher vectors
  ``v_i`` (unbiased; drawn from a generator of its own, the same for every model).
- **grad_noise_scale**: McCandlish et al. (2018)'s simple noise scale
  ``B_simple = tr(Sigma) / |G|^2`` from per-example gradients on the batch (``vmap`` over
  examples of ``grad``): ``tr(Sigma)`` the trace of the per-example gradients' sample
  covariance (unbiased, ``1/(B-1)``), ``|G|^2`` the squared norm of their mean. The
  batch size beyond which larger batches stop helping.
- **stability**: ``lr x`` the sharpness the optimizer sees, to be compared with the
  optimizer's bound (:func:`mlplab.optim.table.stability_bound`: 2 for gradient
  descent, 2 + 2 beta for heavy-ball momentum, ...). For plain and momentum SGD that is
  the top eigenvalue of ``H + wd I`` (coupled weight decay adds to every eigenvalue);
  for the adaptive optimizers (Adam, AdamW, RMSprop, Adagrad) the top eigenvalue of the
  *preconditioned* Hessian ``D^-1/2 (H + wd I) D^-1/2`` with ``D`` the diagonal the
  optimizer divides by (Cohen et al. 2022; AdamW's decoupled decay is not counted).

Nothing here touches the training state: the parameters are copied into fresh tensors,
random vectors come from generators of their own (never the global RNG), and no
``.grad`` is written.

>>> import torch
>>> a = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
>>> f = lambda row, x, t: 0.5 * row @ a @ row
>>> theta = torch.ones(2, 3, dtype=torch.float64)           # K = 2 models
>>> [round(v, 6) for v in sharpness(f, theta, None, None).tolist()]
[3.0, 3.0]
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor
from torch.func import grad, vmap

from mlplab.metrics import CURVATURE_METRICS as CURVATURE_METRICS  # the names, in order

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]

# power iteration: at most POWER_ITERS Hessian-vector products, stopped once every
# model's Rayleigh quotient moved by less than POWER_TOL (relative) over POWER_CHECK
# iterations (one host read per check)
POWER_ITERS = 40
POWER_TOL = 1e-4
POWER_CHECK = 5
HUTCHINSON_VECTORS = 8        # Rademacher vectors of the trace estimate
NOISE_MAX_EXAMPLES = 256       # per-example gradients on at most this many examples
SEED = 20180101                # the curvature's own generator (power start, Rademacher)


class Preconditioner(NamedTuple):
    """What an optimizer does to the curvature: ``lr [K]`` the step's learning rate,
    ``scale [K, P]`` or None the ``D^-1/2`` of an adaptive optimizer, ``shift [K]`` the
    coupled weight decay added to every eigenvalue (or None)."""

    lr: Tensor
    scale: Tensor | None = None
    shift: Tensor | None = None


def hessian_operator(loss_fn: LossFn, theta: Tensor, x: Tensor | None,
                     t: Tensor | None) -> Callable[[Tensor], Tensor]:
    """``v [..., K, P] -> H v``: every model's Hessian-vector product ``H_k v_k``. The
    models' losses (``vmap`` of ``loss_fn`` over the rows of ``theta [K, P]``) are summed
    and differentiated once with the graph kept; each product is then one backward
    through that gradient (reverse over reverse, ten times cheaper per product than
    ``jvp`` of ``grad`` rebuilt each time on small networks). The models are
    independent, so the summed loss's Hessian is block diagonal and its product with
    ``v`` is each model's own. Leading dimensions of ``v`` are batched
    (``is_grads_batched``)."""
    rows = theta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        total = vmap(loss_fn, in_dims=(0, None, None))(rows, x, t).sum()
        (g,) = torch.autograd.grad(total, rows, create_graph=True)

    def mv(v: Tensor) -> Tensor:
        if not g.requires_grad:              # a loss linear in the parameters: H = 0
            return torch.zeros_like(v)
        with torch.enable_grad():
            return torch.autograd.grad(g, rows, v, retain_graph=True,
                                       is_grads_batched=v.dim() > 2)[0]
    return mv


def _rademacher(shape: tuple[int, ...], like: Tensor, gen: torch.Generator) -> Tensor:
    return (torch.randint(0, 2, shape, generator=gen).to(like) * 2 - 1)


def _unit(v: Tensor) -> Tensor:
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(
        torch.finfo(v.dtype).tiny)


def top_eigenvalue(mv: Callable[[Tensor], Tensor], v0: Tensor, iters: int = POWER_ITERS,
                   tol: float = POWER_TOL) -> tuple[Tensor, Tensor]:
    """Largest eigenvalue ``[K]`` of symmetric operators ``mv`` (``[K, P] -> [K, P]``,
    one per row) and its eigenvector ``[K, P]``, by power iteration from ``v0``; a row
    whose dominant eigenvalue is negative is iterated again on the shifted operator."""
    lam, v = _power(mv, v0, iters, tol)
    shift = torch.where(lam < 0, lam, torch.zeros_like(lam))
    if bool((shift < 0).any()):
        lam2, v = _power(lambda u: mv(u) - shift[:, None] * u, v, iters, tol)
        lam = torch.where(shift < 0, lam2 + shift, lam)
    return lam, v


def _power(mv: Callable[[Tensor], Tensor], v0: Tensor, iters: int,
           tol: float) -> tuple[Tensor, Tensor]:
    tiny = torch.finfo(v0.dtype).tiny
    v = v0 / torch.linalg.vector_norm(v0, dim=-1, keepdim=True).clamp_min(tiny)
    lam = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    checked = lam
    for i in range(1, iters + 1):
        w = mv(v)
        lam = (v * w).sum(-1)                                    # Rayleigh quotient [K]
        norm = torch.linalg.vector_norm(w, dim=-1, keepdim=True)
        v = torch.where(norm > tiny, w / norm.clamp_min(tiny), v)
        if i % POWER_CHECK == 0:
            moved = (lam - checked).abs() <= tol * lam.abs().clamp_min(tiny)
            if bool((moved | ~torch.isfinite(lam)).all()):
                break
            checked = lam
    return lam, v


def sharpness(loss_fn: LossFn, theta: Tensor, x: Tensor | None, t: Tensor | None,
              v0: Tensor | None = None, iters: int = POWER_ITERS,
              tol: float = POWER_TOL) -> Tensor:
    """The top Hessian eigenvalue of each model, ``[K]`` (``v0``: the start vectors)."""
    return sharpness_and_vector(loss_fn, theta, x, t, v0, iters, tol)[0]


def sharpness_and_vector(loss_fn: LossFn, theta: Tensor, x: Tensor | None, t: Tensor | None,
                         v0: Tensor | None = None, iters: int = POWER_ITERS,
                         tol: float = POWER_TOL) -> tuple[Tensor, Tensor]:
    """:func:`sharpness` and the eigenvectors ``[K, P]`` (a warm start for the next)."""
    if v0 is None:
        v0 = start_vectors(theta)
    return top_eigenvalue(hessian_operator(loss_fn, theta, x, t), v0, iters, tol)


def start_vectors(theta: Tensor) -> Tensor:
    """Power iteration's start ``[K, P]``: the same fixed random vector for every model."""
    gen = torch.Generator().manual_seed(SEED)
    return torch.randn(theta.shape[-1], generator=gen, dtype=torch.float64).to(theta) \
        .expand_as(theta).clone()


def hess_trace(loss_fn: LossFn, theta: Tensor, x: Tensor | None, t: Tensor | None,
               vectors: int = HUTCHINSON_VECTORS, seed: int = SEED,
               probes: Tensor | None = None,
               mv: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Hutchinson's estimate of each model's Hessian trace, ``[K]``: the mean of
    ``v^T H v`` over ``vectors`` Rademacher vectors from generator ``seed`` (or the given
    ``probes [V, P]``), the same vectors for every model."""
    if probes is None:
        probes = _rademacher((vectors, theta.shape[-1]), theta,
                             torch.Generator().manual_seed(seed))
    probes = probes.to(theta)[:, None, :].expand(-1, *theta.shape)      # [V, K, P]
    mv = mv if mv is not None else hessian_operator(loss_fn, theta, x, t)
    return (mv(probes) * probes).sum(-1).mean(0)                 # [V, K] -> [K]


def grad_noise_scale(example_loss: LossFn, theta: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """McCandlish et al.'s ``B_simple = tr(Sigma) / |G|^2`` of each model, ``[K]``, from
    per-example gradients on ``x [B, d]``, ``t [B, ...]`` (at most
    ``NOISE_MAX_EXAMPLES`` of them); ``example_loss(row, x_i, t_i)`` is one example's loss."""
    x, t = x[:NOISE_MAX_EXAMPLES], t[:NOISE_MAX_EXAMPLES]
    per_example = vmap(vmap(grad(example_loss), in_dims=(None, 0, 0)),
                       in_dims=(0, None, None))(theta, x, t)    # [K, B, P]
    b = per_example.shape[1]
    mean = per_example.mean(1)                                  # [K, P]
    trace_cov = (per_example - mean[:, None]).pow(2).sum((1, 2)) / max(b - 1, 1)
    return trace_cov / mean.pow(2).sum(-1)


def measure(loss_fn: LossFn, example_loss: LossFn, theta: Tensor, x: Tensor, t: Tensor,
            pre: Preconditioner | None, v0: Tensor | None = None,
            noise: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
            ) -> tuple[dict[str, Tensor], Tensor]:
    """Every curvature metric of each model at ``theta [K, P]`` on the batch ``(x, t)``:
    ``{name: [K]}`` in :data:`CURVATURE_METRICS` order (no ``stability`` without ``pre``)
    and the top eigenvectors (pass them back as ``v0`` next time: a warm start).
    ``noise``: a faster equal of :func:`grad_noise_scale` (:func:`mlplab.probe.curvature_probe.mlp_noise_scale`)."""
    with torch.inference_mode(False), torch.enable_grad():
        theta, x, t = theta.detach().clone(), x.clone(), t.clone()
        fresh = start_vectors(theta)
        # a warm start keeps the last eigenvector, plus the fixed random start: a direction
        # the last eigenvector lacks (a unit that was dead) can still become the top one
        v0 = fresh if v0 is None else _unit(v0) + _unit(fresh)
        mv = hessian_operator(loss_fn, theta, x, t)
        lam, vec = top_eigenvalue(mv, v0)
        out = {"sharpness": lam,
               "hess_trace": hess_trace(loss_fn, theta, x, t, mv=mv),
               "grad_noise_scale": noise(theta, x, t) if noise is not None else
               grad_noise_scale(example_loss, theta, x, t)}
        if pre is not None:
            out["stability"] = pre.lr.to(lam) * _effective_sharpness(mv, pre, lam, vec)
    return {k: v.detach() for k, v in out.items()}, vec.detach()


def _effective_sharpness(mv: Callable[[Tensor], Tensor], pre: Preconditioner, lam: Tensor,
                         vec: Tensor) -> Tensor:
    """Top eigenvalue of ``D^-1/2 (H + shift I) D^-1/2`` (``lam``: H's, when D = I)."""
    shift = torch.zeros_like(lam) if pre.shift is None else pre.shift.to(lam)
    if pre.scale is None:
        return lam + shift
    s = pre.scale.to(vec)

    def pre_mv(v: Tensor) -> Tensor:
        u = s * v
        return s * (mv(u) + shift[:, None] * u)
    return top_eigenvalue(pre_mv, vec / s.clamp_min(torch.finfo(s.dtype).tiny))[0]


def preconditioner(name: str, hyper: dict[str, Tensor], state: dict[str, Tensor] | None
                   ) -> Preconditioner:
    """What optimizer ``name`` (a row of :mod:`mlplab.optim.table`) does to the curvature at
    its next step: ``hyper`` its hyper-parameters as ``[K]`` tensors (``lr`` this step's),
    ``state`` its per-parameter state as ``[K, P]`` tensors named as ``torch.optim`` names
    them (``exp_avg_sq``, ``square_avg``, ``grad_avg``, ``sum``) and ``count [K]``, the
    steps taken (adaptive optimizers only; None before the first step gives
    ``scale = None`` for them too, which the caller should not use)."""
    from mlplab.optim.table import DECOUPLED_DECAY, PRECONDITIONED, spec_of

    rule = spec_of(name).rule
    lr = hyper["lr"]
    shift = None if rule in DECOUPLED_DECAY else hyper.get("weight_decay")
    if rule not in PRECONDITIONED or state is None:
        return Preconditioner(lr, None, shift)
    count = state["count"].to(lr)[:, None]                                   # [K, 1]
    col = lambda key: hyper[key].to(lr)[:, None]  # noqa: E731
    if rule in ("adam", "adamw"):
        v_hat = state["exp_avg_sq"] / (1 - col("beta2") ** count.clamp_min(1))
        d = (1 - col("beta1") ** (count + 1)) * (v_hat.sqrt() + col("eps"))
    elif rule == "rmsprop":
        sq = state["square_avg"]
        if "grad_avg" in state and "centered" in hyper:
            centered = hyper["centered"].to(torch.bool)[:, None]
            sq = torch.where(centered, sq - state["grad_avg"] ** 2, sq)
        d = sq.clamp_min(0).sqrt() + col("eps")
    else:                                                                     # adagrad
        d = state["sum"].sqrt() + col("eps")
        lr = lr / (1 + count[:, 0] * hyper["lr_decay"].to(lr))
    return Preconditioner(lr, d.rsqrt(), shift)
