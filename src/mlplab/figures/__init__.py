"""Figures (SPEC §7): figure data computed from the store as plain frozen records, apart
from drawing them. The report's PNGs and the dashboard's Plotly views draw the same
records.

    data_run.py      one run: loss, per-layer series, activations, initial weights
    data_spans.py    a run's attempts laid end to end (the x axes of a run with restarts)
    data_curvature.py  one run's curvature probe against its optimizer's stability bound
    data_model.py    what needs the trained network: decision boundary, network diagram
    data_configs.py  a set of runs' configurations: which keys vary, labels
    data_params.py   a metric against any swept key
    data_store.py    a set of runs: comparisons over seeds, success rates, stages
    data_parallel.py, data_importance.py   a sweep's parallel coordinates, key importance
    draw_run.py, draw_model.py, draw_store.py, draw_sweep.py   the matplotlib PNGs of those records
    draw_save.py     how a figure becomes a PNG (layout once, then one render)
    arrays.py        the read-only numpy arrays the records hold
    digest.py        a record's digest (what the report keys its PNGs by)
    data_ties.py     intervals over seeds and the words for ties with the best
    data_limit.py    the Bayes limit of the runs' dataset, for accuracy axes
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplab import lazy_exports

if TYPE_CHECKING:
    from .data_run import RunFigureData as RunFigureData
    from .data_run import load_run_figdata as load_run_figdata
    from .data_store import StoreFigureData as StoreFigureData
    from .data_store import load_store_figdata as load_store_figdata

# the names re-exported here are imported when first asked for: a reader of one module of
# this package (the report of an unchanged store reads digest.py only) does not pay for
# data_store's statistics (scipy, half a second)
_EXPORTS = {"RunFigureData": "data_run", "load_run_figdata": "data_run",
            "StoreFigureData": "data_store", "load_store_figdata": "data_store"}


__all__ = ["RunFigureData", "StoreFigureData", "load_run_figdata", "load_store_figdata"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
