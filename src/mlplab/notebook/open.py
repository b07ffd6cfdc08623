"""``mlplab.open``: a store, one of its sweeps or one of its runs, as a notebook object.

>>> open_path("no/such/place")
Traceback (most recent call last):
    ...
mlplab.store.store.StoreError: 'no/such/place' is neither an mlplab store (no mlplab.sqlite) ...
"""

from __future__ import annotations

from pathlib import Path

from mlplab.report.build import locate
from mlplab.store.store import Store, StoreError
from .views import RunView, StoreView, SweepView


def open_path(path: str | Path, sweep: str | None = None) -> StoreView | SweepView | RunView:
    """What is at ``path``: a store directory (``mlplab.sqlite`` in it) gives a
    :class:`StoreView`, or with ``sweep`` the :class:`SweepView` of that sweep id of it; a
    run folder ``STORE/runs/<run-id>`` gives a :class:`RunView`. Anything else is a
    :class:`~mlplab.store.StoreError` that names the path. Reading only: nothing is written.

    In a notebook, the object's last-line display is the report's tables and figures::

        store = mlplab.open("runs/demo")
        store                       # the report, inline
        store.runs().head()         # the runs table as a pandas frame
        store.figure("parallel")    # one figure as a matplotlib Figure
    """
    root, run_id = locate(path)
    store = Store(root, readonly=True)
    if run_id is not None:
        if sweep is not None:
            raise StoreError(f"sweep={sweep!r}: '{path}' is a run folder; pass its store directory")
        return RunView(store, store.run(run_id).run_id)
    return StoreView(store) if sweep is None else StoreView(store).sweep(sweep)


__all__ = ["open_path"]
