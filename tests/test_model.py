"""The MLP: activations, named initialisations, heads and seeding (SPEC §3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlplab.config import ACTIVATIONS, INITS, ConfigError, ModelConfig
from mlplab.model.mlp import (Head, build_mlp, count_parameters, derive_seed, linear_layers,
                              resolve_head)

FAN_IN, FAN_OUT = 400, 300   # the large first layer whose statistics are checked
SIGMOID2 = Head("sigmoid", "mse", 1)

# One table of variants: activation name and the function it must compute.
_ACTIVATIONS_UNDER_TEST = {
    "relu": torch.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "elu": F.elu,
    "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda x: x,
}


def _first_weight(init: str, activation: str = "relu", seed: int = 0) -> torch.Tensor:
    model = ModelConfig(hidden=(FAN_OUT,), init=init, activation=activation, negative_slope=0.2)
    return build_mlp(model, SIGMOID2, FAN_IN, seed=seed)[0].weight.detach().double()


def _std_check(w: torch.Tensor, std: float) -> None:
    assert abs(float(w.mean())) < 0.02 * std
    assert float(w.std()) == pytest.approx(std, rel=0.03)


def _uniform_check(w: torch.Tensor, bound: float) -> None:
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound
    assert float(w.var()) == pytest.approx(bound ** 2 / 3, rel=0.03)


def _orthogonal_check(w: torch.Tensor) -> None:
    torch.testing.assert_close(w @ w.T, torch.eye(FAN_OUT, dtype=w.dtype), atol=1e-5, rtol=0)


# One table of variants: init spec, activation, and the statistics it must have.
_INITS_UNDER_TEST = [
    ("xavier_uniform", "relu", lambda w: _uniform_check(w, math.sqrt(6 / (FAN_IN + FAN_OUT)))),
    ("xavier_normal", "tanh", lambda w: _std_check(w, math.sqrt(2 / (FAN_IN + FAN_OUT)))),
    ("he_uniform", "relu", lambda w: _uniform_check(w, math.sqrt(6 / FAN_IN))),
    ("he_normal", "relu", lambda w: _std_check(w, math.sqrt(2 / FAN_IN))),
    ("he_normal", "leaky_relu", lambda w: _std_check(w, math.sqrt(2 / (1 + 0.2 ** 2) / FAN_IN))),
    ("orthogonal", "relu", _orthogonal_check),
    ("normal(0.5)", "relu", lambda w: _std_check(w, 0.5)),
    ("normal", "relu", lambda w: _std_check(w, 1.0)),
    ("uniform(0.3)", "relu", lambda w: _uniform_check(w, 0.3)),
    ("zeros", "relu", lambda w: torch.testing.assert_close(w, torch.zeros_like(w))),
    ("constant(0.7)", "relu", lambda w: torch.testing.assert_close(w, torch.full_like(w, 0.7))),
]


def test_the_tables_cover_every_activation_and_init() -> None:
    assert set(_ACTIVATIONS_UNDER_TEST) == set(ACTIVATIONS)
    assert {spec.split("(")[0] for spec, _, _ in _INITS_UNDER_TEST} == set(INITS)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_computes_its_function(activation: str) -> None:
    model = ModelConfig(hidden=(5, 3), activation=activation, negative_slope=0.2)
    net = build_mlp(model, Head("softmax", "ce", 3), 2, seed=0)
    assert [type(m) for m in net][0::2] == [nn.Linear] * 3
    x = torch.linspace(-3, 3, 20).view(10, 2)
    h = x
    for i, (_, lin) in enumerate(linear_layers(net)):
        h = lin(h)
        if i < 2:
            h = _ACTIVATIONS_UNDER_TEST[activation](h)
    torch.testing.assert_close(net(x), h)


@pytest.mark.parametrize(("spec", "activation", "check"), _INITS_UNDER_TEST,
                         ids=[f"{s}-{a}" for s, a, _ in _INITS_UNDER_TEST])
def test_init_statistics_match_the_formula(spec: str, activation: str, check) -> None:
    w = _first_weight(spec, activation)
    assert w.shape == (FAN_OUT, FAN_IN)
    check(w)


@pytest.mark.parametrize("spec", ["xavier_uniform", "he_normal", "orthogonal", "normal(0.5)"])
def test_init_equals_torch_nn_init_with_the_same_generator(spec: str) -> None:
    model = ModelConfig(hidden=(6, 5), init=spec, activation="relu")
    net = build_mlp(model, Head("softmax", "ce", 3), 4, seed=11)
    gen = torch.Generator().manual_seed(11)     # drawn in layer order; zero biases draw nothing
    for (_, lin), (d_in, d_out) in zip(linear_layers(net), [(4, 6), (6, 5), (5, 3)]):
        ref = torch.empty(d_out, d_in)
        if spec == "xavier_uniform":
            nn.init.xavier_uniform_(ref, generator=gen)
        elif spec == "he_normal":
            nn.init.kaiming_normal_(ref, nonlinearity="relu", generator=gen)
        elif spec == "orthogonal":
            nn.init.orthogonal_(ref, generator=gen)
        else:
            nn.init.normal_(ref, 0.0, 0.5, generator=gen)
        torch.testing.assert_close(lin.weight.detach(), ref, rtol=0, atol=0)
        assert torch.equal(lin.bias.detach(), torch.zeros(d_out))


def test_bias_init_and_per_layer_override() -> None:
    model = ModelConfig(hidden=(FAN_OUT, 8), init="xavier_uniform", bias_init="constant(0.1)",
                        layer_init={"1": "zeros", "2": "normal(2.0)"})
    net = build_mlp(model, SIGMOID2, FAN_IN, seed=0)
    (_, l1), (_, l2), (_, l3) = linear_layers(net)
    _uniform_check(l1.weight.detach().double(), math.sqrt(6 / (FAN_IN + FAN_OUT)))
    assert torch.equal(l2.weight.detach(), torch.zeros(8, FAN_OUT))
    assert float(l3.weight.detach().abs().max()) > 1.0      # normal(2.0): not xavier-sized
    for lin in (l1, l2, l3):
        assert torch.equal(lin.bias.detach(), torch.full_like(lin.bias, 0.1))


def test_built_from_a_seed_without_touching_the_global_rng() -> None:
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    model = ModelConfig(hidden=(8, 8))
    a = build_mlp(model, SIGMOID2, 2, seed=5)
    for init in ("he_uniform", "orthogonal", "normal(1)", "uniform(1)"):
        build_mlp(ModelConfig(hidden=(8,), init=init, bias_init=init), SIGMOID2, 2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_mlp(model, SIGMOID2, 2, seed=5)
    c = build_mlp(model, SIGMOID2, 2, seed=torch.Generator().manual_seed(5))
    d = build_mlp(model, SIGMOID2, 2, seed=6)
    for (name, p), q, r, s in zip(a.named_parameters(), b.parameters(), c.parameters(),
                                  d.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r), name
        if name.endswith("weight"):
            assert not torch.equal(p, s), name


def test_float64_models() -> None:
    net = build_mlp(ModelConfig(), SIGMOID2, 2, seed=0, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())


@pytest.mark.parametrize(("output", "loss", "n_classes", "head"), [
    ("auto", "auto", 2, Head("sigmoid", "mse", 1)),
    ("auto", "mse", 2, Head("sigmoid", "mse", 1)),
    ("auto", "bce", 2, Head("sigmoid", "bce", 1)),
    ("auto", "ce", 2, Head("softmax", "ce", 2)),
    ("auto", "auto", 5, Head("softmax", "ce", 5)),
    ("auto", "mse", 3, Head("softmax", "mse", 3)),
    ("sigmoid", "auto", 2, Head("sigmoid", "mse", 1)),
    ("softmax", "auto", 2, Head("softmax", "ce", 2)),
    ("linear", "auto", 4, Head("linear", "ce", 4)),
    ("linear", "mse", 2, Head("linear", "mse", 2)),
])
def test_resolve_head(output: str, loss: str, n_classes: int, head: Head) -> None:
    model = ModelConfig(output=output)
    assert resolve_head(model, loss, n_classes) == head
    net = build_mlp(model, head, 3, seed=0)
    assert net(torch.zeros(7, 3)).shape == (7, head.out_dim)
    assert isinstance(net[-1], nn.Sigmoid) == (head.output == "sigmoid")


@pytest.mark.parametrize(("output", "loss", "n_classes", "key"), [
    ("sigmoid", "auto", 3, "model.output"), ("sigmoid", "ce", 2, "train.loss"),
    ("auto", "bce", 3, "train.loss"), ("softmax", "bce", 2, "train.loss"),
    ("linear", "bce", 2, "train.loss"),
])
def test_resolve_head_rejects_bad_pairs(output: str, loss: str, n_classes: int, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_head(ModelConfig(output=output), loss, n_classes)
    assert e.value.key == key


def test_count_parameters() -> None:
    model = ModelConfig(hidden=(5, 3))
    head = Head("softmax", "ce", 4)
    net = build_mlp(model, head, 2, seed=0)
    assert count_parameters(model, 2, head) == sum(p.numel() for p in net.parameters()) == 49


def test_derive_seed() -> None:
    assert derive_seed(7, 0) == 7
    seeds = [derive_seed(7, a) for a in range(50)]
    assert len(set(seeds)) == 50 and seeds == [derive_seed(7, a) for a in range(50)]
    assert all(0 <= s < 2 ** 31 for s in seeds)
    assert derive_seed(8, 1) != derive_seed(7, 1)
