"""`relnet train|eval|reproduce sort-of-clevr-ternary` in-process on tiny runs (a few steps over 20 scenes).

The fresh scenes that `relnet eval` scores are rebuilt here from the data generator and the question stream, not from
``ternary.fresh_examples``, and the model's answers are counted again, so a change of stream, of questions per scene
or of subtypes in the command shows up.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from relnet.checkpoint import save_checkpoint
from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr import ternary as t
from relnet.tasks.sort_of_clevr import ternary_report as tr
from relnet.train.config import to_dict

TASK = "sort-of-clevr-ternary"
TINY = ["--train.steps=4", "--data.train_images=20", "--data.test_images=5", "--model.g_dims=8,8", "--model.f_dims=8",
        "--model.f_dropout=0.0", "--train.batch_size=20", "--train.threads=1", "--train.eval_every=4",
        "--train.checkpoint_every=4", "--train.warmup_steps=0"]


def run_json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def expect_cli_error(argv: list[str], match: str, capsys) -> str:
    """``relnet <argv>`` exits 2 with exactly one line on stderr, ``relnet: error: ...`` matching ``match``."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # an argparse usage error would land here, with a usage line: not what is wanted
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err[-500:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relnet: error: "), err
    assert re.search(match, lines[0]), f"{lines[0]!r} does not match {match!r}"
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny rn3 with the default questions and a tiny mlp asked 3 questions per scene, of two subtypes; the
    summary line each `relnet train` printed."""
    root = tmp_path_factory.mktemp("ternary_cli")
    runs, summaries = {}, {}
    for kind, extra in (("rn3", []), ("mlp", ["--data.questions_per_image=3", "--data.subtypes=between,left"])):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["train", TASK, "--model", kind, "--out", str(root / kind), "--quiet", *TINY, *extra]) == 0
        summaries[kind] = json.loads(out.getvalue().strip().splitlines()[-1])
        runs[kind] = root / kind / "checkpoint"
    return root, runs, summaries


def test_default_schedule_is_24000_steps():
    train = t.RunConfig().train
    assert (train.steps, train.eval_every, train.checkpoint_every) == (24_000, 1000, 1000)


def test_show_config_resolves_the_model_and_overrides(capsys):
    cfg = run_json_block(capsys, ["train", TASK, "--model", "mlp", "--show-config", "--train.lr=3e-4"])
    assert cfg["model"]["kind"] == "mlp" and cfg["train"]["lr"] == 3e-4 and cfg["train"]["steps"] == 24_000


def run_json_block(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_train_writes_a_ternary_checkpoint_and_prints_the_summary(trained):
    root, runs, summaries = trained
    s = summaries["rn3"]
    assert s["run"] == str(root / "rn3") and s["checkpoint"] == str(runs["rn3"]) and s["steps"] == 4
    assert {"accuracy", "acc_between", "acc_line", "acc_obtuse"} <= set(s["eval"])
    cfg = json.loads((runs["rn3"] / "config.json").read_text())
    assert cfg["task"] == TASK and cfg["model"]["kind"] == "rn3" and cfg["model"]["g_dims"] == [8, 8]
    assert cfg["data"]["train_images"] == 20 and cfg["data"]["questions_per_image"] == 10
    mlp = json.loads((runs["mlp"] / "config.json").read_text())
    assert mlp["model"]["kind"] == "mlp" and mlp["data"]["subtypes"] == ["between", "left"]
    assert (root / "rn3" / "metrics.jsonl").is_file()


def recount(checkpoint: Path, *, images: int, seed: int, per_image: int, subtypes) -> tuple[int, float, dict]:
    """Questions, accuracy and per-subtype accuracy of a checkpoint on ``images`` fresh scenes of stream ``seed``,
    counted here: the scenes from the data generator, the questions from the ternary stream, one forward pass."""
    model, _ = t.load_model(checkpoint)
    arrays = soc.generate_split(soc.SortOfClevrParams(train_images=1, test_images=images, seed=seed), "test")
    questions, answers = t.ternary_questions(arrays["centres"], seed=seed, split="test", per_image=per_image,
                                             subtypes=subtypes)
    objects = torch.from_numpy(soc.state_objects(arrays["centres"], arrays["shapes"]))
    objects = objects.repeat_interleave(per_image, dim=0)
    q = torch.from_numpy(questions.reshape(-1, t.TERNARY_QUESTION_DIM)).float()
    y = torch.from_numpy(answers.reshape(-1))
    with torch.no_grad():
        right = model(objects, q).argmax(-1) == y
    sub = torch.from_numpy(t.decode_ternary(questions)[2].reshape(-1))
    by = {name: float(right[sub == k].float().mean()) for k, name in enumerate(t.TERNARY_SUBTYPES) if (sub == k).any()}
    return len(y), float(right.float().mean()), by


def test_eval_json_counts_every_fresh_question(trained, capsys):
    _, runs, _ = trained
    ev = run_json(capsys, ["eval", TASK, "--checkpoint", str(runs["rn3"]), "--images", "6", "--seed", "7", "--json"])
    assert set(ev) == {"task", "model", "seed", "images", "n", "accuracy", "by_subtype"}
    assert (ev["task"], ev["model"], ev["seed"], ev["images"]) == (TASK, "rn3", 7, 6)
    n, acc, by = recount(runs["rn3"], images=6, seed=7, per_image=10, subtypes=t.DEFAULT_SUBTYPES)
    assert ev["n"] == n == 6 * 10
    assert ev["accuracy"] == pytest.approx(acc) and ev["by_subtype"] == pytest.approx(by)
    assert set(ev["by_subtype"]) == {"between", "line", "obtuse"}


def test_eval_asks_the_questions_the_checkpoint_was_trained_on(trained, capsys):
    _, runs, _ = trained
    ev = run_json(capsys, ["eval", TASK, "--checkpoint", str(runs["mlp"]), "--images", "8", "--json"])
    assert ev["seed"] == 2026 and ev["images"] == 8 and ev["model"] == "mlp"
    n, acc, by = recount(runs["mlp"], images=8, seed=2026, per_image=3, subtypes=("between", "left"))
    assert ev["n"] == n == 8 * 3 and ev["accuracy"] == pytest.approx(acc)
    assert set(ev["by_subtype"]) == {"between", "left"} and ev["by_subtype"] == pytest.approx(by)


def test_eval_table(trained, capsys):
    _, runs, _ = trained
    capsys.readouterr()
    assert main(["eval", TASK, "--checkpoint", str(runs["rn3"]), "--images", "2"]) == 0
    out = capsys.readouterr().out
    assert "20 ternary questions on 2 fresh scenes (seed 2026)" in out and re.search(r"accuracy \d\.\d{4}", out)
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["between", "line", "obtuse"]


def _edit_config(fn):
    def corrupt(ck: Path) -> None:
        cfg = json.loads((ck / "config.json").read_text())
        fn(cfg)
        (ck / "config.json").write_text(json.dumps(cfg))

    return corrupt


def _binary_checkpoint(ck: Path) -> None:
    """Replace ``ck`` by a real binary Sort-of-CLEVR checkpoint (the state RN, untrained)."""
    from relnet.tasks.sort_of_clevr.model import ModelConfig, build_model

    shutil.rmtree(ck)
    cfg = ModelConfig(kind="rn-state", g_dims=(8, 8), f_dims=(8,), f_dropout=(0.0,))
    save_checkpoint(ck, build_model(cfg), {"task": "sort-of-clevr", "model": to_dict(cfg)})


BAD_CHECKPOINTS = {
    "missing": (lambda ck: shutil.rmtree(ck), r"does not exist or is not a folder"),
    "binary-sort-of-clevr": (_binary_checkpoint, r"is for task 'sort-of-clevr', not 'sort-of-clevr-ternary'"),
    "babi": (_edit_config(lambda c: c.update(task="babi")), r"is for task 'babi', not 'sort-of-clevr-ternary'"),
    "config-not-json": (lambda ck: (ck / "config.json").write_text("{"), r"config.json: not valid JSON"),
    "weights-truncated": (lambda ck: (ck / "model.safetensors").write_bytes(b"\x00" * 40), r"cannot read weights"),
    "weights-missing": (lambda ck: (ck / "model.safetensors").unlink(), r"model.safetensors is missing"),
    "kind": (_edit_config(lambda c: c["model"].update(kind="rn4")), r"model kind 'rn4' is not one of rn3, rn, mlp"),
    "width": (_edit_config(lambda c: c["model"].update(g_dims=[-1, 8])),
              r"field 'model' does not describe a ternary Sort-of-CLEVR model"),
    "other-sizes": (_edit_config(lambda c: c["model"].update(g_dims=[16, 16])), r"does not fit the model"),
    "no-data": (_edit_config(lambda c: c.pop("data")), r"field 'data' is missing"),
    "questions": (_edit_config(lambda c: c["data"].update(questions_per_image=0)),
                  r"data.questions_per_image must be a whole number >= 1, got 0"),
    "subtypes": (_edit_config(lambda c: c["data"].update(subtypes=["inside"])), r"data.subtypes must list some of"),
}


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_eval_of_a_bad_checkpoint_is_one_line(trained, tmp_path, capsys, name):
    _, runs, _ = trained
    ck = tmp_path / "ck"
    shutil.copytree(runs["rn3"], ck)
    corrupt, match = BAD_CHECKPOINTS[name]
    corrupt(ck)
    expect_cli_error(["eval", TASK, "--checkpoint", str(ck), "--images", "2", "--json"], match, capsys)


@pytest.mark.parametrize("argv,match", [
    (["--images", "0"], r"--images 0: at least 1 fresh scene is needed"),
    (["--images", "-3"], r"--images -3: at least 1 fresh scene is needed"),
    (["--seed", "-1"], r"--seed -1: .* >= 0"),
])
def test_eval_of_nonsense_sizes_is_one_line(trained, capsys, argv, match):
    _, runs, _ = trained
    expect_cli_error(["eval", TASK, "--checkpoint", str(runs["rn3"]), *argv], match, capsys)


@pytest.mark.parametrize("argv,match", [
    (["reproduce", TASK, "--images", "0"], r"--images 0: at least 1 fresh scene is needed"),
    (["reproduce", TASK, "--models", "rn3,transformer"], r"--models rn3,transformer: expected .* rn3, rn, mlp"),
    (["reproduce", TASK, "--models", ","], r"--models ,: expected"),
    (["reproduce", TASK, "--model.kind=rn"], r"--model.kind would override every model: pick them with --models"),
    (["reproduce", TASK, "--data.questions_per_image=0"], r"--data.questions_per_image=0: at least 1 question per scene"),
    (["train", TASK, "--model", "rn", "--model.kind=mlp"], r"--model.kind: pick the model with --model"),
    (["train", TASK, "--data.train_images=0"], r"train_images must be at least 1, got 0"),
])
def test_bad_reproduce_and_train_options_are_one_line_and_train_nothing(tmp_path, capsys, argv, match):
    where = ["--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "r.md")] if argv[0] == "reproduce" \
        else ["--out", str(tmp_path / "runs")]
    expect_cli_error([*argv[:2], *where, *TINY, *argv[2:]], match, capsys)  # the option tested comes last
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r.md").exists()


def test_reproduce_writes_report_json_curve_and_ships(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # --ship writes checkpoints/sort_of_clevr/ternary_<model>/ under the working folder
    options = ["--models", "rn3,mlp", "--runs", "runs", "--report", "reports/t.md", "--images", "4"]
    capsys.readouterr()
    assert main(["reproduce", TASK, *options, "--ship", *TINY]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1].removeprefix("RESULT "))
    assert set(result) == {"rn3", "mlp"}

    text = (tmp_path / "reports" / "t.md").read_text()
    command = ("relnet reproduce sort-of-clevr-ternary --models rn3,mlp --runs runs --report reports/t.md "
               "--images 4 --seed 2026 --ship " + " ".join(TINY))
    assert f"Generated by `{command}`." in text
    for row in ("| `rn3` |", "| `mlp` |", "| most common answer |"):
        assert row in text
    assert "| `rn` |" not in text and "nan" not in text.lower()
    saved = json.loads((tmp_path / "reports" / "t.json").read_text())
    assert set(saved["models"]) == {"rn3", "mlp"} and saved["models"]["rn3"]["n"] == 40
    assert {k: v["accuracy"] for k, v in saved["models"].items()} == result
    assert set(saved["majority"]) == {"between", "line", "obtuse", "all"} and 0 <= saved["majority"]["all"] <= 1
    assert saved["images"] == 4 and saved["seed"] == 2026 and saved["overrides"] == TINY
    assert saved["command"] == command
    assert (tmp_path / "reports" / "t_curve.png").stat().st_size > 0

    # --ship: the final checkpoint's weights and config only, under checkpoints/sort_of_clevr/, no temporary left
    shipped = tmp_path / "checkpoints" / "sort_of_clevr"
    assert sorted(p.name for p in shipped.iterdir()) == ["ternary_mlp", "ternary_rn3"]
    for kind in ("rn3", "mlp"):
        folder = shipped / f"ternary_{kind}"
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
        for name in ("config.json", "model.safetensors"):
            assert (folder / name).read_bytes() == (tmp_path / "runs" / kind / "checkpoint" / name).read_bytes()
    assert saved["shipped"] == {"rn3": "checkpoints/sort_of_clevr/ternary_rn3",
                                "mlp": "checkpoints/sort_of_clevr/ternary_mlp"}
    # the shipped model scores the same on the same fresh scenes through `relnet eval`
    ev = run_json(capsys, ["eval", TASK, "--checkpoint", str(shipped / "ternary_rn3"), "--images", "4", "--json"])
    assert ev["accuracy"] == pytest.approx(result["rn3"]) and ev["n"] == 40

    # --resume reuses the finished runs; a run trained for other steps is refused
    logged = (tmp_path / "runs" / "rn3" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["reproduce", TASK, *options, "--resume", *TINY]) == 0
    assert json.loads((tmp_path / "reports" / "t.json").read_text())["models"]["rn3"]["accuracy"] == result["rn3"]
    assert (tmp_path / "runs" / "rn3" / "metrics.jsonl").read_text() == logged
    assert "--images 4 --seed 2026 --resume --train.steps=4" in (tmp_path / "reports" / "t.md").read_text()
    expect_cli_error(["reproduce", TASK, *options, "--resume", *TINY, "--train.steps=6"],
                     r"--resume: runs/rn3 was trained with train.steps=4, not 6", capsys)
    # any training setting that changes what a run learns is refused, before anything is trained ...
    expect_cli_error(["reproduce", TASK, *options, "--resume", *TINY, "--train.lr=0.0003"],
                     r"--resume: runs/rn3 was trained with train.lr=0.001, not 0.0003", capsys)
    expect_cli_error(["reproduce", TASK, *options, "--resume", *TINY, "--model.g_dims=8,8,8"],
                     r"--resume: runs/rn3 was trained with model ", capsys)
    assert (tmp_path / "runs" / "rn3" / "metrics.jsonl").read_text() == logged
    # ... the number of threads is not
    capsys.readouterr()
    assert main(["reproduce", TASK, *options, "--resume", *TINY, "--train.threads=2"]) == 0
    assert json.loads((tmp_path / "reports" / "t.json").read_text())["models"]["rn3"]["accuracy"] == result["rn3"]


def test_ship_of_a_missing_checkpoint_is_one_line_and_leaves_the_target(tmp_path):
    target = tmp_path / "ternary_rn3"
    target.mkdir()
    (target / "config.json").write_text("old")
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "config.json").write_text("new")  # no model.safetensors
    with pytest.raises(UserError, match=r"--ship: cannot copy .*run/checkpoint to .*ternary_rn3"):
        tr.ship(tmp_path / "run", target)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert (target / "config.json").read_text() == "old"


def test_majority_is_each_subtypes_most_common_training_answer():
    train = t.TernaryExamples(*t.scenes(soc.SortOfClevrParams(train_images=30, test_images=1, seed=1), "train"),
                              seed=1, split="train", per_image=10)
    fresh = t.fresh_examples(images=10, seed=2026)
    got = tr.majority(train, fresh)
    for k, name in enumerate(t.DEFAULT_SUBTYPES):
        common = torch.bincount(train.answers[train.subtypes == k]).argmax()
        assert got[name] == pytest.approx(float((fresh.answers[fresh.subtypes == k] == common).float().mean()))
    assert "left" not in got
