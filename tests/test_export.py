"""The export's quick parts: the CLI names the extra to install when TensorBoard or
MLflow is missing, bad input exits 2 naming the flag, the boundary image colours and the
swept keys. The exports themselves: test_export_tensorboard.py, test_export_mlflow.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlplab.cli import main
from mlplab.export.runs import flat_params, swept_keys
from mlplab.export.tensorboard import PALETTE, boundary_rgb
from mlplab.store.store import RunInfo, Store


@pytest.mark.parametrize("target, extra", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_missing_package_names_the_extra(target: str, extra: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    Store(tmp_path / "store")                                   # an empty store
    for name in list(sys.modules):
        if name == extra or name.startswith(extra + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, extra, None)               # as if not installed
    args = [str(tmp_path / "out")] if target == "tensorboard" else ["--tracking-uri",
                                                                   f"sqlite:///{tmp_path}/m.db"]
    assert main(["export", target, str(tmp_path / "store"), *args]) == 2
    assert f"pip install 'mlplab[{extra}]'" in capsys.readouterr().err


def test_bad_input_exits_2_naming_it(tmp_path: Path, capsys) -> None:
    assert main(["export", "tensorboard", str(tmp_path / "nothing"), str(tmp_path / "o")]) == 2
    assert "no mlplab store" in capsys.readouterr().err
    Store(tmp_path / "store")
    assert main(["export", "tensorboard", str(tmp_path / "store"), str(tmp_path / "o"),
                 "--filter", "lr"]) == 2
    err = capsys.readouterr().err
    assert "--filter" in err and "key=value" in err


def test_boundary_colours() -> None:
    probs = np.array([[[0.0], [0.5]], [[1.0], [0.75]]])        # [G=2, G=2, C=1], row 0 at v_min
    rgb = boundary_rgb(probs).astype(int)
    scale = rgb.shape[0] // 2
    bottom_left, bottom_right = rgb[-1, 0], rgb[-1, -1]        # grid row 0 is drawn at the bottom
    top_left, top_right = rgb[0, 0], rgb[0, -1]
    assert list(bottom_left) == list(PALETTE[0])               # certain of class 0
    assert list(bottom_right) == [255, 255, 255]               # a tie: white
    assert list(top_left) == list(PALETTE[1])                  # certain of class 1
    assert all(PALETTE[1] <= top_right) and any(top_right < 255)   # paler class 1
    assert rgb.shape == (2 * scale, 2 * scale, 3)
    three = boundary_rgb(np.array([[[0.1, 0.2, 0.7]]]))
    assert three[0, 0, 0] > PALETTE[2][0]                       # class 2, paler than sure


def test_flat_params_and_swept_keys() -> None:
    base = {"name": "a", "model": {"hidden": [8, 8], "layer_init": {}}, "train": {"lr": 0.1, "seed": 0},
            "sweep": {"grid": {}}, "stopping": {"target": None}}
    assert flat_params(base) == {"name": "a", "model.hidden": "8,8", "model.layer_init": "{}",
                                 "train.lr": 0.1, "train.seed": 0, "stopping.target": "none"}

    def info(config: dict, params: dict) -> RunInfo:
        fields = {f: None for f in RunInfo.__dataclass_fields__}
        return RunInfo(**{**fields, "summary": {"params": params}, "config": config})

    other = {**base, "name": "b", "train": {"lr": 0.1, "seed": 1}}
    assert swept_keys([info(base, {"train.lr": 0.1}), info(other, {"train.lr": 0.1})]) == \
        ["train.lr", "train.seed"]
