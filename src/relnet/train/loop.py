"""The one training loop every task plugs into.

A task supplies a ``Task`` object (see the protocol below): how to build the model, how many training examples
there are, how to turn a list of example indices into a batch, the summed loss of a batch, and an exact evaluation.
The loop supplies the rest: optimiser and LR schedule, gradient accumulation and clipping, data order, progress bar,
metrics log (JSONL + TensorBoard), learning-curve plot, atomic checkpoints and exact resume, and
DistributedDataParallel when started under ``torchrun``.

Exactness. Everything random is a pure function of (seed, step): the data order of epoch e is a permutation drawn
from ``seed`` and ``e``; before each micro-batch both the augmentation generator handed to ``Task.batch`` and the
global torch RNG (dropout) are seeded from (seed, step, global micro-batch index). A checkpoint also stores the
optimiser, the Python/NumPy/torch RNG states and the partial sums of the current logging window, so a run resumed
from step s logs exactly the rows an uninterrupted run logs (``metrics.jsonl`` is cut back to step s on resume and
TensorBoard events after s are purged).

Processes. Under ``torchrun`` with K processes, optimiser step t uses the same ``batch_size`` examples as a
single-process run: the global batch is split into K*A micro-batches of ``micro_batch_size`` (A = accumulation
steps), process r takes micro-batches r*A .. r*A+A-1 and seeds them by their global index. This is what a
``DistributedSampler`` with ``set_epoch(e)`` gives (one permutation per epoch from the seed and epoch, disjoint
shares per process), with two differences that make K interchangeable: each step's union over processes is a
contiguous slice of the epoch permutation (so the examples of step t do not depend on K), and the last partial
batch of an epoch is dropped rather than padded with repeats. With the same ``micro_batch_size``, K processes
compute the same micro-batches, dropout masks and summed gradient as one process accumulating K*A micro-batches;
parameters agree up to float summation order (tests/robust/test_ddp.py). Only rank 0 evaluates, logs, plots and
writes checkpoints; the run folder must be on a file system every process can read (``--resume``).
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from relnet.checkpoint import (load_trainer_state, load_weights, read_config, recover_dir, save_checkpoint,
                               write_json_atomic, write_text_atomic)
from relnet.errors import UserError
from relnet.perf import flush_denormals, keep_freed_memory
from relnet.train.config import TrainConfig
from relnet.train.device import to_device, use_cuda

log = logging.getLogger(__name__)


class Task(Protocol):
    """What a task provides to the training loop."""

    name: str

    def build_model(self) -> nn.Module: ...

    def checkpoint_config(self) -> dict[str, Any]:
        """``config.json`` content (minus format fields): ``task``, ``model`` config, vocabularies, ..."""

    def train_size(self) -> int: ...

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        """Collate the training examples ``indices`` (augmenting with ``generator`` when ``train``)."""

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """Summed (not averaged) loss over the batch, plus summed statistics, e.g. ``{"correct": 57, "count": 64}``."""

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        """Exact metrics over the whole evaluation set (counts, not means of batch means); includes ``accuracy``."""

    # Optional: ``prepare(model)``, called once the model holds its starting weights (initialised, resumed or fresh)
    # and before the first step, e.g. to compute once what a frozen part of the model makes of the training data.


# -- distributed helpers ------------------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group when started by ``torchrun`` (NCCL on GPUs, gloo on CPU); otherwise one process."""
    cuda = use_cuda()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"process {local_rank} of this node has no GPU of its own ({torch.cuda.device_count()} "
                            "visible): use --nproc_per_node <= the number of GPUs, or RELNET_DEVICE=cpu")
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        # Rank 0 evaluates alone while the others wait at a barrier; a full CLEVR evaluation can outlast the
        # default collective timeout (10 min for NCCL), so the limit is generous and configurable.
        minutes = float(os.environ.get("RELNET_DIST_TIMEOUT_MIN", "180"))
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=minutes))
        atexit.register(_destroy_group)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device)


