"""Figures of the seed study, drawn with the look of :mod:`mlplab.figures.draw_run` (same style,
same layer colours). Each function takes the numbers a study measured, draws one PNG
into ``folder`` and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mlplab.figures.draw_run import CLASS_COLORS, layer_colors, new_figure, save_figure, styled
from mlplab.record import RunRecord


def _layer_curve(rec: RunRecord, metric: str, layer: str) -> tuple[np.ndarray, np.ndarray]:
    f = rec.metrics.to_frame()
    sel = (f["metric"] == metric) & (f["layer"] == layer) & (f["attempt"] == rec.best_attempt)
    rows = f.loc[sel].sort_values("step")
    return rows["step"].to_numpy(), rows["value"].to_numpy()


@styled
def _draw_xor_gradients(success: RunRecord | None, failure: RunRecord | None) -> Any:
    fig, axes = new_figure(11, 4.2, 1, 2, sharey=True)
    for ax, rec, label in ((axes[0][0], success, "typical success"),
                           (axes[0][1], failure, "typical failure")):
        if rec is None:
            ax.text(0.5, 0.5, f"no {label.split()[-1]} among the seeds", ha="center",
                    transform=ax.transAxes)
            continue
        layers = rec.info["layers"]
        colors = layer_colors(layers)
        for layer in layers:
            x, y = _layer_curve(rec, "grad_norm_w", layer)
            y = np.where(y > 0, y, np.nan)
            ax.plot(x, y, color=colors[layer], label=f"{layer} weights", lw=1.4)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{label}: {rec.run_id}\nfinal train loss {rec.best.train_loss:.3g}, "
                     f"accuracy {100 * rec.best.val_acc:.0f}%")
        ax.legend(loc="lower left")
    axes[0][0].set_ylabel("gradient L2 norm (log)")
    fig.suptitle("XOR 2-4-1: gradient norm per layer, a typical success and a typical failure")
    return fig


def xor_gradients(folder: Path, success: RunRecord | None, failure: RunRecord | None) -> Path:
    return save_figure(_draw_xor_gradients(success, failure), folder / "xor_gradients.png")


@styled
def _draw_init(rows: Sequence[Mapping[str, Any]]) -> Any:
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    fig, axes = new_figure(11, 4.4, 1, 2)
    width = 0.8 / len(datasets)
    for j, ds in enumerate(datasets):
        sub = [next(r for r in rows if r["dataset"] == ds and r["init"] == i) for i in inits]
        xs = np.arange(len(inits)) + (j - (len(datasets) - 1) / 2) * width
        bars = axes[0][0].bar(xs, [100 * r["success_rate"] for r in sub], width, label=ds,
                              color=CLASS_COLORS[j])
        axes[0][0].bar_label(bars, fmt="%.0f%%", fontsize=8, padding=2)
        med = np.array([r["epochs_q"][1] for r in sub])
        lo = med - np.array([r["epochs_q"][0] for r in sub])
        hi = np.array([r["epochs_q"][2] for r in sub]) - med
        axes[0][1].errorbar(xs, med, yerr=[lo, hi], fmt="o", capsize=4, label=ds,
                            color=CLASS_COLORS[j])
    for ax in axes[0]:
        ax.set_xticks(range(len(inits)), inits)
        ax.set_xlabel("initialisation")
        ax.legend()
    axes[0][0].set_ylabel("runs reaching the target (%)")
    axes[0][0].set_ylim(0, 112)
    axes[0][0].set_title("success rate over seeds")
    axes[0][1].set_ylabel("epochs to target (median, quartiles)")
    axes[0][1].set_title("speed of the runs that succeed")
    fig.suptitle("Initialisation: success and speed on XOR and two circles")
    return fig


def init_comparison(folder: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    return save_figure(_draw_init(rows), folder / "init_comparison.png")


@styled
def _draw_optimizers(lrs: Sequence[float], curves: Mapping[str, Sequence[float]],
                     by_opt: Mapping[str, Sequence[RunRecord]], target: float) -> Any:
    from .trainer import epoch_values

    fig, axes = new_figure(11, 4.4, 1, 2)
    for j, (opt, med) in enumerate(curves.items()):
        axes[0][0].plot(lrs, med, "o-", color=CLASS_COLORS[j], label=opt)
        mat = np.stack([epoch_values(r, "val_acc") for r in by_opt[opt]])    # [S, E]
        x = np.arange(1, mat.shape[1] + 1)
        q1, q2, q3 = np.percentile(mat, [25, 50, 75], axis=0)
        axes[0][1].plot(x, q2, color=CLASS_COLORS[j], label=opt)
        axes[0][1].fill_between(x, q1, q3, color=CLASS_COLORS[j], alpha=0.18, lw=0)
    axes[0][0].set_xscale("log")
    axes[0][0].set_yscale("log")
    axes[0][0].set_xlabel("learning rate (log)")
    axes[0][0].set_ylabel("best val loss, median over seeds (log)")
    axes[0][0].set_title("learning-rate sweep per optimizer")
    axes[0][1].axhline(target, color="#6b6b6b", ls="--", lw=1, label=f"target {target:.0%}")
    axes[0][1].set_xscale("log")
    axes[0][1].set_xlabel("epoch (log)")
    axes[0][1].set_ylabel("val accuracy (median, quartile band)")
    axes[0][1].set_title("each optimizer at its best learning rate")
    for ax in axes[0]:
        ax.legend()
    fig.suptitle("Optimizers on the 5-class Gaussian mixture")
    return fig


def optimizer_comparison(folder: Path, lrs: Sequence[float], curves: Mapping[str, Sequence[float]],
                         by_opt: Mapping[str, Sequence[RunRecord]], target: float) -> Path:
    return save_figure(_draw_optimizers(lrs, curves, by_opt, target), folder / "optimizers.png")


@styled
def _draw_depth(acc: Mapping[str, Sequence[float]], widths: Sequence[int], depths: Sequence[int],
                limit: float, noise: float, on_test: float) -> Any:
    fig, axes = new_figure(8.5, 4.8)
    ax = axes[0][0]
    values = {k: 100 * np.asarray(v, dtype=float) for k, v in acc.items()}
    every = np.concatenate(list(values.values()))
    # a collapsed run (dead ReLUs at width 2) would squash the interesting band: draw such
    # runs on the floor of the plot as down-pointing markers instead
    floor = max(float(every.min()) - 1.0, 100 * limit - 6.0)
    rng = np.random.default_rng(0)
    ax.axhspan(100 * (limit - noise), 100 * (limit + noise), color="#9e9e9e", alpha=0.22, lw=0,
               label=f"test-set noise (±{100 * noise:.1f} points)")
    ax.axhline(100 * limit, color="#3b3b3b", ls="--", lw=1.2,
               label=f"Bayes limit {100 * limit:.1f}%")
    ax.axhline(100 * on_test, color="#3b3b3b", ls=":", lw=1.0,
               label=f"Bayes classifier on this test set {100 * on_test:.1f}%")
    for j, layers in enumerate(depths):
        offset = (j - (len(depths) - 1) / 2) * 0.25
        for i, width in enumerate(widths):
            v = values[f"{layers} x [{width}]"]
            x = i + offset + rng.uniform(-0.06, 0.06, len(v))
            low = v < floor
            ax.scatter(x[~low], v[~low], s=14, color=CLASS_COLORS[j], alpha=0.75, zorder=3,
                       label=f"{layers} hidden layer{'s' if layers > 1 else ''}" if i == 0 else None)
            ax.scatter(x[low], np.full(int(low.sum()), floor + 0.3), s=22, marker="v",
                       color=CLASS_COLORS[j], zorder=3)
            if low.any():
                ax.annotate(f"{int(low.sum())} of {len(v)} below\nmean {v.mean():.1f}%",
                            (i + offset, floor + 0.6), ha="center", va="bottom", fontsize=8,
                            color=CLASS_COLORS[j])
            if v.mean() >= floor:
                ax.plot([i + offset - 0.1, i + offset + 0.1], [v.mean()] * 2,
                        color=CLASS_COLORS[j], lw=2.5)
    ax.set_ylim(floor, max(float(every.max()), 100 * (limit + noise)) + 1.0)
    ax.set_xticks(range(len(widths)), [f"width {w}" for w in widths])
    ax.set_ylabel("test accuracy (%); bar: mean over seeds")
    ax.set_title("Depth x width on the 5-class mixture (runs below the plot: markers on its floor)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def depth_grid(folder: Path, acc: Mapping[str, Sequence[float]], widths: Sequence[int],
               depths: Sequence[int], limit: float, noise: float, on_test: float) -> Path:
    """Test accuracy per seed for each ``"{layers} x [{width}]"`` arm of ``acc``, against the
    Bayes limit with the test set's noise band around it."""
    return save_figure(_draw_depth(acc, widths, depths, limit, noise, on_test), folder / "depth.png")


@styled
def _draw_length(curves: np.ndarray) -> Any:
    fig, axes = new_figure(8, 4.4)
    ax = axes[0][0]
    x = np.arange(1, curves.shape[1] + 1)
    q1, q2, q3 = np.percentile(100 * curves, [25, 50, 75], axis=0)
    ax.plot(x, q2, color=CLASS_COLORS[1], label="median over seeds")
    ax.fill_between(x, q1, q3, color=CLASS_COLORS[1], alpha=0.2, lw=0, label="quartiles")
    ax.set_xscale("log")
    ax.set_xlabel("epochs trained (log)")
    ax.set_ylabel("val accuracy (%)")
    ax.set_title("Training length: circles within circles (3 rings)")
    ax.legend(loc="lower right")
    return fig


def accuracy_vs_epochs(folder: Path, curves: np.ndarray) -> Path:
    return save_figure(_draw_length(curves), folder / "accuracy_vs_epochs.png")
