"""Scaling of one full training step through the shared loop, and DDP throughput with 1 vs 2 CPU processes.

``benchmarks/pairs.py`` times the RN module alone (naive vs relnet). This benchmark times what a user's run pays per
optimiser step in ``relnet.train.loop.train``: batch assembly, forward, backward, gradient clipping, the AdamW step,
the LR schedule and the per-step metrics row, on a synthetic set task (N random objects of dimension 16, a
question vector of 8, 10 classes) with an RN of g = 2 x 64 and f = 64 (the first g layer factorised; pairs chunked
under activation checkpointing from N = 512).

* Step table: for N in 8..1024, each N in a fresh subprocess with 1 thread; time per step is the median gap between
  consecutive metrics rows after one warm-up step; peak memory is the peak RSS during the steps (the kernel's
  VmHWM, reset just before training and read before every batch) minus the RSS just before training, so the model,
  data, imports and the end-of-run plot are excluded.
* DDP table: ``torchrun --standalone --nproc_per_node=K`` (gloo) with K = 1 and 2, one thread per process, the same
  effective batch; examples per second over the steps after warm-up. 1 process with 2 threads is the reference for
  the same 2 cores. On a 2-core machine expect little gain: the point is that it runs.

Usage::

    python benchmarks/scaling.py [--sizes 8,16,32,64,128,256,512,1024] [--batch 4] [--ddp-steps 40]

Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# This benchmark measures the CPU (peak RSS, 1 vs 2 gloo processes): keep relnet's trainer off any GPU, in this
# process and in the torchrun processes it starts (they inherit the environment).
os.environ.setdefault("RELNET_DEVICE", "cpu")

DIM, QDIM, CLASSES, HIDDEN = 16, 8, 10, 64
CHUNK_FROM = 512  # N from which g runs on chunks of CHUNK pairs under activation checkpointing
CHUNK = 65536


class SetTask:
    """``relnet.train.loop.Task`` over random object sets; the label is a fixed function of the objects."""

    name = "scaling"

    def __init__(self, n_objects: int, examples: int = 256) -> None:
        g = torch.Generator().manual_seed(0)
        self.N = n_objects
        self.x = torch.randn(examples, n_objects, DIM, generator=g)  # (E, N, D)
        self.q = torch.randn(examples, QDIM, generator=g)  # (E, Q)
        self.y = torch.randint(0, CLASSES, (examples,), generator=g)  # (E,)

    def build_model(self) -> nn.Module:
        from relnet.nn import RelationNetwork

        return RelationNetwork(object_dim=DIM, question_dim=QDIM, g_dims=(HIDDEN, HIDDEN), f_dims=(HIDDEN,),
                               out_dim=CLASSES, reduce="mean", chunk_pairs=CHUNK if self.N >= CHUNK_FROM else None)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": self.name, "model": {"N": self.N}}

    def train_size(self) -> int:
        return len(self.y)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        self.peak_kib = max(getattr(self, "peak_kib", 0), _status_kib("VmHWM"))  # peak so far, read every step
        return self.x[indices], self.q[indices], self.y[indices]

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        x, q, y = batch
        logits = model(x, q)
        return F.cross_entropy(logits, y, reduction="sum"), {"count": float(len(y))}

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        return {}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _train(n: int, batch: int, steps: int, run_dir: str, micro: int = 0) -> tuple[list[dict], SetTask]:
    from relnet.train.config import TrainConfig
    from relnet.train.loop import train

    task = SetTask(n)
    cfg = TrainConfig(steps=steps, batch_size=batch, micro_batch_size=micro, lr=1e-3, optimizer="adamw",
                      clip_grad_norm=5.0, log_every=1, eval_every=0, checkpoint_every=0, seed=0)
    result = train(task, cfg, run_dir, progress=False)
    return [r for r in result.history if r["kind"] == "train"], task


def child_step(n: int, batch: int, steps: int) -> None:
    torch.set_num_threads(1)
    for module in ("matplotlib.pyplot", "torch.utils.tensorboard", "relnet.train.loop"):
        importlib.import_module(module)  # the loop's imports (plot, TensorBoard) are not a step cost
    before = _status_kib("VmRSS")
    exact = _reset_peak()
    with tempfile.TemporaryDirectory() as d:
        rows, task = _train(n, batch, steps, d)
    # peak RSS over the training steps (read before each batch; without the reset: the whole process's peak)
    peak = task.peak_kib if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gaps = [b["elapsed"] - a["elapsed"] for a, b in zip(rows[1:], rows[2:])]  # row 1 = warm-up step
    print("CHILD " + json.dumps({"N": n, "batch": batch, "pairs_per_step": batch * n * n, "steps_timed": len(gaps),
                                 "step_ms": 1000 * statistics.median(gaps), "peak_mib": (peak - before) / 1024,
                                 "peak_exact": exact, "chunked": n >= CHUNK_FROM}))


def child_ddp(n: int, batch: int, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as d:
        rows, _ = _train(n, batch, steps, d)
    if int(os.environ.get("RANK", "0")) == 0:
        warm = 5
        seconds = rows[-1]["elapsed"] - rows[warm - 1]["elapsed"]
        print("CHILD " + json.dumps({"examples_per_s": (len(rows) - warm) * batch / seconds,
                                     "step_ms": 1000 * seconds / (len(rows) - warm)}))


def _run(cmd: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark child failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="8,16,32,64,128,256,512,1024")
    p.add_argument("--batch", type=int, default=4, help="examples per step in the step table")
    p.add_argument("--ddp-n", type=int, default=32, help="objects per example in the DDP table")
    p.add_argument("--ddp-batch", type=int, default=32)
    p.add_argument("--ddp-steps", type=int, default=40)
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--child-step", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-ddp", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_step:
        return child_step(args.child_step, args.batch, args.steps)
    if args.child_ddp:
        return child_ddp(args.child_ddp, args.ddp_batch, args.steps, args.threads)

    me = str(Path(__file__).resolve())
    steps_table = []
    for n in [int(s) for s in args.sizes.split(",")]:
        steps = max(4, min(22, int(4e6 / (args.batch * n * n))))  # about the same work at every N
        t0 = time.perf_counter()
        row = _run([sys.executable, me, f"--child-step={n}", f"--batch={args.batch}", f"--steps={steps}"], 1)
        steps_table.append(row)
        print(f"N={n:5d}  pairs/step={row['pairs_per_step']:>9,}  step={row['step_ms']:9.2f} ms  "
              f"peak +{row['peak_mib']:7.1f} MiB  {'chunked' if row['chunked'] else ''}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)

    ddp_table = []
    if not args.skip_ddp:
        for procs, threads in [(1, 1), (2, 1), (1, 2)]:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", me,
                   f"--child-ddp={args.ddp_n}", f"--ddp-batch={args.ddp_batch}", f"--steps={args.ddp_steps}",
                   f"--threads={threads}"]
            row = {"processes": procs, "threads_per_process": threads, **_run(cmd, threads)}
            ddp_table.append(row)
            print(f"DDP processes={procs} threads={threads}: {row['examples_per_s']:.1f} examples/s "
                  f"({row['step_ms']:.1f} ms/step, batch {args.ddp_batch}, N={args.ddp_n})", flush=True)

    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor(),
               "cores": os.cpu_count(), "load_avg": os.getloadavg()[0]}
    print("RESULT " + json.dumps({"benchmark": "scaling", "batch": args.batch, "g": [HIDDEN, HIDDEN], "f": [HIDDEN],
                                  "steps": steps_table, "ddp": ddp_table, "machine": machine}))


if __name__ == "__main__":
    main()
