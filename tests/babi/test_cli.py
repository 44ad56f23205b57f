"""``relnet train|eval|reproduce babi`` in-process: train a few steps -> eval JSON (absent tasks left out) ->
report; and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relnet.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "babi"
TINY = ["--model.embed_dim=8", "--model.sentence_dim=8", "--model.question_dim=8", "--model.g_dims=16,16",
        "--model.f_dims=16", "--model.f_dropout=0", "--train.batch_size=2", "--train.warmup_steps=1",
        "--train.threads=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("babi") / "run"
    assert main(["train", "babi", "--data", str(FIX), "--out", str(out), "--quiet", "--train.steps=3", *TINY]) == 0
    return out


def test_train_writes_checkpoint_with_vocab(trained, capsys):
    config = json.loads((trained / "checkpoint" / "config.json").read_text())
    assert config["task"] == "babi" and config["vocab"]["kind"] == "relnet.babi.vocab"
    assert (trained / "checkpoint" / "model.safetensors").is_file()
    assert (trained / "metrics.jsonl").is_file()


def test_eval_json_test_split_leaves_absent_tasks_out(trained, capsys):
    assert main(["eval", "babi", "--checkpoint", str(trained / "checkpoint"), "--data", str(FIX), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"task", "n", "accuracy", "by_task", "passed"} <= set(result)
    assert result["task"] == "babi" and result["split"] == "test"
    # the fixture has test files for tasks 1 (1 question) and 19 (2 questions) only; every other task is absent
    assert sorted(result["by_task"], key=int) == ["1", "19"]
    assert result["n"] == 3
    assert result["passed"] == sum(v > 0.95 for v in result["by_task"].values())
    n1, n19 = 1, 2
    assert result["accuracy"] == pytest.approx((result["by_task"]["1"] * n1 + result["by_task"]["19"] * n19) / 3)


def test_eval_valid_split_table(trained, capsys):
    assert main(["eval", "babi", "--checkpoint", str(trained / "checkpoint"), "--data", str(FIX),
                 "--split", "valid"]) == 0
    out = capsys.readouterr().out
    assert "(valid)" in out and "single supporting fact" in out and "lists/sets" in out


def test_reproduce_writes_report(tmp_path, capsys):
    report = tmp_path / "reports" / "babi.md"
    assert main(["reproduce", "babi", "--data", str(FIX), "--runs", str(tmp_path / "runs"), "--report", str(report),
                 "--train.steps=2", "--train.eval_every=1", *TINY]) == 0
    text = report.read_text()
    assert "| 19 path finding |" in text and "18/20" in text and "Machine:" in text
    assert "relnet test acc" in text and "relnet valid acc" in text
    data = json.loads(report.with_suffix(".json").read_text())
    assert set(data["results"]) == {"valid", "test"} and data["steps"] == 2
    assert (report.parent / "babi_curve.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["train", "babi", "--train.steps=1"], "--data"),
    (["train", "babi", "--data", "/nonexistent/babi"], "/nonexistent/babi"),
    (["train", "babi", "--data", str(FIX), "--model.pairs=diagonal", "--train.steps=1"], "--model.pairs"),
    (["train", "babi", "--data", str(FIX), "--model.bogus=1"], "bogus"),
    (["eval", "babi", "--checkpoint", "/nonexistent/ckpt", "--data", str(FIX)], "/nonexistent/ckpt"),
])
def test_user_errors_exit_2(argv, message, capsys, tmp_path):
    if argv[:2] == ["train", "babi"]:
        argv = [*argv, "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("relnet: error:") and message in err and len(err.strip().splitlines()) == 1


def test_eval_rejects_other_tasks_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"format": "relnet-checkpoint", "version": 1,
                                                  "task": "sort-of-clevr", "model": {}}))
    assert main(["eval", "babi", "--checkpoint", str(ckpt), "--data", str(FIX)]) == 2
    assert "sort-of-clevr" in capsys.readouterr().err
