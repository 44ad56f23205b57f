"""bAbI plugged into the shared training loop, exact per-task evaluation, and checkpoint loading.

A checkpoint's ``config.json`` holds the vocabulary (``Vocab.to_json``), so ``load_model`` needs nothing else and
``evaluate_files`` can read any user's official ``qaN_*_test.txt`` files: words never seen in training map to UNK,
answers never seen in training count as wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config
from relnet.errors import UserError
from relnet.tasks.babi import data as babi
from relnet.tasks.babi.augment import Renamer
from relnet.tasks.babi.model import ModelConfig, RunConfig, build_model
from relnet.train.config import from_dict, to_dict
from relnet.train.device import model_device, to_device

TASK = "babi"
PASS_ACCURACY = 0.95  # a task is passed when its accuracy exceeds 95% (error below 5%)


class Examples:
    """One encoded split as tensors (schema: ``relnet.tasks.babi.data.encode``); token ids stay int16 until batched."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.story = torch.from_numpy(arrays["story"])  # (Q, S, T)
        self.story_len = torch.from_numpy(arrays["story_len"])  # (Q, S)
        self.question = torch.from_numpy(arrays["question"])  # (Q, Tq)
        self.question_len = torch.from_numpy(arrays["question_len"])  # (Q,)
        self.answer = torch.from_numpy(arrays["answer"]).long()  # (Q,), -1 = not an answer the model knows
        self.task = torch.from_numpy(arrays["task"]).long()  # (Q,)

    def __len__(self) -> int:
        return len(self.answer)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(story, story_len, question, question_len, answer)`` as long tensors, trimmed to the longest rows."""
        story_len = self.story_len[indices].long()  # (B, S)
        question_len = self.question_len[indices].long()  # (B,)
        T = max(1, int(story_len.max())) if len(indices) else 1
        Tq = max(1, int(question_len.max())) if len(indices) else 1
        story = self.story[indices, :, :T].long()  # (B, S, T)
        question = self.question[indices, :Tq].long()  # (B, Tq)
        return story, story_len, question, question_len, self.answer[indices]

    def balanced(self) -> "Examples":
        """These examples with each task's questions repeated ``round(n_max / n_task)`` times (at least once), where
        ``n_max`` is the largest task's count: task 3's 1,735 training questions here count about as much per epoch
        as another task's 9,000 (with ``--data.augment=3`` every repeat is renamed afresh)."""
        counts = torch.bincount(self.task)
        return self.repeated(torch.where(counts > 0, (counts.max() / counts.clamp(min=1)).round().clamp(min=1), 0))

    def oversampled(self, tasks: Sequence[int], times: int) -> "Examples":
        """These examples with the questions of ``tasks`` repeated ``times`` times (the others once): those tasks
        fill a larger share of every epoch, and so of every batch."""
        if times < 1:
            raise UserError(f"--data.repeat_times={times}: must be at least 1")
        counts = torch.bincount(self.task)
        repeats = torch.ones_like(counts)
        for t in tasks:
            if not 0 < t < len(counts) or counts[t] == 0:
                raise UserError(f"--data.repeat={t}: no training questions of task {t}")
            repeats[t] = times
        return self.repeated(repeats)

    def repeated(self, repeats: Tensor) -> "Examples":
        """Each question repeated ``repeats[its task]`` times, in order."""
        index = torch.repeat_interleave(torch.arange(len(self)), repeats.long()[self.task])
        out = copy.copy(self)
        for name, tensor in vars(self).items():
            setattr(out, name, tensor[index])
        return out


