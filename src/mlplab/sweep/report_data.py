"""The report after a local sweep takes its best run's figure data (the network evaluated
on the boundary grid: torch) from a process forked from the sweep's forkserver, which
imported torch before the first unit: the report's own processes then import no torch
(about a second of CPU, on the sweep command's path to its report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .executors import Executor, LocalExecutor, worker_context, worker_pool

if TYPE_CHECKING:
    from mlplab.figures.data_run import RunFigureData
    from mlplab.store.store import Store


def _figdata(root: str, run_id: str) -> "RunFigureData":
    from mlplab.figures.data_run import load_run_figdata
    from mlplab.store.store import Store

    return load_run_figdata(Store(root), run_id)


def figdata_in_worker(store: "Store", run_id: str) -> "RunFigureData":
    """The run's figure data (:func:`mlplab.figures.data_run.load_run_figdata`) made in one
    worker process of the local pool's kind (forked from its forkserver, set up as a
    worker) and sent back to this one."""
    with worker_pool(1) as pool:
        return pool.submit(_figdata, str(store.root), run_id).result()


def report_figdata(executor: Executor) -> Callable[["Store", str], "RunFigureData"] | None:
    """How the report after a sweep run by ``executor`` makes its best run's figure data:
    in a worker where the local pool forks its workers from a forkserver that has torch
    imported; None (in the report's own process) otherwise (Ray, ``spawn``)."""
    if isinstance(executor, LocalExecutor) and \
            worker_context().get_start_method() == "forkserver":
        return figdata_in_worker
    return None
