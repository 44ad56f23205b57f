"""`relnet train|eval|reproduce clevr` in-process on a tiny generated CLEVR-format folder."""

import collections
import json

import pytest
import torch

from relnet.cli import main
from relnet.tasks.clevr.loader import FAMILIES, load_split
from relnet.tasks.clevr.task import load_model

FAST = ["--epochs=0", "--warmup_epochs=0", "--train.batch_size=8", "--train.log_every=1"]

LAST_FN_FAMILY = {"count": "count", "exist": "exist", "equal_integer": "compare_numbers",
                  "less_than": "compare_numbers", "greater_than": "compare_numbers"}


def family_of(program):  # independent of the loader's family_id
    fn = program[-1]["function"]
    if fn in LAST_FN_FAMILY:
        return LAST_FN_FAMILY[fn]
    return "query_attribute" if fn.startswith("query_") else "compare_attribute"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 train scenes and 4 val scenes (other seed) with 128x128 images, 5 questions each."""
    root = tmp_path_factory.mktemp("clevr_cli")
    for split, n, seed in (("train", 6, 1), ("val", 4, 2)):
        assert main(["data", "clevr", "--scenes", str(n), "--seed", str(seed), "--split", split, "--size", "128",
                     "--questions-per-scene", "5", "--out", str(root)]) == 0
    return root


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_state_train_then_eval_matches_an_independent_recount(data, tmp_path, capsys):
    out = tmp_path / "run"
    res = run_json(capsys, ["train", "clevr", "--input", "state", "--data", str(data), "--out", str(out), "--quiet",
                            *FAST, "--train.steps=3", "--train.eval_every=3"])
    assert res["steps"] == 3 and (out / "checkpoint" / "model.safetensors").is_file()
    cfg = json.loads((out / "checkpoint" / "config.json").read_text())
    assert cfg["task"] == "clevr" and cfg["model"]["input"] == "state" and cfg["vocab"]["tokens"][:2] == ["<pad>", "<unk>"]
    ev = run_json(capsys, ["eval", "clevr", "--input", "state", "--checkpoint", str(out / "checkpoint"),
                           "--data", str(data), "--split", "val", "--json"])
    assert {"task", "n", "accuracy", "by_family"} <= set(ev) and ev["task"] == "clevr"
    assert list(ev["by_family"]) == list(FAMILIES)
    # recount: predictions of the reloaded model, families from the raw JSON programs
    questions = json.loads((data / "questions" / "CLEVR_val_questions.json").read_text())["questions"]
    model, config = load_model(out / "checkpoint")
    from relnet.tasks.clevr.task import Examples

    ex = Examples(load_split(data, "val", vocab=config["vocab"]), input="state")
    with torch.no_grad():
        pred = model(ex.batch(torch.arange(len(ex)))).argmax(-1).tolist()
    from relnet.tasks.clevr.loader import ANSWERS

    hits = collections.defaultdict(list)
    for q, p in zip(questions, pred):
        hits[family_of(q["program"])].append(ANSWERS[p] == q["answer"])
    assert ev["n"] == len(questions)
    assert ev["accuracy"] == pytest.approx(sum(sum(h) for h in hits.values()) / len(questions))
    for fam, h in hits.items():
        assert ev["by_family"][fam] == pytest.approx(sum(h) / len(h))


def test_state_eval_needs_no_images(data, tmp_path, capsys):
    bare = tmp_path / "bare"
    for sub in ("questions", "scenes"):
        (bare / sub).mkdir(parents=True)
        for f in (data / sub).iterdir():
            (bare / sub / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "run"
    run_json(capsys, ["train", "clevr", "--data", str(bare), "--out", str(out), "--quiet", *FAST, "--train.steps=1"])
    ev = run_json(capsys, ["eval", "clevr", "--checkpoint", str(out / "checkpoint"), "--data", str(bare), "--json"])
    assert ev["n"] == 20
    # pixels need the images: a one-line error, exit 2
    assert main(["train", "clevr", "--input", "pixels", "--data", str(bare), "--out", str(tmp_path / "px"),
                 "--quiet", *FAST]) == 2
    assert "images" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["rn", "mlp"])
def test_pixels_train_and_eval(data, tmp_path, capsys, model):
    out = tmp_path / model
    run_json(capsys, ["train", "clevr", "--input", "pixels", "--model", model, "--data", str(data), "--out", str(out),
                      "--quiet", *FAST, "--train.batch_size=4", "--train.micro_batch_size=2", "--train.steps=1",
                      "--model.g_dims=32,32", "--model.f_dims=32", "--model.f_dropout=0.5"])
    ev = run_json(capsys, ["eval", "clevr", "--input", "pixels", "--checkpoint", str(out / "checkpoint"),
                           "--data", str(data), "--json", "--limit", "6"])
    assert ev["n"] == 6 and 0.0 <= ev["accuracy"] <= 1.0
    assert main(["eval", "clevr", "--input", "state", "--checkpoint", str(out / "checkpoint"), "--data",
                 str(data)]) == 2
    assert "trained on pixels" in capsys.readouterr().err


def test_qtype_baseline(data, tmp_path, capsys):
    out = tmp_path / "q"
    run_json(capsys, ["train", "clevr", "--model", "qtype", "--data", str(data), "--out", str(out), "--quiet"])
    ev = run_json(capsys, ["eval", "clevr", "--checkpoint", str(out / "checkpoint"), "--data", str(data), "--json"])
    train = json.loads((data / "questions" / "CLEVR_train_questions.json").read_text())["questions"]
    val = json.loads((data / "questions" / "CLEVR_val_questions.json").read_text())["questions"]
    per_family = collections.defaultdict(collections.Counter)
    for q in train:
        per_family[q["question_family_index"]][q["answer"]] += 1
    overall = collections.Counter(q["answer"] for q in train)
    # a question is surely right when its answer is its family's unique most common training answer
    def sure(q):
        c = per_family.get(q["question_family_index"]) or overall
        top = c.most_common()
        return len(top) == 1 or top[0][1] > top[1][1]
    decided = [q for q in val if sure(q)]
    c_of = lambda q: per_family.get(q["question_family_index"]) or overall  # noqa: E731
    lo = sum(c_of(q).most_common(1)[0][0] == q["answer"] for q in decided)
    assert lo <= round(ev["accuracy"] * len(val)) <= lo + (len(val) - len(decided))


def test_errors_are_one_line(data, tmp_path, capsys):
    assert main(["train", "clevr", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["train", "clevr", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["train", "clevr", "--data", str(data), "--model.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["eval", "clevr", "--checkpoint", str(tmp_path / "none"), "--data", str(data)]) == 2
    assert main(["reproduce", "clevr", "--models", "rn,sa", "--data", str(data)]) == 2


def test_show_config(capsys):
    assert main(["train", "clevr", "--preset", "recipe", "--input", "pixels", "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["schedule"] == "step" and cfg["model"]["input"] == "pixels" and cfg["lr_double_epochs"] == 20


def test_steps_given_win_over_the_presets_epochs(capsys):
    # the fast preset sizes its run in epochs; an explicit step count must not be replaced once data is loaded
    assert main(["train", "clevr", "--show-config", "--train.steps=45000", "--train.warmup_steps=1000"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["epochs"] == 0 and cfg["warmup_epochs"] == 0
    assert cfg["train"]["steps"] == 45000 and cfg["train"]["warmup_steps"] == 1000
    assert main(["train", "clevr", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] > 0
    assert main(["train", "clevr", "--show-config", "--train.steps=10", "--epochs=2"]) == 2
    assert "both set the same length" in capsys.readouterr().err


def test_reproduce_writes_the_report_and_reuses_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "clevr", "--data", "gen", "--train-scenes", "4", "--val-scenes", "3",
            "--questions-per-scene", "4", "--models", "rn,qtype", "--runs", "runs", *FAST,
            "--train.steps=2", "--train.eval_every=2", "--ship"]
    assert main(argv) == 0
    text = (tmp_path / "reports" / "clevr.md").read_text()
    for needle in ("relnet state RN", "relnet Q-type", "CNN+LSTM+RN | 95.5", "Q-type baseline",
                   "Machine:", "never seen in training"):
        assert needle in text, needle
    assert (tmp_path / "checkpoints" / "clevr_state" / "rn" / "model.safetensors").is_file()
    stamp = tmp_path / "gen" / "relnet_reproduce.json"
    before = (tmp_path / "gen" / "questions" / "CLEVR_train_questions.json").stat().st_mtime_ns
    assert json.loads(stamp.read_text())["train_scenes"] == 4
    argv[argv.index("rn,qtype")] = "qtype"
    assert main(argv[:-1]) == 0  # second run: the data set is reused, not regenerated
    assert (tmp_path / "gen" / "questions" / "CLEVR_train_questions.json").stat().st_mtime_ns == before
    report = json.loads((tmp_path / "reports" / "clevr.json").read_text())
    assert report["data"]["generated"] is False and set(report["results"]) == {"qtype"}
