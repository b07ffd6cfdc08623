"""The Bayes limit as a finding: a run whose validation accuracy is within noise of the
best any classifier can reach on its (generated) data has nothing left to gain from
more capacity or more training; one significantly above it points at a bug.

The limit comes with the run's info (``info["bayes"]``: :func:`mlplab.stats.bayes_limit`
of its data, kept by the engines for generated datasets) and the noise is the binomial
noise of ``n_val`` validation points (:func:`mlplab.stats.against_limit`).

>>> import pandas as pd
>>> from mlplab.diagnose.history import history_of
>>> frame = pd.DataFrame({"attempt": [0] * 3, "step": [10, 20, 30], "epoch": [0, 1, 2],
...     "scope": ["epoch"] * 3, "layer": [""] * 3, "metric": ["val_acc"] * 3,
...     "value": [0.70, 0.91, 0.92]})
>>> info = {"bayes": {"accuracy": 0.928, "stderr": 0.0}, "n_val": 400}
>>> [(f.kind, f.epoch) for f in detect_bayes_limit(history_of(frame, 0, info))]
[('bayes_limit', 1)]
"""

from __future__ import annotations

import math

from .history import Finding, History, make_finding

ALPHA = 0.05


def detect_bayes_limit(h: History) -> list[Finding]:
    """``bayes_limit`` (info) from the first epoch whose val accuracy is within noise of
    the limit and stays so to the end; ``beats_bayes_limit`` (warning) when the last
    val accuracy is significantly above it. Nothing without a limit, a val accuracy
    series or a validation set of its own."""
    from mlplab.stats import BayesLimit, against_limit

    bayes, m = h.info.get("bayes"), h.info.get("n_val")
    if not bayes or not m or h.info.get("val_is_train") or "val_acc" not in h.epochs:
        return []
    limit = BayesLimit(float(bayes["accuracy"]), float(bayes.get("stderr") or 0.0),
                       str(bayes.get("method", "")))
    acc = h.epochs["val_acc"].dropna()
    acc = acc[[math.isfinite(v) and 0.0 <= v <= 1.0 for v in acc]]
    if acc.empty:
        return []
    checks = [against_limit(float(v), int(m), limit, alpha=ALPHA) for v in acc]
    last = checks[-1]
    epoch = int(acc.index[-1])
    step = h.epoch_step(epoch) if "step" in h.epochs else 0
    evidence = {"val_acc": last.accuracy, "bayes_limit": limit.accuracy, "n_val": float(m),
                "gap": last.gap, "p_value": last.p_value}
    if last.beats_limit:
        return [make_finding(
            h, "beats_bayes_limit", "warning", None, step, evidence,
            f"val accuracy {last.accuracy:.1%} is above the Bayes limit of the data "
            f"({limit.accuracy:.1%}) by more than {m} validation points can explain "
            f"(binomial p = {last.p_value:.2g})",
            "no classifier can do that on fresh data: look for validation points that are also "
            "training points, a changed data config, or labels the generator did not make",
            epoch=epoch)]
    if not last.within:
        return []
    first = len(checks) - 1
    while first > 0 and checks[first - 1].within:
        first -= 1
    start = int(acc.index[first])
    step = h.epoch_step(start) if "step" in h.epochs else 0
    return [make_finding(
        h, "bayes_limit", "info", None, step, evidence,
        f"val accuracy {last.accuracy:.1%} is within noise of the Bayes limit "
        f"{limit.accuracy:.1%} (the best any classifier can do on this data; {m} validation "
        f"points, binomial p = {last.p_value:.2g}) from epoch {start} on",
        "more capacity or more training will not help here: the remaining errors are where "
        "the classes overlap", epoch=start)]
