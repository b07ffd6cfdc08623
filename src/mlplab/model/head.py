"""The output head: how a network's last layer is read (its output, resolved loss and
units) for a dataset's number of classes. Without torch: a sweep file's combinations are
checked against it (:func:`mlplab.sweep.spec.check_plan`) before anything loads torch.

>>> from mlplab.config import ModelConfig
>>> resolve_head(ModelConfig(), "auto", 3)
Head(output='softmax', loss='ce', out_dim=3)
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplab.config import ConfigError, ModelConfig


@dataclass(frozen=True)
class Head:
    """How the last layer is read: ``output`` (sigmoid / softmax / linear), the
    resolved ``loss`` (mse / bce / ce) and the number of output units."""

    output: str
    loss: str
    out_dim: int


def resolve_head(model: ModelConfig, loss: str, n_classes: int) -> Head:
    """Resolve ``auto`` output and loss for ``n_classes``, rejecting bad pairs.

    auto loss: mse for 2 classes (the classic sigmoid net), ce for more.
    auto output: one sigmoid unit for 2 classes with mse/bce, else k logits.
    """
    if loss == "auto":
        loss = "mse" if n_classes == 2 and model.output in ("auto", "sigmoid") else "ce"
    output = model.output
    if output == "auto":
        output = "sigmoid" if n_classes == 2 and loss in ("mse", "bce") else "softmax"
    if output == "sigmoid" and n_classes != 2:
        raise ConfigError("model.output", output, f"softmax or linear for {n_classes} classes")
    if loss == "bce" and output != "sigmoid":
        raise ConfigError("train.loss", loss, "mse or ce unless the output is one sigmoid unit (2 classes)")
    if loss == "ce" and output == "sigmoid":
        raise ConfigError("train.loss", loss, "mse or bce with a sigmoid output")
    return Head(output, loss, 1 if output == "sigmoid" else n_classes)
