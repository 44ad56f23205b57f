"""The physics tasks plugged into the shared training loop, their exact metrics, and checkpoint loading.

Checkpoints are tagged ``"task": "physics-connections"`` or ``"physics-count"``; their ``config.json`` also holds the
simulator parameters (``sim``) so that ``relnet eval physics`` simulates fresh scenes of the same world.

Metrics (counts over the whole evaluation set, not means of batch means):

* connections: ``scene_accuracy`` (share of scenes with all N*N = 100 ordered entries right, the paper's metric; also
  reported as ``accuracy`` for the training loop), ``pair_accuracy`` over the 100 entries, and ``precision`` /
  ``recall`` of the predicted connections over the ordered off-diagonal pairs (logit > 0 = connected; ``None``
  where undefined, e.g. precision when nothing is predicted);
* count: ``accuracy`` (argmax == number of systems - 1) and ``by_systems`` (accuracy per true count).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config, write_atomic
from relnet.errors import UserError
from relnet.tasks.physics import sim
from relnet.tasks.physics.model import TASKS, ModelConfig, PhysicsModel, RunConfig, build_model
from relnet.train.config import from_dict, to_dict
from relnet.train.device import model_device

TASK_NAMES = {t: f"physics-{t}" for t in TASKS}


class Scenes:
    """Simulated scenes as tensors: objects ``(S, N, 35)``, edges ``(S, N, N)`` bool, systems ``(S,)`` in 1..N."""

    def __init__(self, data: Mapping[str, np.ndarray], params: sim.PhysicsParams) -> None:
        self.objects = torch.from_numpy(sim.objects(data, box=params.box))  # (S, N, 35)
        self.edges = torch.from_numpy(np.asarray(data["edges"], dtype=bool))  # (S, N, N)
        self.systems = torch.from_numpy(np.asarray(data["systems"], dtype=np.int64))  # (S,)

    def __len__(self) -> int:
        return len(self.systems)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.objects[indices], self.edges[indices], self.systems[indices]


def task_loss(task: str, logits: Tensor, edges: Tensor, systems: Tensor, soft: Tensor | None = None,
              weight: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Summed loss over the batch and summed statistics; for connections each scene's loss is the mean BCE of its
    N*N entries against ``soft`` targets in [0, 1] where given (distillation), else the labels, and ``correct``
    counts scenes with every entry right (against the labels). ``weight`` ``(B,)`` multiplies each scene's loss."""
    if task == "connections":
        target = edges.to(logits.dtype) if soft is None else soft.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, N, N)
        per_scene = bce.mean(dim=(1, 2))
        correct = ((logits > 0) == edges).flatten(1).all(dim=1).sum()
    else:
        per_scene = F.cross_entropy(logits, systems - 1, reduction="none")
        correct = (logits.argmax(-1) == systems - 1).sum()
    loss = (per_scene if weight is None else per_scene * weight).sum()
    return loss, {"correct": float(correct), "count": float(len(systems))}


def connection_metrics(predicted: Tensor, edges: Tensor, systems: Tensor | None = None) -> dict[str, Any]:
    """Exact metrics of predicted ``(S, N, N)`` bool connections against the true ``edges``; given the scenes'
    numbers of systems ``(S,)``, also the share of scenes with every connection right per number of systems."""
    S, N, _ = edges.shape
    off = ~torch.eye(N, dtype=torch.bool)
    tp = int((predicted & edges & off).sum())
    fp = int((predicted & ~edges & off).sum())
    fn = int((~predicted & edges & off).sum())
    match = predicted == edges  # (S, N, N)
    right = match.flatten(1).all(dim=1)  # (S,)
    extra = {} if systems is None else {"by_systems": _by_systems(right, systems, N)}
    return {
        "n": int(S),
        "scene_accuracy": float(right.float().mean()) if S else None,
        "pair_accuracy": float(match.float().mean()) if S else None,
        "precision": tp / (tp + fp) if tp + fp else None,  # None (JSON null) where undefined, never NaN
        "recall": tp / (tp + fn) if tp + fn else None,
        "true_connections": tp + fn,
        "predicted_connections": tp + fp,
        **extra,
    }


