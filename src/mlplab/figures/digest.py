"""A digest of a frozen figure record: what the report keys each PNG by, so a figure whose
data did not change is not drawn again (:mod:`mlplab.report.figfiles`).

Every field counts, recursively: numbers by their exact ``repr``, arrays by dtype, shape
and bytes, nested records by their class and fields. A value of a kind not listed here is
an error rather than skipped, so a new field can never be left out of the key.

>>> import numpy as np
>>> from mlplab.figures.data_run import LossCurve
>>> a = LossCurve(0, np.arange(3.0), np.ones(3), np.ones(3), np.ones(3), np.ones(3))
>>> b = LossCurve(0, np.arange(3.0), np.ones(3), np.ones(3), np.ones(3), np.zeros(3))
>>> record_digest(a) == record_digest(a), record_digest(a) == record_digest(b)
(True, False)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np


def record_digest(record: Any, *salt: str) -> str:
    """The SHA-256 hex digest of ``record`` (a frozen figure record, or tuples, dicts and
    plain values of them) after the strings ``salt``."""
    h = hashlib.sha256()
    for s in salt:
        _feed(h, s)
    _feed(h, record)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"<{type(obj).__module__}.{type(obj).__qualname__}".encode())
        for f in dataclasses.fields(obj):
            h.update(f".{f.name}".encode())
            _feed(h, getattr(obj, f.name))
    elif isinstance(obj, np.ndarray):
        h.update(f"<array {obj.dtype.str} {obj.shape}".encode())
        if obj.dtype.hasobject:
            for item in obj.ravel():
                _feed(h, item)
        else:
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (list, tuple)):
        h.update(f"<{type(obj).__name__} {len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, dict):
        h.update(f"<dict {len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif obj is None or isinstance(obj, (str, int, float, complex, np.generic)):
        h.update(f"<{type(obj).__name__} {obj!r}".encode())     # repr: exact for floats
    else:
        raise TypeError(f"record_digest: cannot digest a {type(obj).__name__} ({obj!r:.60})")


@functools.lru_cache(maxsize=1)
def drawing_version() -> str:
    """A digest of the drawing code (every ``draw_*.py`` of this package) and of the
    matplotlib version: a change to either redraws every figure."""
    from importlib.metadata import version      # not importing matplotlib: nothing may need drawing

    h = hashlib.sha256(version("matplotlib").encode())
    for path in sorted(Path(__file__).parent.glob("draw_*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


__all__ = ["record_digest", "drawing_version"]
