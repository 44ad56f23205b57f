"""DistributedDataParallel: 2 CPU processes (gloo, launched by torchrun) train the same parameters as 1 process.

Both runs use the effective batch 16 in micro-batches of 4: one process accumulates 4 micro-batches per step, each
of the two processes accumulates 2 and DDP averages. BatchNorm statistics, dropout masks and augmentation noise are
per micro-batch and seeded by the global micro-batch index, so the two runs differ only in float summation order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_task import run, subprocess_env

STEPS = 12


def launch(out: Path, nproc: int, **kw) -> subprocess.CompletedProcess:
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    script = out.parent / f"train_{out.name}.py"
    script.write_text(f"import tiny_task\ntiny_task.run({str(out)!r}, {args})\n")
    return launch_script(script, nproc)


def launch_script(script: Path, nproc: int) -> subprocess.CompletedProcess:
    env = subprocess_env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def params(run_dir: Path) -> dict[str, torch.Tensor]:
    # parameters only: BatchNorm running statistics are buffers that DDP takes from rank 0's micro-batches
    w = load_file(str(run_dir / "checkpoint" / "model.safetensors"))
    return {k: v for k, v in w.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


def train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "train"]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    run(str(out), steps=STEPS, micro_batch_size=4)
    return out


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path, single):
    out = tmp_path / "ddp"
    proc = launch(out, 2, steps=STEPS, micro_batch_size=4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = params(single), params(out)
    assert a.keys() == b.keys() and len(a) > 4
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, f"max parameter difference {worst}"
    moved = max(float((a[k] - load_file(str(single / "checkpoint" / "model.safetensors"))[k]).abs().max()) for k in a)
    assert moved == 0.0
    # the logged training loss (all-reduced over processes) agrees too; only rank 0 wrote the log
    ra, rb = train_rows(single), train_rows(out)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5, abs=1e-6)
        assert y["accuracy"] == pytest.approx(x["accuracy"])
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single.iterdir())


@pytest.mark.slow
def test_two_runs_in_one_torchrun_share_the_group(tmp_path, single):
    """``relnet reproduce`` trains several models in one torchrun: the first ``train()`` creates the process group,
    the second reuses it (it is destroyed at exit), and both runs match the single process."""
    first, second = tmp_path / "first", tmp_path / "second"
    script = tmp_path / "train_twice.py"
    script.write_text("import tiny_task\n"
                      f"tiny_task.run({str(first)!r}, steps={STEPS}, micro_batch_size=4)\n"
                      f"tiny_task.run({str(second)!r}, steps={STEPS}, micro_batch_size=4)\n")
    proc = launch_script(script, 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = params(single)
    for out in (first, second):
        b = params(out)
        assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5, out.name


def test_tolerance_is_meaningful(tmp_path, single):
    """Negative control: the same effective batch in micro-batches of 8 (different BatchNorm batches) is a different
    run, far outside the tolerance used above, so the DDP comparison can fail."""
    out = tmp_path / "other"
    run(str(out), steps=STEPS, micro_batch_size=8)
    a, b = params(single), params(out)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-3