def _by_systems(right: Tensor, systems: Tensor, n_balls: int) -> dict[str, float | None]:
    """Share of ``right`` ``(S,)`` among the scenes with each number of systems 1..N (None where there are none)."""
    by = {}
    for c in range(1, n_balls + 1):
        sel = systems == c
        by[str(c)] = float(right[sel].float().mean()) if sel.any() else None
    return by


def count_metrics(predicted_systems: Tensor, systems: Tensor, n_balls: int = sim.PhysicsParams().n_balls
                  ) -> dict[str, Any]:
    """Exact accuracy of predicted system counts (1..N), overall and per true count."""
    right = predicted_systems == systems
    return {"n": int(len(systems)), "accuracy": float(right.float().mean()) if len(systems) else None,
            "by_systems": _by_systems(right, systems, n_balls)}


SYMMETRIES = 16


def symmetry_view(objects: Tensor, k: int | Tensor) -> Tensor:
    """View ``k`` (0..15) of scenes under the task's symmetries, which leave every label unchanged: bit 0 reverses
    time (the dynamics are conservative and the walls elastic), bit 1 swaps x and y, bits 2 and 3 mirror x and y
    (the table is a square centred on 0). Objects ``(..., N, 2T + 3)`` in :func:`sim.objects`'s layout.

    ``k`` is one view for all scenes, or a tensor of one view per scene (its shape the leading dims of ``objects``,
    e.g. ``(S,)`` for ``(S, N, 2T + 3)``): training-time augmentation draws one per scene."""
    if isinstance(k, int):
        if k == 0:
            return objects
        k = torch.tensor(k)
    k = k.to(objects.device).reshape(k.shape + (1,) * (objects.dim() - k.dim()))  # broadcast over N and features
    T = (objects.shape[-1] - 3) // 2
    xs, ys, rest = objects[..., :T], objects[..., T : 2 * T], objects[..., 2 * T :]
    reverse, swap, mirror_x, mirror_y = ((k & bit) != 0 for bit in (1, 2, 4, 8))
    xs, ys = torch.where(reverse, xs.flip(-1), xs), torch.where(reverse, ys.flip(-1), ys)
    xs, ys = torch.where(swap, ys, xs), torch.where(swap, xs, ys)
    xs, ys = torch.where(mirror_x, -xs, xs), torch.where(mirror_y, -ys, ys)
    return torch.cat([xs, ys, rest], dim=-1)


