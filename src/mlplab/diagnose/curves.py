"""Loss-curve detectors: plateau, oscillation and overfitting, pure functions from one
attempt's :class:`~mlplab.diagnose.history.History` to :class:`~mlplab.diagnose.history.Finding` records.
Epoch-based findings name the epoch and the steps taken by its end (the ``step`` of
that epoch's rows in ``metrics.parquet``).

Thresholds (module constants; the finding's evidence shows the measured numbers):

=====================  ======================================================================
constant               meaning
=====================  ======================================================================
PLATEAU_TOLERANCE      plateau: the loss stays within 2% of its value at the stretch's start
PLATEAU_MIN_SHARE      ... for at least 20% of the run and PLATEAU_MIN_POINTS (10) records
PLATEAU_HIGH           ... while still at >= 50% of the initial loss (lower is convergence);
                       warning if it lasts to the end, info if the loss moved on again
OSC_WINDOW             oscillation: in windows of 10 epochs of train loss, at least
OSC_MIN_SHARE          30% of the epoch-to-epoch moves go up and 30% down, each move over
OSC_MOVE               5% of the initial loss, in at least OSC_WINDOWS_SHARE (25%) of the
                       windows (moves are measured against the initial loss so that the
                       relative jitter of an already small loss does not count)
OVERFIT_VAL_RISE       overfitting: val loss ends >= 10% above its minimum, the train loss
OVERFIT_GAP_GROWTH     still falls, the val-train gap grew by >= 5% of the initial loss,
OVERFIT_MIN_EPOCHS     over at least 5 epochs after the best one
=====================  ======================================================================

The plateau uses the per-epoch train loss when there are at least PLATEAU_MIN_POINTS
epochs, else the step loss; oscillation needs the per-epoch train loss (the minibatch
loss jitters by itself).
"""

from __future__ import annotations

import math

import numpy as np

from .history import Finding, History, finite_prefix, initial_loss, make_finding

PLATEAU_TOLERANCE = 0.02
PLATEAU_MIN_SHARE = 0.2
PLATEAU_MIN_POINTS = 10
PLATEAU_HIGH = 0.5
PLATEAU_MAX_POINTS = 500     # longer series are averaged in blocks first
OSC_WINDOW = 10
OSC_MOVE = 0.05
OSC_MIN_SHARE = 0.3
OSC_WINDOWS_SHARE = 0.25
OVERFIT_VAL_RISE = 0.1
OVERFIT_GAP_GROWTH = 0.05
OVERFIT_MIN_EPOCHS = 5


