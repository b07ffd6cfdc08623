"""The probe's measurements (SPEC §5): per-layer norms and activation statistics.

Pure functions that take tensors and return tensors; they work for one model
(``w: [out, in]``) and for a cohort (``w: [K, out, in]``) alike, reducing over the
trailing parameter dimensions only. Nothing here prints or syncs with the host.

>>> import torch
>>> float(l2(torch.tensor([3.0, 4.0])))
5.0
"""

from __future__ import annotations

import math

import torch

# A unit is *dead* when its ReLU output is zero on every example of the probe batch.
DEAD_SHARE = 1.0
# A sigmoid/tanh unit is *saturated* when, on at least this share of the probe batch,
# its output lies within SAT_MARGIN of the activation's bounds (|tanh| > 0.99 and
# sigmoid < 0.01 or > 0.99), where its derivative is below about 0.02.
SATURATED_SHARE = 0.95
SAT_MARGIN = 0.01


def l2(t: torch.Tensor, batch_dims: int = 0) -> torch.Tensor:
    """L2 norm over all but the first ``batch_dims`` dimensions."""
    if batch_dims == 0:
        return torch.linalg.vector_norm(t)
    return torch.linalg.vector_norm(t.flatten(batch_dims), dim=-1)


# What a step's per-layer norms are taken of, for a layer's weight and its bias alike:
# the parameters after the update, before it, the update, the gradient the update used
# and the distance from initialisation. Every layout (one model's tensors, a cohort's
# flat rows, the compiled epoch) builds them with step_rows, in this order.
STEP_ROWS = ("after", "prev", "update", "grad", "dist")
# The rows that are differences of others: (row, minuend, subtrahend); "init" is the
# parameters at initialisation.
_DIFFERENCES = (("update", "prev", "after"), ("dist", "after", "init"))
# The per-layer step metrics (each suffixed _w and _b) that step_metrics makes from the
# norms of the STEP_ROWS, in the order every engine records them.
STEP_NORMS = ("weight_norm", "update_ratio", "dist_init", "grad_norm")


def step_rows(after: torch.Tensor, prev: torch.Tensor, grad: torch.Tensor | None,
              init: torch.Tensor) -> list[torch.Tensor | None]:
    """The tensors of :data:`STEP_ROWS` of one step (``grad`` None: that row None)."""
    given = {"after": after, "prev": prev, "grad": grad, "init": init}
    for row, a, b in _DIFFERENCES:
        given[row] = given[a] - given[b]
    return [given[row] for row in STEP_ROWS]


def fill_step_rows_(rows: list[torch.Tensor], init: torch.Tensor) -> None:
    """:func:`step_rows` into a buffer: ``rows`` are the :data:`STEP_ROWS` tensors, the
    given ones filled (after, prev, grad); the differences are written into the others."""
    given = dict(zip(STEP_ROWS, rows), init=init)
    for row, a, b in _DIFFERENCES:
        torch.sub(given[a], given[b], out=given[row])


