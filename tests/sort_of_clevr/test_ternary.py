"""Ternary Sort-of-CLEVR: answers against an independent checker, the question stream, the models, a tiny fit through
the shared trainer and the side-by-side script.

The checker below is written from the task's spec, not from ``ternary.py``: it decodes the question bits itself and
works per object in plain Python, with exact fractions for the line (the foot of the perpendicular) and Pythagoras
for the obtuse corner (the longest side's square at least the sum of the other two's).
"""

from __future__ import annotations

import json
import runpy
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from relnet.errors import UserError
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr import ternary as t
from relnet.train.config import TrainConfig
from relnet.train.loop import train

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soc_ternary.py"
NAMES = ["yes", "no", "0", "1", "2", "3", "4"]
PARAMS = soc.SortOfClevrParams(train_images=150, test_images=20, seed=5)


@pytest.fixture(scope="module")
def scenes():
    return t.scenes(PARAMS, "train")


def brute_answer(centres, question) -> str:
    bits = [int(v) for v in question]
    assert len(bits) == 16 and sum(bits[:6]) == sum(bits[6:12]) == sum(bits[12:]) == 1
    a, b, sub = bits[:6].index(1), bits[6:12].index(1), bits[12:].index(1)
    assert a != b
    (xa, ya), (xb, yb) = centres[a], centres[b]
    others = [tuple(int(v) for v in centres[k]) for k in range(6) if k not in (a, b)]
    if sub == 0:  # between: inside the closed box of A and B
        n = sum(min(xa, xb) <= x <= max(xa, xb) and min(ya, yb) <= y <= max(ya, yb) for x, y in others)
        return str(n)
    if sub == 1:  # line: distance to the foot of the perpendicular, exactly
        dx, dy = xb - xa, yb - ya
        for x, y in others:
            s = Fraction((x - xa) * dx + (y - ya) * dy, dx * dx + dy * dy)
            fx, fy = xa + s * dx, ya + s * dy
            if (x - fx) ** 2 + (y - fy) ** 2 <= 8 ** 2:
                return "yes"
        return "no"
    if sub == 3:  # left: A's centre in a smaller column than B's
        return "yes" if xa < xb else "no"
    n = 0  # obtuse: the longest side squared >= the sum of the other two squared
    for x, y in others:
        sides = sorted([(xa - xb) ** 2 + (ya - yb) ** 2, (xa - x) ** 2 + (ya - y) ** 2, (xb - x) ** 2 + (yb - y) ** 2])
        n += sides[2] >= sides[0] + sides[1]
    return str(n)


def test_answers_match_the_independent_checker(scenes):
    centres, _ = scenes
    questions, answers = t.ternary_questions(centres, seed=5, split="train", subtypes=t.TERNARY_SUBTYPES)
    assert set(np.unique(t.decode_ternary(questions)[2])) == {0, 1, 2, 3}
    assert questions.shape == (150, 10, 16) and questions.dtype == np.uint8 and answers.shape == (150, 10)
    for i in range(len(centres)):
        for k in range(10):
            assert NAMES[answers[i, k]] == brute_answer(centres[i], questions[i, k]), (i, k)


def test_every_subtype_and_answer_occurs_and_the_line_is_balanced():
    centres, _ = t.scenes(soc.SortOfClevrParams(train_images=2000, test_images=1, seed=1), "train")
    questions, answers = t.ternary_questions(centres, seed=1, split="train")
    a, b, sub = t.decode_ternary(questions)
    assert set(np.unique(sub)) == {0, 1, 2}  # the ternary subtypes by default, "left" only when asked
    assert set(np.unique(a)) == set(np.unique(b)) == set(range(6))  # yellow is asked about too
    assert (a != b).all()
    pairs = np.bincount((6 * a + b).ravel(), minlength=36)[[6 * i + j for i in range(6) for j in range(6) if i != j]]
    assert pairs.min() > 550 and pairs.max() < 790  # 20,000 questions over 30 ordered pairs: 667 each
    assert np.bincount(sub.ravel(), minlength=3).min() > 0.3 * sub.size
    line = answers[sub == 1]
    assert set(np.unique(line)) == {t.YES, t.NO} and 0.4 < (line == t.YES).mean() < 0.6
    for s in (0, 2):
        assert len(np.unique(answers[sub == s])) >= 4  # counts, not a constant


def test_the_third_object_decides():
    """Moving only C into or out of the box, onto or off the line, changes the answer."""
    centres = np.array([[[10, 10], [50, 50], [30, 30], [60, 10], [10, 60], [69, 69]]])
    q = lambda s: (np.array([[0]]), np.array([[1]]), np.array([[s]]))
    assert t.ternary_answers(centres, *q(0))[0, 0] == t.ZERO + 1  # (30, 30) is in the box of (10,10)-(50,50)
    assert t.ternary_answers(centres, *q(1))[0, 0] == t.YES  # and on its diagonal (so is (69, 69))
    moved = centres.copy()
    moved[0, 2] = [60, 30]
    moved[0, 5] = [30, 69]
    assert t.ternary_answers(moved, *q(0))[0, 0] == t.ZERO
    assert t.ternary_answers(moved, *q(1))[0, 0] == t.NO


