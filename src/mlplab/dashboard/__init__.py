"""The live web dashboard of a store (SPEC §8): ``mlplab dashboard DIR``. It reads the
store read-only and draws the same figure-data records as the report, with Plotly.

    server.py       ``serve``: loopback by default, a warning anywhere else
    app.py          ``create_app``: the Dash app, its thin callbacks, the run-data route
    callbacks.py    what the callbacks compute, as plain functions of the store directory
    overview.py     the store-level page: sweeps, metric vs a key, comparison, success
    views.py        the run and compare pages
    layout.py       page skeletons; tables.py the tables; theme.py the stylesheet
    plots.py, plots_model.py, plots_store.py, plots_compare.py   the Plotly drawings
    plots_sweep.py  the overview's parallel coordinates and hyper-parameter importance

Needs the optional extra ``mlplab[dashboard]`` (Dash and Plotly); importing this
package without them raises ImportError naming ``dash`` or ``plotly``, which the CLI
turns into an install hint.

``serve(DIR)`` serves the pages on loopback until interrupted; ``create_app(DIR)`` is
the Dash app it runs, which the example asks for the overview without a socket:

>>> import tempfile
>>> from mlplab.store.store import Store
>>> from mlplab.dashboard import create_app
>>> with tempfile.TemporaryDirectory() as out:
...     _ = Store(out)                       # an empty store
...     create_app(out).server.test_client().get("/").status_code
200
"""

from __future__ import annotations

from .app import create_app as create_app
from .server import serve as serve

__all__ = ["create_app", "serve"]
