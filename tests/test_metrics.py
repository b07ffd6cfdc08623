"""MetricsLog.add_block against the per-series add_arrays it replaces in the cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlplab.metrics import COLUMNS, MetricsLog, _column


@pytest.mark.parametrize("s", [0, 1, 7])
def test_add_block_equals_add_arrays(s: int) -> None:
    rng = np.random.default_rng(0)
    columns = [("", "loss"), ("layer1", "grad_norm_w"), ("layer2", "grad_norm_b")]
    attempt = rng.integers(0, 3, s)
    step, epoch = np.arange(s) * 5 + 1, np.arange(s) // 2
    values = rng.normal(size=(len(columns), s))
    values[0, :min(s, 1)] = np.nan
    block, arrays = MetricsLog(), MetricsLog()
    for log in (block, arrays):
        log.add(0, 0, 0, "final", "", "test_loss", 0.5)       # mixed with scalar rows
    block.add_block(attempt, step, epoch, "step", columns, values)
    for (layer, metric), row in zip(columns, values):
        arrays.add_arrays(attempt, step, epoch, "step", layer, metric, row)
    assert len(block) == len(arrays) == 1 + len(columns) * s
    expect = arrays.to_frame()
    pd.testing.assert_frame_equal(block.to_frame(), expect, check_exact=True)
    assert list(expect.dtypes.astype(str))[:3] + [str(expect["value"].dtype)] == \
        ["int32", "int64", "int32", "float64"]
    extended = MetricsLog()
    extended.extend(block)
    pd.testing.assert_frame_equal(extended.to_frame(), expect, check_exact=True)


def test_add_block_of_no_series_adds_nothing() -> None:
    log = MetricsLog()
    log.add_block(np.zeros(3), np.zeros(3), np.zeros(3), "step", [], np.zeros((0, 3)))
    assert len(log) == 0 and log.to_frame().empty


def test_add_block_without_copy_keeps_a_float32_view_and_converts_in_to_frame() -> None:
    rng = np.random.default_rng(1)
    columns = [("", "loss"), ("layer1", "grad_norm_w")]
    series = rng.normal(size=(len(columns), 3, 6)).astype(np.float32)     # [M, K, S]
    step = np.arange(6)
    kept, copied = MetricsLog(), MetricsLog()
    view = series[:, 1]                                                   # [M, S], strided
    kept.add_block(np.zeros(6), step, step // 2, "step", columns, view, copy=False)
    copied.add_block(np.zeros(6), step, step // 2, "step", columns, view)
    assert kept._chunks[0]["value"].base is series          # no copy made when added
    assert len(kept) == len(copied) == 12
    frame = kept.to_frame()
    pd.testing.assert_frame_equal(frame, copied.to_frame(), check_exact=True)
    assert frame["value"].dtype == np.float64
    np.testing.assert_array_equal(frame.query("metric == 'loss'").value, view[0])
    ints = MetricsLog()                      # integer values are converted even so
    ints.add_block(np.zeros(2), [0, 1], [0, 0], "step", [("", "loss")], np.array([[1, 2]]),
                   copy=False)
    assert ints.to_frame()["value"].tolist() == [1.0, 2.0]


def test_a_block_whose_steps_lie_together_expands_step_by_step_to_the_same_frame() -> None:
    rng = np.random.default_rng(2)
    columns = [("", "loss"), ("layer1", "grad_norm_w"), ("layer1", "dist_init_b")]
    rows = rng.normal(size=(5, 4, len(columns))).astype(np.float32)      # [S, K, M]
    step = np.arange(5) * 3
    for k, rows_of_k in ((1, slice(None)), (2, np.array([0, 2, 3]))):
        view = rows[rows_of_k, k].T                                          # [M, S_k]
        kept, copied = MetricsLog(), MetricsLog()
        kept.add_block(np.zeros(len(view[0])), step[rows_of_k], step[rows_of_k] // 6, "step",
                       columns, view, copy=False)
        copied.add_block(np.zeros(len(view[0])), step[rows_of_k], step[rows_of_k] // 6, "step",
                         columns, np.ascontiguousarray(view))
        assert kept._chunks[0]["by_step"] and not copied._chunks[0]["by_step"]
        assert kept._chunks[0]["value"].base is not None       # a view, not a copy
        pd.testing.assert_frame_equal(kept.to_frame(), copied.to_frame(), check_exact=True)
        np.testing.assert_array_equal(
            kept.to_frame().query("metric == 'grad_norm_w'").value, rows[rows_of_k, k, 1])


def test_to_frame_equals_a_sort_of_every_record_by_its_strings() -> None:
    # scalar rows, per-series arrays and blocks in both memory orders, with strings that
    # sort differently by code point than by first appearance
    rng = np.random.default_rng(3)
    log = MetricsLog()
    for i in range(40):
        metric = ["val_loss", "Zeta", "act_mean", ""][i % 4]
        log.add(i % 2, int(rng.integers(0, 9)), 0, "final", "layer10" if i % 3 else "",
                metric, float(i))
    log.add_arrays(1, np.arange(6), 0, "epoch", "", "train_loss", rng.normal(size=6))
    rows = rng.normal(size=(5, 2, 3)).astype(np.float32)                   # [S, K, M]
    columns = [("layer2", "grad_norm_w"), ("", "loss"), ("layer1", "grad_norm_w")]
    log.add_block(np.zeros(5), np.arange(5), np.zeros(5), "step", columns, rows[:, 1].T,
                  copy=False)
    log.add_block(np.ones(4), np.arange(4) * 2, np.zeros(4), "act", columns[:2],
                  rng.normal(size=(2, 4)))
    frame = log.to_frame()
    # each chunk's records in its own order: chunk-wide strings repeated, blocks expanded
    want = pd.concat([pd.DataFrame({c: np.full(len(chunk["value"].reshape(-1)), chunk[c],
                                               dtype=object) if isinstance(chunk[c], str)
                                    else _column(chunk, c) for c in COLUMNS})
                      for chunk in log._chunks], ignore_index=True)
    for c in ("scope", "layer", "metric"):
        want[c] = want[c].astype(str)
    want = want.sort_values(["attempt", "step", "scope", "metric", "layer"], kind="stable",
                            ignore_index=True)
    pd.testing.assert_frame_equal(frame, want, check_exact=True)
    assert len(frame) == 40 + 6 + 15 + 8


def test_to_tables_of_logs_alike_and_not_equals_each_logs_frame() -> None:
    """Logs with the same rows share one sort in to_tables; a log whose steps, scalar
    rows or series differ is sorted apart; each table reads back as the log's frame."""
    from mlplab.metrics import parquet_bytes, to_tables

    rng = np.random.default_rng(1)
    columns = [("layer1", "grad_norm_w"), ("", "loss")]
    step = np.array([3, 1, 2])

    def log_of(steps: np.ndarray, final: float, series=columns) -> MetricsLog:
        log = MetricsLog()
        log.add_block(np.zeros(3), steps, np.zeros(3), "step", series,
                      rng.normal(size=(len(series), 3)))
        log.add(0, 3, 0, "final", "", "test_loss", final)
        return log

    logs = [log_of(step, 0.1), log_of(step.copy(), 0.2), log_of(step[::-1], 0.3),
            log_of(step, 0.4, columns[::-1]), MetricsLog(), log_of(step, 0.5)]
    other = MetricsLog()
    other.add(1, 0, 0, "final", "", "test_acc", 0.5)     # a scalar row that differs
    logs[1].extend(MetricsLog())
    logs.append(other)
    tables = to_tables(logs)
    assert len(tables) == len(logs)
    for log, table in zip(logs, tables):
        frame = log.to_frame()
        pd.testing.assert_frame_equal(table.to_pandas(), frame, check_exact=True)
        assert parquet_bytes(table) == parquet_bytes(frame)
