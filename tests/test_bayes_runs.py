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


# ---- stopping.target: auto ---------------------------------------------------------------

from mlplab.config import ConfigError, from_dict  # noqa: E402
from mlplab.data import load_data  # noqa: E402
from mlplab.engine import train, train_cohort  # noqa: E402
from mlplab.engine.stopping import auto_target, sets_target  # noqa: E402
from mlplab.stats import accuracy_noise, data_bayes_limit  # noqa: E402

EASY = {"data": {"name": "gaussians", "k": 2, "spread": 0.3, "n": 400},
        "model": {"hidden": [8]}, "train": {"optimizer": "adam", "lr": 0.05, "epochs": 60,
                                            "batch_size": 0},
        "stopping": {"monitor": "val_acc", "patience": 5, "restarts": 3},
        "probe": {"boundary_snapshots": 0}}


def test_auto_is_the_bayes_limit_less_the_noise_of_the_monitored_split():
    cfg = from_dict(EASY)
    assert cfg.stopping.target == "auto" and sets_target(cfg)
    data = load_data(cfg.data)
    limit = data_bayes_limit(cfg.data)
    want = limit.accuracy - accuracy_noise(limit.accuracy, len(data.y_val)).halfwidth
    assert auto_target(cfg, data) == pytest.approx(want)
    for other in ({"stopping": {"monitor": "val_loss"}}, {"data": {"name": "csv:x.csv"}}):
        c = from_dict({**EASY, **{k: {**EASY[k], **v} for k, v in other.items()}})
        assert not sets_target(c)
    with pytest.raises(ConfigError, match="stopping.target.*auto"):
        from_dict({"stopping": {"target": "best"}})


@pytest.mark.parametrize("engine", ["reference", "cohort"])
def test_an_attempt_at_the_limit_is_not_restarted(engine):
    def run(target):
        cfg = from_dict({**EASY, "stopping": {**EASY["stopping"], "target": target}})
        return train(cfg) if engine == "reference" else train_cohort([cfg])[0]

    auto, none = run("auto"), run(None)
    # auto: the first attempt reaches the limit less its noise: met, no restart
    assert [a.end_reason for a in auto.attempts] == ["target"] and auto.attempts[0].target_met
    assert auto.config["stopping"]["target"] == pytest.approx(auto_target(from_dict(EASY),
                                                                          load_data(from_dict(EASY).data)))
    assert auto.info["bayes"]["accuracy"] == pytest.approx(data_bayes_limit(from_dict(EASY).data).accuracy)
    # no target: the same network plateaus at full accuracy and is restarted every time
    assert len(none.attempts) == 4 and none.config["stopping"]["target"] is None