@torch.no_grad()
def view_logits(model: nn.Module, scenes: Scenes, views: Sequence[int], *, batch_size: int = 500,
                progress: bool = False) -> Tensor:
    """The model's logits for every scene averaged over its :func:`symmetry_view` s ``views``, on the CPU:
    ``(S, N, N)`` (connections) or ``(S, N)`` (count)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    batches = range(0, len(scenes), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="views", unit="batch", leave=False)
    outs = []
    for start in batches:
        x = scenes.objects[start : start + batch_size].to(device)
        outs.append(torch.stack([model(symmetry_view(x, int(k))) for k in views]).mean(0).cpu())
    model.train(was_training)
    return torch.cat(outs)


def predict(model: nn.Module, scenes: Scenes, *, batch_size: int = 500, symmetries: bool = False) -> Tensor:
    """Predictions for every scene: ``(S, N, N)`` bool connections or ``(S,)`` system counts (1..N).

    ``symmetries``: average the logits over the 16 :func:`symmetry_view` s of each scene (test-time averaging;
    16x the compute). Off by default, and not used in training or in the reported single-view figures.
    """
    logits = view_logits(model, scenes, range(SYMMETRIES) if symmetries else (0,), batch_size=batch_size)
    return logits > 0 if model.task == "connections" else logits.argmax(-1) + 1


def evaluate(model: nn.Module, scenes: Scenes, *, symmetries: bool = False) -> dict[str, Any]:
    pred = predict(model, scenes, symmetries=symmetries)
    if model.task == "connections":
        m = connection_metrics(pred, scenes.edges, scenes.systems)
        return {**m, "accuracy": m["scene_accuracy"]}
    return count_metrics(pred, scenes.systems)


class PhysicsTask:
    """The ``relnet.train.loop.Task`` for one physics task (``cfg.task``: connections or count)."""

    def __init__(self, cfg: RunConfig, params: sim.PhysicsParams | None = None, *, progress: bool = True) -> None:
        if cfg.task not in TASKS:
            raise UserError(f"--task {cfg.task}: expected one of {', '.join(TASKS)}")
        if cfg.model.task != cfg.task:
            raise UserError(f"--model.task={cfg.model.task} does not match --task {cfg.task}")
        d = cfg.data
        if d.train_scenes < 1 or d.val_scenes < 0 or d.seed < 0:
            raise UserError(f"--data.train_scenes={d.train_scenes}, --data.val_scenes={d.val_scenes}, "
                            f"--data.seed={d.seed}: need train_scenes >= 1, val_scenes >= 0, seed >= 0")
        self.cfg = cfg
        self.name = TASK_NAMES[cfg.task]
        self.params = params or sim.PhysicsParams()
        if d.workers < 0:
            raise UserError(f"--data.workers={d.workers}: need >= 0 (0: one per CPU core)")
        root, workers = d.root or None, d.workers or os.cpu_count() or 1
        self.train_set = Scenes(sim.load_or_generate(self.params, "train", d.train_scenes, d.seed, root,
                                                     progress=progress, workers=workers), self.params)
        self.val_set = (Scenes(sim.load_or_generate(self.params, "val", d.val_scenes, d.seed, root,
                                                    progress=progress, workers=workers), self.params)
                        if d.val_scenes else None)
        if len(d.system_weights) > self.params.n_balls or any(not w >= 0 for w in d.system_weights):
            raise UserError(f"--data.system_weights={','.join(map(str, d.system_weights))}: need at most "
                            f"{self.params.n_balls} weights, each >= 0")
        self.system_weight: Tensor | None = None  # (N + 1,): the loss weight of a scene with k systems at k
        if d.system_weights:
            self.system_weight = torch.ones(self.params.n_balls + 1)
            self.system_weight[1 : 1 + len(d.system_weights)] = torch.tensor(d.system_weights)
        self.soft: Tensor | None = None  # (S, N, N) distillation targets of the training scenes
        if d.teacher:
            if cfg.task != "connections":
                raise UserError(f"--data.teacher is for --task connections, not {cfg.task}")
            if not 0 <= d.teacher_weight <= 1:
                raise UserError(f"--data.teacher_weight={d.teacher_weight}: must be in [0, 1]")
            teacher = teacher_probabilities(d.teacher, tuple(d.teacher_views), self.train_set, self.params,
                                            sim.cache_dir(self.params, root) / f"teacher-train-s{d.seed}",
                                            progress=progress)
            self.soft = d.teacher_weight * teacher + (1 - d.teacher_weight) * self.train_set.edges.float()

    def build_model(self) -> nn.Module:
        model = build_model(self.cfg.model)
        model.fit_input_norm(self.train_set.objects)  # no-op unless --model.input_norm=whiten
        return model

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": self.name, "model": to_dict(self.cfg.model), "preset": self.cfg.preset,
                "data": to_dict(self.cfg.data), "sim": self.params.to_dict()}

    def train_size(self) -> int:
        return len(self.train_set)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        x, edges, systems = self.train_set.batch(indices)
        if train and self.cfg.data.augment:  # each scene in a random one of its label-preserving views
            x = symmetry_view(x, torch.randint(SYMMETRIES, (len(x),), generator=generator))
        soft = self.soft[indices] if self.soft is not None else None  # the views keep the labels: and the targets
        return x, edges, systems, soft

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        x, edges, systems, soft = batch
        weight = None if self.system_weight is None else self.system_weight.to(systems.device)[systems]
        return task_loss(self.cfg.task, model(x), edges, systems, soft, weight)

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        if self.val_set is None:
            return {}
        result = evaluate(model, self.val_set)
        result.pop("by_systems", None)  # the per-count table is for the report; keep the log flat
        return result


def teacher_probabilities(path: str | Path, views: tuple[int, ...], scenes: Scenes, params: sim.PhysicsParams,
                          cache: Path, *, progress: bool = True) -> Tensor:
    """A connections checkpoint's probabilities for every scene, its logits averaged over ``views`` (test-time
    averaging, as ``predict(symmetries=True)`` does over all 16): ``(S, N, N)`` float32 in [0, 1].

    Distillation (Hinton et al. 2015): the averaged views are more often right than any single view (the shipped
    RN: 94.55% of scenes single view, 95.3% over views 0, 2, 4, 8, 95.4% over all 16), and a model trained towards
    them may keep part of that at one view's cost. Computed once per teacher, views and training set (a few ms per
    scene and view on one core) and kept as ``<cache>-<digest>.npy``, so a resumed run reads it back.
    """
    import hashlib

    if not views or any(not 0 <= int(k) < SYMMETRIES for k in views) or len(set(views)) != len(views):
        raise UserError(f"--data.teacher_views={','.join(map(str, views))}: need distinct views in 0..{SYMMETRIES - 1}")
    model, config = load_model(path, "connections")
    if sim_params(config, path) != params:
        raise UserError(f"--data.teacher {path}: its simulator parameters differ from this run's")
    digest = hashlib.sha256()
    digest.update((Path(path) / "model.safetensors").read_bytes())
    digest.update(repr((tuple(int(k) for k in views), len(scenes))).encode())
    digest.update(scenes.objects[-1].numpy().tobytes())  # the last scene: another training set, another file
    file = cache.with_name(f"{cache.name}-{digest.hexdigest()[:16]}.npy")
    if file.is_file():
        return torch.from_numpy(np.load(file))
    probs = view_logits(model, scenes, views, progress=progress).sigmoid().float()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(file, lambda f: np.save(f, probs.numpy()))
    except OSError as e:
        raise UserError(f"physics: cannot write the teacher's targets to {file}: {e.strerror or e}") from e
    return probs


def sim_params(config: Mapping[str, Any], path: str | Path = "?") -> sim.PhysicsParams:
    """The ``PhysicsParams`` stored in a checkpoint's config (defaults if absent)."""
    raw = config.get("sim") or {}
    try:
        return sim.PhysicsParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except (TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: field 'sim' does not describe simulator parameters ({e})") from None


def load_model(path: str | Path, task: str | None = None) -> tuple[PhysicsModel, dict[str, Any]]:
    """Rebuild a physics model from a checkpoint folder; ``task`` (connections|count) must match when given."""
    if task is not None and task not in TASKS:
        raise UserError(f"--task {task}: expected one of {', '.join(TASKS)}")
    config = read_config(path, task=TASK_NAMES[task] if task else None)
    if config.get("task") not in TASK_NAMES.values():
        raise UserError(f"checkpoint {path} is for task {config.get('task')!r}, not a physics task")
    try:
        model = build_model(from_dict(ModelConfig, config["model"]))
    except (TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: field 'model' does not describe a physics model ({e})") from None
    load_weights(path, model)
    model.eval()
    return model, config


def fresh_scenes(params: sim.PhysicsParams, *, scenes: int, seed: int) -> tuple[dict[str, np.ndarray], Scenes]:
    """``scenes`` newly simulated scenes from stream ``(seed, test)``, never cached: (raw arrays, tensors)."""
    if scenes < 1:
        raise UserError(f"--scenes {scenes}: must be at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    data = sim.simulate(params, scenes, (seed, sim.SPLITS["test"]))
    return data, Scenes(data, params)


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    return from_dict(RunConfig, data)


__all__ = ["PhysicsTask", "Scenes", "evaluate", "predict", "connection_metrics", "count_metrics", "task_loss",
           "load_model", "fresh_scenes", "sim_params", "TASK_NAMES"]
