"""Where training ends up and how to start it: the loss landscape of a stored run
(:func:`landscape`: interpolation lines, barriers between seeds, a filter-normalised 2-D
slice with the training path) and the vectorised learning-rate finder (:func:`lr_find`).

    surface.py   lines and planes in weight space as rows, their losses in one batched forward
    of_run.py    a stored run's landscape, written into its folder (mlplab landscape)
    finder.py    fixed lrs × seeds as one cohort, and Smith's range test (mlplab lr-find)
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .finder import lr_find as lr_find
from .of_run import landscape as landscape

__all__ = ["landscape", "lr_find"]


class _CallablePackage(types.ModuleType):
    """``mlplab.landscape`` is both this package and the function: once any submodule is
    imported, Python binds the name on ``mlplab`` to the package, so the package calls
    the function (as ``mlplab.diagnose`` does)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return landscape(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
