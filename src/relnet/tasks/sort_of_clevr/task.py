"""Sort-of-CLEVR plugged into the shared training loop, and its exact per-subtype evaluation.

Examples are (image, question) pairs: example ``k`` is question ``k % 20`` of image ``k // 20``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config
from relnet.errors import UserError
from relnet.nn.objects import KeypointObjects, colour_clusters
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.model import ModelConfig, RunConfig, build_model
from relnet.train.config import from_dict, to_dict
from relnet.train.device import model_device

TASK = "sort-of-clevr"
ANCHOR_IMAGES = 500  # training images whose pixels colour_clusters reads for the keypoints' colour anchors


class Examples:
    """One split as tensors: pixel or state inputs per image, and the flattened questions and answers."""

    def __init__(self, arrays: dict[str, np.ndarray], *, state: bool) -> None:
        self.state = state
        n_img, n_q = arrays["questions"].shape[:2]
        self.questions_per_image = n_q
        if state:
            self.inputs = torch.from_numpy(soc.state_objects(arrays["centres"], arrays["shapes"]))  # (N, 6, 10)
        else:
            self.inputs = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).contiguous()  # (N, 3, 75, 75) uint8
        self.questions = torch.from_numpy(arrays["questions"].reshape(n_img * n_q, -1)).float()  # (N*20, 11)
        self.answers = torch.from_numpy(arrays["answers"].reshape(-1)).long()  # (N*20,)
        self.subtypes = torch.from_numpy(soc.question_subtype(arrays["questions"]).reshape(-1)).long()  # (N*20,)

    def __len__(self) -> int:
        return len(self.answers)

    def images(self, image_index: Tensor) -> Tensor:
        x = self.inputs[image_index]
        return x if self.state else x.float().div_(255.0)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.images(indices // self.questions_per_image), self.questions[indices], self.answers[indices]


@torch.no_grad()
def evaluate(model: nn.Module, examples: Examples, *, batch_images: int = 50) -> dict[str, Any]:
    """Exact accuracy over every question: overall, relational, non-relational and per subtype."""
    return metrics(correct_answers(model, examples, batch_images=batch_images), examples.subtypes)


@torch.no_grad()
def correct_answers(model: nn.Module, examples: Examples, *, batch_images: int = 50) -> Tensor:
    """Whether the model answers each question right, in ``examples`` order: (len(examples),) bool.

    Objects are computed once per image and reused for its 20 questions.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = torch.zeros(len(examples), dtype=torch.bool)
    n_q = examples.questions_per_image
    n_img = len(examples) // n_q
    for start in range(0, n_img, batch_images):
        img = torch.arange(start, min(n_img, start + batch_images))
        images = examples.images(img).to(device)
        objects = model.objects(images)  # (b, N, D)
        idx = (img[:, None] * n_q + torch.arange(n_q)).reshape(-1)  # (b*20,)
        objects = objects.repeat_interleave(n_q, dim=0)  # (b*20, N, D)
        mask = model.object_mask(images) if hasattr(model, "object_mask") else None
        if mask is not None:
            mask = mask.repeat_interleave(n_q, dim=0)  # (b*20, N)
        logits = model.head(objects, examples.questions[idx].to(device), mask)
        correct[idx] = logits.argmax(-1).cpu() == examples.answers[idx]
    model.train(was_training)
    return correct


@torch.no_grad()
def cnn_objects(model: nn.Module, examples: Examples, *, batch_images: int = 500) -> Tensor:
    """The CNN's objects of every image in ``examples`` (before any object encoder), on the model's device."""
    device = model_device(model)
    n_img = len(examples) // examples.questions_per_image
    was_training = model.cnn.training
    model.cnn.eval()
    out = torch.cat([model.cnn(examples.images(torch.arange(i, min(n_img, i + batch_images))).to(device))[0]
                     for i in range(0, n_img, batch_images)])
    model.cnn.train(was_training)
    return out


def metrics(correct: Tensor, subtypes: Tensor) -> dict[str, Any]:
    rel = subtypes >= 3
    out: dict[str, Any] = {
        "n": int(len(correct)),
        "accuracy": float(correct.float().mean()),
        "relational": float(correct[rel].float().mean()) if rel.any() else float("nan"),
        "non_relational": float(correct[~rel].float().mean()) if (~rel).any() else float("nan"),
        "by_subtype": {},
    }
    for k, name in enumerate(soc.SUBTYPE_NAMES):
        sel = subtypes == k
        out["by_subtype"][name] = float(correct[sel].float().mean()) if sel.any() else float("nan")
    return out


