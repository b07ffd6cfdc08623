"""The notebook objects of a store, a sweep and a run (:func:`mlplab.open` makes them).

Each reads the store when asked (never caches a stale view) and reuses what the CLI and
the report use: the runs table (:mod:`mlplab.store.table`), the report's figure jobs
(:mod:`mlplab.report.build`, :mod:`mlplab.report.sweep`) and diagnose
(:mod:`mlplab.diagnose`). Shown in a notebook, each is the report's HTML
(:mod:`mlplab.notebook.html`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mlplab.config import ConfigError
from mlplab.store.store import RunInfo, Store, StoreError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from mlplab.diagnose import Finding

Job = tuple[str, Callable[..., "Figure"], Any]


@dataclass(frozen=True)
class _RunsView:
    """What a store and a sweep share: a set of runs of one store."""

    store: Store

    def run_infos(self) -> list[RunInfo]:
        return self.store.runs()

    def label(self) -> str:
        """What the view shows, for headings."""
        return "store"

    def best_run_id(self) -> str | None:
        """The finished run with the best monitored value (the report's rule)."""
        from mlplab.report.build import best_run

        best = best_run(self.run_infos())
        return None if best is None else best.run_id

    def runs(self, sort: str | None = None, filters: tuple[str, ...] = ()) -> "pd.DataFrame":
        """The runs table (``mlplab runs``) as a pandas frame, one row per run; ``sort`` and
        ``filters`` as ``--sort`` and ``--filter key=value``."""
        import pandas as pd

        from mlplab.store.table import run_row, select_rows

        infos = self.run_infos()
        rows = select_rows(infos, sort, filters)
        columns = list(run_row(infos[0])) if infos else None
        return pd.DataFrame(rows, columns=columns)

    def _run(self, run: str | None) -> str:
        if run is not None:
            return self.store.run(run).run_id
        best = self.best_run_id()
        if best is None:
            raise StoreError(f"no finished run in '{self.store.root}' to show; name one with run=")
        return best

    def metrics(self, run: str | None = None) -> "pd.DataFrame":
        """The recorded series of ``run`` (default: the best run) as a long frame."""
        return self.store.metrics(self._run(run))

    def diagnose(self, run: str | None = None) -> list["Finding"]:
        """The findings of ``mlplab diagnose`` for every attempt of ``run`` (default: the best)."""
        from mlplab.diagnose import diagnose_path

        return diagnose_path(self.store.root, self._run(run), attempt="all")

    def done(self) -> list[RunInfo]:
        """The finished runs of an mlplab config (the figures of runs together draw these)."""
        return [r for r in self.run_infos() if r.status == "done" and r.config]

    def summary_jobs(self) -> list[Job]:
        """``(name, draw, data)`` of the report's figures of these runs together, the
        hyper-parameter figures aside (none for a set of runs in general)."""
        return []

    def figure_jobs(self) -> list[Job]:
        """``(name, draw, data)`` of every figure of these runs together."""
        from mlplab.report.sweep import hyperparameter_figures

        done = self.done()
        return (self.summary_jobs() + hyperparameter_figures(done, store_root=self.store.root,
                                                                 write_cache=False)[0]
                if len(done) > 1 else [])

    def figure(self, name: str, run: str | None = None) -> "Figure":
        """One figure as a matplotlib Figure: a figure of the runs together (``parallel``,
        ``importance``, ``comparison``, ``lr_curve``, ...) or, by the name a run's figure has
        in the report (``loss``, ``boundary``, ...), that figure of ``run`` (default: the best)."""
        jobs = {n: (draw, data) for n, draw, data in self.figure_jobs()}
        if name not in jobs:
            try:
                return RunView(self.store, self._run(run)).figure(name)
            except ConfigError as e:
                raise ConfigError("figure", name, ", ".join([*jobs, e.allowed])) from None
        draw, data = jobs[name]
        return draw(data)

    def _repr_html_(self) -> str:
        from .html import runs_html

        return runs_html(self)


@dataclass(frozen=True)
class StoreView(_RunsView):
    """A whole store: ``mlplab.open("runs/xor")``."""

    def summary_jobs(self) -> list[Job]:
        from mlplab.figures.data_store import load_store_figdata
        from mlplab.report.build import store_figure_jobs

        return store_figure_jobs(load_store_figdata(self.store)) if len(self.done()) > 1 else []

    def sweep(self, sweep_id: str) -> "SweepView":
        """One sweep of this store (a :class:`StoreError` names the store's sweeps when
        there is no ``sweep_id``)."""
        known = [s["sweep_id"] for s in self.store.sweeps()]
        if sweep_id not in known:
            raise StoreError(f"sweep={sweep_id!r}: no such sweep in store '{self.store.root}';"
                             " its sweeps: " + (", ".join(known) or "none"))
        return SweepView(self.store, sweep_id)

    def __repr__(self) -> str:
        return f"StoreView('{self.store.root}', {len(self.run_infos())} runs)"


@dataclass(frozen=True)
class SweepView(_RunsView):
    """The runs of one sweep of a store: ``mlplab.open("runs/xor", sweep="grid-...")``."""

    sweep_id: str

    def run_infos(self) -> list[RunInfo]:
        return self.store.runs(sweep_id=self.sweep_id)

    def label(self) -> str:
        return f"sweep {self.sweep_id}"

    def summary_jobs(self) -> list[Job]:
        """The stages of a staged sweep (the report's figure of them)."""
        from mlplab.figures.data_limit import runs_bayes_limit
        from mlplab.figures.data_store import stage_info
        from mlplab.figures.draw_store import draw_stages
        from mlplab.store.store import slug

        done = self.done()
        rows = [row for row in self.store.sweeps() if row["sweep_id"] == self.sweep_id]
        stages = [s for s in (stage_info(row, done, runs_bayes_limit(done)) for row in rows) if s]
        return [(f"stages-{slug(s.sweep_id)}", draw_stages, s) for s in stages]

    def __repr__(self) -> str:
        return f"SweepView('{self.store.root}', '{self.sweep_id}', {len(self.run_infos())} runs)"


@dataclass(frozen=True)
class RunView(_RunsView):
    """One run of a store: ``mlplab.open("runs/xor/runs/<run-id>")``."""

    run_id: str

    def run_infos(self) -> list[RunInfo]:
        return [self.store.run(self.run_id)]

    def _run(self, run: str | None) -> str:
        if run not in (None, self.run_id):
            raise ConfigError("run", run, f"{self.run_id} (this view's run) or None")
        return self.run_id

    def figure_jobs(self) -> list[Job]:
        from mlplab.figures.data_run import load_run_figdata
        from mlplab.report.build import run_figure_jobs

        if self.store.run(self.run_id).status != "done":
            return []
        return run_figure_jobs(load_run_figdata(self.store, self.run_id))

    def figure(self, name: str, run: str | None = None) -> "Figure":
        self._run(run)
        jobs = {n: (draw, data) for n, draw, data in self.figure_jobs()}
        if name not in jobs:
            raise ConfigError("figure", name, ", ".join(jobs) or "none (the run is not done)")
        draw, data = jobs[name]
        return draw(data)

    def _repr_html_(self) -> str:
        from .html import run_html

        return run_html(self)

    def __repr__(self) -> str:
        return f"RunView('{self.store.root}', '{self.run_id}')"


__all__ = ["StoreView", "SweepView", "RunView"]
