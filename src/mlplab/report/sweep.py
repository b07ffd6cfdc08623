"""The report's hyper-parameter section of a store: parallel coordinates of the
configurations and the importance of each swept key and of the seed (SPEC §7).

:func:`hyperparameter_figures` gives the ``(name, draw, data)`` jobs of the two figures
(the notebook draws them one by one); :func:`hyperparameter_section` draws them as PNGs
and says, in words, how much of the variance the seed alone explains, or why there is no
importance chart (fewer than two swept keys, too few finite values, no Optuna).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .html import esc, figure_html

if TYPE_CHECKING:
    from mlplab.figures.data_importance import ImportanceInfo
    from mlplab.store.store import RunInfo

    from .figfiles import FigureFile

TITLE = "Hyper-parameters: parallel coordinates and importance"
FIGURE_TITLES = {"parallel": "Parallel coordinates of the configurations",
                 "importance": "Hyper-parameter importance (the seed included)"}


def hyperparameter_figures(runs: Sequence["RunInfo"], metric: str | None = None,
                           store_root: Path | None = None, write_cache: bool = True,
                           importance: "ImportanceInfo | None" = None
                           ) -> tuple[list[tuple[str, Callable[..., Any], Any]], "ImportanceInfo"]:
    """The figure jobs that apply to the finished ``runs`` (``parallel`` when a key varies,
    ``importance`` when two do) and the importance data (its ``reason`` when there is no
    chart). ``metric`` defaults to the store figures' rule (:func:`default_metric`).
    ``store_root``: the runs' store, whose cache keeps the importance (computed once per
    set of finished runs, see :mod:`mlplab.figures.data_importance`); ``write_cache``
    False reads it only (a notebook, which opens the store read-only). ``importance``:
    :func:`hyperparameter_importance` of these runs when the caller computed it already
    (the report, in a process of its own)."""
    from mlplab.figures import draw_sweep
    from mlplab.figures.data_parallel import parallel_info

    runs, metric = _finished(runs, metric)
    jobs: list[tuple[str, Callable[..., Any], Any]] = []
    parallel = parallel_info(runs, metric)
    if parallel is not None:
        jobs.append(("parallel", draw_sweep.draw_parallel, parallel))
    if importance is None:
        importance = hyperparameter_importance(runs, metric, store_root, write_cache)
    if importance.shares:
        jobs.append(("importance", draw_sweep.draw_importance, importance))
    return jobs, importance


def hyperparameter_importance(runs: Sequence["RunInfo"], metric: str | None = None,
                              store_root: Path | None = None, write_cache: bool = True
                              ) -> "ImportanceInfo":
    """The importance data of :func:`hyperparameter_figures` (same arguments)."""
    from mlplab.figures.data_importance import importance_info

    runs, metric = _finished(runs, metric)
    return importance_info(runs, metric, store_root, write=write_cache)


def _finished(runs: Sequence["RunInfo"], metric: str | None) -> tuple[list["RunInfo"], str]:
    """The finished runs with a config, and ``metric`` or the store figures' default."""
    from mlplab.figures.data_store import default_metric

    runs = [r for r in runs if r.status == "done" and r.config]
    return runs, default_metric(runs) if metric is None else metric


def importance_text(info: "ImportanceInfo") -> str:
    """The importance in words: the seed's share by each evaluator, or why there is none."""
    from mlplab.figures.data_importance import SEED_FACTOR

    if not info.shares:
        return f"<p>No importance chart: {esc(info.reason)}.</p>"
    words = (f"<p>Each key's share of the variance of <code>{esc(info.metric)}</code> over"
             f" {info.n_runs} finished runs, by Optuna's fANOVA and PED-ANOVA, with the seed as"
             " one more factor")
    if SEED_FACTOR in info.factors:
        seed = ", ".join(f"{100 * info.share(e, SEED_FACTOR):.0f}% by {e}" for e in info.evaluators)
        words += f". The seed alone (the initialisation) explains {seed}"
    if info.n_dropped:
        words += f"; {info.n_dropped} runs with no finite value are left out"
    return words + (". These are point estimates of one evaluation (fANOVA with a fixed seed), not"
                    " intervals; PED-ANOVA looks at what sets the best 10 % apart, fANOVA at the"
                    " whole spread.</p>")


def hyperparameter_section(runs: Sequence["RunInfo"], out: Path, metric: str | None = None,
                           store_root: Path | None = None, write_cache: bool = True
                           ) -> tuple[str, str]:
    """``(title, html)`` of the section, its PNGs written to ``out`` (``parallel.png``,
    ``importance.png``; drawn again only when their data changed); ``store_root`` and
    ``write_cache`` as :func:`hyperparameter_figures`."""
    from .figfiles import draw_all

    jobs, importance = hyperparameter_figures(runs, metric, store_root, write_cache)
    return hyperparameter_html(importance, draw_all(jobs, Path(out), prune=False))


def hyperparameter_html(importance: "ImportanceInfo", figures: Sequence["FigureFile"]) -> tuple[str, str]:
    """``(title, html)`` of the section from the importance data and its written figures."""
    html = importance_text(importance)
    for f in figures:
        html += figure_html(f.path, FIGURE_TITLES[f.name], f.caption)
    return TITLE, html


__all__ = ["hyperparameter_figures", "hyperparameter_importance", "hyperparameter_section", "hyperparameter_html", "importance_text"]
