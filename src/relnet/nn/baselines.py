"""Baselines the paper compares against: an MLP over the flattened objects (CNN+MLP, CNN+LSTM)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from relnet.nn.mlp import MLP


class ObjectMLP(nn.Module):
    """``MLP([flatten(objects); q])``: sees every object at once but has no shared pairwise function.

    Args:
        num_objects, object_dim: N and D of the (fixed-size) object set.
        question_dim: Q (0 for none).
        hidden_dims: hidden widths (ReLU); a final linear layer gives ``out_dim`` logits.
        dropout: per hidden layer or one rate for all.
        hidden_norm: ``None``, ``"layer"`` or ``"batch"`` between each hidden Linear and its ReLU (see :class:`MLP`).

    Shapes:
        objects ``(B, N, D)``, question ``(B, Q)``, mask ``(B, N)`` (masked objects are zeroed) -> ``(B, C)``.
    """

    def __init__(self, *, num_objects: int, object_dim: int, question_dim: int = 0, hidden_dims: Sequence[int],
                 out_dim: int, dropout: float | Sequence[float] = 0.0, hidden_norm: str | None = None) -> None:
        super().__init__()
        self.num_objects, self.object_dim, self.question_dim = num_objects, object_dim, question_dim
        self.mlp = MLP(num_objects * object_dim + question_dim, list(hidden_dims), out_dim, dropout=dropout,
                       norm=hidden_norm)

    def forward(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        B, N, D = objects.shape
        if (N, D) != (self.num_objects, self.object_dim):
            raise ValueError(f"objects must have shape (B, {self.num_objects}, {self.object_dim}), got {tuple(objects.shape)}")
        if mask is not None:
            objects = objects * mask[..., None].to(objects.dtype)
        parts = [objects.reshape(B, N * D)] + ([question] if question is not None else [])
        return self.mlp(torch.cat(parts, dim=-1))
