"""A store's runs exported to the trackers people already use (each an optional extra).

    runs.py         the runs selected and read once, series tagged, configs flattened
    tensorboard.py  event folders per run, HParams experiment (``mlplab[tensorboard]``)
    mlflow.py       one MLflow run per run, idempotent (``mlplab[mlflow]``)
"""

from __future__ import annotations

from .mlflow import export_mlflow as export_mlflow
from .runs import ExportResult as ExportResult
from .tensorboard import export_tensorboard as export_tensorboard

__all__ = ["ExportResult", "export_mlflow", "export_tensorboard"]