def test_questions_are_deterministic_per_image_and_leave_the_binary_stream_alone(scenes):
    centres, _ = scenes
    q1, a1 = t.ternary_questions(centres, seed=5, split="train")
    q2, a2 = t.ternary_questions(centres[7:8], seed=5, split="train", first_image=7)
    np.testing.assert_array_equal(q1[7:8], q2)
    np.testing.assert_array_equal(a1[7:8], a2)
    q3, _ = t.ternary_questions(centres, seed=5, split="test")
    assert not np.array_equal(q1, q3)
    a = t.decode_ternary(q1)[0]
    for k in range(5):  # not the binary questions' stream [seed, split, k], which a zero stream word would give
        binary = np.random.default_rng([5, soc.SPLIT_CODES["train"], k]).integers(0, 6, 10)
        assert not np.array_equal(a[k], binary)


def test_a_subset_of_subtypes(scenes):
    centres, _ = scenes
    q, _ = t.ternary_questions(centres, seed=5, split="train", subtypes=("between", "obtuse"))
    assert set(np.unique(t.decode_ternary(q)[2])) == {0, 2}
    default, explicit = (t.ternary_questions(centres, seed=5, split="train", **kw)[0]
                         for kw in ({}, {"subtypes": ("between", "line", "obtuse")}))
    np.testing.assert_array_equal(default, explicit)
    with pytest.raises(UserError, match="expected some of"):
        t.ternary_questions(centres, seed=5, split="train", subtypes=("between", "inside"))