@torch.no_grad()
def predict(model: nn.Module, examples: Examples, *, batch_size: int = 500) -> Tensor:
    """Predicted answer class of every question: ``(Q,)`` long."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    out = torch.empty(len(examples), dtype=torch.long)
    for start in range(0, len(examples), batch_size):
        idx = torch.arange(start, min(len(examples), start + batch_size))
        story, story_len, question, question_len, _ = to_device(examples.batch(idx), device)
        out[idx] = model(story, story_len, question, question_len).argmax(-1).cpu()
    model.train(was_training)
    return out


def metrics(correct: Tensor, tasks: Tensor) -> dict[str, Any]:
    """``{"n", "accuracy", "by_task": {"1": acc, ...}, "passed"}``; only tasks present in ``tasks`` appear."""
    by_task = {}  # exact ratios of counts (in double precision: 19/20 is 0.95, which is not a pass)
    for t in sorted(set(tasks.tolist())):
        sel = tasks == t
        by_task[str(t)] = int(correct[sel].sum()) / int(sel.sum())
    return {
        "n": int(len(correct)),
        "accuracy": int(correct.sum()) / len(correct) if len(correct) else float("nan"),
        "by_task": by_task,
        "passed": sum(acc > PASS_ACCURACY for acc in by_task.values()),
    }


def evaluate(model: nn.Module, examples: Examples, *, batch_size: int = 500) -> dict[str, Any]:
    """Exact accuracy over every question, overall and per task, and the number of tasks passed (> 95%)."""
    correct = predict(model, examples, batch_size=batch_size) == examples.answer  # answer -1 is never right
    return metrics(correct, examples.task)


def load_splits(cfg: RunConfig) -> tuple[babi.Vocab, Examples, Examples | None]:
    """Parse the training data under ``cfg.data.root`` once: vocabulary, training and validation examples."""
    if not cfg.data.root:
        raise UserError("no bAbI data folder: pass --data DIR (the folder holding the qaN_*_train.txt files)")
    tasks = cfg.data.tasks or None
    examples, _ = babi.load_training_examples(cfg.data.root, tasks=tasks)
    train, valid = babi.split_train_valid(examples, cfg.data.valid_fraction)
    vocab = babi.Vocab.build(train)
    S = cfg.model.max_sentences
    train_set = Examples(babi.encode(train, vocab, max_sentences=S))
    if cfg.data.balance:
        train_set = train_set.balanced()
    if cfg.data.repeat:
        train_set = train_set.oversampled(cfg.data.repeat, cfg.data.repeat_times)
    valid_set = Examples(babi.encode(valid, vocab, max_sentences=S)) if valid else None
    return vocab, train_set, valid_set


class BabiTask:
    """The ``relnet.train.loop.Task`` for joint training on every bAbI task found under ``cfg.data.root``."""

    name = TASK

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.vocab, self.train_set, self.valid_set = load_splits(cfg)
        self.renamer = Renamer(self.vocab, cfg.data.augment) if cfg.data.augment else None

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, self.vocab)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": to_dict(self.cfg.model), "preset": self.cfg.preset,
                "data": {"valid_fraction": self.cfg.data.valid_fraction, "tasks": list(self.cfg.data.tasks),
                         "augment": list(self.cfg.data.augment), "balance": self.cfg.data.balance,
                         "repeat": list(self.cfg.data.repeat), "repeat_times": self.cfg.data.repeat_times},
                "vocab": self.vocab.to_json()}

    def train_size(self) -> int:
        return len(self.train_set)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        story, story_len, question, question_len, answer = self.train_set.batch(indices)
        if train and self.renamer is not None:
            story, question, answer = self.renamer(story, question, answer, self.train_set.task[indices], generator)
        return story, story_len, question, question_len, answer

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        story, story_len, question, question_len, answer = batch
        logits = model(story, story_len, question, question_len)
        loss = F.cross_entropy(logits, answer, reduction="sum")
        return loss, {"correct": float((logits.argmax(-1) == answer).sum()), "count": float(len(answer))}

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        if self.valid_set is None:
            return {}
        return evaluate(model, self.valid_set)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any], babi.Vocab]:
    """Rebuild a bAbI model from a checkpoint folder: ``(model in eval mode, config, vocabulary)``."""
    config = read_config(path, task=TASK)
    if "vocab" not in config:
        raise UserError(f"checkpoint {path}: config.json has no field 'vocab'")
    vocab = babi.Vocab.from_json(config["vocab"])
    try:
        model = build_model(from_dict(ModelConfig, config["model"]), vocab)
    except (TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: field 'model' does not describe a bAbI model ({e})") from None
    load_weights(path, model)
    model.eval()
    return model, config, vocab


def load_eval_examples(root: str | Path, split: str, vocab: babi.Vocab, *, max_sentences: int,
                       valid_fraction: float = 0.1, tasks: Iterable[int] | None = None) -> Examples:
    """The ``test`` (official ``qaN_*_test.txt`` files) or ``valid`` (our carve of the training files) questions
    under ``root``, encoded with a checkpoint's ``vocab``. Tasks without files are simply absent."""
    if split == "test":
        files = babi.find_task_files(root, "test")
        if not files:
            raise UserError(f"{root}: no bAbI test files found (expected qa<N>_..._test.txt here or in en-10k/, en/ ...)")
        examples = [ex for t, p in files.items() if tasks is None or t in set(tasks)
                    for ex in babi.parse_files([p], task=t)]
    elif split == "valid":
        train_examples, _ = babi.load_training_examples(root, tasks=tasks)
        _, examples = babi.split_train_valid(train_examples, valid_fraction)
    else:
        raise UserError(f"--split {split}: expected test or valid")
    if not examples:
        raise UserError(f"{root}: no {split} questions found")
    return Examples(babi.encode(examples, vocab, max_sentences=max_sentences))


def evaluate_checkpoint(path: str | Path, root: str | Path, split: str = "test", *,
                        tasks: Sequence[int] | None = None) -> dict[str, Any]:
    """``{"task": "babi", "split", "n", "accuracy", "by_task", "passed"}`` of a checkpoint on the files in ``root``."""
    model, config, vocab = load_model(path)
    valid_fraction = float(config.get("data", {}).get("valid_fraction", 0.1))
    examples = load_eval_examples(root, split, vocab, max_sentences=model.cfg.max_sentences,
                                  valid_fraction=valid_fraction, tasks=tasks)
    return {"task": TASK, "split": split, **evaluate(model, examples)}


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    return from_dict(RunConfig, data)
