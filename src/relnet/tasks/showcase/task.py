"""The showcase task in the shared training loop, its exact per-family evaluation, and checkpoint loading.

Training example ``k`` is train scene ``k`` with one question of family ``k % 4``, generated on demand from
``(seed, k)``, so the training set is as large as ``train_scenes`` says without being stored (and no scene is
generated for nothing). Evaluation uses other streams: split ``val`` during training, split ``test`` with ``--seed`` in
``relnet eval showcase``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config
from relnet.errors import UserError
from relnet.tasks.showcase import data
from relnet.tasks.showcase.model import ModelConfig, RunConfig, build_model
from relnet.train.config import from_dict, to_dict
from relnet.train.device import model_device, to_device

TASK = "showcase"


def make_batch(scenes: list[data.Scene], questions: list[data.Question], answers: list[str]):
    """``(xy, categorical, tokens, lengths)``, ``targets (B,)``."""
    inputs = data.encode(scenes, questions)
    targets = torch.tensor([data.ANSWER_INDEX[a] for a in answers], dtype=torch.long)
    return inputs, targets


def examples(seed: int, split: str, scenes: int, questions_per_scene: int):
    """Every question of ``scenes`` scenes of ``split``, flattened: (scenes, questions, answers) lists."""
    s_out, q_out, a_out = [], [], []
    for k in range(scenes):
        scene, qs, ans = data.generate(seed, split, k, questions_per_scene)
        s_out += [scene] * len(qs)
        q_out += qs
        a_out += ans
    return s_out, q_out, a_out


@torch.no_grad()
def evaluate(model: nn.Module, scenes, questions, answers, *, batch_size: int = 512) -> dict[str, Any]:
    """Exact accuracy, overall and per family, over the given questions."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = []
    for s in range(0, len(questions), batch_size):
        inputs, y = make_batch(scenes[s : s + batch_size], questions[s : s + batch_size], answers[s : s + batch_size])
        correct.append(model(*to_device(inputs, device)).argmax(-1).cpu() == y)
    model.train(was_training)
    ok = torch.cat(correct)
    fam = [q.family for q in questions]
    by_family = {f: float(ok[[k for k, g in enumerate(fam) if g == f]].float().mean())
                 for f in data.FAMILIES if f in fam}
    return {"n": len(questions), "accuracy": float(ok.float().mean()), "by_family": by_family}


class ShowcaseTask:
    """The ``relnet.train.loop.Task`` for the showcase QA."""

    name = TASK

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        d = cfg.data
        if d.questions_per_scene < 1 or d.train_scenes < 1 or d.eval_scenes < 0:
            raise UserError("--data.questions_per_scene and --data.train_scenes must be >= 1, "
                            "--data.eval_scenes >= 0")
        self.val = examples(d.seed, "val", d.eval_scenes, d.questions_per_scene)

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": to_dict(self.cfg.model), "preset": self.cfg.preset,
                "data": to_dict(self.cfg.data), "answers": list(data.ANSWERS), "vocab": list(data.VOCAB),
                "families": list(data.FAMILIES), "data_version": data.VERSION}

    def train_size(self) -> int:
        return self.cfg.data.train_scenes

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        scenes, qs, ans = [], [], []
        for k in indices.tolist():
            scene, (q,), (a,) = data.generate(self.cfg.data.seed, "train", k, 1, first_family=k % len(data.FAMILIES))
            scenes.append(scene)
            qs.append(q)
            ans.append(a)
        return make_batch(scenes, qs, ans)

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        inputs, y = batch
        logits = model(*inputs)
        loss = F.cross_entropy(logits, y, reduction="sum")
        return loss, {"correct": float((logits.argmax(-1) == y).sum()), "count": float(len(y))}

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        if not self.val[0]:
            return {}
        result = evaluate(model, *self.val)
        return {"accuracy": result["accuracy"], **{f"family_{k}": v for k, v in result["by_family"].items()}}


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the showcase model from a checkpoint folder (``model.safetensors`` + ``config.json``)."""
    config = read_config(path, task=TASK)
    if config.get("answers") != list(data.ANSWERS) or config.get("vocab") != list(data.VOCAB):
        raise UserError(f"checkpoint {path}: its answers/vocab fields differ from this version of the showcase task")
    try:
        model = build_model(from_dict(ModelConfig, config["model"]))
    except (TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: field 'model' does not describe a showcase model ({e})") from None
    load_weights(path, model)
    model.eval()
    return model, config


def evaluate_checkpoint(path: str | Path, *, seed: int, scenes: int, questions_per_scene: int = 8) -> dict[str, Any]:
    """Accuracy of a checkpoint on ``scenes`` fresh test scenes (stream ``seed``)."""
    if scenes < 1:
        raise UserError(f"--scenes {scenes}: must be at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    model, _ = load_model(path)
    result = evaluate(model, *examples(seed, "test", scenes, questions_per_scene))
    return {"task": TASK, "seed": seed, "scenes": scenes, **result}