def test_encode_decode_and_errors():
    q = t.encode_ternary(5, 0, 2)
    assert [int(v.item()) for v in t.decode_ternary(q[None])] == [5, 0, 2]
    assert "yellow" in t.describe_ternary(q) and "red" in t.describe_ternary(q)
    assert [t.describe_ternary(t.encode_ternary(0, 1, k)).split()[0] for k in range(4)] == ["How", "Is", "For", "Is"]
    with pytest.raises(ValueError):
        t.encode_ternary(3, 3, 0)
    with pytest.raises(ValueError):
        t.decode_ternary(np.zeros((1, 16), dtype=np.uint8))
    with pytest.raises(ValueError):
        t.decode_ternary(np.zeros((1, 11), dtype=np.uint8))
    with pytest.raises(UserError):
        t.ternary_questions(np.zeros((1, 6, 2)), seed=0, split="train", per_image=0)
    with pytest.raises(ValueError, match="split"):
        t.ternary_questions(np.zeros((1, 6, 2)), seed=0, split="valid")
    centres, one = np.zeros((1, 6, 2)), np.zeros((1, 1), dtype=np.int64)
    with pytest.raises(ValueError, match="different"):
        t.ternary_answers(centres, one, one, one)
    with pytest.raises(ValueError, match="subtypes"):
        t.ternary_answers(centres, one, one + 1, one + 4)
    with pytest.raises(ValueError, match="need centres"):
        t.ternary_answers(centres, one, one + 1, np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(UserError, match="rn3"):
        t.build_model(t.ModelConfig(kind="rn4"))


@pytest.mark.parametrize("kind", t.MODELS)
def test_models_give_seven_logits(kind):
    model = t.build_model(t.ModelConfig(kind=kind, g_dims=(16, 16), f_dims=(16,), f_dropout=(0.0,)))
    out = model(torch.randn(4, 6, t.STATE_DIM), torch.randn(4, t.TERNARY_QUESTION_DIM))
    assert out.shape == (4, len(t.TERNARY_ANSWERS))


class AlwaysYes(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, objects: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.zeros(len(objects), dtype=torch.long), 7).float() + self.w


def test_evaluation_counts_per_subtype():
    examples = t.TernaryExamples(*t.scenes(PARAMS, "test"), seed=5, split="test", per_image=10,
                                 subtypes=t.TERNARY_SUBTYPES)
    got = t.evaluate(AlwaysYes(), examples, batch_size=7)  # batches that do not divide the 200 questions
    answers, sub = examples.answers.numpy(), examples.subtypes.numpy()
    assert got["n"] == 200 and got["accuracy"] == pytest.approx((answers == t.YES).mean())
    assert got["by_subtype"]["line"] == pytest.approx((answers[sub == 1] == t.YES).mean())
    assert got["by_subtype"]["left"] == pytest.approx((answers[sub == 3] == t.YES).mean())
    assert got["by_subtype"]["between"] == got["by_subtype"]["obtuse"] == 0.0


def test_tiny_fit_through_the_shared_trainer(tmp_path):
    """The ternary RN memorises 40 questions; its checkpoint loads back to the same answers."""
    cfg = t.RunConfig(model=t.ModelConfig(g_dims=(64, 64), f_dims=(64,), f_dropout=(0.0,)),
                      data=t.DataConfig(train_images=4, test_images=2, questions_per_image=10),
                      train=TrainConfig(steps=300, batch_size=40, lr=3e-3, eval_every=300, log_every=100,
                                        checkpoint_every=300, threads=1))
    task = t.TernaryTask(cfg)
    run = train(task, cfg.train, tmp_path / "run", progress=False)
    train_eval = t.evaluate(run.model, task.train_set)
    assert train_eval["accuracy"] >= 0.95 and train_eval["n"] == 40
    assert set(train_eval["by_subtype"]) == {"between", "line", "obtuse"}  # "left" was not asked
    loaded, _ = t.load_model(tmp_path / "run" / "checkpoint")
    assert t.evaluate(loaded, task.test_set) == t.evaluate(run.model, task.test_set)
    with pytest.raises(UserError):
        t.load_model(tmp_path)
    assert set(run.final_eval) >= {"accuracy", "acc_between", "acc_line", "acc_obtuse"}
    config = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert config["task"] == t.TASK and config["answers"] == NAMES


def test_script_trains_side_by_side_and_writes_the_report(tmp_path, monkeypatch, capsys):
    report = tmp_path / "ternary.md"
    argv = [str(SCRIPT), "--runs", str(tmp_path / "runs"), "--report", str(report), "--images", "5",
            "--train.steps=4", "--data.train_images=6", "--data.test_images=2", "--train.eval_every=4",
            "--train.threads=1", "--model.g_dims=8,8", "--model.f_dims=8", "--model.f_dropout=0.0",
            "--train.batch_size=20"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1].removeprefix("RESULT "))
    assert set(result) == {"rn3", "rn", "mlp"}
    text = report.read_text()
    for row in ("| `rn3` |", "| `rn` |", "| `mlp` |", "| most common answer |"):
        assert row in text
    saved = json.loads(report.with_suffix(".json").read_text())
    assert saved["models"]["rn3"]["n"] == 50 and report.with_name("ternary_curve.png").exists()

    # the baseline: each subtype's most common training answer, scored on the fresh questions
    train_c, _ = t.scenes(soc.SortOfClevrParams(train_images=6, test_images=0, seed=1), "train")
    fresh_c, _ = t.scenes(soc.SortOfClevrParams(train_images=1, test_images=5, seed=2026), "test")
    (tq, ta), (fq, fa) = (t.ternary_questions(train_c, seed=1, split="train"),
                          t.ternary_questions(fresh_c, seed=2026, split="test"))
    ts, fs = t.decode_ternary(tq)[2], t.decode_ternary(fq)[2]
    for k, name in enumerate(t.TERNARY_SUBTYPES):
        if (fs == k).any():
            common = np.bincount(ta[ts == k]).argmax()
            assert saved["majority"][name] == pytest.approx((fa[fs == k] == common).mean())

    # --resume reuses the finished runs: same numbers, no step trained again
    logged = (tmp_path / "runs" / "rn3" / "metrics.jsonl").read_text()
    monkeypatch.setattr(sys, "argv", [*argv, "--resume"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    again = json.loads(report.with_suffix(".json").read_text())
    assert {k: v["accuracy"] for k, v in again["models"].items()} == result
    assert (tmp_path / "runs" / "rn3" / "metrics.jsonl").read_text() == logged
    assert "--resume" in report.read_text()

    monkeypatch.setattr(sys, "argv", [*argv, "--model.kind=mlp"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    monkeypatch.setattr(sys, "argv", [*argv, "--resume", "--train.steps=6"])  # a finished run of other settings
    with pytest.raises(SystemExit, match="trained with train.steps=4, not 6"):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    monkeypatch.setattr(sys, "argv", [*argv, "--resume", "--data.subtypes=between"])
    with pytest.raises(SystemExit, match="trained with data"):
        runpy.run_path(str(SCRIPT), run_name="__main__")


def test_script_without_a_subtype_leaves_its_column_empty(tmp_path, monkeypatch, capsys):
    report = tmp_path / "r.md"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--runs", str(tmp_path / "runs"), "--report", str(report),
                                      "--models", "rn3", "--images", "4", "--train.steps=2", "--data.train_images=4",
                                      "--data.test_images=2", "--train.threads=1", "--model.g_dims=8",
                                      "--model.f_dims=8", "--model.f_dropout=0.0", "--train.batch_size=20",
                                      "--data.subtypes=between,line,left"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    row = next(line for line in report.read_text().splitlines() if line.startswith("| `rn3` |"))
    assert row.split(" | ")[4] == "-"  # model, parameters, between, line, obtuse, left
    assert "nan" not in report.read_text().lower()
