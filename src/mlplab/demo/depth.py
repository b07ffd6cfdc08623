"""The depth study: does a second hidden layer matter on the 5-class Gaussian mixture?

The post claimed that one hidden layer is not enough there and two are ("under 80 % with one
layer, over 90 % with two"). Asked on a mixture that overlaps so much that no classifier can
do much better than 69 %, and scored on 100 test points (one point = 1 %), the question has
no answer either way. So the study asks it where the claim *could* hold: a mixture whose
Bayes limit is above 90 % (spread 0.55), a width x depth grid that shows where a second layer
matters, and a test set (60 % of the points) large enough that its noise floor is under one
point. The verdict is on the post's width; the Bayes limit says how much room was left.
"""

from __future__ import annotations

import numpy as np

from mlplab.config import RunConfig, with_overrides
from mlplab.stats import (accuracy_noise, against_limit, bayes_classify, bayes_limit, compare,
                          summarize)
from . import figures as figs
from .claims import Claim
from .trainer import DemoScale, SectionResult, Trainer, mixture_config, seeds_of

WIDTHS = (2, 4, 8)
DEPTHS = (1, 2)
POST_WIDTH = 8            # the width the study has always asked the post's question at
SPREAD = 0.55             # Bayes limit 93 %: room for the post's "over 90 % with two layers"
SPLIT = (0.3, 0.1, 0.6)   # most points go to the test set: its noise floor, not training, is short
SESOI = 0.01              # one point of accuracy


def depth_config(scale: DemoScale, width: int, layers: int) -> RunConfig:
    """One arm of the grid: ``layers`` hidden layers of ``width`` ReLU units."""
    base = mixture_config(scale.depth_epochs, spread=SPREAD, hidden=(width,) * layers)
    return with_overrides(base, {"data.n": scale.depth_points, "data.split": list(SPLIT),
                                 "name": f"depth{layers}-w{width}"})


def _label(width: int, layers: int) -> str:
    return f"{layers} x [{width}]"


def depth(trainer: Trainer, scale: DemoScale) -> SectionResult:
    acc: dict[tuple[int, int], np.ndarray] = {}            # (width, layers) -> [S] test accuracy
    for width in WIDTHS:
        for layers in DEPTHS:
            recs = trainer.cohort("depth", seeds_of(depth_config(scale, width, layers),
                                                    scale.depth_seeds))
            acc[(width, layers)] = np.array([r.best.test_acc for r in recs])

    from mlplab.data import load_data

    data_cfg = depth_config(scale, POST_WIDTH, 1).data
    data = load_data(data_cfg)                             # the split every run was scored on
    m = len(data.y_test)
    limit = bayes_limit(data_cfg)
    # the Bayes classifier on these very points: what the best possible model would score here
    on_test = float(np.mean(bayes_classify(data_cfg, data.x_test.astype(np.float64)) == data.y_test))
    best = max(acc, key=lambda k: float(acc[k].mean()))
    best_acc = float(acc[best].mean())
    check = against_limit(best_acc, m, limit)
    noise = accuracy_noise(best_acc, m)

    # seed i of every arm shares the split and the batches: a second layer, seed by seed
    second = {w: compare(acc[(w, 2)], acc[(w, 1)], paired=True) for w in WIDTHS}
    rows = []
    for (width, layers), v in acc.items():
        s = summarize(v)
        row = {"width": width, "layers": layers, "test_acc_mean": s.mean,
               "ci": (s.ci_low, s.ci_high), "runs": s.n}
        if layers == 2:
            c = second[width]
            row["second_layer_gain"] = c.diff
            row["gain_ci"] = (c.diff_low, c.diff_high)
        rows.append(row)
    post = second[POST_WIDTH]
    grid = "; ".join(f"width {w}: one layer {100 * second[w].mean_b:.1f}%, two "
                     f"{100 * second[w].mean_a:.1f}% (second layer {100 * second[w].diff:+.1f} "
                     f"points, 95% CI {100 * second[w].diff_low:+.1f} to "
                     f"{100 * second[w].diff_high:+.1f})" for w in WIDTHS)
    if check.within:
        against = (f"the best arm ({_label(*best)}, {100 * best_acc:.1f}%) is within noise of "
                   f"the Bayes limit (binomial p = {check.p_value:.2g}): more capacity will not "
                   "help here")
    else:
        against = (f"the best arm ({_label(*best)}, {100 * best_acc:.1f}%) is "
                   f"{100 * abs(check.gap):.1f} points {'below' if check.gap > 0 else 'above'} "
                   f"the Bayes limit (binomial p = {check.p_value:.2g})")
    finding = (f"test accuracy (mean over {scale.depth_seeds} seeds) on the 5-class mixture, spread "
               f"{SPREAD}, Bayes limit {100 * limit.accuracy:.1f}% (the Bayes classifier scores "
               f"{100 * on_test:.1f}% on these {m} test points; noise floor ±"
               f"{100 * noise.halfwidth:.1f} points): {grid}; {against}. The post said under "
               f"80% with one layer and over 90% with two: at width {POST_WIDTH} one layer reaches "
               f"{100 * post.mean_b:.1f}% and two {100 * post.mean_a:.1f}%.")
    claim = Claim("depth", f"one hidden layer is not enough for the 5-class mixture, two are "
                  f"(width {POST_WIDTH})", f"test accuracy ({m} points)",
                  (_label(POST_WIDTH, 2), _label(POST_WIDTH, 1)), post, SESOI)
    fig = figs.depth_grid(trainer.out / "depth" / "figures",
                          {_label(w, d): v for (w, d), v in acc.items()}, WIDTHS, DEPTHS,
                          limit.accuracy, noise.halfwidth, on_test)
    return SectionResult(
        "depth", "4. Depth", finding, [claim],
        numbers={"test_acc": {f"{d}x{w}": v.tolist() for (w, d), v in acc.items()},
                 "test_points": m, "bayes_limit": limit.to_dict(),
                 "bayes_classifier_on_test": on_test, "noise_floor": noise.to_dict(),
                 "best_against_limit": check.to_dict(),
                 "second_layer": {str(w): {"n": c.n, "diff": c.diff, "ci": (c.diff_low, c.diff_high),
                                           "test": c.test, "p": c.p_value}
                                  for w, c in second.items()}},
        rows=rows, figures=[fig], store=trainer.out / "depth")
