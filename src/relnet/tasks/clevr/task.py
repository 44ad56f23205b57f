"""CLEVR plugged into the shared training loop, and its exact per-family evaluation.

Examples are questions: question ``k`` of a split asks about scene ``image_index[k]``. A batch is a dict of tensors
(see :class:`Examples.batch`); state input gathers the scene's padded state rows and mask, pixel input its cached
128x128 image (augmented while training, paper-spec 2.2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config
from relnet.errors import UserError
from relnet.tasks.clevr.loader import ANSWERS, FAMILIES, ClevrSplit, Vocab, augment, load_split, split_paths, to_float
from relnet.tasks.clevr.model import ModelConfig, QTypePrior, RunConfig, build_model
from relnet.train.config import from_dict, to_dict
from relnet.train.device import model_device, to_device, use_cuda

TASK = "clevr"


class Examples:
    """One split as tensors: the questions, and per scene either state rows or images."""

    def __init__(self, split: ClevrSplit, *, input: str, limit: int = 0) -> None:
        n = len(split) if limit <= 0 else min(limit, len(split))
        self.name = split.split
        self.input = input
        self.vocab = split.vocab
        self.tokens = torch.from_numpy(split.tokens[:n])  # (Q, T)
        self.lengths = torch.from_numpy(split.lengths[:n])  # (Q,)
        self.answers = torch.from_numpy(split.answers[:n])  # (Q,) -1 = unknown
        self.families = torch.from_numpy(split.families[:n])  # (Q,) -1 = unknown
        self.qfi = torch.from_numpy(split.question_family_index[:n])  # (Q,)
        self.image_index = torch.from_numpy(split.image_index[:n])  # (Q,)
        self.states = None
        self.images = None
        if input == "state":
            if split.states is None:
                raise UserError(f"split {split.split!r}: state input needs the scenes file "
                                f"(scenes/CLEVR_{split.split}_scenes.json)")
            self.states = {k: torch.from_numpy(v) for k, v in split.states.items()}
        elif input == "pixels":
            if split.images is None:
                raise UserError(f"split {split.split!r}: pixel input needs images/{split.split}/*.png")
            self.images = split.images  # (S, 128, 128, 3) uint8 memmap
        else:
            raise UserError(f"--input {input}: expected state or pixels")

    def __len__(self) -> int:
        return len(self.answers)

    def batch(self, indices: Tensor, *, train: bool = False, augment_images: bool = False,
              generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Collate questions ``indices``; questions are trimmed to the batch's longest."""
        lengths = self.lengths[indices]
        T = int(lengths.max()) if len(indices) else 1
        out = {"tokens": self.tokens[indices, :T], "lengths": lengths, "answers": self.answers[indices],
               "families": self.families[indices], "qfi": self.qfi[indices]}
        scenes = self.image_index[indices]
        if self.states is not None:
            for k, v in self.states.items():
                out[k] = v[scenes]  # coords (B,10,3), attrs (B,10,4), rgb (B,10,3), mask (B,10)
        else:
            # memmap fancy indexing wants sorted unique rows; gather them once, then expand per question
            uniq, inverse = np.unique(scenes.numpy(), return_inverse=True)
            images = torch.from_numpy(np.ascontiguousarray(self.images[uniq]))[torch.from_numpy(inverse)]
            if train and augment_images:
                out["image"] = augment(images, generator=generator)  # (B, 3, 128, 128)
            else:
                out["image"] = to_float(images)  # (B, 3, 128, 128)
        return out


def evaluate(model: nn.Module, examples: Examples, *, batch_size: int = 500) -> dict[str, Any]:
    """Exact accuracy over every question with a known answer: overall and per question family (paper Table 1)."""
    return metrics(answered_correctly(model, examples, batch_size=batch_size), examples.answers, examples.families)


