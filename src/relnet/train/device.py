"""Moving batches to where the model lives (CPU or GPU)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (also inside dicts, tuples and lists) on ``device``; other values as they are."""
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
