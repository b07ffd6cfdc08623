"""Datasets: seeded 2-D generators and the user's own CSV / NPZ files (SPEC §3).

Everything is numpy (float32 inputs, int64 class labels) so the data layer imports
fast; the engines move it to torch.

>>> ds = load_data(DataConfig(name="moons", n=100, seed=1))
>>> ds.x_train.shape, ds.n_classes
((70, 2), 2)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlplab.config import DATASETS, ConfigError, DataConfig


@dataclass(frozen=True)
class Dataset:
    """Split, optionally standardised data. ``val_is_train`` marks a zero val share."""

    x_train: np.ndarray          # [N_train, d] float32
    y_train: np.ndarray          # [N_train] int64
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray | None = None   # standardisation fitted on the training part
    std: np.ndarray | None = None
    val_is_train: bool = False
    test_is_val: bool = False

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


def _xor(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    idx = np.arange(cfg.n) % 4
    x = corners[idx] + rng.normal(0.0, cfg.noise, (cfg.n, 2))
    return x, (corners[idx, 0] != corners[idx, 1]).astype(np.int64)


def _gaussians(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(cfg.n) % cfg.k
    angle = 2 * np.pi * y / cfg.k
    centres = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    spacing = 4.0 * np.sin(np.pi / cfg.k)      # distance between neighbouring centres
    x = centres + rng.normal(0.0, 0.5 * spacing * cfg.spread, (cfg.n, 2))
    return x + rng.normal(0.0, cfg.noise, (cfg.n, 2)), y


def _circles(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(cfg.n) % cfg.rings
    angle = rng.uniform(0, 2 * np.pi, cfg.n)
    radius = (y + 1.0) / cfg.rings + rng.normal(0.0, cfg.noise / cfg.rings, cfg.n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), y


def _spiral(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(cfg.n) % cfg.arms
    t = rng.uniform(0.0, 1.0, cfg.n)
    angle = 3 * np.pi * t + 2 * np.pi * y / cfg.arms
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return x + rng.normal(0.0, cfg.noise * 0.3, (cfg.n, 2)), y


def _moons(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(cfg.n) % 2
    t = rng.uniform(0.0, np.pi, cfg.n)
    x = np.where(y[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], axis=1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1))
    return x + rng.normal(0.0, cfg.noise, (cfg.n, 2)), y


def _checkerboard(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1.0, 1.0, (cfg.n, 2))
    cell = np.floor((x + 1.0) * cfg.cells / 2.0).clip(0, cfg.cells - 1).astype(np.int64)
    y = (cell[:, 0] + cell[:, 1]) % 2
    return x + rng.normal(0.0, cfg.noise * 0.2, (cfg.n, 2)), y


GENERATORS = {"xor": _xor, "gaussians": _gaussians, "circles": _circles,
              "spiral": _spiral, "moons": _moons, "checkerboard": _checkerboard}
assert set(GENERATORS) == set(DATASETS)


def generated_classes(cfg: DataConfig) -> int:
    """The number of classes a generator draws (known before drawing any point).

    >>> generated_classes(DataConfig(name="gaussians", k=3)), generated_classes(DataConfig())
    (3, 2)
    """
    return {"gaussians": cfg.k, "circles": cfg.rings, "spiral": cfg.arms}.get(cfg.name, 2)


def _labels_to_classes(raw: np.ndarray, key: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary labels (strings or numbers) to 0..C-1, keeping the mapping."""
    values = [str(v) for v in raw]
    try:
        order = sorted(set(values), key=float)
    except ValueError:
        order = sorted(set(values))
    if len(order) < 2:
        raise ConfigError(key, f"{len(order)} distinct label(s)", "at least 2 classes")
    index = {v: i for i, v in enumerate(order)}
    return np.array([index[v] for v in values], dtype=np.int64), tuple(order)


