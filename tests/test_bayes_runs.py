"""The Bayes limit in runs: `diagnose` says when a run is within noise of it (nothing
left to gain) or significantly above it (a bug)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlplab.diagnose import diagnose
from mlplab.diagnose.history import history_of
from mlplab.diagnose.limits import detect_bayes_limit

LIMIT = {"accuracy": 0.928, "stderr": 0.0, "method": "quadrature"}


def _frame(val_acc: list[float]) -> pd.DataFrame:
    n = len(val_acc)
    return pd.DataFrame({"attempt": [0] * n, "step": [10 * (e + 1) for e in range(n)],
                         "epoch": list(range(n)), "scope": ["epoch"] * n, "layer": [""] * n,
                         "metric": ["val_acc"] * n, "value": val_acc})


@pytest.mark.parametrize("curve, m, kind, epoch", [
    ([0.5, 0.7, 0.85, 0.921, 0.925, 0.93], 2000, "bayes_limit", 3),      # reaches it at epoch 3
    ([0.5, 0.7, 0.80, 0.81, 0.80, 0.81], 2000, None, None),             # far below it
    ([0.5, 0.7, 0.80, 0.81, 0.80, 0.90], 50, "bayes_limit", 5),         # 50 points: 0.90 is noise
    ([0.5, 0.9, 0.95, 0.97, 0.98, 0.99], 2000, "beats_bayes_limit", 5),  # impossible on fresh data
])
def test_the_limit_is_reported_where_the_noise_of_the_val_set_says(curve, m, kind, epoch):
    found = detect_bayes_limit(history_of(_frame(curve), 0, {"bayes": LIMIT, "n_val": m}))
    assert [f.kind for f in found] == ([kind] if kind else [])
    if kind:
        assert found[0].epoch == epoch and found[0].evidence["bayes_limit"] == 0.928


def test_no_limit_no_val_set_of_its_own_or_no_accuracy_says_nothing():
    curve = _frame([0.5, 0.93])
    assert detect_bayes_limit(history_of(curve, 0, {"n_val": 2000})) == []
    assert detect_bayes_limit(history_of(curve, 0, {"bayes": LIMIT, "n_val": 2000,
                                                    "val_is_train": True})) == []
    loss_only = curve.assign(metric="val_loss")
    assert detect_bayes_limit(history_of(loss_only, 0, {"bayes": LIMIT, "n_val": 2000})) == []


def test_diagnose_runs_the_detector():
    found = diagnose(_frame([0.5, 0.7, 0.85, 0.921, 0.925, 0.93]), {"bayes": LIMIT, "n_val": 2000})
    assert "bayes_limit" in [f.kind for f in found]
