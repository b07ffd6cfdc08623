"""The MLP: layer sizes, activation, output head and named initialisation (SPEC §3).

Models are plain ``nn.Sequential``s of ``Linear`` and activation modules, built from an
explicit seed (never the global RNG), so a run's network is the same in every process.

>>> from mlplab.config import ModelConfig
>>> net = build_mlp(ModelConfig(hidden=(4,)), resolve_head(ModelConfig(), "auto", 2), 2, seed=0)
>>> [type(m).__name__ for m in net]
['Linear', 'ReLU', 'Linear', 'Sigmoid']
"""

from __future__ import annotations

import torch
from torch import nn

from mlplab.config import ModelConfig, parse_init
from .head import Head as Head
from .head import resolve_head as resolve_head


def make_activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """A fresh activation module by config name."""
    table = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh,
             "sigmoid": nn.Sigmoid, "linear": nn.Identity}
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return table[name]()


def init_tensor_(t: torch.Tensor, spec: str, activation: str, gen: torch.Generator,
                 negative_slope: float = 0.01, key: str = "model.init") -> torch.Tensor:
    """Fill ``t`` in place by the init ``spec`` (e.g. ``he_normal``, ``normal(0.5)``)."""
    name, param = parse_init(spec, key)
    with torch.no_grad():
        if t.dim() < 2 and name in ("xavier_uniform", "xavier_normal", "he_uniform",
                                    "he_normal", "orthogonal"):
            # fan-based inits are undefined for vectors: treat a bias as a 1 x n row
            init_tensor_(t.view(1, -1), spec, activation, gen, negative_slope, key)
            return t
        nonlin = "leaky_relu" if activation == "leaky_relu" else "relu"
        a = negative_slope if activation == "leaky_relu" else 0.0
        if name == "xavier_uniform":
            nn.init.xavier_uniform_(t, generator=gen)
        elif name == "xavier_normal":
            nn.init.xavier_normal_(t, generator=gen)
        elif name == "he_uniform":
            nn.init.kaiming_uniform_(t, a=a, nonlinearity=nonlin, generator=gen)
        elif name == "he_normal":
            nn.init.kaiming_normal_(t, a=a, nonlinearity=nonlin, generator=gen)
        elif name == "orthogonal":
            nn.init.orthogonal_(t, generator=gen)
        elif name == "normal":
            nn.init.normal_(t, 0.0, 1.0 if param is None else param, generator=gen)
        elif name == "uniform":
            bound = 1.0 if param is None else param
            nn.init.uniform_(t, -bound, bound, generator=gen)
        elif name == "zeros":
            t.zero_()
        elif name == "constant":
            t.fill_(0.0 if param is None else param)
    return t


def layer_sizes(model: ModelConfig, d_in: int, head: Head) -> list[tuple[int, int]]:
    """``[(d_in, h1), (h1, h2), ..., (h_last, out)]`` for the Linear layers."""
    dims = [d_in, *model.hidden, head.out_dim]
    return list(zip(dims[:-1], dims[1:]))


def build_mlp(model: ModelConfig, head: Head, d_in: int, seed: int | torch.Generator,
              dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Build and initialise the MLP from ``seed`` (an int or a ``torch.Generator``)."""
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    modules: list[nn.Module] = []
    sizes = layer_sizes(model, d_in, head)
    for i, (fan_in, fan_out) in enumerate(sizes):
        # nn.Linear's own init draws from the global RNG: put it back as it was (not
        # skip_init, whose meta-device tensors import torch's symbolic shapes and sympy,
        # 0.3 s, in every process that builds a network)
        with torch.random.fork_rng(devices=[]):
            linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        spec = model.layer_init.get(str(i), model.init)
        init_tensor_(linear.weight, spec, model.activation, gen, model.negative_slope,
                     f"model.layer_init.{i}" if str(i) in model.layer_init else "model.init")
        init_tensor_(linear.bias, model.bias_init, model.activation, gen,
                     model.negative_slope, "model.bias_init")
        modules.append(linear)
        if i < len(sizes) - 1:
            modules.append(make_activation(model.activation, model.negative_slope))
    if head.output == "sigmoid":
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def init_flat_(row: torch.Tensor, model: ModelConfig, head: Head, d_in: int,
               seed: int | torch.Generator) -> torch.Tensor:
    """Fill ``row [P]`` (each Linear layer's weight then bias, flattened, in order) with the
    parameters :func:`build_mlp` draws from ``seed``, bit for bit, without building modules:
    the same fills from the same generator in the same order. Returns ``row``.

    >>> from mlplab.config import ModelConfig
    >>> cfg, head = ModelConfig(hidden=(4,)), resolve_head(ModelConfig(), "auto", 2)
    >>> row = init_flat_(torch.empty(count_parameters(cfg, 2, head)), cfg, head, 2, seed=3)
    >>> net = build_mlp(cfg, head, 2, seed=3)
    >>> torch.equal(row, torch.cat([p.reshape(-1) for p in net.parameters()]))
    True
    """
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    start = 0
    for i, (fan_in, fan_out) in enumerate(layer_sizes(model, d_in, head)):
        mid, end = start + fan_in * fan_out, start + fan_in * fan_out + fan_out
        spec = model.layer_init.get(str(i), model.init)
        init_tensor_(row[start:mid].view(fan_out, fan_in), spec, model.activation, gen,
                     model.negative_slope,
                     f"model.layer_init.{i}" if str(i) in model.layer_init else "model.init")
        init_tensor_(row[mid:end], model.bias_init, model.activation, gen,
                     model.negative_slope, "model.bias_init")
        start = end
    return row


def linear_layers(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The ``Linear`` layers of a network in order, with their module names."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]


def count_parameters(model: ModelConfig, d_in: int, head: Head) -> int:
    return sum(a * b + b for a, b in layer_sizes(model, d_in, head))


def derive_seed(run_seed: int, attempt: int) -> int:
    """Seed of attempt ``attempt`` (0-based) of a run: attempt 0 uses the run's seed;
    restarts get well-mixed, reproducible new seeds."""
    if attempt == 0:
        return int(run_seed)
    x = (int(run_seed) * 0x9E3779B1 + attempt * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    return int(x ^ (x >> 12)) % (2 ** 31 - 1)

