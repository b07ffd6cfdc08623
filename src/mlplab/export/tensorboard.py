"""A store as TensorBoard event files: ``OUT/<run-id>/`` per run, ``OUT/`` itself holding
the HParams experiment (the swept keys and the metrics), so TensorBoard's HParams table
and parallel-coordinates views compare the runs of a sweep.

Per run:

- every series of ``metrics.parquet`` as a scalar tag (:mod:`mlplab.export.runs` names
  them), at its stored steps; the values as TensorBoard keeps scalars, float32 (its
  default loader reads no other kind: the exact float64 values are in the store);
- weight histograms of the kept attempt from its safetensors: ``weights/<layer>/<param>``
  at step 0 (the initial network) and at the attempt's last step (the last network),
  ``best_weights/<layer>/<param>`` at the step that ended the kept (best) epoch;
- the decision-boundary snapshots as images, tag ``decision_boundary``, each at the
  optimizer step that ended its snapshot epoch (colour: the class the network predicts,
  paler where it is less sure);
- the run's outcome from the index as ``summary/<column>`` at the kept attempt's last
  step (``summary/val_loss`` is the kept network's, what ``mlplab runs`` shows);
- the HParams session: every flattened configuration key, and its end status. The
  HParams view's metrics are the ``summary/`` values.

Written with TensorBoard's own ``EventFileWriter`` and protobufs (the ``tensorboard``
extra, no TensorFlow): one event per step holds every value of that step, which keeps
the files small and the export fast. Exporting again replaces the event files mlplab
wrote before.
"""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from mlplab.metrics import layer_name, natural_key
from mlplab.store.store import Store

from .runs import (WHICH, Damaged, ExportResult, RunData, epoch_end_steps, flat_params,
                   read_boundary, read_runs, read_weights, select_runs, step_times,
                   summary_values, swept_keys, tagged_series)

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary

# the HParams view's metrics: the kept network's, as mlplab runs shows them
HPARAM_METRICS = ("summary/val_loss", "summary/val_acc", "summary/test_loss", "summary/test_acc",
                  "summary/train_loss", "summary/restarts")
EVENTS_PREFIX = "events.out.tfevents."
# class colours of the boundary images (matplotlib's tab10, as the report's figures)
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]], dtype=np.float64)
IMAGE_SCALE = 4      # boundary grid cells -> pixels (a 48-point grid is a 192-pixel image)


def export_tensorboard(store_dir: str | Path, out: str | Path,
                       filters: Iterable[str] = ()) -> ExportResult:
    """Write the store's runs (those matching ``filters``, ``mlplab runs --filter``
    syntax) as TensorBoard event folders under ``out``; view them with ``tensorboard
    --logdir OUT``.

    >>> import tempfile, mlplab
    >>> cfg = mlplab.from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3}})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ids = mlplab.run_config(cfg, d + "/store", report=False, quiet=True)
    ...     len(export_tensorboard(d + "/store", d + "/tb").exported)
    1
    """
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    store = Store(store_dir, readonly=True)
    out = Path(out)
    result = ExportResult(str(out))
    runs = list(read_runs(store, select_runs(store, filters), result))
    keys = swept_keys(r.info for r in runs) or \
        [k for k in (flat_params(runs[0].info.config) if runs else {}) if k != "name"]
    values = _hparam_values(runs, keys)
    for run, hparams in zip(runs, values):
        folder = out / run.info.run_id
        _clear_events(folder)
        folder.mkdir(parents=True, exist_ok=True)
        writer = EventFileWriter(str(folder), max_queue_size=1000)
        try:
            _write_run(writer, store, run, hparams)
        except Damaged as e:        # a weights or boundary file: the run goes, not the export
            warnings.warn(f"mlplab: skipped run '{run.info.run_id}': {e}", stacklevel=2)
            result.skipped[run.info.run_id] = str(e)
        finally:
            writer.close()
        if run.info.run_id in result.skipped:
            _clear_events(folder)
        else:
            result.exported.append(run.info.run_id)
    _clear_events(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(out))
    metrics = [m for m in HPARAM_METRICS if any(m in summary_values(r.info) for r in runs)]
    exported = [v for r, v in zip(runs, values) if r.info.run_id in result.exported]
    writer.add_event(_event(_experiment(keys, exported, metrics), time.time(), 0))
    writer.close()
    return result


def _clear_events(folder: Path) -> None:
    """Remove the event files of an earlier export from ``folder`` (only those)."""
    if folder.is_dir():
        for path in folder.glob(EVENTS_PREFIX + "*"):
            path.unlink()


def _write_run(writer: Any, store: Store, run: RunData, hparams: dict[str, Any]) -> None:
    from tensorboard.plugins.hparams import summary_v2

    info = run.info
    writer.add_event(_event(summary_v2.hparams_pb(hparams, trial_id=info.run_id,
                                                  start_time_secs=info.created), info.created, 0))
    events: dict[int, Summary] = {}          # step -> every value of that step
    for tag, steps, values in tagged_series(run):
        for step, value in zip(steps.tolist(), values.tolist()):
            _scalar(events.setdefault(step, _summary()), tag, value)
    attempt = next((a for a in store.attempts(info.run_id) if a.attempt == run.kept), None)
    last_step = attempt.steps if attempt else max(events, default=0)
    for tag, value in summary_values(info).items():
        _scalar(events.setdefault(last_step, _summary()), tag, value)
    ends = epoch_end_steps(run, run.kept)
    best_step = ends.get(attempt.best_epoch, last_step) if attempt else last_step
    for which, step in zip(WHICH, (0, best_step, last_step)):
        group = "best_weights" if which == "best" else "weights"
        state = read_weights(run, which)
        names = _layer_names(run, state)
        for key, array in sorted(state.items(), key=lambda kv: natural_key(kv[0])):
            prefix, _, param = key.rpartition(".")
            _histogram(events.setdefault(step, _summary()),
                       f"{group}/{names.get(prefix, prefix)}/{param}", array)
    boundary = read_boundary(store, run)
    if boundary is not None:
        for epoch, probs in zip(boundary["epochs"].tolist(), boundary["probs"]):
            _image(events.setdefault(ends.get(int(epoch), int(epoch)), _summary()),
                   "decision_boundary", probs)
    times = step_times(info, len(events))
    for (step, summary), wall in zip(sorted(events.items()), times.tolist()):
        writer.add_event(_event(summary, wall, step))
    writer.add_event(_event(_session_end(info), info.finished or info.created, last_step))


