"""``report.html``: one self-contained page per store or run (SPEC §7).

:func:`build_report` draws the figures as PNGs (a run's in ``STORE/runs/<id>/figures/``,
the store's in ``STORE/figures/``) and writes one HTML file with every figure embedded
as a ``data:`` URI, inline CSS and a few lines of inline JavaScript (the sortable runs
table): it opens from disk, offline. A store's report shows the store-level figures,
the runs table and the best run's figures (that run also gets its own report, linked
from the table); a run folder's report shows that run.

``build_report("runs/xor")`` writes ``runs/xor/report.html``;
``build_report("runs/xor/runs/<run-id>")`` writes that run's page in its folder
(:func:`build_report` runs an example).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

from mlplab.store.atomic import write_atomic
from mlplab.store.store import INDEX, RunInfo, Store, StoreError
from .html import caption_of as caption_of   # defined beside figure_html; figfiles uses it
from .html import (attempts_table, config_block, esc, figure_html, findings_html, page, runs_table,
                   text_html)
from .figfiles import FigureFile as FigureFile   # defined beside draw_all; exported here
from .figfiles import draw_all, draw_all_in_two, files_from_json, files_json, in_two, prune_figures
from .jobs import param_figure_name as param_figure_name   # the report's figures: jobs.py
from .jobs import run_figure_jobs as run_figure_jobs
from .jobs import store_figure_jobs as store_figure_jobs
from .jobs import title_of as title_of
from .jobs import write_run_figures as write_run_figures
from .jobs import write_store_figures as write_store_figures
from .landscape import landscape_sections

if TYPE_CHECKING:
    from mlplab.figures.data_importance import ImportanceInfo
    from mlplab.figures.data_run import RunFigureData


@dataclass(frozen=True)
class ReportSection:
    """An extra section put first in a report: a title, plain text (blank lines separate
    paragraphs; lines starting with ``- `` make a list; indented lines stay as typed)
    and PNG figures to embed."""

    title: str
    text: str
    figures: list[Path] = field(default_factory=list)


def locate(path: str | Path) -> tuple[Path, str | None]:
    """``(store root, run id or None)`` for a store directory or a run folder."""
    path = Path(path)
    if (path / INDEX).is_file():
        return path, None
    if path.parent.name == "runs" and (path.parent.parent / INDEX).is_file():
        return path.parent.parent, path.name
    raise StoreError(f"'{path}' is neither an mlplab store (no {INDEX}) nor a run folder"
                     " STORE/runs/<run-id>")


def best_run(runs: Sequence[RunInfo]) -> RunInfo | None:
    """The finished run with the best monitored value (val_loss when monitors differ)."""
    from mlplab.config import StoppingConfig
    from mlplab.engine.stopping import monitor_mode

    done = [r for r in runs if r.status == "done" and r.config]
    if not done:
        return None
    monitors = {(r.config.get("stopping") or {}).get("monitor", "val_loss") for r in done}
    modes = {(r.config.get("stopping") or {}).get("mode", "auto") for r in done}
    if len(monitors) == 1 and len(modes) == 1:
        mode = monitor_mode(StoppingConfig(monitor=monitors.pop(), mode=modes.pop()))
        value = (lambda r: r.best_value)
    else:
        mode, value = "min", (lambda r: r.val_loss)

    def key(r: RunInfo) -> float:
        v = value(r)
        if v is None or not math.isfinite(v):
            return math.inf
        return v if mode == "min" else -v

    return min(done, key=key)


def run_findings(root: Path, run_id: str) -> list[dict[str, Any]] | None:
    """The diagnose findings of every attempt as dicts; None when mlplab.diagnose.findings is not
    installed in this build."""
    try:
        from mlplab.diagnose.findings import diagnose_path
    except ImportError as e:
        if e.name in ("mlplab.diagnose.findings", f"{__package__}.diagnose"):
            return None
        raise
    return [f.to_dict() for f in diagnose_path(root, run_id, attempt="all")]


def _extra_sections(sections: Sequence[ReportSection] | None) -> list[tuple[str, str]]:
    out = []
    for s in sections or ():
        missing = [str(p) for p in s.figures if not Path(p).is_file()]
        if missing:
            raise StoreError(f"report section '{s.title}': no figure file {', '.join(missing)}")
        body = text_html(s.text) + "".join(figure_html(Path(p), Path(p).stem.replace("_", " "), "")
                                          for p in s.figures)
        out.append((s.title, body))
    return out


def run_sections(store: Store, run: RunInfo, figures: list[FigureFile],
                  findings: list[dict[str, Any]] | None, heading: str = "") -> list[tuple[str, str]]:
    from mlplab.store.table import config_summary

    doc = store.run_doc(run.run_id)
    attempts = store.attempts(run.run_id)
    lead = heading or f"Run {run.run_id}"
    summary = (f"<p><b>{config_summary(doc.get('config') or {}) or run.name}</b></p>"
               + attempts_table(attempts, run.best_attempt))
    return [
        (lead, summary),
        (f"Findings of diagnose ({run.run_id})", findings_html(findings, attempts)),
        (f"Figures of {run.run_id}", "".join(figure_html(f.path, title_of(f.name), f.caption)
                                            for f in figures)),
        (f"Configuration of {run.run_id}", config_block(doc.get("config") or {}, doc.get("info") or {})),
    ] + landscape_sections(store.run_dir(run.run_id))




_NOT_GIVEN: Any = object()


def _run_report(store: Store, run: RunInfo, sections: Sequence[ReportSection] | None,
                figures: list[FigureFile] | None = None,
                findings: list[dict[str, Any]] | None = _NOT_GIVEN) -> Path:
    from mlplab.figures.data_run import load_run_figdata

    run_dir = store.run_dir(run.run_id)
    if figures is None:
        figures = write_run_figures(load_run_figdata(store, run.run_id), run_dir / "figures")
    if findings is _NOT_GIVEN:
        findings = run_findings(store.root, run.run_id)
    body = _extra_sections(sections) + run_sections(store, run, figures, findings)
    html = page(f"mlplab report: run {run.run_id}", _subtitle(store), body)
    return write_atomic(run_dir / "report.html", html)


def _subtitle(store: Store) -> str:
    return f"store {store.root.resolve().name} · written {time.strftime('%Y-%m-%d %H:%M')}"


# how the best run's figure data is made, as load_run_figdata (store, run id): None for
# load_run_figdata itself, in this process (build_report)
FigData = Callable[[Store, str], "RunFigureData"]


def _best_run_figures(store: Store, best: RunInfo | None, draw: Callable[..., list[FigureFile]] = draw_all,
                      figdata: FigData | None = None) -> list[FigureFile]:
    """The best run's figures in its folder, written by ``draw`` (none without a best run)."""
    from mlplab.figures.data_run import load_run_figdata

    if best is None:
        return []
    return draw(run_figure_jobs((figdata or load_run_figdata)(store, best.run_id)),
                store.run_dir(best.run_id) / "figures")


