"""Datasets: the seeded generators, splits, standardisation and the user's CSV / NPZ files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mlplab.config import DATASETS, ConfigError, DataConfig
from mlplab.data import load_data, split_indices

# One table of variants: generator settings and the number of classes they make.
_DATASETS_UNDER_TEST = [
    ({"name": "xor"}, 2),
    ({"name": "gaussians", "k": 5}, 5),
    ({"name": "gaussians", "k": 3, "spread": 0.3}, 3),
    ({"name": "circles", "rings": 3}, 3),
    ({"name": "spiral", "arms": 4}, 4),
    ({"name": "moons"}, 2),
    ({"name": "checkerboard", "cells": 3}, 2),
]
_IDS = ["-".join(str(v) for v in d.values()) for d, _ in _DATASETS_UNDER_TEST]


def _all(ds) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([ds.x_train, ds.x_val, ds.x_test]),
            np.concatenate([ds.y_train, ds.y_val, ds.y_test]))


def test_the_table_covers_every_generator() -> None:
    assert {d["name"] for d, _ in _DATASETS_UNDER_TEST} == set(DATASETS)


@pytest.mark.parametrize(("settings", "n_classes"), _DATASETS_UNDER_TEST, ids=_IDS)
def test_generator_shapes_labels_and_seeding(settings: dict, n_classes: int) -> None:
    cfg = DataConfig(n=300, seed=1, **settings)
    ds = load_data(cfg)
    x, y = _all(ds)
    assert x.shape == (300, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    assert y.shape == (300,) and y.dtype == np.int64
    assert ds.n_classes == n_classes and ds.input_dim == 2
    assert ds.class_names == tuple(str(c) for c in range(n_classes))
    assert sorted(set(y.tolist())) == list(range(n_classes))
    assert (ds.x_train.shape[0], ds.x_val.shape[0], ds.x_test.shape[0]) == (210, 60, 30)
    same = load_data(cfg)
    for a, b in zip(_all(ds), _all(same)):
        np.testing.assert_array_equal(a, b)
    other = load_data(DataConfig(n=300, seed=2, **settings))
    assert not np.array_equal(_all(other)[0], x)


def test_xor_labels_are_the_xor_of_the_corners() -> None:
    x, y = _all(load_data(DataConfig(name="xor", n=200, noise=0.05)))
    corner = np.round(x).astype(int)
    np.testing.assert_array_equal(y, corner[:, 0] ^ corner[:, 1])


def test_circles_rings_grow_with_the_class() -> None:
    x, y = _all(load_data(DataConfig(name="circles", n=600, rings=3, noise=0.0)))
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose([radius[y == c].mean() for c in range(3)], [1 / 3, 2 / 3, 1.0],
                               rtol=1e-5)


def test_checkerboard_labels_follow_the_cells() -> None:
    x, y = _all(load_data(DataConfig(name="checkerboard", n=500, cells=4, noise=0.0)))
    cell = np.floor((x + 1) * 2).clip(0, 3).astype(int)
    np.testing.assert_array_equal(y, (cell[:, 0] + cell[:, 1]) % 2)


def test_noise_spreads_the_points() -> None:
    quiet = load_data(DataConfig(name="xor", n=400, noise=0.0))
    noisy = load_data(DataConfig(name="xor", n=400, noise=0.3))
    assert set(np.unique(_all(quiet)[0])) <= {0.0, 1.0}
    assert 0.2 < np.std(_all(noisy)[0] - np.round(_all(quiet)[0])) < 0.4


@pytest.mark.parametrize(("n", "split", "sizes"), [
    (100, (0.7, 0.2, 0.1), (70, 20, 10)), (10, (0.5, 0.25, 0.25), (5, 2, 3)),
    (50, (0.8, 0.2, 0.0), (40, 10, 10)), (50, (0.8, 0.0, 0.2), (40, 40, 10)),
    (40, (1.0, 0.0, 0.0), (40, 40, 40)),
])
def test_split_shares(n: int, split: tuple, sizes: tuple) -> None:
    ds = load_data(DataConfig(name="moons", n=n, split=split))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == sizes
    assert ds.val_is_train == (split[1] == 0) and ds.test_is_val == (split[2] == 0)
    if ds.val_is_train:
        np.testing.assert_array_equal(ds.x_val, ds.x_train)
    if ds.test_is_val:
        np.testing.assert_array_equal(ds.x_test, ds.x_val)


def test_split_is_a_seeded_partition() -> None:
    parts = split_indices(97, (0.6, 0.3, 0.1), seed=4)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(97))
    assert [len(p) for p in parts] == [58, 29, 10]
    again = split_indices(97, (0.6, 0.3, 0.1), seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[0], split_indices(97, (0.6, 0.3, 0.1), seed=5)[0])


def test_standardisation_is_fitted_on_the_training_part_only() -> None:
    raw = load_data(DataConfig(name="gaussians", n=200, k=3, seed=3))
    std = load_data(DataConfig(name="gaussians", n=200, k=3, seed=3, standardize=True))
    mean, scale = raw.x_train.mean(0), raw.x_train.std(0)
    np.testing.assert_allclose(std.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(std.std, scale, rtol=1e-5)
    np.testing.assert_allclose(std.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.x_train.std(0), 1.0, rtol=1e-5)
    for part in ("val", "test"):   # transformed with the training statistics, not their own
        np.testing.assert_allclose(getattr(std, f"x_{part}"),
                                   (getattr(raw, f"x_{part}") - mean) / scale, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(getattr(std, f"y_{part}"), getattr(raw, f"y_{part}"))
    assert not np.allclose(std.x_val.mean(0), 0.0, atol=1e-3)
    assert raw.mean is None and raw.std is None


def _write_csv(path, n: int = 60, dims: int = 6, labels=("setosa", "virginica", "versicolor"),
               label_col: str = "species", label_first: bool = False) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, dims)).round(4)
    y = [labels[i % len(labels)] for i in range(n)]
    cols = [f"f{i}" for i in range(dims)]
    header = [label_col, *cols] if label_first else [*cols, label_col]
    lines = [",".join(header)]
    for row, lab in zip(x, y):
        vals = [f"{v:.4f}" for v in row]
        lines.append(",".join([lab, *vals] if label_first else [*vals, lab]))
    path.write_text("\n".join(lines) + "\n")
    return x, y


def test_csv_with_string_labels_in_the_last_column(tmp_path) -> None:
    x, y = _write_csv(tmp_path / "iris.csv")
    ds = load_data(DataConfig(name=f"csv:{tmp_path / 'iris.csv'}", split=(1.0, 0.0, 0.0)))
    assert ds.input_dim == 6 and ds.n_classes == 3
    assert ds.class_names == ("setosa", "versicolor", "virginica")   # the mapping is kept
    assert ds.feature_names == tuple(f"f{i}" for i in range(6))
    # every row keeps its own label through the split
    by_row = {tuple(np.round(r, 4)): lab for r, lab in zip(x, y)}
    for row, cls in zip(ds.x_train, ds.y_train):
        assert ds.class_names[cls] == by_row[tuple(np.round(row.astype(np.float64), 4))]


def test_csv_label_column_by_name(tmp_path) -> None:
    _write_csv(tmp_path / "d.csv", dims=3, labels=("1", "0"), label_col="target", label_first=True)
    ds = load_data(DataConfig(name=f"csv:{tmp_path / 'd.csv'}", label="target"))
    assert ds.input_dim == 3 and ds.class_names == ("0", "1")
    assert ds.feature_names == ("f0", "f1", "f2")


def test_npz_is_read_without_pickle(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pickle, "load", _no_pickle)
    monkeypatch.setattr(pickle, "loads", _no_pickle)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 4)), np.array([3, 7] * 25)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_data(DataConfig(name=f"npz:{tmp_path / 'd.npz'}", standardize=True))
    assert ds.input_dim == 4 and ds.class_names == ("3", "7") and ds.n_classes == 2
    np.savez(tmp_path / "obj.npz", x=x, y=np.array([{"a": 1}] * 50, dtype=object))
    with pytest.raises(ConfigError, match="no pickled objects"):
        load_data(DataConfig(name=f"npz:{tmp_path / 'obj.npz'}"))


def _no_pickle(*args, **kwargs):
    raise AssertionError("pickle must never be loaded")


def _bad_files(tmp_path) -> dict:
    """name -> (DataConfig kwargs, key named in the error, words in the error)."""
    rng = np.random.default_rng(0)
    (tmp_path / "text.csv").write_text("a,b,label\n1,x,0\n2,y,1\n3,z,0\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b,label\n")
    (tmp_path / "one.csv").write_text("a,b,label\n1,2,0\n3,4,0\n5,6,0\n")
    (tmp_path / "nan.csv").write_text("a,b,label\n1,,0\n3,4,1\n5,6,0\n")
    (tmp_path / "onlylabel.csv").write_text("label\n0\n1\n")
    (tmp_path / "nolabel.csv").write_text("a,b,label\n1,2,0\n3,4,\n5,6,1\n")
    (tmp_path / "ragged.csv").write_text('a,b,label\n1,2,0\n3,4,1,9,9\n"5,6\n')
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    np.savez(tmp_path / "keys.npz", inputs_x=rng.normal(size=(4, 2)), y=np.arange(4) % 2)
    np.savez(tmp_path / "flat.npz", x=rng.normal(size=8), y=np.arange(8) % 2)
    np.savez(tmp_path / "len.npz", x=rng.normal(size=(8, 2)), y=np.arange(5) % 2)
    np.savez(tmp_path / "inf.npz", x=np.array([[1.0, np.inf], [0.0, 1.0]]), y=np.array([0, 1]))
    np.save(tmp_path / "array.npy", rng.normal(size=(4, 2)))
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    return {
        "missing csv": ({"name": f"csv:{tmp_path / 'nope.csv'}"}, "data.name", "existing CSV"),
        "non-numeric feature": ({"name": f"csv:{tmp_path / 'text.csv'}"}, "data.name", "b"),
        "empty csv": ({"name": f"csv:{tmp_path / 'empty.csv'}"}, "data.name", "readable CSV"),
        "header only csv": ({"name": f"csv:{tmp_path / 'header.csv'}"}, "data.name", "data rows"),
        "ragged csv": ({"name": f"csv:{tmp_path / 'ragged.csv'}"}, "data.name", "readable CSV"),
        "binary csv": ({"name": f"csv:{tmp_path / 'binary.csv'}"}, "data.name", "CSV"),
        "one class": ({"name": f"csv:{tmp_path / 'one.csv'}"}, "data.label", "at least 2"),
        "missing value": ({"name": f"csv:{tmp_path / 'nan.csv'}"}, "data.name", "missing"),
        "missing label": ({"name": f"csv:{tmp_path / 'nolabel.csv'}"}, "data.label", "missing"),
        "no features": ({"name": f"csv:{tmp_path / 'onlylabel.csv'}"}, "data.name", "numeric"),
        "unknown label": ({"name": f"csv:{tmp_path / 'one.csv'}", "label": "class"}, "data.label",
                          "a, b, label"),
        "missing npz": ({"name": f"npz:{tmp_path / 'nope.npz'}"}, "data.name", "existing"),
        "npz keys": ({"name": f"npz:{tmp_path / 'keys.npz'}"}, "data.name", "inputs_x"),
        "npz 1-d x": ({"name": f"npz:{tmp_path / 'flat.npz'}"}, "data.name", "[N, d]"),
        "npz lengths": ({"name": f"npz:{tmp_path / 'len.npz'}"}, "data.name", "[N]"),
        "npz inf": ({"name": f"npz:{tmp_path / 'inf.npz'}"}, "data.name", "infinite"),
        "npy not npz": ({"name": f"npz:{tmp_path / 'array.npz'}"}, "data.name", ".npz archive"),
        "text npz": ({"name": f"npz:{tmp_path / 'text.npz'}"}, "data.name", ".npz archive"),
    }


_BAD_FILE_NAMES = ["missing csv", "non-numeric feature", "empty csv", "header only csv", "ragged csv", "binary csv",
                   "one class", "missing value", "missing label", "no features", "unknown label", "missing npz",
                   "npz keys", "npz 1-d x", "npz lengths", "npz inf", "npy not npz", "text npz"]


@pytest.mark.parametrize("case", _BAD_FILE_NAMES)
def test_bad_files_raise_config_errors(tmp_path, monkeypatch, case: str) -> None:
    monkeypatch.setattr(pickle, "load", _no_pickle)
    kwargs, key, words = _bad_files(tmp_path)[case]
    with pytest.raises(ConfigError) as e:
        load_data(DataConfig(**kwargs))
    assert e.value.key == key and words in str(e.value)
