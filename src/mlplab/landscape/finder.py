"""The vectorised learning-rate finder (``mlplab lr-find CONFIG --seeds N``).

A log grid of fixed learning rates × N seeds is trained as **one cohort** (the cohort
engine, :func:`mlplab.engine.cohort.train_cohort`: configurations that differ only in lr
and seed), each a short run without early stopping or restarts. The final training loss
of each lr is summarised over seeds (median and its 95 % bootstrap interval; a diverged
run counts as the worst loss). The suggested lr is the one with the lowest median, and its
interval is the percentile bootstrap of that choice over seeds (seeds resampled together
across lrs, since seed i starts from the same weights at every lr). Beside it,
Smith's single-run exponential range test ("Cyclical learning rates", 2017) on the same
configuration: one run whose lr grows exponentially each step, smoothed loss per step,
suggestion the lr of the lowest smoothed loss / 10.

:func:`sweep_block` turns the suggestion into the first stage of a staged sweep.

>>> from mlplab.config import from_dict
>>> cfg = from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3}})
>>> doc = lr_find(cfg, seeds=2, points=3, epochs=2, range_steps=10)
>>> s = doc["suggestion"]
>>> len(doc["grid"]["lrs"]), s["low"] <= s["lr"] <= s["high"]
(3, True)
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.config import ConfigError, RunConfig

LR_MIN, LR_MAX = 1e-4, 10.0  # the default grid: 5 decades (the range test diverges by 10)
POINTS = 16                  # lrs on the grid (3 a decade over the default range)
EPOCHS = 50                  # the short run (at most the configuration's own epochs)
RANGE_STEPS = 200            # steps of the range test
SMOOTHING = 0.98             # the range test's exponential moving average of the loss
DIVERGED = 4.0               # the range test stops once the smoothed loss is this x its lowest
SUGGEST_DIVISOR = 10.0       # the range test suggests the lr of its lowest loss / this


def _check(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _whole(v: Any, least: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and v >= least


def finder_configs(cfg: RunConfig, lrs: np.ndarray, seeds: int, epochs: int) -> list[RunConfig]:
    """``cfg`` at each lr × seed, lr-major: short runs that end only at ``epochs`` (no early
    stopping, no restarts, no boundary snapshots), the final weights kept."""
    stop = replace(cfg.stopping, patience=10 ** 9, restarts=0, target=None, restore_best=False)
    probe = replace(cfg.probe, boundary_snapshots=0)
    return [replace(cfg, name=f"{cfg.name}-lr{i}-seed{s}", stopping=stop, probe=probe,
                    train=replace(cfg.train, lr=float(lr), seed=cfg.train.seed + s, epochs=epochs))
            for i, lr in enumerate(lrs) for s in range(seeds)]


def _final_losses(records: list, lrs: np.ndarray, seeds: int) -> np.ndarray:
    """``[L, S]`` final training loss of each run; NaN where it diverged."""
    out = np.full((len(lrs), seeds), np.nan)
    for i, rec in enumerate(records):
        a = rec.attempts[rec.best_attempt]
        if a.end_reason != "diverged":
            out[i // seeds, i % seeds] = a.train_loss
    return out


def suggest(lrs: np.ndarray, losses: np.ndarray) -> dict[str, Any]:
    """The lr with the lowest median final loss over seeds (``losses [L, S]``, NaN:
    diverged, counted as the worst) and the 95 % percentile-bootstrap interval of that
    choice over seeds, as lrs of the grid.

    >>> lrs = np.array([0.01, 0.1, 1.0])
    >>> s = suggest(lrs, np.array([[.5, .6, .5, .6], [.1, .2, .1, .2], [np.nan, .9, .9, 1]]))
    >>> s["lr"], s["low"], s["high"]
    (0.1, 0.1, 0.1)
    """
    from mlplab.stats.summary import bootstrap_ci

    worst = np.where(np.isfinite(losses), losses, np.inf)                    # [L, S]
    log_lrs = np.log10(lrs)

    def best_log_lr(*per_lr: np.ndarray, axis: int = -1) -> np.ndarray:
        medians = np.stack([np.median(v, axis=axis) for v in per_lr])        # [L, ...]
        return log_lrs[np.argmin(medians, axis=0)]

    point = float(best_log_lr(*worst))
    if losses.shape[1] < 2:
        low = high = point
        method = "one seed: no interval"
    else:
        low, high, method = bootstrap_ci(tuple(worst), best_log_lr, paired=True,
                                         methods=("percentile",))
    index = int(np.argmin(np.abs(log_lrs - point)))
    return {"lr": float(10 ** point), "low": float(10 ** min(low, point)),
            "high": float(10 ** max(high, point)), "index": index,
            "at_edge": index in (0, len(lrs) - 1),
            "method": f"lowest median final loss; {method} over seeds"}


def range_test(cfg: RunConfig, lr_min: float, lr_max: float, steps: int,
               device: str = "cpu") -> dict[str, Any]:
    """Smith's exponential range test: one run of ``cfg`` (attempt 0's initial weights and
    batch order) whose lr goes from ``lr_min`` to ``lr_max`` geometrically over ``steps``
    steps; the loss of each step, its bias-corrected moving average, and the suggestion.
    Stops early once the smoothed loss exceeds :data:`DIVERGED` x its lowest."""
    import torch

    from mlplab.data import load_data
    from mlplab.engine.reference import (batch_order_generator, batch_size_of, make_optimizer,
                                         to_tensors)
    from mlplab.model.loss import batch_loss
    from mlplab.model.mlp import build_mlp, derive_seed, resolve_head

    data = load_data(cfg.data)
    head = resolve_head(cfg.model, cfg.train.loss, data.n_classes)
    t = to_tensors(data, 1, device)
    seed = derive_seed(cfg.train.seed, 0)
    net = build_mlp(cfg.model, head, data.input_dim, seed).to(t.x_train.device)
    opt = make_optimizer(net, cfg)
    order, n = batch_order_generator(seed), len(t.y_train)
    bs = batch_size_of(cfg, n)
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / max(1, steps - 1))
    raw, smooth, avg, lowest = [], [], 0.0, math.inf
    batches: list = []
    for step, lr in enumerate(lrs):
        if not batches:
            batches = list(torch.randperm(n, generator=order).split(bs))
        idx = batches.pop(0).to(t.x_train.device)
        for group in opt.param_groups:
            group["lr"] = float(lr)
        loss = batch_loss(net(t.x_train[idx]), t.y_train[idx], head)
        value = float(loss.detach())
        raw.append(value)
        if not math.isfinite(value):
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smooth.append(avg / (1 - SMOOTHING ** (step + 1)))
        lowest = min(lowest, smooth[-1])
        if step > 0 and smooth[-1] > DIVERGED * lowest:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    done = len(smooth)
    best = int(np.argmin(smooth)) if done else None
    return {"lrs": lrs[:done], "loss": raw[:done], "smoothed_loss": smooth,
            "suggested": float(lrs[best] / SUGGEST_DIVISOR) if best is not None else None,
            "stopped_at_step": len(raw), "steps": steps}


def lr_find(cfg: RunConfig, seeds: int = 8, *, lr_min: float = LR_MIN, lr_max: float = LR_MAX,
            points: int = POINTS, epochs: int | None = None, range_steps: int = RANGE_STEPS,
            device: str = "cpu") -> dict[str, Any]:
    """Train ``points`` log-spaced lrs from ``lr_min`` to ``lr_max`` × ``seeds`` seeds of
    ``cfg`` for ``epochs`` epochs (default: the configuration's, at most :data:`EPOCHS`) as
    one cohort, run the range test beside it, and return the result document (strict-JSON
    ready): the grid with each lr's final losses and summary, the suggestion with its
    interval, the lrs tied with the best and the range test."""
    from mlplab.engine.cohort import train_cohort
    from mlplab.run import check_data_and_head
    from mlplab.stats import summarize, ties_with_best

    _check("--seeds", seeds, _whole(seeds, 1), "a whole number >= 1")
    _check("--points", points, _whole(points, 2), "a whole number >= 2")
    _check("--range-steps", range_steps, _whole(range_steps, 2), "a whole number >= 2")
    _check("--lr-min", lr_min, isinstance(lr_min, (int, float)) and 0 < lr_min < math.inf,
           "a positive number")
    _check("--lr-max", lr_max, isinstance(lr_max, (int, float)) and lr_min < lr_max < math.inf,
           f"a number above --lr-min ({lr_min})")
    epochs = min(cfg.train.epochs, EPOCHS) if epochs is None else epochs
    _check("--epochs", epochs, _whole(epochs, 1), "a whole number >= 1")
    check_data_and_head(cfg)
    lrs = np.geomspace(lr_min, lr_max, points)
    records = train_cohort(finder_configs(cfg, lrs, seeds, epochs), device=device)
    losses = _final_losses(records, lrs, seeds)                                # [L, S]
    best = suggest(lrs, losses)
    seed_ids = list(range(seeds))
    ties = ties_with_best([(seed_ids, row) for row in losses], higher_is_better=False,
                          best=best["index"])
    tied = lrs[ties.tied]
    return {"title": f"lr-find: {cfg.name}, {points} lrs x {seeds} seeds, {epochs} epochs",
            "config": cfg.name, "epochs": epochs, "seeds": seeds, "loss": "final training loss",
            "grid": {"lrs": lrs, "final_loss": losses,
                     "summary": [summarize(row, statistic="median").to_dict() for row in losses]},
            "suggestion": best,
            "tied_with_best": {"lrs": tied, "rule": "mlplab.stats.ties_with_best"},
            "range_test": range_test(cfg, lr_min, lr_max, range_steps, device)}


def sweep_block(doc: dict[str, Any], seeds: int | None = None) -> dict[str, Any]:
    """A staged sweep whose first stage is the lr: the grid's lrs within the suggestion's
    interval and one more on each side (three at least), the default stages after it.

    >>> doc = {"grid": {"lrs": [0.001, 0.01, 0.1, 1.0]}, "seeds": 4,
    ...        "suggestion": {"lr": 0.01, "low": 0.01, "high": 0.01, "index": 1}}
    >>> sweep_block(doc)["stages"][0]
    {'train.lr': [0.001, 0.01, 0.1]}
    """
    from mlplab.sweep.spec import DEFAULT_STAGES

    lrs, s = list(doc["grid"]["lrs"]), doc["suggestion"]
    inside = [i for i, lr in enumerate(lrs)
              if s["low"] * (1 - 1e-9) <= lr <= s["high"] * (1 + 1e-9)] or [s["index"]]
    lo, hi = max(0, min(inside) - 1), min(len(lrs), max(inside) + 2)
    later = [{k: [list(v) if isinstance(v, tuple) else v for v in vals] for k, vals in stage}
             for stage in DEFAULT_STAGES[1:]]
    return {"strategy": "staged", "seeds": int(seeds or doc["seeds"]),
            "select": {"metric": "val_loss", "statistic": "median"},
            "stages": [{"train.lr": [float(f"{lr:.3g}") for lr in lrs[lo:hi]]}] + later}


def summary(doc: dict[str, Any]) -> str:
    """The finder's result in a few lines for people."""
    s, r = doc["suggestion"], doc["range_test"]
    rows = [doc["title"], "      lr    median final loss [95% CI]   diverged"]
    for lr, row in zip(doc["grid"]["lrs"], doc["grid"]["summary"]):
        med = "n/a" if row["median"] is None else \
            f"{row['median']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
        mark = "  <- suggested" if math.isclose(lr, s["lr"]) else ""
        rows.append(f"  {lr:9.3g}   {med:<28} {row['n_nonfinite']}{mark}")
    rows.append(f"suggested lr: {s['lr']:.3g}, 95% interval over seeds [{s['low']:.3g}, "
                f"{s['high']:.3g}] ({s['method']})")
    if s["at_edge"]:
        rows.append("the suggestion is at the end of the grid: widen it (--lr-min, --lr-max)")
    rows.append("range test (one run, exponential lr): "
                + (f"{r['suggested']:.3g} (lowest smoothed loss / {SUGGEST_DIVISOR:g})"
                   if r["suggested"] is not None else "no finite loss"))
    return "\n".join(rows)


def write_result(doc: dict[str, Any], out: str | Path) -> list[Path]:
    """``lr_find.json`` (strict JSON) and ``lr_find.png`` in the folder ``out``."""
    from mlplab import strictjson
    from mlplab.figures.data_landscape import lr_find_info
    from mlplab.figures.draw_landscape import draw_lr_find
    from mlplab.figures.draw_run import save_figure

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    doc = strictjson.jsonable(doc)
    (folder / "lr_find.json").write_text(strictjson.dumps(doc, indent=1))
    return [folder / "lr_find.json",
            save_figure(draw_lr_find(lr_find_info(doc)), folder / "lr_find.png")]


def write_sweep(doc: dict[str, Any], config_file: str | Path, path: str | Path,
                seeds: int | None = None) -> Path:
    """The configuration file with its ``sweep:`` block replaced by :func:`sweep_block`'s
    staged sweep, as YAML at ``path`` (``mlplab sweep PATH`` runs it)."""
    import yaml

    from mlplab import strictjson
    from mlplab.config_file import read_mapping

    raw = {k: v for k, v in read_mapping(config_file).items() if k != "sweep"}
    raw["sweep"] = strictjson.jsonable(sweep_block(doc, seeds))
    text = (f"# {doc['title']}\n# suggested lr {doc['suggestion']['lr']:.3g} "
            f"[{doc['suggestion']['low']:.3g}, {doc['suggestion']['high']:.3g}]: the first "
            "stage sweeps the lrs around it\n" + yaml.safe_dump(raw, sort_keys=False))
    Path(path).write_text(text)
    return Path(path)
