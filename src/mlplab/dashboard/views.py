"""The pages' contents: read the store (read-only), build figure data, draw it.

``page_for`` routes a URL; ``run_body``, ``compare_body`` and ``store_level`` fill the
pages. Figure data of a run is computed by :func:`mlplab.figures.data_run.load_run_figdata`
and cached per run version for the last :data:`FIGDATA_CACHE_RUNS` runs, so the compare
page and a revisit do not re-read unchanged runs; the drawn figures are not kept (a run
page draws them once per visit, and plotly figures weigh several times their data).
(``run_body(root, run_id)`` is the run page's component tree; tests/test_dashboard.py
calls each of these on a store of trained runs.)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
from dash import html

from mlplab.figures.data_landscape import load_landscape_info
from mlplab.figures.data_run import RunFigureData, load_run_figdata
from mlplab.store.check import check_run
from mlplab.store.store import RunInfo, StoreError
from mlplab.store.table import config_summary
from . import callbacks as cb
from . import layout, plots, plots_compare, plots_landscape, plots_model, tables

FIGDATA_CACHE_RUNS = 16      # runs whose figure data is kept (about 0.3 MB a small run)


def page_for(root: Path, pathname: str | None, search: str | None) -> html.Div:
    """The page skeleton for a URL; a bad or unknown run id gives the not-found page."""
    r = cb.route(pathname)
    if r.page == "overview":
        return layout.overview_page(cb.filter_from_search(search))
    if r.page == "compare":
        store = cb.open_store(root)
        ids = [x.run_id for x in store.runs()]
        wanted = [i for i in cb.runs_from_search(search) if i in set(ids)]
        return layout.compare_page(ids, wanted)
    if r.page == "run":
        try:
            cb.open_store(root).run(r.run_id)
        except StoreError as e:
            return layout.not_found_page(str(e))
        return layout.run_page(r.run_id)
    return layout.not_found_page(r.reason)


def safe_run_version(root: Path, run_id: str | None) -> str | None:
    """The run's version, or None for an id that is not a run of the store."""
    try:
        return cb.run_version(root, run_id or "")
    except StoreError:
        return None


@functools.lru_cache(maxsize=FIGDATA_CACHE_RUNS)
def _figdata(root: str, run_id: str, version: str) -> RunFigureData:
    return load_run_figdata(cb.open_store(root), run_id)


def run_figdata(root: Path, run_id: str) -> RunFigureData:
    """Figure data of a finished run, cached until the run's files change."""
    return _figdata(str(root), run_id, cb.run_version(root, run_id))


def run_figures(data: RunFigureData) -> dict[str, go.Figure]:
    """Every figure of SPEC §7 for one run, by name, drawn from its figure data."""
    figs = {"loss": plots.loss_figure(data.loss)}
    for series in data.series:
        figs[series.family] = plots.layer_series_figure(series)
    figs["activations"] = plots.activation_figure(data.activations)
    if data.curvature is not None:
        figs["curvature"] = plots.curvature_figure(data.curvature)
    figs["init"] = (plots.init_figure(data.init) if data.init is not None else
                    plots.empty_figure("Initial weights per layer", "no initial weights stored"))
    if data.boundary is not None:
        figs["boundary"] = plots_model.boundary_figure(data.boundary)
        figs["boundary_evolution"] = plots_model.boundary_evolution_figure(data.boundary)
    if data.network is not None:
        figs["network"] = plots_model.network_figure(data.network)
    return figs


def findings_of(root: Path, run_id: str) -> tuple[list[dict[str, Any]] | None, str]:
    """The findings of ``diagnose`` for a run as dicts, or (None, why not)."""
    try:
        from mlplab.diagnose.findings import diagnose_path
    except ImportError as e:
        if (e.name or "").startswith("mlplab"):
            return None, "diagnose is not part of this installation yet."
        raise
    try:
        return [f.to_dict() for f in diagnose_path(str(root), run_id)], ""
    except StoreError as e:
        return None, f"diagnose could not read this run: {e}"


def run_header(info: RunInfo) -> list[Any]:
    """Run id, configuration in one line, status, and the kept attempt's numbers."""
    monitor = (info.config.get("stopping") or {}).get("monitor")
    return [html.H2(info.run_id, className="run-title"),
            html.Div([config_summary(info.config) if info.config else info.name, " · ",
                      html.Span(info.status, className=f"badge status-{info.status}")],
                     className="subtitle"),
            tables.key_values([(f"best {monitor}" if monitor else "best", info.best_value),
                               ("val loss", info.val_loss), ("val acc", info.val_acc),
                               ("test acc", info.test_acc), ("attempts", info.n_attempts),
                               ("epochs", info.epochs), ("wall time s", info.wall_time)])]


def run_body(root: Path, run_id: str | None) -> Any:
    """The run page: summary, findings, attempts, every figure, configuration."""
    store = cb.open_store(root)
    try:
        info = store.run(run_id or "")
    except StoreError as e:
        return layout.not_found_page(str(e))
    head = html.Div(run_header(info), className="card")
    config = html.Div([html.H3("Configuration"), tables.config_block(info.config)], className="card")
    damage = check_run(store.root / "runs" / info.run_id, info) if info.status == "done" else []
    if info.status != "done" or damage:
        note = (f"This run failed: {info.error}" if info.status == "failed" else
                f"This run's files are damaged: {info.error}" if info.status == "damaged" else
                "This run's files are damaged: " + "; ".join(d.text() for d in damage)
                + " (mlplab check --repair marks it)" if damage else
                "This run was interrupted before it finished." if info.status == "interrupted" else
                "This run is not finished; its curves appear here when it is written.")
        return html.Div([head, html.Div(html.P(note, className="muted"), className="card"), config])
    findings, why = findings_of(root, info.run_id)
    attempts = tables.attempts_table(store.attempts(info.run_id), info.best_attempt)
    figs = run_figures(run_figdata(root, info.run_id))
    figs.update(plots_landscape.landscape_figures(load_landscape_info(store.run_dir(info.run_id))))
    graphs = [layout.graph_card(f"fig-{name}", fig, wide=name == "loss") for name, fig in figs.items()]
    return html.Div([
        head,
        html.Div([html.H3("Findings"), tables.findings_list(findings, why)], className="card"),
        html.Div([html.H3("Attempts"), html.Div(attempts, className="table-wrap")], className="card"),
        html.Div(graphs, className="grid2 figures"),
        config,
    ])


def compare_body(root: Path, run_ids: Sequence[str]) -> Any:
    """Loss and per-layer gradient-norm curves of the chosen finished runs, overlaid."""
    store = cb.open_store(root)
    chosen, skipped = [], []
    for run_id in dict.fromkeys(run_ids):
        try:
            info = store.run(run_id)
        except StoreError:
            skipped.append(f"{run_id} (not in this store)")
            continue
        if info.status != "done":
            skipped.append(f"{run_id} ({info.status})")
            continue
        chosen.append(run_figdata(root, run_id))
    if not chosen:
        return html.Div(html.P("Choose finished runs above (or tick them in the runs table).",
                               className="muted"), className="card")
    figs = {"compare-loss": plots_compare.loss_overlay(chosen),
            "compare-grad": plots_compare.grad_norm_overlay(chosen)}
    note = html.P("Left out: " + ", ".join(skipped), className="muted") if skipped else None
    return html.Div([note] + [layout.graph_card(name, fig, wide=True) for name, fig in figs.items()])
