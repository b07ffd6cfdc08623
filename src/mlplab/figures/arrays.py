"""Stored tensors as read-only numpy arrays, for the frozen figure records: what every
``data_*`` module of this package reads weights and series through.

>>> import numpy as np
>>> w = layer_weights({"0.weight": np.ones((4, 2)), "0.bias": np.zeros(4)}, ["layer1"])
>>> w[0][0], w[0][1].shape
('layer1', (4, 2))
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

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
