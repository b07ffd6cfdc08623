"""The run configuration: defaults, files, strict validation and overrides (SPEC §3)."""

from __future__ import annotations

import dataclasses
import inspect
import math
import subprocess
import sys

import pytest
import torch

from mlplab.config import (
    ACTIVATIONS,
    INITS,
    LOSSES,
    MODES,
    MONITORS,
    OPTIMIZERS,
    OUTPUTS,
    SCHEDULES,
    ConfigError,
    RunConfig,
    TrainConfig,
    from_dict,
    get_dotted,
    optimizer_hyper,
    parse_init,
    to_dict,
    with_overrides,
)
from mlplab.config_file import load_config, parse_value
from mlplab.optim.table import OPTIMIZERS as OPTIMIZER_TABLE
from mlplab.optim.table import torch_kwargs

# Every key of the schema with its default: a new key must be added here, on purpose.
DEFAULTS = {
    "name": "run", "sweep": None,
    "data.name": "xor", "data.n": 400, "data.noise": 0.1, "data.split": (0.7, 0.2, 0.1),
    "data.seed": 0, "data.k": 5, "data.spread": 1.0, "data.rings": 2, "data.arms": 2,
    "data.cells": 4, "data.label": "", "data.standardize": False,
    "model.hidden": (4,), "model.activation": "relu", "model.negative_slope": 0.01,
    "model.output": "auto", "model.init": "xavier_uniform", "model.bias_init": "zeros",
    "model.layer_init": {},
    "train.loss": "auto", "train.optimizer": "momentum", "train.lr": 0.02,
    "train.momentum": None, "train.dampening": 0.0, "train.weight_decay": None,
    "train.beta1": 0.9, "train.beta2": 0.999, "train.eps": None, "train.alpha": 0.99,
    "train.centered": False, "train.lr_decay": 0.0, "train.batch_size": 64,
    "train.epochs": 1000, "train.seed": 0, "train.clip_grad_norm": None,
    "train.schedule.name": "none", "train.schedule.step_size": 100,
    "train.schedule.gamma": 0.5, "train.schedule.factor": 0.5,
    "train.schedule.patience": 20, "train.schedule.min_lr": 0.0,
    "stopping.monitor": "val_loss", "stopping.mode": "auto", "stopping.patience": 100,
    "stopping.min_delta": 1e-4, "stopping.restarts": 3, "stopping.target": "auto",
    "stopping.restore_best": True,
    "probe.every": 1, "probe.activations_every": 10, "probe.boundary_snapshots": 12,
    "probe.batch": 256, "probe.curvature_every": 0,
}

# A config touching every section, written as YAML and as TOML.
YAML_TEXT = """\
name: xor-momentum
data:   {name: xor, n: 200, noise: 0.05, split: [0.6, 0.2, 0.2], seed: 3}
model:  {hidden: [8, 4], activation: tanh, init: "normal(0.5)", layer_init: {"1": he_normal}}
train:  {optimizer: adam, lr: 1.0e-3, batch_size: 0, epochs: 50, seed: 7,
         schedule: {name: cosine, min_lr: 1.0e-5}}
stopping: {monitor: val_acc, patience: 5, restarts: 2, target: 0.99}
probe:  {every: 2}
"""
TOML_TEXT = """\
name = "xor-momentum"
[data]
name = "xor"
n = 200
noise = 0.05
split = [0.6, 0.2, 0.2]
seed = 3
[model]
hidden = [8, 4]
activation = "tanh"
init = "normal(0.5)"
layer_init = {"1" = "he_normal"}
[train]
optimizer = "adam"
lr = 1.0e-3
batch_size = 0
epochs = 50
seed = 7
schedule = {name = "cosine", min_lr = 1.0e-5}
[stopping]
monitor = "val_acc"
patience = 5
restarts = 2
target = 0.99
[probe]
every = 2
"""

CHOICE_FIELDS = [
    ("model.activation", ACTIVATIONS), ("model.output", OUTPUTS), ("train.loss", LOSSES),
    ("train.optimizer", OPTIMIZERS), ("train.schedule.name", SCHEDULES),
    ("stopping.monitor", MONITORS), ("stopping.mode", MODES),
    ("data.name", ("xor", "gaussians", "circles", "spiral", "moons", "checkerboard")),
]

