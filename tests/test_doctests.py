"""Every runnable example in mlplab's docstrings runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mlplab

MODULES = sorted(m.name for m in pkgutil.walk_packages(mlplab.__path__, "mlplab.")
                 if m.name != "mlplab.__main__")
# examples that start a worker process or draw a report's PNGs: seconds each
SLOW = {"mlplab.sweep.driver", "mlplab.report.build"}


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
                                  for m in MODULES])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