def _destroy_group() -> None:
    """Tear the process group down before interpreter finalisation (registered at exit by init_distributed).

    Left to finalisation, gloo's work objects can be destroyed in the wrong order and a rank dies with "terminate
    called without an active exception" (SIGABRT) after a run that finished (1 run in ~10 in CI and here).
    Destroying and re-creating the group between two runs in one process instead hung ~1 time in 3.
    """
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


# -- schedule and data order --------------------------------------------------------------------------------------


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based)."""
    if cfg.schedule == "step":  # start at lr, multiply by gamma every step_every steps, capped at max_lr
        lr = cfg.lr * cfg.step_gamma ** (step // cfg.step_every if cfg.step_every > 0 else 0)
        return min(lr, cfg.max_lr) if cfg.max_lr > 0 else lr
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    if cfg.schedule == "constant":
        return cfg.lr * warm
    if cfg.schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
        return warm * (cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise UserError(f"--train.schedule={cfg.schedule}: expected constant, cosine or step")


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> Tensor:
    """The examples of optimiser step ``step``: epochs are seeded permutations, the last partial batch is dropped."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise UserError(f"the training set has {n} examples, fewer than one batch of {batch_size}")
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[k * batch_size : (k + 1) * batch_size]


def _micro_seed(seed: int, step: int, micro: int) -> int:
    """Seed of global micro-batch ``micro`` of optimiser step ``step`` (the same whatever the process count)."""
    return ((seed * 1_000_003 + step) * 10_007 + micro) % (2**63 - 1)


def validate_config(cfg: TrainConfig, world: int = 1) -> tuple[int, int]:
    """Check ``cfg`` for ``world`` processes; return (micro_batch_size, accumulation steps) or raise UserError.

    Task CLIs may call this before preparing data so that a bad option fails fast and leaves nothing behind.
    """
    positive = {"batch_size": cfg.batch_size}
    non_negative = {"steps": cfg.steps, "micro_batch_size": cfg.micro_batch_size, "warmup_steps": cfg.warmup_steps,
                    "step_every": cfg.step_every, "eval_every": cfg.eval_every, "log_every": cfg.log_every,
                    "checkpoint_every": cfg.checkpoint_every, "threads": cfg.threads, "seed": cfg.seed}
    for k, v in positive.items():
        if v < 1:
            raise UserError(f"--train.{k}={v}: must be at least 1")
    for k, v in non_negative.items():
        if v < 0:
            raise UserError(f"--train.{k}={v}: must not be negative")
    for k in ("lr", "weight_decay", "min_lr", "max_lr", "clip_grad_norm", "step_gamma"):
        v = getattr(cfg, k)
        if not math.isfinite(v) or v < 0:
            raise UserError(f"--train.{k}={v}: must be a finite number >= 0")
    if cfg.schedule not in ("constant", "cosine", "step"):
        raise UserError(f"--train.schedule={cfg.schedule}: expected constant, cosine or step")
    if cfg.optimizer not in ("adam", "adamw"):
        raise UserError(f"--train.optimizer={cfg.optimizer}: expected adam or adamw")
    if cfg.init_only and not cfg.init_from:
        raise UserError(f"--train.init_only={','.join(cfg.init_only)} needs --train.init_from")
    micro = cfg.micro_batch_size or cfg.batch_size // world
    if micro < 1 or cfg.batch_size % (world * micro) != 0:
        raise UserError(f"--train.batch_size={cfg.batch_size} is not a multiple of processes ({world}) x "
                        f"micro_batch_size ({micro or cfg.micro_batch_size})")
    return micro, cfg.batch_size // (world * micro)


def _every(done: int, period: int) -> bool:
    return period > 0 and done % period == 0


# -- optimiser state <-> safetensors ------------------------------------------------------------------------------