def _loss_curve(h: History) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(steps, train loss, epochs): per epoch when there are enough epochs (then steps are
    those taken by the end of each epoch), else the step loss (epochs None)."""
    if "train_loss" in h.epochs and len(h.epochs) >= PLATEAU_MIN_POINTS:
        return (h.epochs["step"].to_numpy(), h.epochs["train_loss"].to_numpy(float),
                h.epochs.index.to_numpy())
    loss = h.loss()
    return loss.index.to_numpy(), loss.to_numpy(float), None


def detect_plateau(h: History) -> list[Finding]:
    """The longest stretch where the loss stays flat while still high."""
    steps, loss, epochs = _loss_curve(h)
    loss = finite_prefix(loss)
    steps = steps[:len(loss)]
    epochs = epochs[:len(loss)] if epochs is not None else None
    if len(loss) > PLATEAU_MAX_POINTS:           # block means keep the scan cheap
        k = math.ceil(len(loss) / PLATEAU_MAX_POINTS)
        n = len(loss) // k * k
        loss, steps = loss[:n].reshape(-1, k).mean(1), steps[:n:k]
        epochs = epochs[:n:k] if epochs is not None else None
    n, l0 = len(loss), initial_loss(h)
    if n < PLATEAU_MIN_POINTS or not math.isfinite(l0):
        return []
    best = (0, 0)
    for a in range(n):
        tol = PLATEAU_TOLERANCE * abs(loss[a])
        dev = np.abs(loss[a:] - loss[a]) > tol
        end = a + (int(np.argmax(dev)) if dev.any() else n - a)
        if end - a > best[1] - best[0] and loss[a] >= PLATEAU_HIGH * l0:
            best = (a, end)
    a, end = best
    if end - a < max(PLATEAU_MIN_POINTS, PLATEAU_MIN_SHARE * n):
        return []
    to_end = end >= n
    until = int(steps[end - 1])
    msg = (f"loss plateau: the training loss stayed within {PLATEAU_TOLERANCE:.0%} of "
           f"{loss[a]:.4g} (initial {l0:.4g}) from step {int(steps[a])} "
           + ("to the end" if to_end else f"to step {until}, then moved again"))
    hint = ("a fresh initialisation (stopping.restarts), a higher learning rate or Adam can "
            "escape it; more hidden units make it less likely" if to_end else
            "the net escaped it; restarts or a higher learning rate shorten such stretches")
    evidence = {"loss": float(loss[a]), "initial_loss": l0,
                "steps": float(until - int(steps[a])), "until_step": float(until)}
    return [make_finding(h, "plateau", "warning" if to_end else "info", None, int(steps[a]),
                         evidence, msg, hint, None if epochs is None else int(epochs[a]))]


def detect_oscillation(h: History) -> list[Finding]:
    """The per-epoch train loss keeps going up and down by more than a few percent."""
    if "train_loss" not in h.epochs:
        return []
    loss = finite_prefix(h.epochs["train_loss"].to_numpy(float))
    if len(loss) < OSC_WINDOW + 1:
        return []
    l0 = initial_loss(h)
    if not math.isfinite(l0) or l0 <= 0:
        return []
    d = np.diff(loss)
    scale = np.abs(loss[:-1])
    up, down = d > OSC_MOVE * l0, d < -OSC_MOVE * l0
    windows = len(d) - OSC_WINDOW + 1
    ups = np.convolve(up, np.ones(OSC_WINDOW), "valid")
    downs = np.convolve(down, np.ones(OSC_WINDOW), "valid")
    osc = (ups >= OSC_MIN_SHARE * OSC_WINDOW) & (downs >= OSC_MIN_SHARE * OSC_WINDOW)
    if osc.mean() < OSC_WINDOWS_SHARE:
        return []
    window = int(np.flatnonzero(osc)[0])
    first = window + int(np.argmax(up[window:window + OSC_WINDOW]))   # its first rise
    epoch = int(h.epochs.index[first + 1])
    swing = float(np.median(np.abs(d[up | down]) / scale[up | down]))
    msg = (f"oscillation: the train loss went up in {up.mean():.0%} of epochs and down in "
           f"{down.mean():.0%}, by {swing:.0%} on median, from epoch {epoch}")
    evidence = {"share_up": float(up.mean()), "share_down": float(down.mean()),
                "median_swing": swing, "oscillating_windows": float(osc.mean())}
    hint = "lower the learning rate about 3x (or the momentum); a larger batch smooths the steps"
    return [make_finding(h, "oscillation", "warning", None, h.epoch_step(epoch), evidence,
                         msg, hint, epoch)]


def detect_overfitting(h: History) -> list[Finding]:
    """Val loss climbs from its minimum while the train loss keeps falling."""
    ep = h.epochs
    if h.info.get("val_is_train") or "train_loss" not in ep or "val_loss" not in ep:
        return []
    tr, va = ep["train_loss"].to_numpy(float), ep["val_loss"].to_numpy(float)
    n = len(finite_prefix(tr + va))
    if n < 2 * OVERFIT_MIN_EPOCHS:
        return []
    tr, va = tr[:n], va[:n]
    b = int(np.argmin(va))
    gap_b, gap_e = va[b] - tr[b], va[-1] - tr[-1]
    l0 = initial_loss(h)
    if not (n - 1 - b >= OVERFIT_MIN_EPOCHS and va[-1] >= (1 + OVERFIT_VAL_RISE) * va[b]
            and tr[-1] <= tr[b] and gap_e - gap_b >= OVERFIT_GAP_GROWTH * abs(l0)):
        return []
    epoch = int(ep.index[b + 1])
    msg = (f"overfitting: val loss rose from {va[b]:.4g} (epoch {int(ep.index[b])}) to "
           f"{va[-1]:.4g} while the train loss fell from {tr[b]:.4g} to {tr[-1]:.4g}; "
           f"the val-train gap widened from {gap_b:.4g} to {gap_e:.4g}")
    hint = (f"early stopping with restore_best keeps epoch {int(ep.index[b])}'s weights; more "
            "data, weight decay (train.weight_decay) or a smaller network overfit less")
    evidence = {"best_val_loss": float(va[b]), "best_epoch": float(ep.index[b]),
                "val_loss_end": float(va[-1]), "train_loss_at_best": float(tr[b]),
                "train_loss_end": float(tr[-1]), "gap_at_best": float(gap_b),
                "gap_end": float(gap_e)}
    return [make_finding(h, "overfitting", "warning", None, h.epoch_step(epoch), evidence,
                         msg, hint, epoch)]
