"""mlplab: train, debug and sweep small fully-connected networks in PyTorch.

Heavy modules (torch, matplotlib, Dash, Ray) load only when a name that needs them is
first used, so ``import mlplab`` and the CLI start fast.

>>> import mlplab
>>> cfg = mlplab.from_dict({"data": {"name": "xor"}})
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlplab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
