"""A store as MLflow runs: one MLflow run per mlplab run, in one experiment.

Each run gets the flattened configuration as params (``train.lr``, ``model.hidden`` as
``"8,8"``), every series of ``metrics.parquet`` as a metric at its stored steps (the tags
of :mod:`mlplab.export.runs`), the run's summary from the index as ``summary/<column>``
(``summary/val_loss`` is the kept network's, the value ``mlplab runs`` shows), tags for
its identity and outcome (``mlplab.run_id``, sweep, stage, seed, status, end reason,
restarts), its start and end times, and as artifacts its ``config.json``, its figures and
every attempt's safetensors.

Exporting again adds nothing: the mlplab run id is a tag, and the experiment's runs are
looked up by it first. A run already there is left as it is unless its status changed
in the store or its export did not finish (then it is replaced). Values go in batches
(MLflow's ``log_batch``: up to 1000 metrics a call), so a few hundred runs take seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from mlplab.config import ConfigError
from mlplab.store.store import Store

from .runs import (ExportResult, RunData, flat_params, read_runs, run_tags, select_runs,
                   step_times, summary_values, tagged_series)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_ID_TAG = "mlplab.run_id"
STATUS = {"done": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}   # what is exported
METRICS_PER_CALL = 1000        # MLflow's limits on one log_batch
PARAMS_PER_CALL = 100
MAX_PARAM_VALUE = 6000


def export_mlflow(store_dir: str | Path, tracking_uri: str, experiment: str | None = None,
                  artifact_location: str | None = None,
                  filters: Iterable[str] = ()) -> ExportResult:
    """Export the store's runs (those matching ``filters``, the ``mlplab runs --filter``
    syntax; done, failed and interrupted ones) into the MLflow tracking store at
    ``tracking_uri``, experiment ``experiment`` (default: the store folder's name).
    A new experiment keeps its artifacts at ``artifact_location``; for a ``sqlite:///``
    tracking URI the default is an ``mlartifacts`` folder beside the database.

    Example (not run here: MLflow sets up a new database in a few seconds)::

        export_mlflow("runs/sweep", "sqlite:///mlflow.db")
        mlflow.search_runs(experiment_names=["sweep"], filter_string="params.train.lr = '0.1'")
    """
    store = Store(store_dir, readonly=True)
    name = experiment or store.root.resolve().name
    logging.getLogger("alembic").setLevel(logging.WARNING)   # a new database's migrations
    client, experiment_id = _experiment(tracking_uri, name, artifact_location)
    result = ExportResult(f"{tracking_uri} (experiment '{name}')")
    there = _exported_runs(client, experiment_id)
    for run in read_runs(store, select_runs(store, filters), result, statuses=tuple(STATUS)):
        old = there.get(run.info.run_id)
        if old is not None:
            if (old.info.status in STATUS.values()        # its export finished
                    and old.data.tags.get("mlplab.status") == run.info.status):
                result.unchanged.append(run.info.run_id)
                continue
            client.delete_run(old.info.run_id)     # an unfinished export, or an older status
        _export_run(client, experiment_id, run)
        result.exported.append(run.info.run_id)
    return result


def _experiment(uri: str, name: str, location: str | None) -> "tuple[MlflowClient, str]":
    """A client of the tracking store at ``uri`` and the id of experiment ``name``,
    created if new; a bad URI or a deleted experiment is a user error naming the flag."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
    except MlflowException as e:
        raise ConfigError("--tracking-uri", uri, "sqlite:///PATH.db, a folder, file:///PATH or"
                          f" http(s)://HOST:PORT of an MLflow server ({e.message})") from None
    if found is None:
        return client, client.create_experiment(name, artifact_location=location or _beside(uri))
    if found.lifecycle_stage != "active":
        raise ConfigError("--experiment", name, "an experiment not deleted in that tracking "
                          "store (restore it in MLflow, or name another)")
    return client, found.experiment_id


def _beside(uri: str) -> str | None:
    """``mlartifacts`` next to a sqlite database (MLflow's own default is relative to the
    current folder); None (the server's choice) for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()


def _exported_runs(client: "MlflowClient", experiment_id: str) -> dict[str, Any]:
    """mlplab run id -> the MLflow run exported from it (live runs only), one paged query."""
    out: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], f"tags.`{RUN_ID_TAG}` LIKE '%'",
                                  max_results=1000, page_token=token)
        for r in page:
            out.setdefault(r.data.tags[RUN_ID_TAG], r)
        token = page.token
        if not token:
            return out


def _export_run(client: "MlflowClient", experiment_id: str, run: RunData) -> None:
    from mlflow.entities import Metric, Param, RunTag

    info = run.info
    start_ms = int((info.created or 0) * 1000)
    created = client.create_run(experiment_id, start_time=start_ms, run_name=info.run_id,
                                tags={RUN_ID_TAG: info.run_id})
    mlflow_id = created.info.run_id
    params = [Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in flat_params(info.config).items()]
    tags = [RunTag(k, v) for k, v in run_tags(info).items()]
    for chunk in _chunks(params, PARAMS_PER_CALL):
        client.log_batch(mlflow_id, params=chunk)
    for chunk in _chunks(tags, PARAMS_PER_CALL):
        client.log_batch(mlflow_id, tags=chunk)
    for chunk in _chunks(list(_metrics(run, Metric)), METRICS_PER_CALL):
        client.log_batch(mlflow_id, metrics=chunk)
    if run.finished:
        for part in sorted(run.folder.iterdir()):
            if part.is_dir() and (part.name == "figures" or part.name.startswith("attempt-")):
                client.log_artifacts(mlflow_id, str(part), part.name)   # older runs' attempt folders
            elif part.name.startswith("attempt-") and part.suffix == ".safetensors":
                client.log_artifact(mlflow_id, str(part))               # an attempt's tensors
        client.log_artifact(mlflow_id, str(run.folder / "config.json"))
    end_ms = int((info.finished or info.created or 0) * 1000)
    client.set_terminated(mlflow_id, STATUS[info.status], end_time=max(end_ms, start_ms))


def _metrics(run: RunData, metric: Any) -> Iterator[Any]:
    """Every series value, then the run's summary columns, as MLflow ``Metric``s
    (timestamps in ms spread over the run's time: the store keeps no per-value time)."""
    series = list(tagged_series(run))
    times = step_times(run.info, sum(len(s) for _, s, _ in series) or 1)
    ms = (times * 1000).astype("int64").tolist()
    i = 0
    last_step = 0
    for tag, steps, values in series:
        for step, value in zip(steps.tolist(), values.tolist()):
            yield metric(tag, value, ms[i], step)
            i += 1
        if not tag.startswith("attempt-"):
            last_step = max(last_step, steps[-1].item() if len(steps) else 0)
    for key, value in summary_values(run.info).items():
        yield metric(key, value, ms[-1], last_step)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
