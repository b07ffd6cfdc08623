"""Curvature detectors (issue 22): the edge of stability and progressive sharpening, from
the curvature probe's ``sharpness`` and ``stability`` (``probe.curvature_every > 0``).
Runs that did not measure curvature get no finding here (neither "stable" nor not).

``stability`` is lr x the sharpness the optimizer sees (the preconditioned one for an
adaptive optimizer); its bound is the optimizer's (:func:`mlplab.optim.table.stability_bound`,
stored in the run's info as ``stability_bound``): on a quadratic with that curvature the
iteration diverges beyond it (2 for gradient descent, Cohen et al. 2021/2022).

=====================  ======================================================================
constant               meaning
=====================  ======================================================================
EOS_MARGIN             edge of stability: a record with stability > bound x (1 + 1%); the
                       safe lr is the largest lr for which every record up to the crossing
                       stays within the bound, lr x bound / stability (= bound / sharpness);
EOS_WINDOW, EOS_AGAIN  a crossing counts when 2 of it and the next 2 records are over (a lone
                       spike, such as Adam's first steps while its second-moment estimate is
                       one gradient, does not)
SHARPEN_FACTOR         progressive sharpening: the sharpness persistently >= 2x its early
SHARPEN_EARLY          level (the median of the first 3 records), at least
SHARPEN_MIN_RECORDS    6 records measured
=====================  ======================================================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .history import Finding, History, config_value, make_finding, onset, safe_median

EOS_MARGIN = 0.01
EOS_WINDOW, EOS_AGAIN = 3, 2   # a crossing counts when 2 of it and the next 2 records are over
SHARPEN_FACTOR = 2.0
SHARPEN_EARLY = 3
SHARPEN_MIN_RECORDS = 6
DIVERGE_FACTOR = 10.0       # the loss after the crossing above 10x its value there: severe


def stability_bound(h: History) -> float | None:
    """The bound on ``stability`` of the run's optimizer: the info's ``stability_bound``,
    else from an mlplab config's optimizer; None when unknown (a Probe run's optimizer
    that the table does not know)."""
    bound = h.info.get("stability_bound")
    if isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0:
        return float(bound)
    name = config_value(h, "train", "optimizer")
    from mlplab.optim.table import OPTIMIZERS, stability_bound as table_bound

    if name in OPTIMIZERS:
        hyper: dict[str, Any] = h.info.get("optimizer_hyper") or {}
        return table_bound(name, hyper)
    return None


def _lr_at(h: History, step: int) -> float | None:
    lr = h.model_series("lr")
    if step in lr.index and math.isfinite(float(lr.loc[step])):
        return float(lr.loc[step])
    value = config_value(h, "train", "lr")
    return float(value) if isinstance(value, (int, float)) else None


def edge_of_stability(h: History) -> dict[str, float] | None:
    """The first record where lr x sharpness crosses the bound: ``step``, ``stability``,
    ``bound``, ``ratio`` (stability / bound), ``peak_ratio``, ``safe_lr`` (the largest lr
    that keeps every record up to the crossing within the bound), ``lr``; None when the
    curvature was not measured, or never crossed."""
    stab = h.model_series("stability").dropna()
    bound = stability_bound(h)
    if stab.empty or bound is None:
        return None
    values, steps = stab.to_numpy(float), stab.index.to_numpy()
    with np.errstate(invalid="ignore"):
        over = np.isfinite(values) & (values > bound * (1 + EOS_MARGIN))
    counted = np.array([over[j] and (over[j:j + EOS_WINDOW].sum() >= min(EOS_AGAIN, len(over) - j))
                        for j in range(len(over))], dtype=bool)
    if not counted.any():
        return None
    i = int(np.argmax(counted))
    step = int(steps[i])
    lr = _lr_at(h, step)
    finite = values[:i + 1][np.isfinite(values[:i + 1]) & (values[:i + 1] > 0)]
    lrs = np.array([_lr_at(h, int(s)) or math.nan for s in steps[:i + 1]])
    ok = np.isfinite(values[:i + 1]) & (values[:i + 1] > 0) & np.isfinite(lrs)
    safe = float(np.min(lrs[ok] * bound / values[:i + 1][ok])) if ok.any() else math.nan
    with np.errstate(invalid="ignore"):
        peak = float(np.nanmax(values[np.isfinite(values)])) if len(finite) else math.nan
    return {"step": step, "stability": float(values[i]), "bound": bound,
            "ratio": float(values[i]) / bound, "peak_ratio": peak / bound,
            "safe_lr": safe, "lr": lr if lr is not None else math.nan,
            "records_over": int(over.sum()), "records": int(len(values))}


def _diverged_after(h: History, step: int) -> bool:
    loss = h.loss()
    after = loss[loss.index >= step].to_numpy(float)
    if not len(after):
        return False
    l0 = after[0]
    return bool((~np.isfinite(after)).any() or
                (math.isfinite(l0) and l0 > 0 and (after > DIVERGE_FACTOR * l0).any()))


def detect_edge_of_stability(h: History) -> list[Finding]:
    """lr x sharpness crossed the optimizer's stability bound: at which step, by how
    much, and the largest lr that stays within it."""
    e = edge_of_stability(h)
    if e is None:
        return []
    diverged = _diverged_after(h, e["step"])
    severity = "severe" if diverged else "warning"
    lr = f"lr {e['lr']:g}" if math.isfinite(e["lr"]) else "the lr"
    msg = (f"edge of stability: lr x sharpness reached {e['stability']:.3g} at step "
           f"{e['step']}, {e['ratio']:.2f}x the optimizer's bound {e['bound']:.3g} "
           f"(peak {e['peak_ratio']:.2f}x; {e['records_over']} of {e['records']} curvature "
           f"records over it)" + ("; the loss then blew up" if diverged else
                                 "; beyond it gradient descent no longer descends along "
                                 "the sharpest direction and the loss oscillates"))
    hint = (f"the safe lr from the measured sharpness is {e['safe_lr']:.3g} ({lr} now): "
            f"below it lr x sharpness stays under {e['bound']:.3g}" if math.isfinite(
                e["safe_lr"]) else "lower the learning rate")
    evidence = {k: v for k, v in e.items() if k != "step"}
    return [make_finding(h, "edge_of_stability", severity, None, e["step"], evidence, msg, hint)]


def detect_progressive_sharpening(h: History) -> list[Finding]:
    """The sharpness grows persistently during training (Cohen et al. 2021), often until
    lr x sharpness reaches the bound."""
    sharp = h.model_series("sharpness")
    sharp = sharp[np.isfinite(sharp.to_numpy(float))]
    if len(sharp) < SHARPEN_MIN_RECORDS:
        return []
    values = sharp.to_numpy(float)
    early = safe_median(values[:SHARPEN_EARLY])
    if not early > 0:
        return []
    i = onset(values >= SHARPEN_FACTOR * early)
    if i is None or i < SHARPEN_EARLY:
        return []
    peak = float(values.max())
    bound, lr = stability_bound(h), _lr_at(h, int(sharp.index[-1]))
    edge = bound / lr if bound is not None and lr else math.nan
    msg = (f"progressive sharpening: the sharpness (top Hessian eigenvalue) rose from "
           f"{early:.3g} to {peak:.3g} ({peak / early:.1f}x), persistently from step "
           f"{int(sharp.index[i])}" + (f"; the edge of stability for this lr is at "
                                       f"{edge:.3g}" if math.isfinite(edge) else ""))
    hint = ("expected with full-batch or large-batch training: the sharpness rises until "
            "lr x sharpness meets the optimizer's bound; a smaller lr lets it rise further, "
            "a larger one stops it sooner (at the risk of instability)")
    evidence = {"early_sharpness": early, "peak_sharpness": peak,
                "growth": peak / early, "edge_sharpness": edge}
    return [make_finding(h, "progressive_sharpening", "info", None, int(sharp.index[i]),
                         evidence, msg, hint)]


def stable_lr_hint(h: History) -> str | None:
    """For ``lr_too_high``: the largest stable lr from the measured sharpness, or None."""
    stab, bound = h.model_series("stability").dropna(), stability_bound(h)
    if stab.empty or bound is None:
        return None
    e = edge_of_stability(h)
    if e is not None and math.isfinite(e["safe_lr"]):
        return (f"lower the learning rate to at most {e['safe_lr']:.3g}, the largest stable lr "
                f"from the measured sharpness (the optimizer's bound {bound:.3g} over the "
                f"sharpness up to step {e['step']})")
    values = stab.to_numpy(float)
    first = int(stab.index[0])
    lr = _lr_at(h, first)
    if lr and math.isfinite(values[0]) and values[0] > 0:
        return (f"the measured sharpness allows an lr up to {lr * bound / values[0]:.3g} "
                f"(bound {bound:.3g}); lower the learning rate below that")
    return None