# (dotted key, bad value, words the error must contain)
BAD_VALUES = [
    ("train.lr", -0.1, "> 0"), ("train.lr", 0, "> 0"), ("train.lr", "fast", "number"),
    ("train.lr", math.nan, "finite"), ("train.lr", math.inf, "finite"),
    ("train.lr", True, "number"), ("train.epochs", 2.5, "integer"),
    ("train.epochs", "10", "integer"), ("train.epochs", 0, "> 0"),
    ("train.batch_size", -1, ">= 0"), ("train.momentum", 1.0, "[0, 1)"),
    ("train.momentum", -0.5, ">= 0"), ("train.beta1", 1.0, "[0, 1)"),
    ("train.beta2", 1.5, "[0, 1)"), ("train.alpha", -0.1, "[0, 1]"),
    ("train.weight_decay", -1e-4, ">= 0"), ("train.clip_grad_norm", -1.0, ">= 0"),
    ("train.schedule.gamma", 0.0, "(0, 1]"), ("train.schedule.factor", 1.0, "(0, 1)"),
    ("train.centered", "yes", "true or false"), ("data.standardize", 1, "true or false"),
    ("model.hidden", [], "non-empty"), ("model.hidden", [4, 0], "positive"),
    ("model.hidden", [4.5], "positive integers"), ("model.hidden", "four", "list"),
    ("model.hidden", [True], "positive integers"), ("model.init", "glorot", "xavier_uniform"),
    ("model.init", "normal(abc)", "normal(std)"), ("model.bias_init", "he", "zeros"),
    ("model.init", "normal(-1)", "std >= 0"), ("model.init", "uniform(-0.5)", "a >= 0"),
    ("model.init", "normal(1.2.3)", "normal(std)"), ("model.init", "he_normal(2)", "without an argument"),
    ("model.bias_init", "normal(-2)", "std >= 0"), ("model.init", "uniform(1e400)", "finite"),
    ("model.layer_init", {"5": "zeros"}, "layer indices 0..1"),
    ("model.layer_init", {"0": "bogus"}, "xavier_uniform"), ("model.layer_init", "zeros", "mapping"),
    ("data.n", -5, "> 0"), ("data.n", 2, "at least 4"), ("data.k", 1, ">= 2"),
    ("data.noise", -0.1, ">= 0"), ("data.split", [0.7, 0.3], "three"),
    ("data.split", [0.5, 0.2, 0.2], "summing to 1"), ("data.split", [0.0, 0.5, 0.5], "three"),
    ("data.split", [1.2, -0.1, -0.1], "non-negative"), ("data.name", 3, "string"),
    ("stopping.patience", -1, ">= 0"), ("stopping.restarts", 1.5, "integer"),
    ("stopping.target", "high", "number"), ("probe.every", 0, "> 0"), ("name", None, "str"),
]


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "layer_init":
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def test_every_key_has_its_documented_default() -> None:
    cfg = from_dict({})
    assert cfg == RunConfig()
    assert set(_leaves(to_dict(cfg))) == set(DEFAULTS), "a key was added or removed"
    for key, want in DEFAULTS.items():
        assert get_dotted(cfg, key) == want, key


