"""The per-parameter norms that :class:`mlplab.Probe` records, a few kernels per step.

A model's parameters are measured as flat vectors, one per (device, dtype) group: the
weights, their update and their distance from initialisation are stacked and reduced
together (:func:`mlplab.probe.norms.segment_norms`), one reduction per parameter for all
three. Values stay on the device.

>>> import torch
>>> lin = torch.nn.Linear(2, 1)
>>> norms = ParamNorms([("fc", "_w", lin.weight), ("fc", "_b", lin.bias)])
>>> [keys for keys, _ in norms.gradients()]      # no backward yet: no gradients
[]
"""

from __future__ import annotations

import torch

from .norms import STEP_NORMS, l2, segment_norms, step_metrics, step_rows

# the step metrics measured after the update (the gradient's norm is taken before it)
UPDATE_METRICS = tuple(m for m in STEP_NORMS if m != "grad_norm")

Key = tuple[str, str]   # (layer, metric)


class _Group:
    """Parameters sharing a device and dtype: their sizes, init and snapshot."""

    def __init__(self, entries: list[tuple[str, str, torch.Tensor]]) -> None:
        self.entries = entries
        params = [p for _, _, p in entries]
        self.sizes = [p.numel() for p in params]
        self.grad_keys = [(layer, "grad_norm" + suffix) for layer, suffix, _ in entries]
        self.update_keys = [(layer, metric + suffix) for layer, suffix, _ in entries
                            for metric in UPDATE_METRICS]
        self.init = self.flat()                        # [P]
        self.prev = self.init                          # weights before the last recorded update
        self.prev_norms: torch.Tensor | None = None    # [n] their norms, when known
        self.current: torch.Tensor | None = None       # the weights updates() last measured
        self.current_norms: torch.Tensor | None = None

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for _, _, p in self.entries])


class ParamNorms:
    """Gradient norms now, and weight norm, update/weight ratio and distance from
    initialisation after an update, for ``(layer, metric suffix, parameter)`` entries."""

    def __init__(self, entries: list[tuple[str, str, torch.Tensor]]) -> None:
        groups: dict[tuple, list] = {}
        for entry in entries:
            groups.setdefault((entry[2].device, entry[2].dtype), []).append(entry)
        with torch.no_grad():
            self.groups = [_Group(g) for g in groups.values() if g]

    @torch.no_grad()
    def gradients(self) -> list[tuple[list[Key], torch.Tensor]]:
        """``grad_norm_*`` of every parameter that has a gradient: ``[(keys, [n])]``."""
        out = []
        for g in self.groups:
            have = [(i, e) for i, e in enumerate(g.entries) if e[2].grad is not None]
            if not have:
                continue
            if len(have) == len(g.entries):
                flat = torch.cat([p.grad.reshape(-1) for _, _, p in g.entries])
                out.append((g.grad_keys, segment_norms(flat[None], g.sizes)[0]))
            else:                                      # some parameters got no gradient
                keys = [g.grad_keys[i] for i, _ in have]
                values = [l2(e[2].grad) for _, e in have]
                out.append((keys, torch.stack(values)))
        return out

    @torch.no_grad()
    def snapshot(self, measured: bool = False) -> None:
        """Remember the weights now, before the optimizer's update. ``measured``: the
        weights have not changed since :meth:`updates` (then its copy is reused)."""
        for g in self.groups:
            reuse = measured and g.current is not None
            g.prev = g.current if reuse else g.flat()
            g.prev_norms = g.current_norms if reuse else None
            g.current = g.current_norms = None

    @torch.no_grad()
    def updates(self) -> list[tuple[list[Key], torch.Tensor]]:
        """Weight norm, ‖w − w_snapshot‖/‖w_snapshot‖ and ‖w − w₀‖ of every parameter, now:
        ``[(keys, [n * 3])]`` (per parameter: the three :data:`UPDATE_METRICS`)."""
        out = []
        for g in self.groups:
            w = g.flat()
            after, prev, update, _, dist = step_rows(w, g.prev, None, g.init)
            # the norm before the update only when snapshot() did not keep it
            rows = [after, update, dist] + ([prev] if g.prev_norms is None else [])
            r = segment_norms(torch.stack(rows), g.sizes)                           # [3|4, n]
            prev_norms = r[3] if g.prev_norms is None else g.prev_norms
            g.current, g.current_norms = w, r[0]
            metrics = dict(zip(STEP_NORMS, step_metrics([r[0], prev_norms, r[1], None, r[2]])))
            values = torch.stack([metrics[m] for m in UPDATE_METRICS], dim=1).reshape(-1)  # [n*3]
            out.append((g.update_keys, values))
        return out
