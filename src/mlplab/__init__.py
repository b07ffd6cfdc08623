"""mlplab: train, debug and sweep small fully-connected networks in PyTorch.

Heavy modules (torch, matplotlib, Dash, Ray) load only when a name that needs them is
first used, so ``import mlplab`` and the CLI start fast.

>>> import mlplab
>>> cfg = mlplab.from_dict({"data": {"name": "xor"}})
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "RunConfig": "config", "ConfigError": "config", "from_dict": "config",
    "load_config": "config_file", "with_overrides": "config", "to_dict": "config",
    "load_data": "data", "Dataset": "data",
    "build_mlp": "model", "resolve_head": "model",
    "train": "engine", "train_cohort": "engine", "run_config": "run",
    "Store": "store", "StoreError": "store", "load_model": "store",
    "open": "notebook",
    "Probe": "run", "diagnose": "diagnose", "Finding": "diagnose",
    "build_report": "report", "run_sweep": "sweep",
    "landscape": "landscape", "lr_find": "landscape",
}

__all__ = sorted(_EXPORTS)


def lazy_exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                 Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for the names ``table`` maps to
    the submodule that defines each: a name's module is imported when the name is first
    used, so importing the package (or a light module of it) imports none of them.

    >>> import mlplab
    >>> "Store" in dir(mlplab), mlplab.Store.__module__
    (True, 'mlplab.store.store')
    """
    def get(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{table[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def names() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return get, names


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
