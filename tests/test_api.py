"""The public API is pinned: `import mlplab` and every documented name keep working, each
package's re-exported names resolve, and `import mlplab` stays light (no torch)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mlplab

PUBLIC = ["ConfigError", "Dataset", "Finding", "Probe", "RunConfig", "Store", "StoreError",
          "build_mlp", "build_report", "diagnose", "from_dict", "landscape", "load_config",
          "load_data", "load_model", "lr_find", "open", "resolve_head", "run_config", "run_sweep",
          "to_dict", "train", "train_cohort", "with_overrides"]
PACKAGES = ["model", "optim", "engine", "probe", "diagnose", "store", "figures", "report",
            "demo", "sweep", "stats", "dashboard", "landscape", "notebook", "export"]


def test_the_documented_names_are_exactly_these():
    assert mlplab.__all__ == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(mlplab, name) is not None, name
    assert callable(mlplab.diagnose) and callable(mlplab.Probe)


def test_diagnose_stays_callable_once_its_package_is_imported():
    importlib.import_module("mlplab.diagnose.history")
    assert callable(mlplab.diagnose)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlplab.nope  # noqa: B018


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_says_what_it_is_for_and_its_names_resolve(name):
    pkg = importlib.import_module(f"mlplab.{name}")
    assert pkg.__doc__ and len(pkg.__doc__.split()) >= 10, f"mlplab.{name} has no description"
    for export in getattr(pkg, "__all__", []):
        assert getattr(pkg, export) is not None, f"mlplab.{name}.{export}"


def test_import_mlplab_and_config_load_no_torch():
    code = ("import sys, mlplab, mlplab.config, mlplab.optim, mlplab.stats; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