def _best_run_side(store: Store, best: RunInfo, inputs: dict[str, Any] | None,
                   draw: Callable[..., list[FigureFile]] = draw_all,
                   figdata: FigData | None = None) -> list[FigureFile]:
    """The best run's figures (drawn by ``draw``, from ``figdata``'s data); those of the
    last report when its folder, the code and the PNGs are unchanged (``inputs``:
    :func:`.kept.run_inputs`; no figure data computed, no torch imported)."""
    from .kept import kept_or_made

    out = store.run_dir(best.run_id) / "figures"
    return kept_or_made(
        store.root, RUN_KIND, inputs, lambda: _best_run_figures(store, best, draw, figdata),
        encode=lambda figures: [[f.name, f.caption] for f in figures],
        decode=lambda value: [FigureFile(str(name), out / f"{name}.png", str(caption))
                              for name, caption in value],
        files=lambda figures: figures)


def _preload_drawing() -> None:
    """Import what every process of a report that draws uses (matplotlib with its font
    list, pandas) before forking them: once, not once in each of three processes."""
    import pandas  # noqa: F401
    from matplotlib import font_manager  # noqa: F401 - loads the font list
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib import figure  # noqa: F401


def preload_report() -> None:
    """Import what a store's report will use (drawing, and the importance's evaluators
    where the ``optuna`` extra is installed), for a caller with a core to spare now and a
    report to write later: a sweep's driver while its workers start (about a second of
    imports, otherwise paid after the last unit)."""
    _preload_drawing()
    try:
        import optuna.importance  # noqa: F401 - and scikit-learn, for fANOVA's forest
        import sklearn.ensemble  # noqa: F401
    except ImportError:                          # no chart then: the report says so
        pass


def _best_run_findings(store: Store, best: RunInfo, inputs: dict[str, Any] | None
                       ) -> list[dict[str, Any]] | None:
    """:func:`run_findings` of the best run; those of the last report when its folder and
    the code are unchanged (``inputs``: :func:`.kept.run_inputs`)."""
    from .kept import kept_or_made

    return kept_or_made(store.root, FINDINGS_KIND, inputs,
                        lambda: (run_findings(store.root, best.run_id),),    # None is a finding
                        encode=lambda made: {"findings": made[0]},
                        decode=lambda value: (value["findings"],))[0]


