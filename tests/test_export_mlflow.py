"""mlplab export mlflow into a real local tracking store (SQLite in a temporary folder):
one MLflow run per mlplab run with its params, series, summary, tags and artifacts, and
a second export adds nothing. Telemetry is off (environment set by monkeypatch only) and
the tracking URI is passed as an argument, so nothing leaves the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.store.store import Store

import exportstores
from realparts import import_or_skip

pytestmark = [
    pytest.mark.slow,      # trains a small store and creates an MLflow database (~15 s)
    # MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"
                               ":DeprecationWarning"),
]

NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}

with pytest.MonkeyPatch.context() as mp:     # mlflow decides on telemetry as it imports
    for k, v in NO_TELEMETRY.items():
        mp.setenv(k, v)
    mlflow = import_or_skip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from mlplab.export import export_mlflow  # noqa: E402


@pytest.fixture(autouse=True)
def no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in NO_TELEMETRY.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("export-mlflow")
    store = exportstores.build_store(root / "store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in NO_TELEMETRY.items():
            mp.setenv(k, v)
        with pytest.warns(UserWarning, match=f"{exportstores.DAMAGED}.*metrics.parquet"):
            first = export_mlflow(root / "store", uri, experiment="grid")
    return store, uri, first, root


def runs_frame(uri: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow.search_runs(experiment_names=["grid"]).set_index("tags.mlplab.run_id")


def test_one_run_each_with_params_and_final_metrics(exported, monkeypatch) -> None:
    store, uri, first, root = exported
    done = ["grid-0", "grid-1", "grid-2", "grid-restarts"]
    assert sorted(first.exported) == sorted(done + [exportstores.FAILED])
    assert set(first.skipped) == {exportstores.DAMAGED}
    frame = runs_frame(uri, monkeypatch)
    assert sorted(frame.index) == sorted(first.exported)
    for run_id in done:
        info, row = store.run(run_id), frame.loc[run_id]
        assert row["status"] == "FINISHED" and row["tags.mlplab.status"] == "done"
        assert row["params.train.lr"] == str(info.config["train"]["lr"])
        assert row["params.train.optimizer"] == info.config["train"]["optimizer"]
        assert row["params.model.hidden"] == "4"
        assert row["metrics.summary/val_loss"] == info.val_loss
        assert row["metrics.test_acc"] == info.test_acc
        assert row["tags.mlplab.end_reason"] == info.end_reason
        assert row["tags.mlplab.sweep_id"] == "sw"
        assert row["start_time"].timestamp() == pytest.approx(info.created, abs=1e-3)
        kept = store.metrics(run_id).query(f"attempt == {info.best_attempt}")
        assert row["metrics.val_loss"] == kept.query("metric == 'val_loss'")["value"].iloc[-1]
    failed = frame.loc[exportstores.FAILED]
    assert failed["status"] == "FAILED" and failed["params.train.lr"] == "0.05"
    assert root.joinpath("mlartifacts").is_dir()          # beside the database, not in cwd


def test_series_steps_and_artifacts(exported) -> None:
    store, uri, _, _ = exported
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("grid").experiment_id],
                                "tags.`mlplab.run_id` = 'grid-restarts'")
    frame = store.metrics("grid-restarts")
    assert run.data.tags["mlplab.best_attempt"] == "1"
    for attempt, metric, layer, tag in [(1, "grad_norm_w", "layer1", "grad_norm_w/layer1"),
                                        (0, "val_loss", "", "attempt-0/val_loss")]:
        rows = frame.query(f"attempt == {attempt} and metric == '{metric}' and layer == '{layer}'")
        history = sorted(client.get_metric_history(run.info.run_id, tag), key=lambda m: m.step)
        assert [m.step for m in history] == sorted(rows["step"].tolist())
        assert [m.value for m in history] == rows.sort_values("step", kind="stable")["value"].tolist()
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "attempt-0.safetensors", "attempt-1.safetensors"} <= names


def test_second_export_adds_nothing(exported, monkeypatch, capsys) -> None:
    store, uri, first, _ = exported
    before = len(runs_frame(uri, monkeypatch))
    with pytest.warns(UserWarning, match=exportstores.DAMAGED):
        assert main(["export", "mlflow", str(store.root), "--tracking-uri", uri,
                     "--experiment", "grid", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"exported": []' in out and all(r in out for r in first.exported)
    assert len(runs_frame(uri, monkeypatch)) == before


def test_bad_tracking_uri_is_a_user_error(exported, capsys) -> None:
    store = exported[0]
    assert main(["export", "mlflow", str(store.root), "--tracking-uri", "nope://x"]) == 2
    assert "--tracking-uri" in capsys.readouterr().err