@torch.no_grad()
def answered_correctly(model: nn.Module, examples: Examples, *, batch_size: int = 500) -> Tensor:
    """``(Q,)`` bool: whether the model's answer to each question is its answer (eval mode, batch by batch)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = torch.zeros(len(examples), dtype=torch.bool)
    for start in range(0, len(examples), batch_size):
        idx = torch.arange(start, min(len(examples), start + batch_size))
        batch = to_device(examples.batch(idx), device)
        correct[idx] = (model(batch).argmax(-1) == batch["answers"]).cpu()
    model.train(was_training)
    return correct


def metrics(correct: Tensor, answers: Tensor, families: Tensor) -> dict[str, Any]:
    known = answers >= 0
    out: dict[str, Any] = {"n": int(known.sum()),
                           "accuracy": float(correct[known].float().mean()) if known.any() else float("nan"),
                           "by_family": {}}
    for k, name in enumerate(FAMILIES):
        sel = known & (families == k)
        out["by_family"][name] = float(correct[sel].float().mean()) if sel.any() else float("nan")
    return out


def load_examples(root: str | Path, split: str, *, input: str, vocab: Vocab | None, limit: int = 0,
                  cache_dir: str | None = None, progress: bool | None = None) -> Examples:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--data {root}: no such folder (expected the official CLEVR layout: questions/, scenes/, "
                        "images/; make one with `relnet data clevr --scenes N --out DIR`)")
    sp = load_split(root, split, vocab=vocab, with_images=input == "pixels", with_scenes=input == "state",
                    cache_dir=cache_dir or None, progress=progress)
    return Examples(sp, input=input, limit=limit)


class ClevrTask:
    """The ``relnet.train.loop.Task`` for CLEVR (state descriptions or pixels)."""

    name = TASK

    def __init__(self, cfg: RunConfig, *, progress: bool | None = None) -> None:
        d = cfg.data
        if not d.root:
            raise UserError("--data is required: a folder in the official CLEVR layout")
        self.cfg = cfg
        input = cfg.model.input
        self.train_set = load_examples(d.root, d.train_split, input=input, vocab=None, limit=d.max_train_questions,
                                       cache_dir=d.cache_dir, progress=progress)
        self.vocab = self.train_set.vocab
        if (self.train_set.answers < 0).any():
            raise UserError(f"split {d.train_split!r} of {d.root} has questions without answers; cannot train on it")
        self.val_set = None
        if d.val_split and split_paths(Path(d.root), d.val_split)["questions"].is_file():
            self.val_set = load_examples(d.root, d.val_split, input=input, vocab=self.vocab,
                                         limit=d.max_val_questions, cache_dir=d.cache_dir, progress=progress)
        cfg.model.vocab_size = len(self.vocab)
        resolve_epochs(cfg, len(self.train_set))

    def build_model(self) -> nn.Module:
        model = build_model(self.cfg.model)
        if isinstance(model, QTypePrior):
            model.fit(self.train_set.qfi, self.train_set.answers)
        return model

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": to_dict(self.cfg.model), "preset": self.cfg.preset,
                "data": to_dict(self.cfg.data), "vocab": self.vocab.to_dict(), "answers": list(ANSWERS),
                "families": list(FAMILIES)}

    def train_size(self) -> int:
        return len(self.train_set)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        return self.train_set.batch(indices, train=train, augment_images=self.cfg.data.augment, generator=generator)

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        batch = to_device(batch, model_device(model))
        logits = model(batch)
        y = batch["answers"]
        loss = F.cross_entropy(logits, y, reduction="sum")
        return loss, {"correct": float((logits.argmax(-1) == y).sum()), "count": float(len(y))}

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        return {} if self.val_set is None else evaluate(model, self.val_set)


def resolve_epochs(cfg: RunConfig, n: int) -> None:
    """Turn the epoch-denominated fields of ``cfg`` into optimiser steps for a training set of ``n`` questions."""
    per_epoch = n / cfg.train.batch_size
    if cfg.epochs > 0:
        cfg.train.steps = max(1, math.ceil(cfg.epochs * per_epoch))
    if cfg.lr_double_epochs > 0:
        cfg.train.step_every = max(1, round(cfg.lr_double_epochs * per_epoch))
    if cfg.warmup_epochs > 0:
        cfg.train.warmup_steps = max(1, round(cfg.warmup_epochs * per_epoch))


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a CLEVR model from a checkpoint folder (``model.safetensors`` + ``config.json``)."""
    config = read_config(path, task=TASK)
    try:
        model_cfg = from_dict(ModelConfig, config["model"])
        vocab = Vocab.from_dict(config["vocab"])
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"checkpoint {path}: fields 'model'/'vocab' do not describe a CLEVR model ({e})") from None
    model = build_model(model_cfg)
    load_weights(path, model)
    model.eval()
    return model, {**config, "vocab": vocab}


def evaluate_checkpoint(path: str | Path, data: str | Path, *, split: str = "val", input: str | None = None,
                        limit: int = 0, cache_dir: str | None = None) -> dict[str, Any]:
    """``relnet eval clevr``: ``{"task", "input", "model", "split", "n", "accuracy", "by_family"}``."""
    model, config = load_model(path)
    trained_input = config["model"]["input"]
    if input is not None and input != trained_input:
        raise UserError(f"--input {input}: checkpoint {path} was trained on {trained_input} input")
    examples = load_examples(data, split, input=trained_input, vocab=config["vocab"], limit=limit,
                             cache_dir=cache_dir, progress=False)
    if (examples.answers < 0).all():
        raise UserError(f"split {split!r} of {data} has no answers to evaluate against")
    if use_cuda():
        model = model.cuda()
    result = evaluate(model, examples)
    return {"task": TASK, "input": trained_input, "model": config["model"]["kind"], "split": split, **result}


__all__ = ["ClevrTask", "Examples", "evaluate", "answered_correctly", "metrics", "load_model", "evaluate_checkpoint",
           "resolve_epochs"]