# the kinds of the store cache's entries that keep each half of a store's report (.kept)
RUN_KIND, STORE_KIND, FINDINGS_KIND = "report_run", "report_store", "report_findings"


def _store_figures(store: Store, runs: Sequence[RunInfo], done: Sequence[RunInfo]) -> dict[str, Any]:
    """The store-level figures (the hyper-parameter section's too: one folder, pruned
    once) as JSON data (:func:`in_two`): ``figures`` and the hyper-parameter ``section``;
    those of the last report when the index and the PNGs are unchanged (:mod:`.kept`)."""
    from .kept import kept_or_made, store_inputs
    from .sweep import hyperparameter_html

    if len(done) <= 1:
        return {"figures": [], "section": None}
    out = store.root / "figures"

    def made() -> tuple[list[FigureFile], "ImportanceInfo", set[str]]:
        from mlplab.figures.data_store import load_store_figdata

        from .sweep import hyperparameter_figures

        # two halves of about equal length, the OS sharing the cores among the processes:
        # a process forked once this one has imported what both use computes the
        # importance (fANOVA's forest) and draws the hyper-parameter section's figures,
        # while this one computes the store's figure data and draws those figures
        def hyper_side() -> dict[str, Any]:
            jobs, importance = hyperparameter_figures(done, store_root=store.root)
            return {"figures": files_json(draw_all(jobs, out, prune=False)),
                    "importance": dataclasses.asdict(importance)}

        def store_side() -> list[FigureFile]:     # the runs read once: 50 MB at 10,000
            return draw_all(store_figure_jobs(load_store_figdata(store, runs=done)), out, prune=False)

        hyper, store_figures = in_two(hyper_side, store_side)
        hyper_figures = files_from_json(hyper["figures"])
        figures = store_figures + hyper_figures
        prune_figures(out, figures)
        return figures, _importance_from_json(hyper["importance"]), {f.name for f in hyper_figures}

    figures, importance, hyper = kept_or_made(
        store.root, STORE_KIND, store_inputs(store, runs), made,
        encode=lambda m: {"figures": [[f.name, f.caption] for f in m[0]], "hyper": sorted(m[2]),
                          "importance": dataclasses.asdict(m[1])},
        decode=lambda value: (
            [FigureFile(str(name), out / f"{name}.png", str(caption)) for name, caption in value["figures"]],
            _importance_from_json(value["importance"]), set(value["hyper"])),
        files=lambda m: m[0])
    return {"figures": files_json([f for f in figures if f.name not in hyper]),
            "section": hyperparameter_html(importance, [f for f in figures if f.name in hyper])}


def _importance_from_json(d: dict[str, Any]) -> "ImportanceInfo":
    from mlplab.figures.data_importance import ImportanceInfo

    return ImportanceInfo(d["metric"], tuple(d["factors"]), tuple(d["evaluators"]),
                          tuple(tuple(float(s) for s in row) for row in d["shares"]),
                          int(d["n_runs"]), int(d["n_dropped"]), d["reason"])


