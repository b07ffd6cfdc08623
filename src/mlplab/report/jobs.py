"""Which PNGs a report draws for a run and for a store (``(name, draw, info)`` jobs for
:func:`.figfiles.draw_all`), and the heading each file gets on the page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .figfiles import FigureFile, draw_all, draw_all_in_two

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlplab.figures.data_run import RunFigureData
    from mlplab.figures.data_store import StoreFigureData


# What each figure file shows, as its heading in the report.
TITLES = {
    "loss": "Training curves", "boundary": "Decision boundary", "network": "Network diagram",
    "grad_norm": "Gradient norms per layer", "weight_norm": "Weight and bias norms per layer",
    "update_ratio": "Update / weight ratios per layer", "dist_init": "Distance from initialisation",
    "init_weights": "Initial weight distribution", "activations": "Dead and saturated units",
    "boundary_evolution": "Decision boundary during training", "lr_curve": "Metric vs learning rate",
    "comparison": "Optimizer × initialisation over seeds", "success": "Success rate per configuration",
}


def param_figure_name(key: str) -> str:
    """The file name (no suffix) of the metric-vs-``key`` figure: ``lr_curve`` for the
    learning rate, else ``param_<key>``."""
    return "lr_curve" if key == "train.lr" else f"param_{key}"


def title_of(name: str) -> str:
    """The heading of a figure file in the report (a staged sweep's: its sweep id)."""
    if name.startswith("stages-"):
        return f"Stages of sweep {name[len('stages-'):]}"
    if name.startswith("param_"):
        return f"Metric vs {name[len('param_'):]}"
    return TITLES.get(name, name.replace("_", " "))


def write_run_figures(data: "RunFigureData", out: Path) -> list[FigureFile]:
    """Every figure of one run as PNGs in ``out`` (those whose data changed, on two processes)."""
    return draw_all_in_two(run_figure_jobs(data), out)


def run_figure_jobs(data: "RunFigureData") -> list[tuple[str, Callable[..., "Figure"], Any]]:
    """``(name, draw, info)`` of every figure of one run that applies."""
    from mlplab.figures import draw_run as f
    from mlplab.figures import draw_model as fm

    jobs: list[tuple[str, Callable[..., Figure], Any]] = [("loss", f.draw_loss, data.loss)]
    if data.boundary is not None:
        jobs.append(("boundary", fm.draw_boundary, data.boundary))
    if data.network is not None:
        jobs.append(("network", fm.draw_network, data.network))
    jobs += [(s.family, f.draw_layer_series, s) for s in data.series if s.curves]
    if data.init is not None and data.init.layers:
        jobs.append(("init_weights", f.draw_init_dist, data.init))
    if data.activations.curves:
        jobs.append(("activations", f.draw_activations, data.activations))
    if data.curvature is not None:
        jobs.append(("curvature", f.draw_curvature, data.curvature))
    if data.boundary is not None and len(data.boundary.snapshot_epochs) > 1:
        jobs.append(("boundary_evolution", fm.draw_boundary_evolution, data.boundary))
    return jobs


def write_store_figures(data: "StoreFigureData", out: Path) -> list[FigureFile]:
    """The store-level figures that apply, as PNGs in ``out`` (those whose data changed)."""
    return draw_all(store_figure_jobs(data), out)


def store_figure_jobs(data: "StoreFigureData") -> list[tuple[str, Callable[..., "Figure"], Any]]:
    """``(name, draw, info)`` of the store-level figures that apply."""
    from mlplab.figures import draw_store as fs
    from mlplab.store.store import slug

    jobs: list[tuple[str, Callable[..., Figure], Any]] = []
    for info in data.params:
        jobs.append((param_figure_name(info.x_key), fs.draw_param_curve, info))
    if data.comparison is not None:
        jobs.append(("comparison", fs.draw_comparison, data.comparison))
    if data.success is not None:
        jobs.append(("success", fs.draw_success, data.success))
    for st in data.stages:
        jobs.append((f"stages-{slug(st.sweep_id)}", fs.draw_stages, st))
    return jobs


__all__ = ["TITLES", "param_figure_name", "title_of", "write_run_figures", "run_figure_jobs",
           "write_store_figures", "store_figure_jobs"]
