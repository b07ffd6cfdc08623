"""The epoch curves kept in the index (mlplab.store.curves): equal to what each run's
metrics.parquet gives, written by every writer (a sweep's encoded units included), and a
store without them (written before the table existed) still reads the same figures."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3

import numpy as np
import pytest

from mlplab.config import from_dict
from mlplab.engine.cohort import train_cohort
from mlplab.figures.data_store import first_attempt_curve, load_store_figdata
from mlplab.metrics import EPOCH_METRICS
from mlplab.store.check import check_store
from mlplab.store.store import Store
from mlplab.sweep.worker import UnitResult

import figstores


def cohort_configs(n: int = 4) -> list:
    """XOR runs of one cohort; a short patience so that some restart."""
    return [from_dict({"name": f"c{i}", "data": {"name": "xor", "n": 48},
                       "model": {"hidden": [4]},
                       "train": {"optimizer": "adam", "lr": 0.05 * (i + 1), "epochs": 12,
                                 "batch_size": 0, "seed": i},
                       "stopping": {"patience": 3, "restarts": 1, "target": None},
                       "probe": {"boundary_snapshots": 2}}) for i in range(n)]


def assert_index_equals_parquet(store: Store, run_ids: list[str]) -> None:
    for metric in EPOCH_METRICS:
        kept = store.curves(metric)
        for run_id in run_ids:
            from_file = first_attempt_curve(store, run_id, metric)
            assert len(from_file) > 0
            assert kept[run_id].dtype == from_file.dtype == np.float64
            np.testing.assert_array_equal(kept[run_id], from_file)     # exact, nan included


def test_a_sweeps_encoded_units_keep_curves_equal_to_their_parquet(tmp_path) -> None:
    ids = [f"r{i}" for i in range(4)]
    records = train_cohort(cohort_configs(), run_ids=ids)
    result = UnitResult(0, list(records)).encoded()       # what a sweep's worker sends
    assert all(len(r.metrics) == 0 for r in result.records)          # slimmed
    store = Store(tmp_path)
    store.write_runs(result.records, sweep_id="s", files=result.files, curves=result.curves)
    assert_index_equals_parquet(store, ids)
    assert check_store(tmp_path).damaged == []


def test_a_cohorts_curves_equal_each_runs_own_rows(tmp_path) -> None:
    """epoch_curves_of works out where the epoch rows are once for tables whose key columns
    are equal (runs without a restart) and again where they differ (a restart)."""
    from mlplab.metrics import to_tables
    from mlplab.store.curves import epoch_curves_of

    records = train_cohort(cohort_configs(6), run_ids=[f"r{i}" for i in range(6)])
    tables = to_tables([r.metrics for r in records])
    keys = [t.select(["attempt", "epoch", "scope", "metric"]) for t in tables]
    same = [a.equals(b) for a, b in zip(keys, keys[1:])]
    assert any(same) and not all(same)                  # both paths taken
    for table, got in zip(tables, epoch_curves_of(tables, attempts=(0, 1))):
        frame = table.to_pandas()
        rows = frame[(frame.scope == "epoch") & frame.attempt.isin([0, 1])]
        want = {(int(a), str(m)): g.sort_values("epoch", kind="stable")["value"].to_numpy()
                for (a, m), g in rows.groupby(["attempt", "metric"], observed=True)}
        assert list(got) == sorted(want) and len(want) > 0
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


def test_write_run_keeps_curves_equal_to_its_parquet(tmp_path) -> None:
    records = train_cohort(cohort_configs(2), run_ids=["a", "b"])
    store = Store(tmp_path)
    for rec in records:
        store.write_run(rec)
    assert_index_equals_parquet(store, ["a", "b"])
    store.write_run(records[0])                    # a rewrite replaces, never duplicates
    with sqlite3.connect(tmp_path / "mlplab.sqlite") as db:
        (n,) = db.execute("SELECT count(*) FROM curves WHERE run_id = 'a'").fetchone()
    assert n == len(EPOCH_METRICS)


def figdata_arrays(store: Store) -> list:
    data = load_store_figdata(store)
    assert data.comparison is not None
    return [dataclasses.astuple(c) for c in data.comparison.curves]


@pytest.mark.parametrize("old", ["rows missing", "no table"])
def test_a_store_without_kept_curves_reads_the_same_figures(tmp_path_factory, tmp_path, old) -> None:
    src = figstores.built(tmp_path_factory, "many")
    root = tmp_path / "store"
    shutil.copytree(src, root)
    expected = figdata_arrays(Store(src, readonly=True))
    with sqlite3.connect(root / "mlplab.sqlite") as db:
        db.execute("DELETE FROM curves" if old == "rows missing" else "DROP TABLE curves")
    db.close()
    assert Store(root, readonly=True).curves("val_loss") == {}
    got = figdata_arrays(Store(root, readonly=True))      # read-only: the table is not made
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        for x, y in zip(a, b):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            elif isinstance(x, float) and np.isnan(x):
                assert np.isnan(y)
            else:
                assert x == y


def test_store_figures_do_not_open_run_files_when_curves_are_kept(tmp_path_factory, monkeypatch) -> None:
    store = Store(figstores.built(tmp_path_factory, "many"), readonly=True)

    def no_parquet(*args, **kwargs):
        raise AssertionError("a store figure read a metrics.parquet")

    monkeypatch.setattr("pandas.read_parquet", no_parquet)
    assert load_store_figdata(store).comparison is not None


def test_the_table_path_writes_the_same_parquet_as_the_frame_path() -> None:
    from mlplab.metrics import MetricsLog, parquet_bytes

    records = train_cohort(cohort_configs(2), run_ids=["a", "b"])
    for log in [r.metrics for r in records] + [MetricsLog()]:
        assert parquet_bytes(log.to_table()) == parquet_bytes(log.to_frame())