def step_metrics(norms: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """The :data:`STEP_NORMS` from the norms of the :data:`STEP_ROWS` (a None norm gives
    None metrics): the weight norm, the update ratio ‖Δw‖/‖w_prev‖ (the norm before the
    update at least the dtype's smallest normal number), the distance from init and the
    gradient norm.

    >>> t = torch.tensor
    >>> step_metrics([t(2.0), t(4.0), t(1.0), None, t(3.0)])
    [tensor(2.), tensor(0.2500), tensor(3.), None]
    """
    after, prev, update, grad, dist = norms
    tiny = torch.finfo(prev.dtype).tiny
    return [after, update / prev.clamp_min(tiny), dist, grad]


def layer_norms(w: torch.Tensor, b: torch.Tensor | None, grad_w: torch.Tensor | None,
                grad_b: torch.Tensor | None, prev_w: torch.Tensor, prev_b: torch.Tensor | None,
                init_w: torch.Tensor, init_b: torch.Tensor | None,
                batch_dims: int = 0) -> dict[str, torch.Tensor]:
    """Norms of one layer after an update, :data:`STEP_NORMS` for weight (``_w``) and bias
    (``_b``); a missing gradient leaves its ``grad_norm`` out."""
    out = {}
    for suffix, p, grad, prev, init in (("_w", w, grad_w, prev_w, init_w),
                                        ("_b", b, grad_b, prev_b, init_b)):
        if p is None:
            continue
        norms = [None if t is None else l2(t, batch_dims) for t in step_rows(p, prev, grad, init)]
        out.update({m + suffix: v for m, v in zip(STEP_NORMS, step_metrics(norms))
                    if v is not None})
    return out


def activation_stats(pre: torch.Tensor, activation: str, negative_slope: float = 0.01,
                     batch_last: bool = False, scratch: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
    """Statistics of one hidden layer's pre-activations ``pre: [..., B, units]`` (or
    ``[..., units, B]`` with ``batch_last``, how the cohort keeps them). ``scratch``: a
    tensor of at least ``pre.numel()`` elements for the centred values (else a new one).

    Returns mean and std of the pre-activations, the share of dead units (ReLU: zero on
    the whole batch) and of saturated units (sigmoid/tanh), each ``[...]``. The batch
    reductions run over the innermost dimension and the variance is two-pass, about ten
    times faster on a cohort than reducing over a strided batch dimension.
    """
    if not batch_last:
        pre = pre.transpose(-1, -2)                          # [..., units, B]
    mean = pre.mean((-2, -1))                                # [...]
    centred = pre - mean[..., None, None] if scratch is None else \
        torch.sub(pre, mean[..., None, None], out=scratch[:pre.numel()].view(pre.shape))
    # the norm of the centred values over sqrt(count): one pass over them, where squaring
    # (in place: a second fresh MB-sized temporary costs more than the op) and a mean took two
    std = torch.linalg.vector_norm(centred, dim=(-2, -1)).div_(math.sqrt(pre.shape[-2] *
                                                                         pre.shape[-1]))
    dead = sat = torch.zeros_like(mean)
    if activation == "relu" and DEAD_SHARE == 1.0:   # zero on all the batch: max <= 0
        dead = (pre.amax(-1) <= 0).float().mean(-1)   # (10x faster; NaN: not dead)
    elif activation == "relu":
        dead = ((pre <= 0).float().mean(-1) >= DEAD_SHARE).float().mean(-1)
    elif activation in ("tanh", "sigmoid"):
        a = torch.tanh(pre) if activation == "tanh" else torch.sigmoid(pre)
        lo, hi = (-1.0, 1.0) if activation == "tanh" else (0.0, 1.0)
        near = ((a < lo + SAT_MARGIN) | (a > hi - SAT_MARGIN)).float().mean(-1)  # [..., units]
        sat = (near >= SATURATED_SHARE).float().mean(-1)
    return {"act_mean": mean, "act_std": std, "dead_frac": dead, "sat_frac": sat}


def segment_norms(rows: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """L2 norms of consecutive segments of each row.

    ``rows: [R, P]`` holds several tensors flattened and concatenated, ``sizes`` their
    numbers of elements (summing to ``P``; zero allowed). Returns ``[R, len(sizes)]``,
    one reduction per segment for all rows at once: the per-step cost of probing stays
    a handful of kernels whatever the number of rows (weights, updates, distances).

    >>> flat = torch.tensor([[3.0, 4.0, 1.0, 1.0, 1.0, 1.0]])
    >>> segment_norms(flat, [2, 0, 4]).tolist()
    [[5.0, 0.0, 2.0]]
    """
    parts = rows.split(sizes, dim=1)                       # views [R, size_i]
    return torch.stack([torch.linalg.vector_norm(part, dim=1) for part in parts], dim=1)


def units_last(x: torch.Tensor, channels_first: bool) -> torch.Tensor:
    """View a layer's output as ``[B', units]`` for :func:`activation_stats`.

    ``channels_first``: the units are the channels, dimension 1 (``[B, C, *spatial]``
    after a convolution or a batch/instance/group norm); every batch element and
    position counts as one example. Otherwise the units are the last dimension.

    >>> units_last(torch.zeros(8, 3, 5), channels_first=True).shape
    torch.Size([40, 3])
    """
    if x.dim() <= 1:
        return x.reshape(1, -1)
    if channels_first and x.dim() > 2:
        return x.movedim(1, -1).reshape(-1, x.shape[1])
    return x.reshape(-1, x.shape[-1])
