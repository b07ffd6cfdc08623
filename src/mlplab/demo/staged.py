"""The pipeline study: a staged sweep (lr -> shape -> optimizer) with restarts on two spirals,
then a check of what it picked on fresh seeds.

The post made no claim here; the claim tested is the pipeline's own: its pick beats the
configuration it started from. The sweep chose on its own seeds' val accuracy, so that score
flatters the pick (the winner's curse); the pick and the start are therefore trained again on
seeds the sweep never saw and compared seed by seed on the test set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlplab.config import from_dict, to_dict, with_overrides
from mlplab.stats import compare
from .claims import Claim
from .trainer import DemoScale, SectionResult, Trainer, pct, seeds_of

CONFIRM_OFFSET = 1000     # seeds of the check: none of them ran in the sweep
SESOI = 0.02              # two points of test accuracy (the test set has 60 points)


def staged_sweep(scale: DemoScale) -> dict[str, Any]:
    """The staged sweep of the pipeline study: lr -> shape -> optimizer on two spirals,
    early stopping on val accuracy with up to two restarts until the target is met: ``auto``,
    within noise of the spirals' Bayes limit."""
    spec = to_dict(from_dict({
        "name": "staged-spiral",
        "data": {"name": "spiral", "arms": 2, "n": 600, "noise": 0.1},
        "model": {"hidden": [16], "activation": "relu"},
        "train": {"optimizer": "momentum", "lr": 0.01, "batch_size": 64, "epochs": scale.staged_epochs},
        "stopping": {"monitor": "val_acc", "patience": max(10, scale.staged_epochs // 6),
                     "restarts": 2, "target": "auto"},
        "probe": {"every": 10, "activations_every": 50, "boundary_snapshots": 8}}))
    spec["sweep"] = {"strategy": "staged", "seeds": scale.staged_seeds,
                     "select": {"metric": "val_acc", "statistic": "median"},
                     "stages": [{"train.lr": [0.003, 0.01, 0.03, 0.1]},
                                {"model.hidden": [[16], [32], [16, 16]],
                                 "model.activation": ["relu", "tanh"]},
                                {"train.optimizer": ["sgd", "momentum", "rmsprop", "adam"]}]}
    return spec


def staged_runs(scale: DemoScale) -> int:
    """Runs of the sweep and of its check on fresh seeds (for the progress bar)."""
    from mlplab.sweep import load_sweep
    from mlplab.sweep.plan import planned_total

    return planned_total(*reversed(load_sweep(staged_sweep(scale)))) + 2 * scale.confirm_seeds


def staged_pipeline(trainer: Trainer, scale: DemoScale) -> SectionResult:
    from mlplab.report.build import build_report
    from mlplab.sweep import run_sweep

    spec = staged_sweep(scale)
    out = trainer.out / "staged"
    result = run_sweep(spec, out=out, workers=None, quiet=True, report=False)
    trainer.bar.update(result.data.get("n_runs", 0))
    stages = result.data.get("stages", [])
    runs = trainer.store("staged").runs(status="done")
    restarts = sum(r.restarts or 0 for r in runs)
    best = result.best or {}
    best_run = next((r for r in runs if r.run_id == best.get("best_run_id")), None)
    path = " -> ".join(", ".join(f"{k.split('.')[-1]}={v}" for k, v in s["winner"].items())
                       for s in stages)
    acc = best_run.val_acc if best_run else float("nan")

    start = from_dict({k: v for k, v in spec.items() if k != "sweep"})
    pick = from_dict(best["config"]) if "config" in best else start
    arms = {"pick": with_overrides(pick, {"name": "confirm-pick"}),
            "start": with_overrides(start, {"name": "confirm-start"})}
    test_acc = {arm: np.array([r.best.test_acc for r in trainer.cohort(
                    "staged_confirm", seeds_of(cfg, scale.confirm_seeds, offset=CONFIRM_OFFSET))])
                for arm, cfg in arms.items()}
    claim = Claim("staged", "the staged sweep's pick beats the configuration it started from",
                  "test accuracy on fresh seeds", ("the pick", "the start"),
                  compare(test_acc["pick"], test_acc["start"], paired=True), SESOI)
    improved = result.data.get("restarts_improved", 0)
    finding = (f"stage winners {path}; {restarts} restarts over {len(runs)} runs "
               f"({sum((r.restarts or 0) > 0 for r in runs)} runs needed one; {improved} of the "
               f"restarts beat every attempt before them); "
               f"the pick's val accuracy in the sweep {pct(acc)}; on {scale.confirm_seeds} fresh "
               f"seeds its test accuracy is {pct(test_acc['pick'].mean())} against "
               f"{pct(test_acc['start'].mean())} for the starting configuration.")
    build_report(out)
    figures = sorted((out / "figures").glob("stages*.png"))
    if best_run is not None:
        figures += [p for p in [out / "runs" / best_run.run_id / "figures" / "boundary.png"] if p.is_file()]
    return SectionResult("staged", "6. The pipeline (staged sweep)", finding, [claim],
                         numbers={"stages": stages, "restarts": restarts,
                                  "restarts_improved": improved, "runs": len(runs),
                                  "best": best.get("params"), "best_val_acc": acc,
                                  "confirm_test_acc": {k: v.tolist() for k, v in test_acc.items()}},
                         rows=[{"stage": s["stage"], "winner": s["winner"], "score": s["score"]}
                               for s in stages],
                         figures=figures, store=out)
