"""``mlplab diagnose``: plain-language findings from a run's recorded history (SPEC §5).

    history.py    one attempt's history reshaped for reading, and :class:`Finding`
    curves.py     loss-curve detectors: plateau, oscillation, overfitting
    detectors.py  gradients, weights and units: exploding, vanishing, dead, saturated, lr
    curvature.py  sharpness: edge of stability, progressive sharpening
    limits.py     the Bayes limit of the data: nothing left to gain, or a bug
    findings.py   all detectors over a run, read from a store, and their text
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .findings import diagnose as diagnose
from .findings import diagnose_path as diagnose_path
from .findings import format_findings as format_findings
from .history import Finding as Finding

__all__ = ["Finding", "diagnose", "diagnose_path", "format_findings"]


class _CallablePackage(types.ModuleType):
    """``mlplab.diagnose`` is both this package and the function: once any submodule is
    imported, Python binds the name on ``mlplab`` to the package, so the package calls
    the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Finding]:
        return diagnose(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