class SortOfClevrTask:
    """The ``relnet.train.loop.Task`` for Sort-of-CLEVR."""

    name = TASK
    cached_objects: Tensor | None = None  # a frozen CNN's objects of every training image (see prepare)

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        if cfg.data.folder:
            splits = soc.load_folder(cfg.data.folder)
        else:
            splits = soc.load_or_generate(self.params(), root=cfg.data.root or None, progress=True)
        state = cfg.model.kind == "rn-state"
        self.train_set = Examples(splits["train"], state=state)
        self.test_set = Examples(splits["test"], state=state) if len(splits["test"]["images"]) else None

    def params(self) -> soc.SortOfClevrParams:
        d = self.cfg.data
        return soc.SortOfClevrParams(train_images=d.train_images, test_images=d.test_images, seed=d.seed)

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": to_dict(self.cfg.model), "preset": self.cfg.preset,
                "data": to_dict(self.cfg.data), "answers": list(soc.ANSWERS), "subtypes": list(soc.SUBTYPE_NAMES)}

    def train_size(self) -> int:
        return len(self.train_set)

    def prepare(self, model: nn.Module) -> None:
        """Frozen objects (``--model.freeze_objects``): the CNN's objects of every training image are computed here,
        once, and each step trains the rest of the model on them (the same numbers: the frozen CNN stays in eval
        mode), so a step costs no CNN at all. Colour anchors (``--model.keypoint_anchors``) not yet started (a fresh
        model, not a resumed one) start at the colours of a k-means over the first 500 training images' pixels."""
        cnn = getattr(model, "cnn", None)
        if isinstance(cnn, KeypointObjects) and cnn.anchored is not None and not bool(cnn.anchored):
            images = self.train_set.images(torch.arange(min(ANCHOR_IMAGES, len(self.train_set.inputs))))
            cnn.set_anchors(colour_clusters(images, cnn.num_keypoints))
        self.cached_objects = None
        if getattr(model, "freeze_objects", False) and not model.mask_background and not model.aux_weights:
            self.cached_objects = cnn_objects(model, self.train_set)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        if self.cached_objects is not None:
            images = indices // self.train_set.questions_per_image
            return self.cached_objects[images], self.train_set.questions[indices], self.train_set.answers[indices]
        return self.train_set.batch(indices)

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        x, q, y = batch
        weights = getattr(getattr(model, "module", model), "aux_weights", {})  # the model may be wrapped in DDP
        aux: dict[str, Tensor] = {}
        if self.cached_objects is not None:
            logits = model(None, q, cnn_objects=x)
        elif weights:
            logits, aux = model(x, q, aux=True)
        else:
            logits = model(x, q)
        loss = F.cross_entropy(logits, y, reduction="sum")
        stats = {"correct": float((logits.argmax(-1) == y).sum()), "count": float(len(y))}
        for name, error in aux.items():
            loss = loss + weights[name] * error
            stats[name] = float(error.detach()) / len(y)
        return loss, stats

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        if self.test_set is None:
            return {}
        result = evaluate(model, self.test_set)
        result.pop("by_subtype")  # the per-subtype table is for the final report; keep the log flat
        return result


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a Sort-of-CLEVR model from a checkpoint folder (``model.safetensors`` + ``config.json``)."""
    config = read_config(path, task=TASK)
    try:
        model_cfg = from_dict(ModelConfig, config["model"])
        model = build_model(model_cfg)
    except (TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: field 'model' does not describe a Sort-of-CLEVR model ({e})") from None
    load_weights(path, model)
    model.eval()
    return model, config


def fresh_arrays(*, images: int, seed: int) -> dict[str, np.ndarray]:
    """``images`` newly generated test images (stream ``seed``), never cached, as ``generate_split`` returns them."""
    if images < 1:
        raise UserError(f"images={images}: at least 1 fresh image is needed")
    return soc.generate_split(soc.SortOfClevrParams(train_images=1, test_images=images, seed=seed), "test")


def fresh_examples(*, images: int, seed: int, state: bool) -> Examples:
    """``images`` newly generated test images (stream ``seed``), never cached."""
    return Examples(fresh_arrays(images=images, seed=seed), state=state)


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    return from_dict(RunConfig, data)


__all__ = ["SortOfClevrTask", "Examples", "evaluate", "correct_answers", "metrics", "load_model", "fresh_arrays", "fresh_examples",
           "dataclasses"]
