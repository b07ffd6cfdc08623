"""Notebooks: ``mlplab.open(path)`` gives a store, a sweep or a run as an object that a
Jupyter notebook shows as the report shows it (the same tables and figures, as one
self-contained block of HTML: figures inline, no server), with ``.runs()`` (a pandas
frame), ``.metrics(run)``, ``.figure(name)`` (a matplotlib Figure) and ``.diagnose()``.

    open.py      ``open``: what a path is (store, run folder, a sweep of a store)
    views.py     :class:`StoreView`, :class:`SweepView`, :class:`RunView`
    html.py      their ``_repr_html_``: the report's sections as a scoped HTML block
"""

from __future__ import annotations

from .open import open_path as open  # noqa: A001  (mlplab.open, as the issue names it)
from .views import RunView as RunView
from .views import StoreView as StoreView
from .views import SweepView as SweepView

__all__ = ["open", "RunView", "StoreView", "SweepView"]
