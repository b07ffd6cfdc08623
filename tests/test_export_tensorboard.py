"""mlplab export tensorboard, read back with TensorBoard's own EventAccumulator: every
series at its stored steps with its stored values, the weight histograms and boundary
images present, the HParams experiment naming every swept key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlplab.cli import main
from mlplab.store.store import Store

import exportstores
from realparts import import_or_skip

import_or_skip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hp_metadata  # noqa: E402

from mlplab.export import export_tensorboard  # noqa: E402

pytestmark = pytest.mark.slow      # trains a small store (~10 s on a loaded 2-core machine)

EVERYTHING = {"tensors": 0, "histograms": 0, "images": 0, "scalars": 0}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, object]:
    root = tmp_path_factory.mktemp("export-tb")
    store = exportstores.build_store(root / "store")
    with pytest.warns(UserWarning, match=f"{exportstores.DAMAGED}.*metrics.parquet"):
        result = export_tensorboard(root / "store", root / "tb")
    return store, root / "tb", result


def accumulator(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance=EVERYTHING)
    acc.Reload()
    return acc


def test_every_series_at_its_stored_steps(exported) -> None:
    store, out, result = exported
    assert sorted(result.exported) == ["grid-0", "grid-1", "grid-2", "grid-restarts"]
    for run_id in result.exported:
        acc = accumulator(out / run_id)
        kept = store.run(run_id).best_attempt
        frame = store.metrics(run_id)
        tags = set()
        for (attempt, metric, layer), rows in frame.groupby(["attempt", "metric", "layer"]):
            tag = metric + (f"/{layer}" if layer else "")
            tag = tag if attempt == kept else f"attempt-{attempt}/{tag}"
            tags.add(tag)
            events = acc.Scalars(tag)
            rows = rows.sort_values("step", kind="stable")
            assert [e.step for e in events] == rows["step"].tolist(), tag
            got = np.array([e.value for e in events], dtype=np.float32)   # TensorBoard's scalars
            np.testing.assert_array_equal(got, rows["value"].to_numpy(np.float32), err_msg=tag)
        assert "grad_norm_w/layer1" in tags and "val_loss" in tags
        summary = {t for t in acc.Tags()["scalars"] if t.startswith("summary/")}
        assert tags == set(acc.Tags()["scalars"]) - summary
        info = store.run(run_id)
        assert acc.Scalars("summary/val_loss")[0].value == np.float32(info.val_loss)
        assert acc.Scalars("summary/test_acc")[0].value == np.float32(info.test_acc)
    assert any(t.startswith("attempt-0/") for t in accumulator(out / "grid-restarts").Tags()["scalars"])


def test_histograms_and_boundary_images(exported) -> None:
    store, out, _ = exported
    acc = accumulator(out / "grid-1")
    weights = store.weights("grid-1", which="init")
    init = acc.Histograms("weights/layer1/weight")
    assert init[0].step == 0 and init[0].histogram_value.num == weights["0.weight"].numel()
    assert init[0].histogram_value.max == pytest.approx(float(weights["0.weight"].max()))
    assert len(init) == 2 and len(acc.Histograms("best_weights/layer2/bias")) == 1
    images = acc.Images("decision_boundary")
    epochs = store.boundary("grid-1")["epochs"].tolist()
    assert len(images) == len(epochs) >= 2
    assert images[0].encoded_image_string.startswith(b"\x89PNG")
    ends = store.metrics("grid-1").query("scope == 'epoch'").groupby("epoch")["step"].max()
    assert [i.step for i in images] == [int(ends[e]) for e in epochs]


def test_hparams_list_every_swept_key(exported) -> None:
    _, out, _ = exported
    root = accumulator(out)
    content = root.SummaryMetadata(hp_metadata.EXPERIMENT_TAG).plugin_data.content
    experiment = hp_metadata.parse_experiment_plugin_data(content)
    assert set(exportstores.SWEPT) <= {h.name for h in experiment.hparam_infos}
    assert "summary/val_loss" in {m.name.tag for m in experiment.metric_infos}
    run = accumulator(out / "grid-2")
    start = hp_metadata.parse_session_start_info_plugin_data(
        run.SummaryMetadata(hp_metadata.SESSION_START_INFO_TAG).plugin_data.content)
    assert start.hparams["train.optimizer"].string_value == "adam"
    assert start.hparams["train.lr"].number_value == 0.05


def test_export_again_replaces_not_duplicates(exported, tmp_path: Path) -> None:
    store, out, _ = exported
    export_tensorboard(store.root, out, filters=["run_id=grid-0"])
    events = accumulator(out / "grid-0").Scalars("val_loss")
    assert len(events) == len(store.metrics("grid-0").query("metric == 'val_loss'"))


def test_cli_filter_and_bad_input(exported, tmp_path: Path, capsys) -> None:
    store, _, _ = exported
    assert main(["export", "tensorboard", str(store.root), str(tmp_path / "tb"),
                 "--filter", "train.optimizer=adam"]) == 0
    assert sorted(p.name for p in (tmp_path / "tb").iterdir() if p.is_dir()) == ["grid-2"]
    assert main(["export", "tensorboard", str(store.root), str(tmp_path / "x"),
                 "--filter", "nokey"]) == 2
    assert "--filter" in capsys.readouterr().err
    assert main(["export", "tensorboard", str(tmp_path / "none"), str(tmp_path / "y")]) == 2


def test_unreadable_weights_skip_the_run_not_the_export(exported, tmp_path: Path) -> None:
    import shutil

    store, _, _ = exported
    copy = tmp_path / "store"
    shutil.copytree(store.root, copy)
    weights = copy / "runs" / "grid-0" / "attempt-0.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    with pytest.warns(UserWarning, match="grid-0.*attempt-0.safetensors"):
        result = export_tensorboard(copy, tmp_path / "tb", filters=["status=done", "train.lr=0.05"])
    assert "grid-0" in result.skipped and "grid-2" in result.exported
    assert not list((tmp_path / "tb" / "grid-0").glob("events.*"))
