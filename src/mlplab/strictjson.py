"""Strict JSON for everything mlplab prints or stores: no ``NaN`` or ``Infinity`` (other
tools' parsers reject them; a missing or non-finite number is ``null``), tuples as lists,
numpy scalars and arrays (and tensors) as plain values, paths as strings.

>>> dumps({"loss": float("nan"), "acc": 0.5, "shape": (4, 1)})
'{"loss": null, "acc": 0.5, "shape": [4, 1]}'
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any, Mapping


def jsonable(v: Any) -> Any:
    """``v`` with non-finite floats as None, tuples and sets as lists, array-likes
    (``tolist``) as lists and paths as strings, recursively."""
    # the plain types by their exact type first: ``isinstance(v, Mapping)`` asks the ABC
    # machinery, and a sweep's driver walks ~170 values a run (10,000 runs: seconds)
    kind = type(v)
    if kind is str or kind is int or kind is bool or v is None:
        return v
    if kind is float:
        return v if math.isfinite(v) else None
    if kind is dict:
        return {k if type(k) is str else str(k): jsonable(x) for k, x in v.items()}
    if kind is list or kind is tuple:
        return [jsonable(x) for x in v]
    if isinstance(v, bool) or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if isinstance(v, PurePath):
        return str(v)
    tolist = getattr(v, "tolist", None)      # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return jsonable(tolist())
    return v


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`jsonable` ``(obj)``, refusing anything still not strict
    (``allow_nan=False``); ``default=str`` unless given, for other objects."""
    kwargs.setdefault("default", str)
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)
