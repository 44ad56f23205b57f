"""Never lose a run: a resumed run logs exactly what an uninterrupted run logs, step for step.

The subprocess test kills a training process with SIGKILL after its first checkpoint (mid-run, with metrics rows
already written past the checkpoint) and resumes it; the in-process tests cover interruptions at, between and
just after checkpoint/logging boundaries, and the Sort-of-CLEVR CLI path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_task import TinyTask, run, subprocess_env, tiny_config

from relnet.cli import main
from relnet.errors import UserError
from relnet.train.loop import train

REPO = Path(__file__).resolve().parents[2]


def rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock field."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.pop("elapsed", None)
        out.append(r)
    return out


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoint" / "model.safetensors"))


def assert_same_run(a: Path, b: Path) -> None:
    ra, rb = rows(a), rows(b)
    assert [(r["step"], r["kind"]) for r in ra] == [(r["step"], r["kind"]) for r in rb]
    for x, y in zip(ra, rb):
        assert x == y, f"step {x['step']} {x['kind']}: {x} != {y}"
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    run(str(out))
    return out


@pytest.mark.parametrize("stop", [5, 7, 12])  # at a checkpoint; mid log window; at a log + eval row
def test_resume_in_process_is_exact(tmp_path, uninterrupted, stop):
    out = tmp_path / "run"
    r1 = train(TinyTask(), tiny_config(), out, progress=False, stop_after=stop)
    assert r1.step == stop
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == stop
    r2 = run(str(out), resume=True)
    assert r2.step == 24
    assert_same_run(uninterrupted, out)


def test_a_run_resumed_at_or_past_its_stop_trains_nothing(tmp_path, uninterrupted):
    """stop_after pauses a run: resumed with the same or an earlier stop it trains no step and returns the rows up to
    its checkpoint (what a caller judges the pause by); resumed without one it finishes exactly as if never paused."""
    out = tmp_path / "run"
    train(TinyTask(), tiny_config(), out, progress=False, stop_after=12)
    for stop in (12, 5):
        again = train(TinyTask(), tiny_config(), out, resume=True, progress=False, stop_after=stop)
        assert again.step == 12 and max(r["step"] for r in again.history) == 12
        assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 12
    assert run(str(out), resume=True).step == 24
    assert_same_run(uninterrupted, out)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path, uninterrupted):
    out = tmp_path / "run"
    # 10 ms per micro-batch: the 24 steps take >= 0.24 s after start-up, so the kill lands mid-run
    code = f"import tiny_task; tiny_task.run({str(out)!r}, delay=0.02)"
    env = subprocess_env()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    trainer = out / "checkpoint" / "trainer.json"
    deadline = time.monotonic() + 60
    while not trainer.is_file():
        assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint after 60 s"
        time.sleep(0.005)
    ckpt_step = json.loads(trainer.read_text())["step"]
    # wait until a metrics row beyond the checkpoint exists, so the resume must cut the log back
    def last_logged_step() -> int:  # complete lines only: the run may be writing the last one right now
        lines = (out / "metrics.jsonl").read_text().split("\n")[:-1]
        return max((json.loads(x)["step"] for x in lines if x), default=0)

    while last_logged_step() <= ckpt_step:
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_at = json.loads(trainer.read_text())["step"]
    assert killed_at < 24, "the run was not interrupted"
    assert max(r["step"] for r in rows(out)) > killed_at  # rows past the checkpoint that resume must drop

    r = run(str(out), resume=True)
    assert r.step == 24
    assert_same_run(uninterrupted, out)
    assert not list(out.glob(".checkpoint.*")), "temporary checkpoint folders left behind"


def test_crash_between_renames_is_recovered(tmp_path, uninterrupted):
    """The only moment a folder swap is not atomic: old moved aside, new not yet in place. Resume puts it back."""
    out = tmp_path / "run"
    train(TinyTask(), tiny_config(), out, progress=False, stop_after=10)
    os.replace(out / "checkpoint", out / ".checkpoint.old-deadbeef")
    (out / ".checkpoint.tmp-cafebabe").mkdir()  # a half-written new checkpoint
    run(str(out), resume=True)
    assert_same_run(uninterrupted, out)
    assert not list(out.glob(".checkpoint.*"))


def test_resume_refuses_changed_data_order(tmp_path):
    out = tmp_path / "run"
    train(TinyTask(), tiny_config(steps=4), out, progress=False)
    with pytest.raises(UserError, match=r"--train.batch_size=32 differs from the checkpoint's 16"):
        train(TinyTask(), tiny_config(steps=8, batch_size=32), out, progress=False, resume=True)
    with pytest.raises(UserError, match=r"--train.seed=8 differs"):
        train(TinyTask(), tiny_config(steps=8, seed=8), out, progress=False, resume=True)


def test_resume_from_broken_checkpoint_is_an_error_not_a_restart(tmp_path):
    out = tmp_path / "run"
    train(TinyTask(), tiny_config(steps=4), out, progress=False)
    before = (out / "metrics.jsonl").read_text()
    (out / "checkpoint" / "trainer.json").write_text("{not json")
    with pytest.raises(UserError, match=r"trainer state is unreadable"):
        run(str(out), resume=True)
    assert (out / "metrics.jsonl").read_text() == before  # the log of the broken run is not thrown away
    (out / "checkpoint" / "trainer.json").unlink()
    with pytest.raises(UserError, match=r"trainer.json is missing"):
        run(str(out), resume=True)


SOC = ["--preset=compact", "--data.train_images=20", "--data.test_images=5", "--model.g_dims=16,16",
       "--model.f_dims=16,16", "--model.cnn_channels=8,8,8,8", "--train.batch_size=8", "--train.log_every=3",
       "--train.eval_every=3", "--train.checkpoint_every=100", "--train.threads=1", "--train.lr=1e-3", "--quiet"]


def test_sort_of_clevr_cli_resume_is_exact(tmp_path, capsys):
    """The real task through ``relnet train``: 3 steps, then --resume to 6, equals 6 steps in one go (CNN with BN,
    dropout in f). The constant schedule makes a 3-step run a prefix of a 6-step one."""
    data = f"--data.root={tmp_path / 'data'}"
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "sort-of-clevr", *SOC, data, "--train.steps=6", f"--out={a}"]) == 0
    assert main(["train", "sort-of-clevr", *SOC, data, "--train.steps=3", f"--out={b}"]) == 0
    assert main(["train", "sort-of-clevr", *SOC, data, "--train.steps=6", f"--out={b}", "--resume"]) == 0
    capsys.readouterr()
    assert rows(a) == rows(b)  # steps 3 and 6: train and eval rows
    assert len(rows(a)) == 4
    wa, wb = weights(a), weights(b)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
