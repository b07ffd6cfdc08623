"""The studies of the seed study that re-ask the post's questions on XOR, initialisation,
optimizers and training length (depth and the staged sweep have their own modules); each
trains, measures, states the post's claim as :class:`~mlplab.demo.claims.Claim` s and words
its finding from the numbers. ``run_demo`` judges the claims of all sections together.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from mlplab.config import RunConfig, with_overrides
from mlplab.record import RunRecord
from mlplab.stats import compare, success_rate
from . import figures as figs
from .claims import Claim, RateClaim
from .depth import DEPTHS, WIDTHS, depth
from .staged import staged_pipeline, staged_runs
from .trainer import (DemoScale, SectionResult, Trainer, censored, circles_config, epoch_values,
                      epochs_sesoi, epochs_to, fmt_q, mixture_config, pct, quartiles, seeds_of,
                      xor_config)

INITS = ("xavier_uniform", "he_normal", "normal(1.0)", "zeros")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
OPTIM_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
LENGTH_CHECKPOINTS = (10, 25, 50, 100, 200, 400)
XOR_SESOI = 0.02          # a failure rate under 2 % would be "practically never"
ZEROS_SESOI = 0.05        # zero weights "never learn": under 5 % of runs
ACC_SESOI = 0.01          # one point of accuracy


def _solved(rec: RunRecord) -> bool:
    """XOR solved: all four points right at the kept weights (val = train here)."""
    return rec.best.val_acc >= 1.0


def _typical(recs: list[RunRecord]) -> RunRecord | None:
    """The run with the median final training loss of a group."""
    if not recs:
        return None
    order = sorted(recs, key=lambda r: (np.nan_to_num(r.best.train_loss, nan=np.inf), r.run_id))
    return order[len(order) // 2]


def _wilson(k: int, n: int) -> tuple[float | None, float | None]:
    r = success_rate(k, n)
    return r.ci_low, r.ci_high


def _interval(rate: float | None, low: float | None, high: float | None) -> str:
    return f"{pct(rate or 0.0)}, 95% CI {100 * (low or 0):.1f} to {100 * (high or 0):.1f}%"


def xor_seeds(trainer: Trainer, scale: DemoScale) -> SectionResult:
    from mlplab.diagnose.findings import diagnose

    recs = trainer.cohort("xor_seeds", seeds_of(xor_config(scale), scale.xor_seeds))
    ok = [_solved(r) for r in recs]
    fails = [r for r, good in zip(recs, ok) if not good]
    kinds: Counter[str] = Counter()
    for r in fails:
        kinds.update({f.kind for f in diagnose(r.metrics.to_frame(), r.info)})
    success, failure = _typical([r for r, g in zip(recs, ok) if g]), _typical(fails)
    rate = success_rate(len(fails), len(recs))
    top = ", ".join(f"{k} in {n}/{len(fails)}" for k, n in kinds.most_common(3)) or "nothing"
    wilson = _interval(rate.rate, rate.ci_low, rate.ci_high)
    finding = (f"{len(fails)} of {len(recs)} initialisations ({wilson}, Wilson) never reached 100% "
               f"training accuracy on XOR in {scale.xor_epochs} epochs; diagnose on the failures "
               f"finds {top}. The claim reproduces when the interval lies above "
               f"{pct(XOR_SESOI)} and is contradicted when it lies below.")
    claim = RateClaim("xor_seeds", "the post's 2-4-1 net sometimes never learns XOR",
                      "initialisations that never learn", rate, XOR_SESOI, above=True)
    fig = figs.xor_gradients(trainer.out / "xor_seeds" / "figures", success, failure)
    return SectionResult(
        "xor_seeds", "1. XOR with the post's network", finding, [claim],
        numbers={"runs": len(recs), "failed": len(fails), "fail_share": rate.rate,
                 "fail_rate": rate.to_dict(), "findings_in_failures": dict(kinds),
                 "typical_success": success.run_id if success else None,
                 "typical_failure": failure.run_id if failure else None},
        rows=[{"outcome": "learned XOR", "runs": len(recs) - len(fails)},
              {"outcome": "failed", "runs": len(fails)}],
        figures=[p for p in [fig] if p], store=trainer.out / "xor_seeds")


def initialisation(trainer: Trainer, scale: DemoScale) -> SectionResult:
    problems = {"xor": (xor_config(scale), "val_acc", 1.0, scale.xor_epochs),
                "circles": (circles_config(scale), "val_acc", 0.95, scale.circle_epochs)}
    rows, claims, zero_hits = [], [], 0
    for ds, (base, metric, target, budget) in problems.items():
        configs = [with_overrides(c, {"model.init": init, "name": f"init-{ds}"})
                   for init in INITS for c in seeds_of(base, scale.init_seeds)]
        recs = trainer.cohort("init", configs)
        speed = {}
        for i, init in enumerate(INITS):
            group = recs[i * scale.init_seeds:(i + 1) * scale.init_seeds]
            speed[init] = [epochs_to(r, metric, target) for r in group]
            reached = int(np.isfinite(speed[init]).sum())
            rows.append({"dataset": ds, "init": init, "target": f"{metric} >= {target:g}",
                         "success_rate": reached / len(group),
                         "success_ci": _wilson(reached, len(group)),
                         "epochs_q": quartiles(speed[init]), "runs": len(group)})
        zero_hits += int(np.isfinite(speed["zeros"]).sum())
        # seed i of every init shares the split and the batches: compare seed by seed
        xavier = censored(speed["xavier_uniform"], budget)
        normal = censored(speed["normal(1.0)"], budget)
        claims.append(Claim("init", f"Xavier initialisation learns {ds} faster than normal(1.0)",
                            f"epochs to {metric} >= {target:g} on {ds} (never = {budget + 1})",
                            ("xavier_uniform", "normal(1.0)"),
                            compare(xavier, normal, paired=True, higher_is_better=False),
                            epochs_sesoi(normal)))
    zero_runs = len(problems) * scale.init_seeds
    zeros = success_rate(zero_hits, zero_runs)
    claims.append(RateClaim("init", "all-zero weights never learn", "zero-initialised runs that "
                            "reach the target", zeros, ZEROS_SESOI, above=False))
    parts = [f"{ds}: Xavier {c.comparison.mean_a:.4g} vs normal(1.0) {c.comparison.mean_b:.4g} "
             "mean epochs to target" for ds, c in zip(problems, claims)]
    finding = ("; ".join(parts) + f" (a run that never reaches it counts as the budget + 1); "
               f"zero init reaches the target in {zero_hits} of {zero_runs} runs "
               f"({_interval(zeros.rate, zeros.ci_low, zeros.ci_high)}).")
    fig = figs.init_comparison(trainer.out / "init" / "figures", rows)
    return SectionResult("init", "2. Initialisation", finding, claims,
                         numbers={"rows": rows, "zeros": zeros.to_dict()}, rows=rows, figures=[fig],
                         store=trainer.out / "init")


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
    # fresh seeds (from 100) for the comparison, so the lr was not chosen on the same runs
    final = [with_overrides(c, {"train.optimizer": opt, "train.lr": best_lr[opt], "name": f"best-{opt}"})
             for opt in OPTIMIZERS for c in seeds_of(base, scale.optim_seeds, offset=100)]
    recs = trainer.cohort("optimizers", final)
    by_opt = {opt: recs[i * scale.optim_seeds:(i + 1) * scale.optim_seeds]
              for i, opt in enumerate(OPTIMIZERS)}
    reach = max(float(np.median([r.best.val_acc for r in group])) for group in by_opt.values())
    target = round(0.97 * reach, 3)
    rows, speed = [], {}
    for opt, group in by_opt.items():
        speed[opt] = censored([epochs_to(r, "val_acc", target) for r in group], scale.optim_epochs)
        rows.append({"optimizer": opt, "best_lr": best_lr[opt], "epochs_q": quartiles(speed[opt]),
                     "epochs_mean": float(speed[opt].mean()),
                     "reached": float(np.mean(speed[opt] <= scale.optim_epochs)),
                     "val_acc_median": float(np.median([r.best.val_acc for r in group]))})
    claim = Claim("optimizers", "Adam converges faster than SGD with momentum",
                  f"full-batch epochs to {pct(target)} val accuracy (never = {scale.optim_epochs + 1})",
                  ("Adam", "momentum"),
                  compare(speed["adam"], speed["momentum"], paired=True, higher_is_better=False),
                  epochs_sesoi(speed["momentum"]))
    fastest = min(rows, key=lambda r: r["epochs_mean"])
    finding = (f"full-batch epochs to {pct(target)} val accuracy (mean; median [q1, q3]) at each "
               f"optimizer's best lr, {scale.optim_seeds} fresh seeds: "
               + ", ".join(f"{r['optimizer']} (lr {r['best_lr']:g}) {r['epochs_mean']:.3g}; "
                           f"{fmt_q(r['epochs_q'])}" for r in rows)
               + f"; fastest on average: {fastest['optimizer']}.")
    fig = figs.optimizer_comparison(trainer.out / "optimizers" / "figures", OPTIM_LRS, curves,
                                    by_opt, target)
    return SectionResult("optimizers", "3. Optimizers", finding, [claim],
                         numbers={"target_val_acc": target, "best_lr": best_lr, "rows": rows,
                                  "lr_curves": curves},
                         rows=rows, figures=[fig], store=trainer.out / "optimizers")


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
    # the claim: training four times longer helps, the same runs compared seed by seed
    end, quarter = curves.shape[1], max(1, curves.shape[1] // 4)
    claim = Claim("length", f"on circles within circles, {end} epochs beat {quarter}",
                  f"val accuracy at the epoch ({_val_points(base)} points)",
                  (f"{end} epochs", f"{quarter} epochs"),
                  compare(curves[:, end - 1], curves[:, quarter - 1], paired=True), ACC_SESOI)
    fig = figs.accuracy_vs_epochs(trainer.out / "length" / "figures", curves)
    rows = [{"epochs": e, "val_acc_median": v} for e, v in med.items()]
    return SectionResult("length", "5. Training length", finding, [claim],
                         numbers={"median_val_acc": med}, rows=rows, figures=[fig],
                         store=trainer.out / "length")


def _val_points(cfg: RunConfig) -> int:
    from mlplab.data import split_indices

    return len(split_indices(cfg.data.n, cfg.data.split, cfg.data.seed)[1])


STUDIES: tuple[Callable[[Trainer, DemoScale], SectionResult], ...] = (
    xor_seeds, initialisation, optimizers, depth, training_length, staged_pipeline)


def planned_runs(scale: DemoScale) -> int:
    """Runs the study trains (for the progress bar)."""
    return (scale.xor_seeds + 2 * len(INITS) * scale.init_seeds
            + len(OPTIMIZERS) * (len(OPTIM_LRS) * scale.optim_lr_seeds + scale.optim_seeds)
            + len(WIDTHS) * len(DEPTHS) * scale.depth_seeds + scale.length_seeds
            + staged_runs(scale))