def _store_report(store: Store, sections: Sequence[ReportSection] | None,
                  figdata: FigData | None = None, written: Collection[str] = ()) -> Path:
    from mlplab.figures.data_configs import varying_keys
    from mlplab.store.check import check_store
    from mlplab.store.table import run_row

    from .kept import recall, run_inputs

    # a run whose files are damaged is marked so (with the file and the reason) and left out
    # of the figures, rather than failing the whole report
    runs = store.runs()
    damage = check_store(store.root, repair=True, written=written, runs=runs).damaged
    if damage:                                 # marked damaged in the index: read them again
        runs = store.runs()
    done = [r for r in runs if r.status == "done"]
    best = best_run(runs)
    body = _extra_sections(sections)
    counts = {s: sum(r.status == s for r in runs)
              for s in ("done", "failed", "interrupted", "damaged", "running", "pending")}
    overview = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no runs yet"
    text = f"<p>{len(runs)} run{'s' * (len(runs) != 1)}: {overview}."
    if best is not None:
        text += f" Best run: <b>{best.run_id}</b> ({_best_text(best)})."
    vary = varying_keys([r.config for r in done]) if len(done) > 1 else []
    if vary:
        text += " Keys that vary across runs: " + ", ".join(f"<code>{k}</code>" for k in vary) + "."
    body.append(("Overview", text + "</p>"))
    if damage:
        body.append(("Damaged runs", "<p>Left out of the figures (<code>mlplab check</code> lists"
                     " them):</p><ul>" + "".join(f"<li><code>{esc(d.text())}</code></li>"
                                                  for d in damage) + "</ul>"))
    # the store's figures and the best run's findings in a forked child (they need no
    # torch, see in_two; the findings share the child's statistics imports) while this
    # process computes the best run's figure data (its network is evaluated with torch)
    # and draws them, in two processes too (the drawing needs no torch): four processes
    # in all (the child forks one for the importance) that the OS shares out on the cores
    inputs = None if best is None else run_inputs(store.root, best.run_id, best.config)
    if best is not None and len(done) > 1:
        if inputs is None or recall(store.root, RUN_KIND, inputs) is None:   # it draws
            _preload_drawing()
        child, best_figs = in_two(
            lambda: {"store": _store_figures(store, runs, done),
                     "findings": _best_run_findings(store, best, inputs)},
            lambda: _best_run_side(store, best, inputs, draw_all_in_two, figdata))
        store_side, findings = child["store"], child["findings"]
    else:
        store_side = _store_figures(store, runs, done)
        best_figs, findings = ([], None) if best is None else (
            _best_run_side(store, best, inputs, draw_all_in_two, figdata),  # no store figures
            _best_run_findings(store, best, inputs))
    store_figs = files_from_json(store_side["figures"])
    hyper_section = None if store_side["section"] is None else tuple(store_side["section"])
    if store_figs:
        body.append(("Figures of the runs together",
                     "".join(figure_html(f.path, title_of(f.name), f.caption) for f in store_figs)))
    if hyper_section is not None:
        body.append(hyper_section)
    if best is not None:
        _run_report(store, best, None, best_figs, findings)
    linked = {r.run_id for r in runs if (store.run_dir(r.run_id) / "report.html").is_file()}
    body.append((f"Runs ({len(runs)})", runs_table([run_row(r) for r in runs], linked,
                                                  best.run_id if best else None)))
    if best is not None:
        heading = "Best run: " + best.run_id if len(done) > 1 else "Run " + best.run_id
        body += run_sections(store, best, best_figs, findings, heading)
    html = page(f"mlplab report: {store.root.resolve().name}", _subtitle(store), body)
    return write_atomic(store.root / "report.html", html)


def _best_text(r: RunInfo) -> str:
    monitor = (r.config.get("stopping") or {}).get("monitor", "val_loss")
    parts = [f"best {monitor} {r.best_value:.4g}" if r.best_value is not None else ""]
    if r.test_acc is not None:
        parts.append(f"test accuracy {100 * r.test_acc:.1f}%")
    return ", ".join(p for p in parts if p)


def build_report(path: str | Path, sections: list[ReportSection] | None = None, *,
                 figdata: FigData | None = None, written: Collection[str] = ()) -> Path:
    """Draw the figures and write ``report.html`` for a store or a run folder
    (``STORE/runs/<id>``); returns the path of the HTML file. ``sections`` come first.
    ``figdata``: made as :func:`~mlplab.figures.data_run.load_run_figdata` (the store's
    best run's figure data: its network evaluated with torch) where a caller has a process
    with torch imported already (``mlplab sweep``'s pool); None: in this process.
    ``written``: runs whose files the caller wrote itself just before (a sweep's driver),
    which the check for damaged runs does not read back (:func:`~mlplab.store.check.check_store`).

    A store of one run (three epochs of XOR): its report, and the run's own page that
    the store's links to (drawing the run's nine PNGs takes a few seconds):

    >>> import tempfile
    >>> import mlplab
    >>> cfg = mlplab.from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3},
    ...                         "probe": {"boundary_snapshots": 0}})
    >>> with tempfile.TemporaryDirectory() as out:
    ...     (run_id,) = mlplab.run_config(cfg, out, report=False, quiet=True)
    ...     page = build_report(out, [ReportSection("Note", "Three epochs only.")])
    ...     page == Path(out) / "report.html", (Path(out) / "runs" / run_id / "report.html").is_file()
    (True, True)
    """
    root, run_id = locate(path)
    _extra_sections(sections)                 # a bad section fails before any drawing
    store = Store(root)
    if run_id is not None:
        run = store.run(run_id)
        if run.status != "done":
            raise StoreError(f"run '{run_id}' is {run.status}: no report until it is done")
        return _run_report(store, run, sections)
    return _store_report(store, sections, figdata, written)


__all__ = ["ReportSection", "FigureFile", "build_report", "write_run_figures",
           "write_store_figures", "best_run", "locate", "caption_of", "param_figure_name",
           "run_figure_jobs", "store_figure_jobs", "run_sections", "title_of"]