def _layer_names(run: RunData, keys: Iterable[str]) -> dict[str, str]:
    """State-dict prefix -> layer name: ``"0"``, ``"2"`` -> ``layer1``, ``layer2`` for
    mlplab's MLP (its Linear layers in order, as the series name them); a Probe's module
    names as they are."""
    if run.info.source == "probe":
        return {}
    prefixes = sorted({key.rpartition(".")[0] for key in keys}, key=natural_key)
    return {p: layer_name(i) for i, p in enumerate(prefixes)}


def _hparam_values(runs: list[RunData], keys: list[str]) -> list[dict[str, Any]]:
    """Each run's flattened configuration, the values of a key one type across runs (the
    HParams plugin wants one type a key): bools, numbers, else text."""
    flats = [flat_params(r.info.config) for r in runs]
    for key in {k for f in flats for k in f}:
        present = [f[key] for f in flats if key in f]
        if all(isinstance(v, bool) for v in present):
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            for f in flats:
                if key in f:
                    f[key] = float(f[key])
            continue
        for f in flats:
            if key in f:
                f[key] = str(f[key])
    for f in flats:           # a key a run lacks (an older config) reads as missing
        for key in keys:
            f.setdefault(key, "none" if any(isinstance(g.get(key), str) for g in flats) else
                         float("nan"))
    return flats


def _experiment(keys: list[str], values: list[dict[str, Any]], metrics: list[str]) -> "Summary":
    """The HParams experiment: every key with the values the runs took, the metrics."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    hparams = []
    for key in keys:
        seen = sorted({v[key] for v in values if key in v and v[key] == v[key]},
                      key=lambda x: (str(type(x)), x))
        numeric = seen and all(isinstance(v, float) for v in seen)
        domain = (hp.RealInterval(min(seen), max(seen)) if numeric and len(seen) > 20 else
                  hp.Discrete(seen) if seen else None)
        hparams.append(hp.HParam(key, domain))
    return hp.hparams_config_pb(hparams, [hp.Metric(m, display_name=m) for m in metrics],
                                time_created_secs=time.time())


def _session_end(info: Any) -> "Summary":
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    status = {"done": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
              }.get(info.status, api_pb2.STATUS_UNKNOWN)
    data = plugin_data_pb2.HParamsPluginData(session_end_info=plugin_data_pb2.SessionEndInfo(
        status=status, end_time_secs=info.finished or info.created))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(data))
    return summary


def _summary() -> "Summary":
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary()


def _event(summary: "Summary", wall_time: float, step: int) -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, step=int(step), summary=summary)


def _scalar(summary: "Summary", tag: str, value: float) -> None:
    """A scalar as ``simple_value`` (float32): the form every TensorBoard reader takes;
    its default loader reads no float64 scalar."""
    summary.value.add(tag=tag, simple_value=value)


def _histogram(summary: "Summary", tag: str, array: np.ndarray) -> None:
    """A histogram of ``array``'s values (up to 30 equal-width buckets)."""
    from tensorboard.compat.proto import summary_pb2

    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return
    counts, edges = np.histogram(flat, bins=max(1, min(30, flat.size)))
    summary.value.add(tag=tag, histo=summary_pb2.HistogramProto(
        min=float(flat.min()), max=float(flat.max()), num=float(flat.size),
        sum=float(flat.sum()), sum_squares=float(np.square(flat).sum()),
        bucket_limit=edges[1:].tolist(), bucket=counts.astype(np.float64).tolist()))


def boundary_rgb(probs: np.ndarray) -> np.ndarray:
    """``probs [G, G, C]`` (C = 1: P(class 1)) -> ``[H, W, 3]`` uint8, the predicted
    class's colour paler where the network is less sure, first grid row at the bottom.

    >>> boundary_rgb(np.array([[[0.0], [1.0]]])).shape
    (4, 8, 3)
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[-1] == 1:
        p = np.concatenate([1 - p, p], axis=-1)                 # [G, G, 2]
    k = p.shape[-1]
    cls = p.argmax(-1)                                          # [G, G]
    sure = (p.max(-1) - 1 / k) / (1 - 1 / k)                    # 0 at a tie, 1 when certain
    rgb = 255 - sure[..., None] * (255 - PALETTE[cls % len(PALETTE)])
    rgb = np.kron(rgb[::-1], np.ones((IMAGE_SCALE, IMAGE_SCALE, 1)))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _image(summary: "Summary", tag: str, probs: np.ndarray) -> None:
    from PIL import Image

    from tensorboard.compat.proto import summary_pb2

    rgb = boundary_rgb(probs)
    png = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(png, format="PNG")
    summary.value.add(tag=tag, image=summary_pb2.Summary.Image(
        height=rgb.shape[0], width=rgb.shape[1], colorspace=3, encoded_image_string=png.getvalue()))