def test_yaml_and_toml_files_load_the_same_config(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(YAML_TEXT)
    (tmp_path / "c.toml").write_text(TOML_TEXT)
    from_yaml, from_toml = load_config(tmp_path / "c.yaml"), load_config(tmp_path / "c.toml")
    assert from_yaml == from_toml
    assert from_yaml.model.hidden == (8, 4) and from_yaml.train.lr == 1e-3
    assert from_yaml.train.schedule.name == "cosine" and from_yaml.train.schedule.min_lr == 1e-5
    assert from_yaml.model.layer_init == {"1": "he_normal"}
    assert from_yaml.data.split == (0.6, 0.2, 0.2) and from_yaml.stopping.target == 0.99
    assert from_yaml.train.momentum is None   # untouched keys keep their defaults
    # the same schema from Python
    assert from_dict(to_dict(from_yaml)) == from_yaml


def test_config_is_frozen() -> None:
    cfg = from_dict({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "key", "suggestion"), [
    ({"trian": {}}, "trian", "train"),
    ({"train": {"lrr": 0.1}}, "train.lrr", "lr"),
    ({"model": {"hiden": [4]}}, "model.hiden", "hidden"),
    ({"train": {"schedule": {"nmae": "step"}}}, "train.schedule.nmae", "name"),
    ({"stopping": {"patiense": 3}}, "stopping.patiense", "patience"),
])
def test_unknown_key_is_named_with_a_suggestion(raw: dict, key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(raw)
    assert e.value.key == key
    assert f"'{key}'" in str(e.value) and f"did you mean '{suggestion}'" in str(e.value)


@pytest.mark.parametrize(("key", "allowed"), CHOICE_FIELDS, ids=[k for k, _ in CHOICE_FIELDS])
def test_choice_fields_reject_a_bad_value_and_list_the_allowed(key: str, allowed: tuple) -> None:
    with pytest.raises(ConfigError) as e:
        with_overrides(from_dict({}), {key: "bogus"})
    assert e.value.key == key and "'bogus'" in str(e.value)
    for choice in allowed:
        assert choice in str(e.value)
    for choice in allowed:  # and every allowed value is accepted
        assert get_dotted(with_overrides(from_dict({}), {key: choice}), key) == choice


def test_a_near_miss_choice_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        from_dict({"train": {"optimizer": "adma"}})


@pytest.mark.parametrize(("key", "value", "words"), BAD_VALUES,
                         ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_values_are_rejected_naming_key_and_value(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        with_overrides(from_dict({}), {key: value})
    assert e.value.key.startswith(key), (e.value.key, key)
    assert f"'{e.value.key}'" in str(e.value) and words in str(e.value)


@pytest.mark.parametrize(("key", "value", "stored"), [
    ("train.lr", 1, 1.0), ("train.lr", "1e-4", 1e-4),     # YAML reads 1e-4 as a string
    ("model.hidden", 8, (8,)), ("model.hidden", [8, 8], (8, 8)), ("train.epochs", 5.0, 5),
    ("data.split", [1, 0, 0], (1.0, 0.0, 0.0)), ("train.schedule", "step", "step"),
    ("model.layer_init", {0: "zeros"}, {"0": "zeros"}), ("stopping.target", None, None),
])
def test_values_are_coerced_to_their_type(key: str, value: object, stored: object) -> None:
    cfg = with_overrides(from_dict({}), {key: value})
    got = get_dotted(cfg, key)
    if key == "train.schedule":
        got = got.name
    assert got == stored and type(got) is type(stored)


def test_dotted_overrides_replace_keys_and_revalidate() -> None:
    base = from_dict({"train": {"schedule": "step"}})
    cfg = with_overrides(base, {"train.lr": 0.5, "model.hidden": [8, 8],
                                "train.schedule.gamma": 0.1, "stopping.target": 0.9})
    assert (cfg.train.lr, cfg.model.hidden) == (0.5, (8, 8))
    assert (cfg.train.schedule.name, cfg.train.schedule.gamma) == ("step", 0.1)
    assert cfg.stopping.target == 0.9 and base.train.lr == 0.02   # the base is unchanged
    with pytest.raises(ConfigError) as e:
        with_overrides(base, {"train.nope": 1})
    assert e.value.key == "train.nope"


def test_load_config_applies_overrides_after_the_file(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(YAML_TEXT)
    cfg = load_config(tmp_path / "c.yaml", {"train.lr": 0.3})
    assert cfg.train.lr == 0.3 and cfg.train.optimizer == "adam"


def test_yaml_error_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata:\n  name: xor\ntrain:\n  lr: 0.1\n  optimiser: adam\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == "train.optimiser" and "c.yaml, line 6" in str(e.value)
    assert "did you mean 'optimizer'" in str(e.value)
    path.write_text("train:\n  lr: [0.1\n  x: 1\n")   # a syntax error
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "line 3" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("name", "text", "words"), [
    ("c.toml", "[train]\nlr = \n", "valid TOML"), ("c.yaml", "- 1\n- 2\n", "mapping"),
    ("c.ini", "[train]\n", ".toml"), ("missing.yaml", None, "existing"),
])
def test_bad_config_files(tmp_path, name: str, text: str | None, words: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match="allowed") as e:
        load_config(tmp_path / name)
    assert words in str(e.value) and name in str(e.value)


def test_an_empty_file_is_the_default_config(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text("# nothing yet\n")
    assert load_config(tmp_path / "c.yaml") == RunConfig()


@pytest.mark.parametrize(("spec", "parsed"), [
    ("he_normal", ("he_normal", None)), ("normal(0.5)", ("normal", 0.5)),
    ("uniform( 1e-2 )", ("uniform", 0.01)), ("constant(-1)", ("constant", -1.0)),
])
def test_parse_init(spec: str, parsed: tuple) -> None:
    assert parse_init(spec) == parsed
    assert parsed[0] in INITS


def test_parse_value_reads_cli_values_like_yaml() -> None:
    assert parse_value("0.1") == 0.1 and parse_value("[8, 8]") == [8, 8]
    assert parse_value("true") is True and parse_value("adam") == "adam"
    with pytest.raises(ConfigError) as e:
        parse_value("[8,", key="model.hidden")
    assert e.value.key == "model.hidden"


def _torch_defaults(cls: type) -> dict:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_optimizer_table_defaults_are_torch_optims(name: str) -> None:
    spec = OPTIMIZER_TABLE[name]
    ref = _torch_defaults(getattr(torch.optim, spec.torch_class))
    kwargs = torch_kwargs(name, {})                 # every hyper-parameter at its default
    for key, value in kwargs.items():
        if key in spec.torch_fixed:                 # nesterov=True: the name fixes it
            continue
        if key == "momentum" and name in ("momentum", "nesterov"):
            assert value == 0.9                     # the optimizer's name implies momentum
            continue
        assert value == ref[key], (name, key)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_hyper_is_the_config_keys_of_the_table(name: str) -> None:
    spec = OPTIMIZER_TABLE[name]
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(spec.config_keys) <= train_fields & set(spec.defaults)
    hp = optimizer_hyper(TrainConfig(optimizer=name, lr=0.123))
    assert list(hp) == list(spec.config_keys)       # the run record lists them in this order
    # the config's defaults that are not None (beta1, alpha, ...) are the table's
    assert hp == {key: 0.123 if key == "lr" else float(spec.defaults[key])
                  for key in spec.config_keys}


def test_optimizer_hyper_reads_only_what_the_optimizer_takes() -> None:
    given = {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01}
    assert optimizer_hyper(TrainConfig(optimizer="sgd", **given)) == \
        {"lr": 0.1, "weight_decay": 0.01}           # sgd takes no momentum
    assert optimizer_hyper(TrainConfig(optimizer="nesterov", **given)) == \
        {**given, "dampening": 0.0}                 # nesterov holds dampening at 0
    assert optimizer_hyper(TrainConfig(optimizer="adamw", lr=0.1))["weight_decay"] == 0.01
    assert optimizer_hyper(TrainConfig(optimizer="rmsprop", lr=0.1, centered=True)) == \
        {"lr": 0.1, "weight_decay": 0.0, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
         "centered": 1.0}


@pytest.mark.parametrize("name", [name for name, spec in OPTIMIZER_TABLE.items() if spec.positive])
def test_a_hyper_parameter_the_optimizer_needs_positive_refuses_zero(name: str) -> None:
    for key in OPTIMIZER_TABLE[name].positive:          # nesterov's momentum
        with pytest.raises(ConfigError, match=f"for {name}") as e:
            from_dict({"train": {"optimizer": name, key: 0}})
        assert e.value.key == f"train.{key}"


def test_the_config_names_the_optimizers_of_the_table_and_loads_no_torch() -> None:
    assert OPTIMIZERS == tuple(OPTIMIZER_TABLE)
    code = "import sys, mlplab.config, mlplab.optim; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_the_example_configs_load() -> None:
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    assert any(p.name == "xor.yaml" for p in examples)
    for path in examples:
        cfg = load_config(path)
        assert cfg.model.hidden and cfg.train.lr > 0, path.name
    xor = load_config(examples[[p.name for p in examples].index("xor.yaml")])
    assert (xor.model.hidden, xor.model.activation, xor.train.optimizer, xor.train.lr,
            xor.train.loss) == ((4,), "relu", "momentum", 0.02, "mse")


@pytest.mark.parametrize("raw", [
    {},
    {"name": "c", "train": {"lr": 0.25, "seed": 3, "schedule": {"name": "cosine"}},
     "model": {"hidden": [3, 2], "layer_init": {"0": "he_normal", "1": "zeros"}}},
    {"sweep": {"grid": {"train.lr": [0.1, 0.3]}, "seeds": 2, "stages": None},
     "stopping": {"target": 0.99, "min_delta": 0.0}, "data": {"name": "circles", "noise": 0.1}},
])
def test_to_dict_is_the_json_round_trip_of_the_fields(raw: dict) -> None:
    import json

    import numpy as np

    from mlplab.config import to_dict

    cfg = from_dict(raw)
    reference = json.loads(json.dumps(dataclasses.asdict(cfg)))
    got = to_dict(cfg)
    assert got == reference and json.dumps(got) == json.dumps(reference)   # order too
    # a numpy float (as a search library may hand out) comes back a plain float
    odd = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=np.float64(0.5)))
    assert type(to_dict(odd)["train"]["lr"]) is float and to_dict(odd)["train"]["lr"] == 0.5
