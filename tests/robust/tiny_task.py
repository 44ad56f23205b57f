"""A tiny relational task for the loop tests (importable from subprocesses: tests/robust is put on sys.path).

Each example is a set of ``objects`` random vectors; the label says whether the closest pair of objects (by the
first two coordinates) is nearer than a threshold. The model is BatchNorm over object features, then an RN with
dropout in f, so that batch statistics, dropout and (train-time) noise augmentation all exercise the loop's
seeding. Everything is small enough that a step takes about a millisecond on one CPU thread.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.nn import RelationNetwork
from relnet.train.config import TrainConfig


class TinyModel(nn.Module):
    def __init__(self, dim: int, hidden: int = 16) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim)
        self.rn = RelationNetwork(object_dim=dim, g_dims=(hidden, hidden), f_dims=(hidden,), out_dim=2,
                                  f_dropout=0.3, reduce="mean")

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        x = self.norm(x.reshape(B * N, D)).reshape(B, N, D)  # (B, N, D)
        return self.rn(x)  # (B, 2)


class TinyTask:
    name = "tiny"

    def __init__(self, n: int = 96, objects: int = 5, dim: int = 4, delay: float = 0.0, hidden: int = 16) -> None:
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, objects, dim, generator=g)  # (n, N, D)
        pos = self.x[:, :, :2]
        dist = torch.cdist(pos, pos) + torch.eye(objects) * 1e9
        self.y = (dist.flatten(1).min(1).values < 0.8).long()  # (n,)
        self.dim, self.hidden, self.delay = dim, hidden, delay

    def build_model(self) -> nn.Module:
        return TinyModel(self.dim, self.hidden)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": "tiny", "model": {"dim": self.dim, "hidden": self.hidden}}

    def train_size(self) -> int:
        return len(self.y)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        if self.delay:
            time.sleep(self.delay)  # make a run slow enough to be killed in the middle
        x = self.x[indices]
        if train and generator is not None:
            x = x + 0.05 * torch.randn(x.shape, generator=generator)  # augmentation from the loop's generator
        return x, self.y[indices]

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits, y, reduction="sum"), {"correct": float((logits.argmax(-1) == y).sum()),
                                                             "count": float(len(y))}

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        logits = model(self.x[:32])
        return {"accuracy": float((logits.argmax(-1) == self.y[:32]).float().mean()), "n": 32}


def tiny_config(**kw: Any) -> TrainConfig:
    base = dict(steps=24, batch_size=16, lr=3e-3, optimizer="adamw", weight_decay=1e-3, schedule="cosine",
                warmup_steps=3, clip_grad_norm=1.0, log_every=3, eval_every=4, checkpoint_every=5, seed=7, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def run(run_dir: str, resume: bool = False, delay: float = 0.0, **kw: Any):
    """Entry point for subprocesses: ``python -c 'import tiny_task; tiny_task.run(...)'`` (also under torchrun)."""
    from relnet.train.loop import train

    return train(TinyTask(delay=delay), tiny_config(**kw), run_dir, resume=resume, progress=False)


def subprocess_env() -> dict[str, str]:
    """Environment for a subprocess (python or torchrun) that imports this module: this folder on the path, ahead of
    whatever PYTHONPATH already holds (relnet itself may come from there), 1 thread, and the CPU."""
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "RELNET_DEVICE": "cpu"}
