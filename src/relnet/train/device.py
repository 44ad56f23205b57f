"""Moving batches to where the model lives (CPU or GPU)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from relnet.errors import UserError


def use_cuda() -> bool:
    """Whether to run on a GPU: ``RELNET_DEVICE`` = ``auto`` (the default: a GPU when torch sees one), ``cpu`` or
    ``cuda`` (a GPU or a one-line error)."""
    choice = os.environ.get("RELNET_DEVICE", "auto").lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise UserError(f"RELNET_DEVICE must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("RELNET_DEVICE=cuda but torch sees no GPU (torch.cuda.is_available() is False)")
    return choice != "cpu" and torch.cuda.is_available()


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (also in dicts, tuples and lists) on ``device``; other values as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer)."""
    t = next(iter(model.parameters()), None)
    if t is None:
        t = next(iter(model.buffers()))
    return t.device
