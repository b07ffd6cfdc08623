"""Stored tensors as read-only numpy arrays, for the frozen figure records: what every
``data_*`` module of this package reads weights and series through; and
:func:`envelope`, which thins a long series to what a figure's width can show.

>>> import numpy as np
>>> w = layer_weights({"0.weight": np.ones((4, 2)), "0.bias": np.zeros(4)}, ["layer1"])
>>> w[0][0], w[0][1].shape
('layer1', (4, 2))
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import math

import numpy as np

from mlplab.metrics import natural_key


def as_numpy(t: Any) -> np.ndarray:
    """A stored tensor (safetensors gives torch tensors, float16 included) or array as
    numpy, without importing torch here."""
    if isinstance(t, np.ndarray):
        return t
    if type(t).__module__.startswith("torch"):
        return t.float().numpy()
    return np.asarray(t)


def frozen_array(a: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def layer_weights(state: Mapping[str, Any], layers: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(layer, weight [out, in], bias [out] or None)`` per layer from a state dict.

    A Probe run names layers by module (``"fc1"`` -> ``"fc1.weight"``); an mlplab MLP
    stores ``nn.Sequential`` keys (``"0.weight"``, ``"2.weight"``, ...) in layer order.
    """
    def arr(t: Any) -> np.ndarray:
        return as_numpy(t).astype(np.float64)

    if layers and all(f"{l}.weight" in state for l in layers):
        return [(l, arr(state[f"{l}.weight"]), arr(state[f"{l}.bias"]) if f"{l}.bias" in state else None)
                for l in layers]
    keys = sorted((k for k in state if k.endswith(".weight") and len(state[k].shape) == 2),
                  key=natural_key)
    out = []
    for layer, key in zip(layers, keys):
        bias = key[: -len("weight")] + "bias"
        out.append((layer, arr(state[key]), arr(state[bias]) if bias in state else None))
    return out


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points that draw like ``(x, y)`` at figure width: each
    bucket of neighbours keeps its lowest and its highest point (so spikes stay).

    >>> envelope(np.arange(8.0), np.array([0, 5, 1, 1, 2, 9, 3, 3.0]), 4)[1].tolist()
    [0.0, 5.0, 2.0, 9.0]
    """
    n = len(y)
    if n <= max_points:
        return x, y
    k = math.ceil(n / (max_points // 2))
    m = n // k * k
    ys = y[:m].reshape(-1, k)
    lo = np.argmin(np.where(np.isnan(ys), np.inf, ys), axis=1)
    hi = np.argmax(np.where(np.isnan(ys), -np.inf, ys), axis=1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)
    base = np.arange(len(ys)) * k
    idx = np.stack([base + first, base + second], axis=1).ravel()
    idx = np.concatenate([idx, np.arange(m, n)])
    return x[idx], y[idx]
