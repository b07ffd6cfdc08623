"""The six studies of the seed study; each trains, measures and words its finding.

Every sentence is built from the measured numbers; each study also says whether the
blog post's claim reproduced (``SectionResult.reproduces``).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from mlplab.config import from_dict, to_dict, with_overrides
from mlplab.record import RunRecord
from . import figures as figs
from .trainer import (DemoScale, SectionResult, Trainer, circles_config, epoch_values, epochs_to,
                      fmt_q, mixture_config, pct, quartiles, seeds_of, xor_config)

INITS = ("xavier_uniform", "he_normal", "normal(1.0)", "zeros")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
OPTIM_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
LENGTH_CHECKPOINTS = (10, 25, 50, 100, 200, 400)


def _solved(rec: RunRecord) -> bool:
    """XOR solved: all four points right at the kept weights (val = train here)."""
    return rec.best.val_acc >= 1.0


def _typical(recs: list[RunRecord]) -> RunRecord | None:
    """The run with the median final training loss of a group."""
    if not recs:
        return None
    order = sorted(recs, key=lambda r: (np.nan_to_num(r.best.train_loss, nan=np.inf), r.run_id))
    return order[len(order) // 2]


def xor_seeds(trainer: Trainer, scale: DemoScale) -> SectionResult:
    from mlplab.diagnose.findings import diagnose

    recs = trainer.cohort("xor_seeds", seeds_of(xor_config(scale), scale.xor_seeds))
    ok = [_solved(r) for r in recs]
    fails = [r for r, good in zip(recs, ok) if not good]
    kinds: Counter[str] = Counter()
    for r in fails:
        kinds.update({f.kind for f in diagnose(r.metrics.to_frame(), r.info)})
    success, failure = _typical([r for r, g in zip(recs, ok) if g]), _typical(fails)
    share = len(fails) / len(recs)
    top = ", ".join(f"{k} in {n}/{len(fails)}" for k, n in kinds.most_common(3)) or "nothing"
    finding = (f"{len(fails)} of {len(recs)} initialisations ({pct(share)}) never reached 100% "
               f"training accuracy on XOR in {scale.xor_epochs} epochs; diagnose on the failures "
               f"finds {top}.")
    fig = figs.xor_gradients(trainer.out / "xor_seeds" / "figures", success, failure)
    return SectionResult(
        "xor_seeds", "1. XOR with the post's network", finding, reproduces=len(fails) > 0,
        numbers={"runs": len(recs), "failed": len(fails), "fail_share": share,
                 "findings_in_failures": dict(kinds),
                 "typical_success": success.run_id if success else None,
                 "typical_failure": failure.run_id if failure else None},
        rows=[{"outcome": "learned XOR", "runs": len(recs) - len(fails)},
              {"outcome": "failed", "runs": len(fails)}],
        figures=[p for p in [fig] if p], store=trainer.out / "xor_seeds")


def initialisation(trainer: Trainer, scale: DemoScale) -> SectionResult:
    problems = {"xor": (xor_config(scale), "val_acc", 1.0),
                "circles": (circles_config(scale), "val_acc", 0.95)}
    rows = []
    for ds, (base, metric, target) in problems.items():
        configs = [with_overrides(c, {"model.init": init, "name": f"init-{ds}"})
                   for init in INITS for c in seeds_of(base, scale.init_seeds)]
        recs = trainer.cohort("init", configs)
        for i, init in enumerate(INITS):
            group = recs[i * scale.init_seeds:(i + 1) * scale.init_seeds]
            speed = [epochs_to(r, metric, target) for r in group]
            rows.append({"dataset": ds, "init": init, "target": f"{metric} >= {target:g}",
                         "success_rate": float(np.mean([np.isfinite(s) for s in speed])),
                         "epochs_q": quartiles(speed), "runs": len(group)})
    best = {ds: max((r for r in rows if r["dataset"] == ds), key=lambda r: r["success_rate"])
            for ds in problems}
    zeros = [r for r in rows if r["init"] == "zeros"]
    normal = {r["dataset"]: r for r in rows if r["init"] == "normal(1.0)"}
    scaled = {r["dataset"]: max(r2["success_rate"] for r2 in rows if r2["dataset"] == r["dataset"]
                                and r2["init"] in ("xavier_uniform", "he_normal")) for r in rows}
    gain = {ds: scaled[ds] - normal[ds]["success_rate"] for ds in problems}
    # the claim holds if zeros never learn and Xavier/He beat normal(1.0) by 5 points
    # somewhere without losing anywhere
    claim = all(z["success_rate"] == 0 for z in zeros) and \
        max(gain.values()) >= 0.05 and min(gain.values()) >= 0
    parts = [f"{ds}: best {b['init']} ({pct(b['success_rate'])} succeed, median "
             f"{fmt_q(b['epochs_q'], ' epochs')})" for ds, b in best.items()]
    zero_txt = ", ".join(f"{z['dataset']} {pct(z['success_rate'])}" for z in zeros)
    gain_txt = ", ".join(f"{100 * g:+.0f} points on {ds}" for ds, g in gain.items())
    finding = ("; ".join(parts) + f"; zeros init succeeds on {zero_txt}; the better of "
               f"Xavier/He vs normal(1.0): {gain_txt}.")
    fig = figs.init_comparison(trainer.out / "init" / "figures", rows)
    return SectionResult("init", "2. Initialisation", finding, reproduces=claim,
                         numbers={"rows": rows}, rows=rows, figures=[fig],
                         store=trainer.out / "init")


def _epochs(median: float) -> str:
    return f"{median:g}" if np.isfinite(median) else "never"


def optimizers(trainer: Trainer, scale: DemoScale) -> SectionResult:
    # full batch, so an epoch is one step and speed differences are not hidden in the
    # first epoch's dozen minibatch steps
    base = mixture_config(scale.optim_epochs, batch_size=0)
    sweep = [with_overrides(c, {"train.optimizer": opt, "train.lr": lr, "name": f"lr-{opt}"})
             for opt in OPTIMIZERS for lr in OPTIM_LRS for c in seeds_of(base, scale.optim_lr_seeds)]
    recs = trainer.cohort("optimizers", sweep)
    curves, best_lr = {}, {}
    for opt in OPTIMIZERS:
        med = [float(np.median([r.best.val_loss for r, c in zip(recs, sweep)
                                if c.train.optimizer == opt and c.train.lr == lr]))
               for lr in OPTIM_LRS]
        curves[opt] = med
        best_lr[opt] = OPTIM_LRS[int(np.nanargmin(np.where(np.isfinite(med), med, np.inf)))]
    final = [with_overrides(c, {"train.optimizer": opt, "train.lr": best_lr[opt], "name": f"best-{opt}"})
             for opt in OPTIMIZERS for c in seeds_of(base, scale.optim_seeds, offset=100)]
    recs = trainer.cohort("optimizers", final)
    by_opt = {opt: recs[i * scale.optim_seeds:(i + 1) * scale.optim_seeds]
              for i, opt in enumerate(OPTIMIZERS)}
    reach = max(float(np.median([r.best.val_acc for r in group])) for group in by_opt.values())
    target = round(0.97 * reach, 3)
    rows = []
    for opt, group in by_opt.items():
        speed = [epochs_to(r, "val_acc", target) for r in group]
        rows.append({"optimizer": opt, "best_lr": best_lr[opt], "epochs_q": quartiles(speed),
                     "reached": float(np.mean([np.isfinite(s) for s in speed])),
                     "val_acc_median": float(np.median([r.best.val_acc for r in group]))})
    speed_of = {r["optimizer"]: r["epochs_q"][1] for r in rows}
    fastest = min(rows, key=lambda r: np.nan_to_num(r["epochs_q"][1], nan=np.inf))
    claim = bool(np.nan_to_num(speed_of["adam"], nan=np.inf) <
                 np.nan_to_num(speed_of["momentum"], nan=np.inf))
    finding = (f"full-batch epochs to {pct(target)} val accuracy (median [q1, q3]) at each "
               f"optimizer's best lr: "
               + ", ".join(f"{r['optimizer']} (lr {r['best_lr']:g}) {fmt_q(r['epochs_q'])}" for r in rows)
               + f"; fastest: {fastest['optimizer']}; the post's question, Adam vs SGD with "
               f"momentum: {_epochs(speed_of['adam'])} vs {_epochs(speed_of['momentum'])} "
               f"epochs ({'Adam' if claim else 'momentum'} {'faster' if claim else 'as fast or faster'}).")
    fig = figs.optimizer_comparison(trainer.out / "optimizers" / "figures", OPTIM_LRS, curves,
                                    by_opt, target)
    return SectionResult("optimizers", "3. Optimizers", finding, reproduces=claim,
                         numbers={"target_val_acc": target, "best_lr": best_lr, "rows": rows,
                                  "lr_curves": curves},
                         rows=rows, figures=[fig], store=trainer.out / "optimizers")


def depth(trainer: Trainer, scale: DemoScale) -> SectionResult:
    shapes = {"one hidden layer [8]": (8,), "two hidden layers [8, 8]": (8, 8)}
    groups = {}
    for label, hidden in shapes.items():
        base = mixture_config(scale.depth_epochs, spread=1.0, hidden=hidden)
        base = with_overrides(base, {"name": f"depth-{len(hidden)}"})
        groups[label] = [r.best.test_acc for r in trainer.cohort("depth", seeds_of(base, scale.depth_seeds))]
    q = {label: quartiles(v) for label, v in groups.items()}
    one, two = (q[label][1] for label in shapes)
    finding = (f"test accuracy on the overlapping 5-class mixture (median [q1, q3]): "
               + "; ".join(f"{label} {fmt_q(v)}" for label, v in q.items())
               + "; " + _depth_verdict(two - one))
    fig = figs.depth_spread(trainer.out / "depth" / "figures", groups)
    rows = [{"model": label, "test_acc_q": q[label], "runs": len(v)} for label, v in groups.items()]
    return SectionResult("depth", "4. Depth", finding, reproduces=bool(two - one >= 0.02),
                         numbers={"test_acc": {k: list(v) for k, v in groups.items()}},
                         rows=rows, figures=[fig], store=trainer.out / "depth")


def _depth_verdict(gain: float) -> str:
    if gain >= 0.02:
        return f"the second layer adds {100 * gain:.1f} points."
    if gain <= -0.02:
        return f"the second layer costs {-100 * gain:.1f} points."
    return (f"the difference ({100 * gain:+.1f} points) is within 2 points: both depths reach "
            "the same accuracy, so here the overlap of the classes, not the depth, limits it.")


def training_length(trainer: Trainer, scale: DemoScale) -> SectionResult:
    # a slow learner (Adam at lr 1e-3) so the effect of training longer is visible
    base = with_overrides(circles_config(scale, rings=3, epochs=scale.length_epochs),
                          {"train.lr": 0.001, "name": "circles3-length"})
    recs = trainer.cohort("length", seeds_of(base, scale.length_seeds))
    curves = np.stack([epoch_values(r, "val_acc") for r in recs])          # [S, E]
    marks = [e for e in LENGTH_CHECKPOINTS if e <= scale.length_epochs] or [scale.length_epochs]
    med = {e: float(np.median(curves[:, e - 1])) for e in marks}
    finding = ("median val accuracy on 3 rings after " +
               ", ".join(f"{e} epochs {pct(v)}" for e, v in med.items()) + ".")
    gain = med[marks[-1]] - med[marks[0]]
    fig = figs.accuracy_vs_epochs(trainer.out / "length" / "figures", curves)
    rows = [{"epochs": e, "val_acc_median": v} for e, v in med.items()]
    return SectionResult("length", "5. Training length", finding, reproduces=bool(gain >= 0.02),
                         numbers={"median_val_acc": med}, rows=rows, figures=[fig],
                         store=trainer.out / "length")


def staged_sweep(scale: DemoScale) -> dict:
    """The staged sweep of the pipeline study: lr -> shape -> optimizer on two spirals,
    early stopping on val accuracy with up to two restarts until 90% is reached."""
    spec = to_dict(from_dict({
        "name": "staged-spiral",
        "data": {"name": "spiral", "arms": 2, "n": 600, "noise": 0.1},
        "model": {"hidden": [16], "activation": "relu"},
        "train": {"optimizer": "momentum", "lr": 0.01, "batch_size": 64, "epochs": scale.staged_epochs},
        "stopping": {"monitor": "val_acc", "patience": max(10, scale.staged_epochs // 6),
                     "restarts": 2, "target": 0.9},
        "probe": {"every": 10, "activations_every": 50, "boundary_snapshots": 8}}))
    spec["sweep"] = {"strategy": "staged", "seeds": scale.staged_seeds,
                     "select": {"metric": "val_acc", "statistic": "median"},
                     "stages": [{"train.lr": [0.003, 0.01, 0.03, 0.1]},
                                {"model.hidden": [[16], [32], [16, 16]],
                                 "model.activation": ["relu", "tanh"]},
                                {"train.optimizer": ["sgd", "momentum", "rmsprop", "adam"]}]}
    return spec


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
    finding = (f"stage winners {path}; {restarts} restarts over {len(runs)} runs "
               f"({sum((r.restarts or 0) > 0 for r in runs)} runs needed one); "
               f"final network val accuracy {pct(acc)}.")
    build_report(out)
    figures = sorted((out / "figures").glob("stages*.png"))
    if best_run is not None:
        figures += [p for p in [out / "runs" / best_run.run_id / "figures" / "boundary.png"] if p.is_file()]
    return SectionResult("staged", "6. The pipeline (staged sweep)", finding, reproduces=None,
                         numbers={"stages": stages, "restarts": restarts, "runs": len(runs),
                                  "best": best.get("params"), "best_val_acc": acc},
                         rows=[{"stage": s["stage"], "winner": s["winner"], "score": s["score"]}
                               for s in stages],
                         figures=figures, store=out)


STUDIES: tuple[Callable[[Trainer, DemoScale], SectionResult], ...] = (
    xor_seeds, initialisation, optimizers, depth, training_length, staged_pipeline)


def planned_runs(scale: DemoScale) -> int:
    """Runs the study trains (for the progress bar)."""
    from mlplab.sweep import load_sweep
    from mlplab.sweep.plan import planned_total

    staged = planned_total(*reversed(load_sweep(staged_sweep(scale))))
    return (scale.xor_seeds + 2 * len(INITS) * scale.init_seeds
            + len(OPTIMIZERS) * (len(OPTIM_LRS) * scale.optim_lr_seeds + scale.optim_seeds)
            + 2 * scale.depth_seeds + scale.length_seeds + staged)