def _read_csv(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    import pandas as pd

    path = Path(cfg.name[4:])
    if not path.is_file():
        raise ConfigError("data.name", cfg.name, "csv:PATH naming an existing CSV file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ConfigError("data.name", cfg.name,
                          "a readable CSV file with a header row (" + " ".join(str(e).split()) + ")") from None
    if len(frame) == 0:
        raise ConfigError("data.name", cfg.name, "a CSV with data rows below its header")
    label = cfg.label or frame.columns[-1]
    if label not in frame.columns:
        raise ConfigError("data.label", cfg.label, "a column of the CSV: " + ", ".join(frame.columns))
    features = frame.drop(columns=[label])
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad or features.shape[1] == 0:
        raise ConfigError("data.name", cfg.name,
                          f"numeric feature columns (not numeric: {', '.join(map(str, bad)) or 'none given'})")
    x = features.to_numpy(np.float64)
    if not np.isfinite(x).all():
        raise ConfigError("data.name", cfg.name, "a CSV without missing or infinite feature values")
    if frame[label].isna().any():
        raise ConfigError("data.label", cfg.label or str(label), "a label column without missing values")
    y, names = _labels_to_classes(frame[label].to_numpy(), "data.label")
    return x, y, names, tuple(map(str, features.columns))


def _read_npz(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    path = Path(cfg.name[4:])
    if not path.is_file():
        raise ConfigError("data.name", cfg.name, "npz:PATH naming an existing .npz file")
    expected = "an .npz archive (numpy.savez) of numeric arrays 'x' [N, d] and 'y' [N], no pickled objects"
    bad = (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile)   # truncated: BadZipFile
    with path.open("rb") as fh:     # ours to close: np.load leaks its own on a broken archive
        try:
            z = np.load(fh, allow_pickle=False)   # never unpickle a user's file
        except bad as e:
            raise ConfigError("data.name", cfg.name, f"{expected} ({' '.join(str(e).split())})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):   # a bare .npy array
            raise ConfigError("data.name", cfg.name, expected)
        xk = next((k for k in ("x", "X", "inputs") if k in z.files), None)
        yk = next((k for k in ("y", "Y", "labels", "targets") if k in z.files), None)
        if xk is None or yk is None:
            raise ConfigError("data.name", cfg.name, f"{expected}; found: {', '.join(z.files) or 'none'}")
        try:
            x, y_raw = np.asarray(z[xk], np.float64), np.asarray(z[yk])
        except bad as e:
            raise ConfigError("data.name", cfg.name, f"{expected} ({' '.join(str(e).split())})") from None
    if x.ndim != 2 or len(x) != len(y_raw) or y_raw.size != len(y_raw):
        raise ConfigError("data.name", cfg.name, f"x of shape [N, d] and y of shape [N];"
                          f" got x {list(x.shape)}, y {list(y_raw.shape)}")
    if not np.isfinite(x).all():
        raise ConfigError("data.name", cfg.name, "x without NaN or infinite values")
    y, names = _labels_to_classes(y_raw.reshape(-1), "data.name")
    return x, y, names, tuple(f"x{i}" for i in range(x.shape[1]))


def split_indices(n: int, shares: tuple[float, ...], seed: int) -> tuple[np.ndarray, ...]:
    """Seeded permutation cut into train/val/test parts by share."""
    perm = np.random.default_rng([seed, 1]).permutation(n)
    n_train = max(1, int(round(shares[0] * n)))
    n_val = int(round(shares[1] * n)) if shares[1] > 0 else 0
    n_val = min(n_val, n - n_train)
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def _check_training_part(cfg: DataConfig, y_train: np.ndarray, n_classes: int) -> None:
    """Refuse data whose training part misses a class: a run on it would learn fewer classes
    than it is scored on (``--n 1`` trained one class and called it done)."""
    present = len(np.unique(y_train))
    if present == n_classes:
        return
    generated = cfg.name in GENERATORS
    raise ConfigError("data.n" if generated else "data.split",
                      cfg.n if generated else list(cfg.split),
                      f"enough points that the training part ({len(y_train)} of them, "
                      f"{present} of the {n_classes} classes) holds every class: "
                      + ("a larger data.n" if generated else "a larger training share (data.split[0])"))


def load_data(cfg: DataConfig) -> Dataset:
    """Generate or read the data of ``cfg``, split it and optionally standardise it.

    A zero val share makes the validation set the training set (``val_is_train``); an
    empty test part falls back to the validation set, so every run has all three.
    """
    if cfg.name.startswith("csv:"):
        x, y, names, features = _read_csv(cfg)
    elif cfg.name.startswith("npz:"):
        x, y, names, features = _read_npz(cfg)
    else:
        x, y = GENERATORS[cfg.name](cfg, np.random.default_rng([cfg.seed, 0]))
        names = tuple(str(c) for c in range(generated_classes(cfg)))
        features = ("x0", "x1")
    tr, va, te = split_indices(len(x), cfg.split, cfg.seed)
    _check_training_part(cfg, y[tr], len(names))
    mean = std = None
    if cfg.standardize:
        mean = x[tr].mean(axis=0)
        std = x[tr].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x = (x - mean) / std
    x = x.astype(np.float32)
    val_is_train = len(va) == 0
    va = tr if val_is_train else va
    test_is_val = len(te) == 0
    te = va if test_is_val else te
    return Dataset(x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes=len(names),
                   class_names=names, feature_names=features,
                   mean=None if mean is None else mean.astype(np.float32),
                   std=None if std is None else std.astype(np.float32),
                   val_is_train=val_is_train, test_is_val=test_is_val)
