"""Detectors of gradients, weights and units: pure functions from one attempt's
:class:`~mlplab.diagnose.history.History` to :class:`~mlplab.diagnose.history.Finding` records (SPEC §5);
the loss-curve detectors are in :mod:`mlplab.diagnose.curves`, and :data:`DETECTORS` lists them
all. Nothing here reads files or prints. "Persistently" is
:func:`mlplab.diagnose.history.onset`: the condition holds from its first step on for most of
the rest of the attempt.

Thresholds (module constants; the finding's evidence shows the measured numbers):

=====================  ======================================================================
constant               meaning
=====================  ======================================================================
DIVERGE_LOSS_FACTOR    divergence: loss NaN/inf, or persistently above 10x its first value
EXPLODE_GROWTH         exploding: a layer's gradient norm 1000x its first value ...
EXPLODE_MIN_NORM       ... and above 1.0, or NaN/inf ...
EXPLODE_RATIO          ... or persistently 100x the output layer's gradient
VANISH_RATIO           vanishing: a layer's gradient persistently below 1e-2 of the
                       output layer's (warning); VANISH_SEVERE_RATIO 1e-3: severe
                       (gradients compared as RMS per weight, ‖g‖/√n, when the layers'
                       weight counts are known, so layers of different sizes compare
                       fairly; else as norms)
DEAD_INFO_SHARE        dead ReLUs: >= 25% of a layer's units dead, persistently (info);
                       DEAD_WARN_SHARE 50%: warning; DEAD_SEVERE_SHARE 90%: severe
SAT_WARN_SHARE         saturated sigmoid/tanh: >= 25% of a hidden layer's units (warning);
                       SAT_SEVERE_SHARE 50%: severe
LR_HIGH_UPDATE         lr too high: in the first records, the largest layer's update/weight
                       ratio is > 0.3 on median, or one update is > LR_HIGH_MAX_UPDATE (1.0),
                       as large as the weights (ratios > 1e6, of weights that were exactly
                       zero before the update, are skipped)
LR_LOW_UPDATE          lr too low: every layer's median update/weight ratio < 1e-5 while
LR_LOW_PROGRESS        the loss fell by < 10%, gradients are not zero and no hidden layer
                       has persistently dead (>= 50%) or saturated (>= 25%) units (small
                       updates are then a symptom of those, not of the learning rate)
(curvature)            edge_of_stability and progressive_sharpening: see
                       :mod:`mlplab.diagnose.curvature`; with curvature measured,
                       lr_too_high's hint gives the largest stable lr from the sharpness
=====================  ======================================================================
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from .curvature import detect_edge_of_stability, detect_progressive_sharpening, stable_lr_hint
from .curves import detect_oscillation, detect_overfitting, detect_plateau
from .limits import detect_bayes_limit
from .history import (EARLY_RECORDS, PERSIST_MIN_RECORDS, Finding, History, config_value,
                      finite_prefix, initial_loss, layer_label, make_finding, onset,
                      safe_median)

DIVERGE_LOSS_FACTOR = 10.0
EXPLODE_GROWTH = 1e3
EXPLODE_MIN_NORM = 1.0
EXPLODE_RATIO = 1e2
VANISH_RATIO = 1e-2
VANISH_SEVERE_RATIO = 1e-3
DEAD_INFO_SHARE = 0.25
DEAD_WARN_SHARE = 0.5
DEAD_SEVERE_SHARE = 0.9
SAT_WARN_SHARE = 0.25
SAT_SEVERE_SHARE = 0.5
LR_HIGH_UPDATE = 0.3
LR_HIGH_MAX_UPDATE = 1.0
ZERO_WEIGHT_RATIO = 1e6
LR_LOW_UPDATE = 1e-5
LR_LOW_PROGRESS = 0.1

if TYPE_CHECKING:
    import pandas as pd


def detect_divergence(h: History) -> list[Finding]:
    """Loss (or a weight) became NaN/inf, or the loss stays far above where it started."""
    loss = h.loss()
    l0 = initial_loss(h)
    values = loss.to_numpy()
    steps = loss.index.to_numpy()
    nonfinite = ~np.isfinite(values)
    weights = h.layer_table("weight_norm_w")
    bad_w = (~np.isfinite(weights.to_numpy())).any(axis=1) if not weights.empty else None
    bad_steps = list(steps[nonfinite])
    if bad_w is not None:
        bad_steps += list(weights.index[bad_w])
    epoch_bad = [int(h.epoch_step(e)) for e in h.epochs.index
                 if any(m in h.epochs and not math.isfinite(h.epochs.loc[e, m])
                        for m in ("train_loss", "val_loss"))] if not h.epochs.empty else []
    bad_steps += epoch_bad
    big = np.zeros(len(values), bool)
    if math.isfinite(l0) and l0 > 0:
        with np.errstate(invalid="ignore"):
            big = nonfinite | (values > DIVERGE_LOSS_FACTOR * l0)
    i = onset(big)
    if i is None and not bad_steps:
        return []
    began = int(steps[i]) if i is not None else int(min(bad_steps))
    if bad_steps:
        began = min(began, int(min(bad_steps)))
    finite = values[np.isfinite(values)]
    evidence = {"initial_loss": l0,
                "max_finite_loss": float(finite.max()) if len(finite) else math.nan}
    if bad_steps:
        evidence["first_nonfinite_step"] = float(min(bad_steps))
        what = f"the loss became NaN/inf at step {int(min(bad_steps))}"
    else:
        what = f"the loss rose above {DIVERGE_LOSS_FACTOR:g}x its initial value"
    lr = config_value(h, "train", "lr")
    msg = (f"training diverged: {what} (initial loss {l0:.4g}, largest finite loss "
           f"{evidence['max_finite_loss']:.4g}), beginning at step {began}")
    hint = ("lower the learning rate about 10x" + (f" (it was {lr:g})" if lr else "") +
            "; clipping gradients (train.clip_grad_norm) guards against single bad steps")
    return [make_finding(h, "divergence", "severe", None, began, evidence, msg, hint)]


def weight_counts(h: History) -> dict[str, int]:
    """Weights per layer: ``info["weight_counts"]`` (a Probe's run) or from an mlplab
    MLP's ``info["layer_sizes"]``; empty when unknown."""
    if h.info.get("weight_counts"):
        return {k: int(v) for k, v in h.info["weight_counts"].items()}
    layers, sizes = h.info.get("layers") or [], h.info.get("layer_sizes") or []
    if len(sizes) == len(layers) + 1:
        return {name: int(sizes[i] * sizes[i + 1]) for i, name in enumerate(layers)}
    return {}


def gradient_scale(h: History) -> "pd.DataFrame":
    """Weight-gradient size per layer by step: the RMS over the layer's weights when every
    layer's count is known (layers of different sizes compare fairly), else the norm."""
    grads = h.layer_table("grad_norm_w")
    counts = weight_counts(h)
    if grads.empty or not all(counts.get(c, 0) > 0 for c in grads.columns):
        return grads
    return grads / np.sqrt([counts[c] for c in grads.columns])


def detect_exploding_gradients(h: History) -> list[Finding]:
    """A layer's gradient norm blows up (NaN/inf, 1000x growth, or 100x the output layer's)."""
    grads, scale = h.layer_table("grad_norm_w"), gradient_scale(h)
    if grads.empty:
        return []
    out = h.output_layer if h.output_layer in grads else grads.columns[-1]
    hits = []
    for layer in grads.columns:
        g = grads[layer].to_numpy()
        g0 = safe_median(g[:1])
        with np.errstate(invalid="ignore", divide="ignore"):
            grown = (g > EXPLODE_GROWTH * g0) & (g > EXPLODE_MIN_NORM)
            ratio = (scale[layer].to_numpy() / scale[out].to_numpy() if layer != out
                     else np.zeros_like(g))
            mask = ~np.isfinite(g) | grown | (ratio > EXPLODE_RATIO)
        i = onset(mask)
        first_bad = np.flatnonzero(~np.isfinite(g))
        if i is None and not len(first_bad):
            continue
        idx = min(x for x in (i, first_bad[0] if len(first_bad) else None) if x is not None)
        finite = g[np.isfinite(g)]
        nan_at = int(grads.index[first_bad[0]]) if len(first_bad) else -1
        hits.append((int(grads.index[idx]), layer, g0,
                     float(finite.max()) if len(finite) else math.nan, nan_at))
    if not hits:
        return []
    # the earliest layer; among equals the one that grew most
    step, layer, g0, gmax, nan_at = min(hits, key=lambda t: (t[0], -np.nan_to_num(t[3])))
    msg = (f"exploding gradients: {layer_label(layer)}'s gradient norm went from {g0:.3g} to "
           f"{gmax:.3g}"
           + (f" and became NaN/inf at step {nan_at}" if nan_at >= 0 else "")
           + f", beginning at step {step}; layers affected: " + ", ".join(str(t[1]) for t in hits))
    hint = ("lower the learning rate about 10x, clip gradients (train.clip_grad_norm) or "
            "use a smaller initialisation (Xavier/He instead of a large normal)")
    evidence = {"first_grad_norm": g0, "max_grad_norm": gmax, "layers_affected": len(hits)}
    return [make_finding(h, "exploding_gradients", "severe", layer, step, evidence, msg, hint)]


def detect_vanishing_gradients(h: History) -> list[Finding]:
    """Gradients of layers nearer the input persistently tiny next to the output layer's."""
    grads = gradient_scale(h)
    if grads.shape[1] < 2:
        return []
    out = h.output_layer if h.output_layer in grads else grads.columns[-1]
    g_out = grads[out].to_numpy()
    affected = {}
    for layer in grads.columns:
        if layer == out:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = grads[layer].to_numpy() / g_out
            valid = np.isfinite(ratio) & (g_out > 0)
        if valid.sum() < min(PERSIST_MIN_RECORDS, len(ratio)) or not valid.any():
            continue
        r = ratio[valid]
        i = onset(r < VANISH_RATIO)
        if i is not None:
            affected[layer] = (int(grads.index[valid][i]), safe_median(r[i:]))
    if not affected:
        return []
    worst = min(affected, key=lambda k: affected[k][1])
    step, ratio = affected[worst]
    severity = "severe" if ratio < VANISH_SEVERE_RATIO else "warning"
    others = ", ".join(f"{k} {v[1]:.1e}" for k, v in affected.items() if k != worst)
    act = config_value(h, "model", "activation")
    hint = ("sigmoid/tanh shrink gradients at every layer: ReLU with He initialisation, "
            "Xavier initialisation or fewer layers keep them alive"
            if act in ("sigmoid", "tanh") else
            "He initialisation suits ReLU, Xavier suits tanh/sigmoid; fewer layers or "
            "normalisation layers keep gradients flowing")
    what = "gradient (RMS per weight)" if weight_counts(h) else "gradient norm"
    msg = (f"vanishing gradients: {layer_label(worst)}'s {what} is {ratio:.1e} of the "
           f"output {layer_label(out)}'s (median from step {step})"
           + (f"; also {others}" if others else ""))
    evidence = {f"ratio_{k}": v[1] for k, v in affected.items()}
    evidence["grad_output"] = safe_median(g_out)
    return [make_finding(h, "vanishing_gradients", severity, worst, step, evidence, msg, hint)]


def _units(h: History, layer: str) -> int | None:
    """Units of an mlplab MLP layer (``info["layer_sizes"]``), None when unknown."""
    layers, sizes = h.info.get("layers") or [], h.info.get("layer_sizes") or []
    if layer in layers and len(sizes) == len(layers) + 1:
        return int(sizes[layers.index(layer) + 1])
    return None


def _unit_shares(h: History, metric: str, levels: tuple[tuple[float, str], ...], kind: str,
                 what: str, hint: str) -> list[Finding]:
    """Per-layer findings for a share of units (``levels``: (threshold, severity), rising)."""
    table = h.layer_table(metric, "acts")
    found = []
    for layer in table.columns:
        if layer == h.output_layer:        # a saturated output unit is a confident prediction
            continue
        share = table[layer].dropna()
        i = onset(share.to_numpy() >= levels[0][0])
        if i is None:
            continue
        level = safe_median(share.to_numpy()[i:])
        last = float(share.iloc[-1])
        severity = [sev for threshold, sev in levels if level >= threshold][-1:] or [levels[0][1]]
        units = _units(h, layer)
        count = f" ({round(level * units)} of {units})" if units else ""
        msg = (f"{what} in {layer_label(layer)}: {level:.0%} of its units{count} from step "
               f"{int(share.index[i])} on (median; {last:.0%} at the last record)")
        evidence = {"share": level, "share_last": last, "share_max": float(share.max())}
        found.append(make_finding(h, kind, severity[0], layer, int(share.index[i]), evidence,
                                  msg, hint))
    return found


def detect_dead_relus(h: History) -> list[Finding]:
    """ReLU units that output zero on the whole probe batch."""
    bias = str(config_value(h, "model", "bias_init") or "")
    hint = ("He initialisation suits ReLU; a lower learning rate or leaky_relu keeps units "
            "alive" + ("; the negative bias_init " + bias + " starts units switched off"
                       if bias.startswith("constant(-") else ""))
    levels = ((DEAD_INFO_SHARE, "info"), (DEAD_WARN_SHARE, "warning"),
              (DEAD_SEVERE_SHARE, "severe"))
    return _unit_shares(h, "dead_frac", levels, "dead_relus", "dead ReLUs", hint)


def detect_saturation(h: History) -> list[Finding]:
    """Sigmoid/tanh units stuck near their bounds, where their derivative is ~0."""
    hint = ("Xavier (Glorot) initialisation suits sigmoid/tanh: smaller initial weights keep "
            "pre-activations in the sensitive range; standardised inputs help too")
    levels = ((SAT_WARN_SHARE, "warning"), (SAT_SEVERE_SHARE, "severe"))
    return _unit_shares(h, "sat_frac", levels, "saturation", "saturated sigmoid/tanh units", hint)


def _units_stuck(h: History) -> bool:
    """Whether a hidden layer has persistently dead or saturated units."""
    for metric, threshold in (("dead_frac", DEAD_WARN_SHARE), ("sat_frac", SAT_WARN_SHARE)):
        table = h.layer_table(metric, "acts")
        for layer in table.columns:
            stuck = onset(table[layer].dropna().to_numpy() >= threshold) is not None
            if layer != h.output_layer and stuck:
                return True
    return False


def detect_learning_rate(h: History) -> list[Finding]:
    """Update/weight ratios far above (early) or below (throughout) the usual ~1e-3."""
    ratios = h.layer_table("update_ratio_w")
    if ratios.empty:
        return []
    lr = config_value(h, "train", "lr")
    at = f" (lr {lr:g})" if lr else ""
    with np.errstate(invalid="ignore"):
        usable = ratios.where(ratios < ZERO_WEIGHT_RATIO)
    early = usable.iloc[:EARLY_RECORDS]
    top = early.max(axis=1, skipna=True).to_numpy()          # largest layer ratio per step
    med, peak = safe_median(top), float(np.nanmax(top)) if np.isfinite(top).any() else math.nan
    if med > LR_HIGH_UPDATE or peak > LR_HIGH_MAX_UPDATE:
        per_layer = {k: safe_median(early[k].to_numpy()) for k in early}
        worst = max(per_layer, key=lambda k: per_layer[k] if math.isfinite(per_layer[k]) else -1)
        over = top > (LR_HIGH_UPDATE if med > LR_HIGH_UPDATE else LR_HIGH_MAX_UPDATE)
        step = int(early.index[int(np.argmax(over))])
        msg = (f"learning rate too high{at}: in the first {len(early)} steps the updates changed "
               f"the weights by {med:.0%} of their norm on median and up to {peak:.0%} "
               f"({layer_label(worst)} most; healthy is ~0.1%)")
        evidence = {"early_update_ratio": med, "max_update_ratio": peak}
        evidence.update({f"early_update_ratio_{k}": v for k, v in per_layer.items()})
        return [make_finding(h, "lr_too_high", "warning", worst, step, evidence, msg,
                             stable_lr_hint(h) or "lower the learning rate about 10x")]
    medians = {layer: safe_median(ratios[layer].to_numpy()) for layer in ratios}
    grads = h.layer_table("grad_norm_w")
    grad_level = max((safe_median(grads[c].to_numpy()) for c in grads), default=math.nan)
    loss = finite_prefix(h.loss().to_numpy(float))
    l0 = initial_loss(h)
    if not medians or len(loss) < 2 or not math.isfinite(l0) or l0 <= 0 or \
            not (grad_level > 0) or not all(math.isfinite(v) for v in medians.values()):
        return []
    top = max(medians.values())
    l_end = safe_median(loss[-EARLY_RECORDS:])
    progress = (l0 - l_end) / l0
    if top >= LR_LOW_UPDATE or progress >= LR_LOW_PROGRESS or _units_stuck(h):
        return []
    msg = (f"learning rate too low{at}: updates change the weights by at most {top:.1e} of "
           f"their norm per step (healthy: ~1e-3) and the loss fell only {progress:.1%} "
           f"({l0:.4g} -> {l_end:.4g})")
    evidence = {"max_median_update_ratio": top, "initial_loss": l0, "final_loss": l_end,
                "progress": progress}
    return [make_finding(h, "lr_too_low", "warning", None, int(ratios.index[0]), evidence, msg,
                         "raise the learning rate about 10-100x")]


DETECTORS: tuple[Callable[[History], list[Finding]], ...] = (
    detect_divergence, detect_exploding_gradients, detect_vanishing_gradients,
    detect_dead_relus, detect_saturation, detect_plateau, detect_oscillation,
    detect_overfitting, detect_learning_rate, detect_edge_of_stability,
    detect_progressive_sharpening, detect_bayes_limit)
