"""A plain multi-layer perceptron: the building block of g_theta, f_phi and the MLP baselines."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _per_layer(value: float | Sequence[float], n: int, name: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but the MLP has {n} hidden layers")
    return values


class MLP(nn.Sequential):
    """``in_dim -> hidden_dims[0] -> ... -> hidden_dims[-1] [-> out_dim]`` with ReLU between layers.

    Args:
        in_dim: input features.
        hidden_dims: widths of the hidden layers; each is Linear + ReLU (+ Dropout when its rate is > 0).
        out_dim: if given, a final Linear layer without activation (logits); otherwise the MLP ends with the
            last hidden layer's ReLU.
        dropout: one rate for every hidden layer, or one rate per hidden layer (``nn.Dropout``, so ``eval()``
            turns it off).
        norm: ``None``, ``"layer"`` or ``"batch"``: a LayerNorm or BatchNorm1d between each hidden Linear and its
            ReLU (``"batch"`` needs 2-D input).

    Shapes:
        input ``(..., in_dim)``, output ``(..., out_dim or hidden_dims[-1])``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int | None = None,
        *,
        dropout: float | Sequence[float] = 0.0,
        norm: str | None = None,
    ) -> None:
        rates = _per_layer(dropout, len(hidden_dims), "dropout")
        layers: list[nn.Module] = []
        prev = in_dim
        for width, rate in zip(hidden_dims, rates):
            layers += [nn.Linear(prev, width), *([make_norm(norm, width)] if norm else []), nn.ReLU(inplace=True)]
            if rate > 0:
                layers.append(nn.Dropout(rate))
            prev = width
        if out_dim is not None:
            layers.append(nn.Linear(prev, out_dim))
        super().__init__(*layers)
        self.in_dim = in_dim
        self.out_dim = prev if out_dim is None else out_dim

    def reset_parameters(self) -> None:
        for m in self:
            if isinstance(m, (nn.Linear, nn.LayerNorm, nn.BatchNorm1d)):
                m.reset_parameters()


NORMS = ("layer", "batch")


def make_norm(kind: str | None, width: int) -> nn.Module:
    """``None`` -> Identity, ``"layer"`` -> LayerNorm, ``"batch"`` -> BatchNorm1d, over ``width`` features."""
    if kind is None:
        return nn.Identity()
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    raise ValueError(f"norm must be None, 'layer' or 'batch', got {kind!r}")


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def init_like_linear(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    """PyTorch's default ``nn.Linear`` initialisation for a weight split across several inputs."""
    bound = 1.0 / fan_in**0.5
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)