def _pack_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unpack_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    np_state = np.random.get_state()
    meta = {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return {"rng.torch": torch.get_rng_state()}, meta


def _set_rng_state(tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = meta["numpy"]
    np.random.set_state((npst[0], np.array(npst[1], dtype=np.uint32), *npst[2:]))


# -- the loop ------------------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    model: nn.Module
    run_dir: Path
    step: int
    history: list[dict[str, Any]]
    seconds: float
    final_eval: dict[str, Any] | None


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise UserError(f"--train.optimizer={cfg.optimizer}: expected adam or adamw")


def train(task: Task, cfg: TrainConfig, run_dir: str | os.PathLike, *, run_config: dict[str, Any] | None = None,
          resume: bool = False, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train ``task`` for ``cfg.steps`` optimiser steps, writing logs and checkpoints into ``run_dir``.

    Args:
        run_config: the resolved configuration to save as ``run_dir/config.json``.
        resume: continue from ``run_dir/checkpoint`` if it exists (exactly: same data order, same RNG).
        stop_after: stop (after checkpointing) once this step is reached; used to test interruption, and to pause a
            run at a step and look at it. A run resumed at or past it trains no step.
    """
    validate_config(cfg)  # before joining a process group: a bad option must not leave the others waiting
    keep_freed_memory()  # avoid re-faulting pair-sized activations every step (see relnet.perf)
    flush_denormals()  # tiny gradients and Adam moments otherwise slow late training steps down (see relnet.perf)
    d = init_distributed()
    micro, accum = validate_config(cfg, d.world)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoint"
    metrics_file = run_dir / "metrics.jsonl"

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    try:
        model = task.build_model().to(d.device)
    except (ValueError, TypeError) as e:  # the module constructors' own checks of a config the user wrote
        raise UserError(f"{task.name}: the model config is inconsistent: {str(e).splitlines()[0]}") from None
    opt = build_optimizer(cfg, model)
    start_step = 0
    history: list[dict[str, Any]] = []

    window = [0.0, 0.0, 0.0]  # summed loss, correct, count since the last logged row
    if resume and d.main:
        recover_dir(ckpt_dir)  # a crash between the two renames of a checkpoint write leaves it aside
    if d.world > 1:
        dist.barrier()
    if resume and ckpt_dir.exists():
        start_step, window, history = _resume(task, cfg, model, opt, ckpt_dir, metrics_file, d)
        log.info("resumed %s at step %d", run_dir, start_step)
    elif resume and not cfg.init_from:
        log.info("no checkpoint in %s: starting from scratch", ckpt_dir)
    if start_step == 0 and cfg.init_from:
        _init_from(task, model, cfg.init_from, partial=cfg.init_partial, only=tuple(cfg.init_only))
    if hasattr(task, "prepare"):
        task.prepare(model)
    if d.world > 1:  # every process must resume from the same step (a run folder not shared between nodes would not)
        steps = torch.tensor([start_step, -start_step], dtype=torch.int64, device=d.device)
        dist.all_reduce(steps, op=dist.ReduceOp.MAX)
        if int(steps[0]) != -int(steps[1]):
            raise UserError(f"--resume: processes found different checkpoints in {ckpt_dir} (steps {-int(steps[1])}"
                            f"..{int(steps[0])}); the run folder must be on a file system shared by all nodes")

    if d.world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

    writer = None
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if run_config is not None:
            write_json_atomic(run_dir / "config.json", run_config)
        # rewritten (atomically): after a resume it holds exactly the steps the checkpoint covers
        write_text_atomic(metrics_file, "".join(json.dumps(r) + "\n" for r in history))
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1 if start_step else None)
        except ImportError:  # tensorboard is optional at run time
            writer = None

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        if not d.main:
            return
        with open(metrics_file, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if writer is not None:
            for k, v in _flatten(row).items():
                if k != "step" and isinstance(v, (int, float)):
                    writer.add_scalar(k, v, row["step"])

    def checkpoint(step: int) -> None:
        totals = torch.tensor(window, dtype=torch.float64, device=d.device)
        if d.world > 1:  # the open logging window, summed over processes (rank 0 carries it on resume)
            dist.all_reduce(totals)
        if not d.main:
            return
        opt_tensors, opt_meta = _pack_optimizer(opt)
        rng_tensors, rng_meta = _rng_state()
        meta = {"step": step, "window": totals.cpu().tolist(), "optimizer": opt_meta, "rng": rng_meta,
                "train_config": dict(cfg.__dict__)}
        save_checkpoint(ckpt_dir, core, task.checkpoint_config(), ({**opt_tensors, **rng_tensors}, meta))

    def evaluate(step: int) -> dict[str, Any] | None:
        result = None
        if d.main:
            model.eval()
            with torch.no_grad():
                result = task.evaluate(core)
            model.train()
            record({"step": step, "kind": "eval", "elapsed": time.perf_counter() - t0 + elapsed_before, **result})
        if d.world > 1:
            dist.barrier()
        return result

    n = task.train_size()
    elapsed_before = float(history[-1].get("elapsed", 0.0)) if history else 0.0
    t0 = time.perf_counter()
    final_eval = None
    bar = None
    if progress and d.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc=f"train {task.name}", unit="step", dynamic_ncols=True)
    model.train()
    step = start_step
    end = cfg.steps if stop_after is None else min(cfg.steps, max(stop_after, start_step))
    for step in range(start_step, end):
        lr = lr_at(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, step, cfg.seed)
        opt.zero_grad(set_to_none=True)
        for m in range(accum):
            gm = d.rank * accum + m  # global micro-batch index: the same data and seeds whatever the process count
            part = idx[gm * micro : (gm + 1) * micro]
            seed = _micro_seed(cfg.seed, step, gm)
            g = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)  # dropout masks (CPU and CUDA) depend on (seed, step, micro) only
            batch = to_device(task.batch(part, train=True, generator=g), d.device)
            sync = m == accum - 1 or d.world == 1
            ctx = model.no_sync() if (d.world > 1 and not sync) else _null()
            with ctx:
                loss_sum, stats = task.loss(model, batch)
                # DDP averages gradients over processes; scale so the result is the mean over the effective batch.
                (loss_sum * (d.world / cfg.batch_size)).backward()
            window[0] += float(loss_sum.detach())
            window[1] += float(stats.get("correct", 0))
            window[2] += float(stats.get("count", len(part)))
        if cfg.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        opt.step()
        done = step + 1
        if bar is not None:
            bar.update(1)
        if _every(done, cfg.log_every) or done == cfg.steps:
            totals = torch.tensor(window, dtype=torch.float64, device=d.device)  # NCCL reduces CUDA tensors only
            if d.world > 1:
                dist.all_reduce(totals)
            row = {"step": done, "kind": "train", "lr": lr, "loss": float(totals[0] / max(totals[2], 1)),
                   "accuracy": float(totals[1] / max(totals[2], 1)), "epoch": done * cfg.batch_size / n,
                   "elapsed": time.perf_counter() - t0 + elapsed_before}
            record(row)
            if bar is not None:
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.3f}")
            window = [0.0, 0.0, 0.0]
        if _every(done, cfg.eval_every) or done == cfg.steps:
            final_eval = evaluate(done)
            if bar is not None and final_eval is not None:
                bar.write(f"step {done}: " + _short(final_eval))
        if _every(done, cfg.checkpoint_every) or done == cfg.steps or done == stop_after:
            checkpoint(done)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - t0 + elapsed_before
    if d.main:
        try:
            plot_curves(history, run_dir / "curve.png", title=task.name)
        except Exception as e:  # a plot must never lose a finished run
            log.warning("could not plot learning curves: %s", e)
    if d.world > 1:
        # Drop DDP's reducer (which holds the group) now and let every rank finish here; the group itself lives on
        # for a next train() in the same processes (relnet reproduce trains several models) and is destroyed at
        # exit (see init_distributed).
        del model
        gc.collect()
        dist.barrier()
    return TrainResult(core, run_dir, step + 1 if end > start_step else start_step, history, seconds, final_eval)


def _checkpoint_task(task: Task) -> str | None:
    """The ``task`` field a checkpoint of ``task`` must carry (None: do not check)."""
    expected = task.checkpoint_config().get("task")
    return expected if isinstance(expected, str) else None


def _init_from(task: Task, model: nn.Module, path: str, *, partial: bool = False, only: tuple[str, ...] = ()) -> None:
    """``--train.init_from``: load a checkpoint's weights (same task, same architecture, or with ``partial`` a
    model that has tensors the checkpoint lacks, or with ``only`` just the tensors under those name prefixes; the
    others keep their initialisation) before step 0."""
    saved = read_config(path, task=_checkpoint_task(task))
    missing = load_weights(path, model, allow_missing=partial, only=only)
    kept = f"{len(missing)} tensors keep their initialisation"
    log.info("initialised from %s (%s)%s", path, saved.get("preset", "no preset"),
             f"; only {', '.join(only)}*: {kept}" if only else f"; {kept}: {', '.join(missing)}" if missing else "")


def _resume(task: Task, cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, ckpt_dir: Path,
            metrics_file: Path, d: Dist) -> tuple[int, list[float], list[dict[str, Any]]]:
    """Load a training checkpoint into ``model`` and ``opt``; return (step, logging window, metrics history)."""
    read_config(ckpt_dir, task=_checkpoint_task(task))
    tensors, meta = load_trainer_state(ckpt_dir)
    saved = meta.get("train_config") or {}
    for key in ("seed", "batch_size"):  # these define the data order; changing them cannot continue the same run
        if key in saved and saved[key] != getattr(cfg, key):
            raise UserError(f"--resume: --train.{key}={getattr(cfg, key)} differs from the checkpoint's {saved[key]} "
                            f"in {ckpt_dir}; use the original value or a new --out")
    load_weights(ckpt_dir, model)
    try:
        _unpack_optimizer(opt, {k: v.to(d.device) for k, v in tensors.items()}, meta["optimizer"])
        _set_rng_state(tensors, meta["rng"])
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as e:
        raise UserError(f"checkpoint {ckpt_dir}: trainer state does not fit this model/optimiser "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    start_step = int(meta["step"])
    window = [float(x) for x in meta.get("window", [0.0, 0.0, 0.0])] if d.main else [0.0, 0.0, 0.0]
    history: list[dict[str, Any]] = []
    if metrics_file.is_file():  # keep the rows of the steps the checkpoint covers, drop what came after it
        for line in metrics_file.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the crash
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= start_step:
                history.append(row)
    return start_step, window, history


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    kind = row.get("kind", "")
    for k, v in row.items():
        if k in ("kind",):
            continue
        name = f"{prefix}{k}" if prefix else (f"{kind}/{k}" if kind and k != "step" else k)
        if isinstance(v, dict):
            out.update(_flatten(v, prefix=f"{name}/"))
        else:
            out[name] = v
    return out


def _short(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def plot_curves(history: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Training loss and accuracy, and every scalar evaluation metric, against optimiser steps (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_rows = [r for r in history if r.get("kind") == "train"]
    eval_rows = [r for r in history if r.get("kind") == "eval"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train_rows:
        ax1.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows], label="train loss")
        ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.legend()
    if train_rows:
        ax2.plot([r["step"] for r in train_rows], [r["accuracy"] for r in train_rows], label="train", alpha=0.5)
    keys = sorted({k for r in eval_rows for k, v in r.items() if isinstance(v, float) and k != "elapsed"})
    for k in keys:
        pts = [(r["step"], r[k]) for r in eval_rows if k in r]
        ax2.plot(*zip(*pts), marker=".", label=f"eval {k}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.01)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
