"""Bad input, everywhere: a corpus of malformed inputs, each of which must give a clear one-line error.

The rule for every case: the library raises ``UserError`` (the CLI prints ``relnet: error: ...`` and exits 2; the
showcase answers a 4xx JSON ``{"error": ...}`` and keeps serving), the message names what is wrong (matched by a
regular expression per case), there is no traceback, and no partial output is left behind (the folder the case
works in holds the same files afterwards as before, apart from outputs that are complete by design).

Areas: bAbI files, CLEVR JSON and images, checkpoints (API and ``relnet eval``), command-line arguments, showcase
HTTP requests. ``CASE_COUNT`` at the bottom is the total the README quotes; ``test_case_count`` keeps it honest.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relnet.checkpoint import load_weights, read_config, save_checkpoint
from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.babi.data import parse_file
from relnet.tasks.clevr.loader import load_split
from relnet.train.config import TrainConfig, to_dict
from relnet.train.loop import validate_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def expect_error(fn, match: str, folder: Path) -> str:
    """``fn()`` raises a one-line UserError matching ``match`` and leaves no new file under ``folder``."""
    before = snapshot(folder)
    with pytest.raises(UserError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    assert re.search(match, message), f"{message!r} does not match {match!r}"
    assert snapshot(folder) == before, f"left behind: {snapshot(folder) - before}"
    return message


def expect_cli_error(argv: list[str], match: str, folder: Path, capsys) -> str:
    """``relnet <argv>`` exits 2 with one ``error:`` line matching ``match`` and no traceback; nothing left behind."""
    before = snapshot(folder)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err[-500:]}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert re.search(match, lines[0]), f"{lines[0]!r} does not match {match!r}"
    assert snapshot(folder) == before, f"left behind: {snapshot(folder) - before}"
    return lines[0]


# -- bAbI files ------------------------------------------------------------------------------------------------------

GOOD_BABI = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary?\tbathroom\t1\n"
BABI_CASES = {
    "no-id": ("Mary moved to the bathroom.\n", r":1: line must start with an integer id"),
    "negative-id": ("-1 Mary moved.\n", r":1: line must start with an integer id"),
    "first-id-not-1": ("2 Mary moved.\n", r":1: id 2 out of order, expected 1"),
    "id-gap": ("1 Mary moved.\n3 John went.\n", r":2: id 3 out of order, expected 2"),
    "question-2-fields": ("1 Mary moved.\n2 Where is Mary?\tbathroom\n", r":2: question line needs 3 TAB-separated"),
    "question-4-fields": ("1 Mary moved.\n2 Where is Mary?\tbathroom\t1\tx\n", r":2: question line needs 3"),
    "empty-question": ("1 Mary moved.\n2 \tbathroom\t1\n", r":2: empty question"),
    "empty-answer": ("1 Mary moved.\n2 Where is Mary?\t \t1\n", r":2: empty answer"),
    "support-not-int": ("1 Mary moved.\n2 Where is Mary?\tbathroom\tone\n", r":2: supporting fact ids must be int"),
    "support-unknown": ("1 Mary moved.\n2 Where is Mary?\tbathroom\t7\n", r":2: supporting fact id 7 is not"),
    "support-is-question": ("1 Mary moved.\n2 Where?\tbathroom\t1\n3 Where?\tbathroom\t2\n",
                            r":3: supporting fact id 2 is not a statement"),
    "support-other-story": ("1 Mary moved.\n2 John went.\n1 Sandra left.\n2 Where?\tkitchen\t2\n",
                            r":4: supporting fact id 2 is not"),
    "empty-statement": ("1    \n", r":1: empty statement after id 1"),
    "not-utf8": (b"1 Mary moved.\n2 Where is M\xffry?\tbathroom\t1\n", r":2: not valid UTF-8"),
}


@pytest.mark.parametrize("name", list(BABI_CASES))
def test_babi_malformed_line(tmp_path, name):
    content, match = BABI_CASES[name]
    f = tmp_path / "qa1_single-supporting-fact_train.txt"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    expect_error(lambda: parse_file(f), re.escape(str(f)) + match, tmp_path)


BABI_FILE_CASES = {
    "name-without-task": (lambda d: _write(d / "stories.txt"), r"cannot tell the bAbI task from the file name"),
    "missing-file": (lambda d: d / "qa1_x_train.txt", r"qa1_x_train.txt: cannot read bAbI file"),
    "folder-not-file": (lambda d: _mkdir(d / "qa2_x_train.txt"), r"qa2_x_train.txt: cannot read bAbI file"),
}


def _write(p: Path) -> Path:
    p.write_text(GOOD_BABI)
    return p


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


@pytest.mark.parametrize("name", list(BABI_FILE_CASES))
def test_babi_bad_file(tmp_path, name):
    make, match = BABI_FILE_CASES[name]
    path = make(tmp_path)
    expect_error(lambda: parse_file(path), match, tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.integers(0, 2), pos=st.integers(0, 60), junk=st.text(min_size=1, max_size=4))
def test_babi_random_corruption_never_crashes(tmp_path, line, pos, junk):
    """Property: inserting any text anywhere in a valid file either still parses or is a UserError naming the file
    and a line number; never another exception."""
    lines = GOOD_BABI.splitlines()
    k = min(pos, len(lines[line]))
    lines[line] = lines[line][:k] + junk + lines[line][k:]
    f = tmp_path / "qa1_single-supporting-fact_train.txt"
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))  # lone surrogates: invalid UTF-8
    try:
        parse_file(f)
    except UserError as e:
        assert "\n" not in str(e) and re.match(re.escape(str(f)) + r":\d+: ", str(e)), str(e)


# -- CLEVR JSON and images -------------------------------------------------------------------------------------------

def _q(tree: Path) -> Path:
    return tree / "questions" / "CLEVR_train_questions.json"


def _s(tree: Path) -> Path:
    return tree / "scenes" / "CLEVR_train_scenes.json"


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


CLEVR_CASES = {
    "questions-missing": (lambda t: _q(t).unlink(), r"CLEVR_train_questions.json: file not found", {}),
    "questions-truncated": (lambda t: _q(t).write_text(_q(t).read_text()[:200]), r"questions.json: line \d+: invalid JSON", {}),
    "questions-not-utf8": (lambda t: _q(t).write_bytes(b'{"questions": ["\xff"]}'), r"questions.json: not UTF-8", {}),
    "questions-top-level-list": (lambda t: _q(t).write_text("[]"), r"expected an object with a 'questions' list", {}),
    "questions-not-a-list": (lambda t: _edit(_q(t), lambda d: d.update(questions={})), r"'questions' list", {}),
    "question-not-object": (lambda t: _edit(_q(t), lambda d: d["questions"].insert(0, 3)), r"question 0: expected an object", {}),
    "question-text-missing": (lambda t: _edit(_q(t), lambda d: d["questions"][1].pop("question")),
                              r"question 1: missing field 'question'", {}),
    "image-index-string": (lambda t: _edit(_q(t), lambda d: d["questions"][0].update(image_index="0")),
                           r"question 0: field 'image_index' has the wrong type \(str\)", {}),
    "image-index-negative": (lambda t: _edit(_q(t), lambda d: d["questions"][0].update(image_index=-2)),
                             r"question 0: image_index -2 is negative", {}),
    "image-index-out-of-range": (lambda t: _edit(_q(t), lambda d: d["questions"][0].update(image_index=99)),
                                 r"question 0: image_index 99 is out of range \(3 scenes\)", {}),
    "unknown-answer": (lambda t: _edit(_q(t), lambda d: d["questions"][0].update(answer="purple-ish")),
                       r"question 0: unknown answer 'purple-ish'", {}),
    "program-unknown-function": (lambda t: _edit(_q(t), lambda d: d["questions"][0]["program"][1].update(function="teleport")),
                                 r"question 0: program node 1 has unknown function 'teleport'", {}),
    "program-empty": (lambda t: _edit(_q(t), lambda d: d["questions"][0].update(program=[])), r"question 0: empty program", {}),
    "scenes-invalid-json": (lambda t: _s(t).write_text('{"scenes": [,]}'), r"scenes.json: line 1: invalid JSON", {}),
    "scene-unknown-colour": (lambda t: _edit(_s(t), lambda d: d["scenes"][0]["objects"][0].update(color="octarine")),
                             r"unknown color 'octarine'", {}),
    "scene-out-of-order": (lambda t: _edit(_s(t), lambda d: d["scenes"][1].update(image_index=5)),
                           r"image_index is 5, expected 1", {}),
    "scene-bad-coords": (lambda t: _edit(_s(t), lambda d: d["scenes"][0]["objects"][0].update({"3d_coords": [1, 2]})),
                         r"field '3d_coords' must be 3 numbers", {}),
    "scene-no-objects": (lambda t: _edit(_s(t), lambda d: d["scenes"][2].update(objects=[])), r"0 objects, expected 1\.\.", {}),
    "scene-bad-relationship": (lambda t: _edit(_s(t), lambda d: d["scenes"][0]["relationships"]["left"][0].append(42)),
                               r"relationships\['left'\] holds an invalid object index", {}),
    "image-missing": (lambda t: (t / "images" / "train" / "CLEVR_train_000001.png").unlink(),
                      r"CLEVR_train_000001.png: image file not found", {"with_images": True}),
    "image-corrupt": (lambda t: (t / "images" / "train" / "CLEVR_train_000002.png").write_bytes(b"\x89PNG\r\n\x1a\nnope"),
                      r"CLEVR_train_000002.png: cannot read image", {"with_images": True}),
}


@pytest.mark.parametrize("name", list(CLEVR_CASES))
def test_clevr_malformed(tmp_path, name):
    tree = tmp_path / "clevr"
    shutil.copytree(FIXTURES / "clevr", tree)
    corrupt, match, kw = CLEVR_CASES[name]
    corrupt(tree)
    expect_error(lambda: load_split(tree, "train", cache_dir=tmp_path / "cache", progress=False, **kw), match, tmp_path)


# -- checkpoints -----------------------------------------------------------------------------------------------------

def tiny_soc_checkpoint(path: Path, **model_kw) -> Path:
    from relnet.tasks.sort_of_clevr.model import ModelConfig, build_model

    cfg = ModelConfig(kind="rn", cnn_channels=(4, 4, 4, 4), g_dims=(8, 8), f_dims=(8,), f_dropout=(0.0,), **model_kw)
    torch.manual_seed(0)
    save_checkpoint(path, build_model(cfg), {"task": "sort-of-clevr", "model": to_dict(cfg)})
    return path


def _cfg_edit(fn):
    def corrupt(ck: Path) -> None:
        data = json.loads((ck / "config.json").read_text())
        fn(data)
        (ck / "config.json").write_text(json.dumps(data))

    return corrupt


def _shrink_weights(ck: Path) -> None:
    data = json.loads((ck / "config.json").read_text())
    data["model"]["g_dims"] = [8, 6]
    (ck / "config.json").write_text(json.dumps(data))


CHECKPOINT_CASES = {
    "missing-folder": (lambda ck: shutil.rmtree(ck), r"does not exist or is not a folder"),
    "file-not-folder": (lambda ck: (shutil.rmtree(ck), ck.write_text("x")), r"does not exist or is not a folder"),
    "config-missing": (lambda ck: (ck / "config.json").unlink(), r"config.json is missing"),
    "config-invalid-json": (lambda ck: (ck / "config.json").write_text("{"), r"config.json: not valid JSON"),
    "config-not-utf8": (lambda ck: (ck / "config.json").write_bytes(b"\xfe\xff"), r"config.json: not valid JSON"),
    "config-is-list": (lambda ck: (ck / "config.json").write_text("[]"), r"not a relnet checkpoint \(field 'format'"),
    "wrong-format": (_cfg_edit(lambda d: d.update(format="pytorch")), r"not a relnet checkpoint \(field 'format'"),
    "wrong-version": (_cfg_edit(lambda d: d.update(version=99)), r"format version 99 is not supported"),
    "wrong-task": (_cfg_edit(lambda d: d.update(task="babi")), r"is for task 'babi', not 'sort-of-clevr'"),
    "model-field-missing": (_cfg_edit(lambda d: d.pop("model")), r"field 'model' is missing"),
    "model-unknown-kind": (_cfg_edit(lambda d: d["model"].update(kind="transformer")), r"model kind 'transformer'"),
    "model-inconsistent": (_cfg_edit(lambda d: d["model"].update(f_dropout=[0.1, 0.2, 0.3])),
                           r"field 'model' does not describe a Sort-of-CLEVR model"),
    "weights-missing": (lambda ck: (ck / "model.safetensors").unlink(), r"model.safetensors is missing"),
    "weights-truncated": (lambda ck: (ck / "model.safetensors").write_bytes((ck / "model.safetensors").read_bytes()[:100]),
                          r"model.safetensors: cannot read weights"),
    "weights-garbage": (lambda ck: (ck / "model.safetensors").write_bytes(b"\x00" * 64), r"cannot read weights"),
    "weights-wrong-shape": (_shrink_weights, r"does not fit the model: .* has shape \(\d+, \d+\), the model expects"),
    "weights-missing-tensors": (_cfg_edit(lambda d: d["model"].update(g_dims=[8, 8, 8])),
                                r"does not fit the model: missing \["),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_CASES))
def test_checkpoint_bad_via_eval_cli(tmp_path, capsys, name):
    ck = tiny_soc_checkpoint(tmp_path / "ck")
    assert main(["eval", "sort-of-clevr", "--checkpoint", str(ck), "--images", "1", "--json"]) == 0  # valid first
    capsys.readouterr()
    corrupt, match = CHECKPOINT_CASES[name]
    corrupt(ck)
    expect_cli_error(["eval", "sort-of-clevr", "--checkpoint", str(ck), "--images", "1"], match, tmp_path, capsys)


def test_checkpoint_wrong_model_via_api(tmp_path):
    """``load_weights`` into a model of another shape names the tensor and both shapes."""
    ck = tmp_path / "ck"
    save_checkpoint(ck, torch.nn.Linear(3, 2), {"task": "toy", "model": {}})
    expect_error(lambda: load_weights(ck, torch.nn.Linear(4, 2)), r"weight has shape \(2, 3\), the model expects \(2, 4\)",
                 tmp_path)
    expect_error(lambda: read_config(ck, task="babi"), r"is for task 'toy', not 'babi'", tmp_path)


# -- command-line arguments ------------------------------------------------------------------------------------------

SOC = ["train", "sort-of-clevr", "--data.train_images=20", "--data.test_images=2", "--model.g_dims=8,8",
       "--model.f_dims=8,8", "--model.cnn_channels=4,4,4,4", "--train.steps=2", "--quiet"]
CLI_CASES = {
    "no-verb": ([], r"required: <command>|the following arguments are required"),
    "unknown-verb": (["fly"], r"invalid choice: 'fly'"),
    "unknown-task": (["train", "chess"], r"invalid choice: 'chess'"),
    "unknown-option": (["eval", "sort-of-clevr", "--checkpoint", "x", "--colour=red"], r"unrecognized arguments: --colour=red"),
    "positional-junk": ([*SOC, "banana"], r"unrecognized argument 'banana'"),
    "override-without-value": ([*SOC, "--train.lr"], r"unrecognized argument '--train.lr'"),
    "override-bad-float": ([*SOC, "--train.lr=fast"], r"--train.lr=fast: expected a value of type float"),
    "override-bad-int": ([*SOC, "--train.steps=1.5"], r"--train.steps=1.5: expected a value of type int"),
    "override-bad-tuple": ([*SOC, "--model.g_dims=8,x"], r"--model.g_dims: expected a value of type int|--model.g_dims=x"),
    "override-unknown-key": ([*SOC, "--train.learning_rate=1"], r"unknown key 'learning_rate' in train; valid keys:"),
    "override-unknown-section": ([*SOC, "--optim.lr=1"], r"unknown key 'optim' in the config"),
    "override-section-as-value": ([*SOC, "--train=3"], r"'train' is a section"),
    "override-value-as-section": ([*SOC, "--train.lr.x=1"], r"'lr' is a value, not a section"),
    "bad-preset": ([*SOC, "--preset=huge"], r"invalid choice: 'huge'"),
    "bad-model": ([*SOC, "--model=transformer"], r"invalid choice: 'transformer'"),
    "negative-images": ([*SOC, "--data.train_images=-3"], r"train_images must be at least 1, got -3"),
    "negative-steps": ([*SOC, "--train.steps=-1"], r"--train.steps=-1: must not be negative"),
    "zero-batch": ([*SOC, "--train.batch_size=0"], r"--train.batch_size=0: must be at least 1"),
    "negative-log-every": ([*SOC, "--train.log_every=-5"], r"--train.log_every=-5: must not be negative"),
    "nan-lr": ([*SOC, "--train.lr=nan"], r"--train.lr=nan: must be a finite number"),
    "unknown-schedule": ([*SOC, "--train.schedule=linear"], r"--train.schedule=linear: expected constant, cosine or step"),
    "unknown-optimizer": ([*SOC, "--train.optimizer=sgd"], r"--train.optimizer=sgd: expected adam or adamw"),
    "micro-batch-not-divisor": ([*SOC, "--train.batch_size=16", "--train.micro_batch_size=5"],
                                r"--train.batch_size=16 is not a multiple of processes \(1\) x micro_batch_size \(5\)"),
    "inconsistent-model": ([*SOC, "--model.f_dims=8"], r"model config is inconsistent: dropout has 2 entries"),
    "eval-zero-images": (["eval", "sort-of-clevr", "--checkpoint", "{ck}", "--images", "0"], r"argument --images: expected a number >= 1, got 0"),
    "reproduce-zero-eval-images": (["reproduce", "sort-of-clevr", "--eval-images", "0"],
                                   r"argument --eval-images: expected a number >= 1, got 0"),
    "eval-images-not-int": (["eval", "sort-of-clevr", "--checkpoint", "{ck}", "--images", "ten"], r"argument --images: expected a whole number, got 'ten'"),
    "eval-data-and-images": (["eval", "sort-of-clevr", "--checkpoint", "{ck}", "--data", "d", "--images", "5"],
                             r"--data evaluates a stored split: leave out --images and --seed"),
    "eval-data-missing": (["eval", "sort-of-clevr", "--checkpoint", "{ck}", "--data", "no/such/dir"],
                          r"no/such/dir: no train.npz"),
    "data-kimhc-missing": (["data", "sort-of-clevr", "--from-kimhc", "no/such.pickle", "--out", "{ck}"],
                           r"no/such.pickle: cannot read kimhc6028 pickle \(No such file or directory\)"),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_arguments(tmp_path, capsys, name):
    argv, match = CLI_CASES[name]
    ck = tiny_soc_checkpoint(tmp_path / "ck")
    out = tmp_path / "run"
    argv = [a.replace("{ck}", str(ck)) for a in argv]
    if argv[:2] == ["train", "sort-of-clevr"]:
        argv += [f"--out={out}", f"--data.root={tmp_path / 'data'}"]
    # the data cache is complete output by design (a valid config would reuse it); the run folder must not appear
    data_before = snapshot(tmp_path / "data")
    expect_cli_error(argv, match, out, capsys)
    assert not out.exists(), "a run folder was created for a run that never started"
    assert all(".tmp" not in f for f in snapshot(tmp_path / "data") - data_before)


def test_cli_resume_from_corrupt_checkpoint(tmp_path, capsys):
    base = [*SOC, f"--out={tmp_path / 'run'}", f"--data.root={tmp_path / 'data'}"]
    assert main(base) == 0
    capsys.readouterr()
    (tmp_path / "run" / "checkpoint" / "trainer.safetensors").write_bytes(b"garbage")
    log_before = (tmp_path / "run" / "metrics.jsonl").read_text()
    expect_cli_error([*base, "--train.steps=4", "--resume"], r"trainer state is unreadable, cannot resume",
                     tmp_path / "run", capsys)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == log_before


@pytest.mark.parametrize("world,kw,match", [
    (2, {"batch_size": 16, "micro_batch_size": 16}, r"not a multiple of processes \(2\) x micro_batch_size \(16\)"),
    (4, {"batch_size": 2}, r"--train.batch_size=2 is not a multiple of processes \(4\)"),
    (1, {"checkpoint_every": -1}, r"--train.checkpoint_every=-1: must not be negative"),
    (1, {"clip_grad_norm": float("inf")}, r"--train.clip_grad_norm=inf: must be a finite number"),
])
def test_train_config_for_processes(tmp_path, world, kw, match):
    expect_error(lambda: validate_config(dataclasses.replace(TrainConfig(), **kw), world), match, tmp_path)


# -- showcase HTTP requests ------------------------------------------------------------------------------------------

SCENE = {"centres": [[10, 10], [30, 10], [50, 10], [10, 40], [30, 40], [50, 40]], "shapes": [0, 1, 0, 1, 0, 1]}


def _ask(**kw):
    body = {"scene": SCENE, "question": None}
    body.update(kw)
    return body


HTTP_CASES = {
    "body-not-json": ("post", "/api/ask", b"{scene:", 400, r"request body is not valid JSON"),
    "body-not-utf8": ("post", "/api/ask", b"\xff\xfe{}", 400, r"request body is not valid JSON"),
    "body-is-list": ("post", "/api/ask", b"[1, 2]", 400, r"request body must be a JSON object"),
    "body-too-large": ("post", "/api/ask", b"{\"q\": \"" + b"x" * 20000 + b"\"}", 413, r"request body too large"),
    "ask-missing-fields": ("post", "/api/ask", {}, 422, r"both fields are required: scene and question"),
    "ask-unknown-field": ("post", "/api/ask", {"scene": SCENE, "question": "x", "mode": 1}, 422, r"unknown field\(s\) mode"),
    "ask-scene-not-object": ("post", "/api/ask", _ask(scene=[1, 2]), 422, r"scene: expected an object"),
    "ask-too-few-centres": ("post", "/api/ask", _ask(scene={**SCENE, "centres": SCENE["centres"][:5]}), 422,
                            r"scene.centres: expected 6 \[x, y\] pairs"),
    "ask-centre-out-of-image": ("post", "/api/ask", _ask(scene={**SCENE, "centres": [[10, 999]] + SCENE["centres"][1:]}),
                                422, r"scene.centres\[0\]: expected \[x, y\] integers in \[5, 69\]"),
    "ask-centre-float": ("post", "/api/ask", _ask(scene={**SCENE, "centres": SCENE["centres"][:5] + [[1.5, 20]]}), 422,
                         r"scene.centres\[5\]"),
    "ask-bad-shape": ("post", "/api/ask", _ask(scene={**SCENE, "shapes": [0, 1, 2, 0, 1, 0]}), 422, r"scene.shapes"),
    "ask-unknown-question": ("post", "/api/ask", _ask(question="What is the meaning of life?"), 422,
                             r"question 'What is the meaning of life\?' is not one of the 36"),
    "ask-question-not-string": ("post", "/api/ask", _ask(question=42), 422, r"question 42 is not one of the 36"),
    "ask-question-long": ("post", "/api/ask", _ask(question="red " * 1000), 422, r"question .red red .{60,80}. is not one"),
    "scene-negative-seed": ("post", "/api/scene", {"seed": -1}, 422, r"seed: expected a non-negative integer, got -1"),
    "scene-seed-string": ("post", "/api/scene", {"seed": "7"}, 422, r"seed: expected a non-negative integer, got '7'"),
    "scene-seed-bool": ("post", "/api/scene", {"seed": True}, 422, r"seed: expected a non-negative integer, got True"),
    "unknown-route": ("get", "/api/nothing", None, 404, r"Not Found"),
    "wrong-method": ("get", "/api/ask", None, 405, r"Method Not Allowed"),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from relnet.tasks.showcase.server import PixelBackend, make_app

    ck = tiny_soc_checkpoint(tmp_path_factory.mktemp("showcase") / "ck")
    with TestClient(make_app(PixelBackend(ck)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_showcase_bad_request(client, name):
    method, url, body, status, match = HTTP_CASES[name]
    if method == "get":
        r = client.get(url)
    elif isinstance(body, bytes):
        r = client.post(url, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(url, json=body)
    assert r.status_code == status, r.text[:300]
    message = r.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    assert re.search(match, message), message
    # and the server keeps serving
    ok = client.post("/api/ask", json=_ask(question=client.get("/api/info").json()["questions"][0]))
    assert ok.status_code == 200 and ok.json()["answer"]


# -- kimhc6028's Sort-of-CLEVR pickle and Sort-of-CLEVR data folders ----------------------------------------------


def _kimhc_items(edit=None) -> bytes:
    """A valid two-image pickle in kimhc6028's 2018 layout (drawn by the test writer), ``edit`` applied to it."""
    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sort_of_clevr"))
    import kimhc_format

    rng, nrng = random.Random(0), np.random.RandomState(0)
    items = [list(kimhc_format.item("2018", rng, nrng)[0]) for _ in range(2)]
    if edit is not None:
        edit(items)
    return pickle.dumps((items, []))


class _Evil:
    def __reduce__(self):
        return (print, ("ran",))


def _pixel(items, value):
    items[1][0][3, 4] = value


def _erase(items, bgr):
    img = items[0][0]
    img[(img == np.array(bgr) / 255).all(-1)] = 1.0


def _blob(items):
    items[0][0][:, :] = 1.0  # all white, then one 3 x 3 red blob and 5 proper objects
    for c, (x, y) in enumerate([(10, 10), (30, 10), (50, 10), (10, 40), (30, 40), (50, 40)]):
        size = 1 if c == 0 else 5
        items[0][0][y - size:y + size + 1, x - size:x + size + 1] = np.array(
            [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 156, 255), (128, 128, 128), (0, 255, 255)][c]) / 255


KIMHC_CASES = {
    "garbage": (lambda: b"\x00not a pickle", r"k.pickle: not a kimhc6028 Sort-of-CLEVR pickle"),
    "truncated": (lambda: _kimhc_items()[:500], r"k.pickle: not a kimhc6028 Sort-of-CLEVR pickle"),
    "foreign-class": (lambda: pickle.dumps(([_Evil()], [])), r"it refers to builtins.print"),
    "not-a-pair": (lambda: pickle.dumps({"train": []}), r"expected a pair \(train list, test list\), got dict"),
    "empty": (lambda: pickle.dumps(([], [])), r"both splits are empty"),
    "item-layout": (lambda: _kimhc_items(lambda it: it[0].pop()), r"train item 0: expected \(img, relational"),
    "mixed-layouts": (lambda: _kimhc_items(lambda it: it[1].insert(1, it[1][1])),
                      r"train item 1: layout \(4, 18\) differs from the first item's \(3, 18\)"),
    "image-shape": (lambda: _kimhc_items(lambda it: it[1].__setitem__(0, np.ones((64, 64, 3)))),
                    r"train item 1: image has shape \(64, 64, 3\)"),
    "image-values": (lambda: _kimhc_items(lambda it: it[0].__setitem__(0, it[0][0] * 0.999)),
                     r"train item 0: image values are not 8-bit colours divided by 255"),
    "question-bits": (lambda: _kimhc_items(lambda it: it[0][1][0][3].__setitem__(1, 1)),
                      r"train item 0: each question needs one colour bit"),
    "answers-count": (lambda: _kimhc_items(lambda it: it[0][2][1].pop()),
                      r"train item 0: question block 1 has questions \(10, 18\) and answers \(9,\)"),
    "answer-range": (lambda: _kimhc_items(lambda it: it[1][1][1].__setitem__(0, 12)),
                     r"train answers must be class indices 0..9"),
    "foreign-colour": (lambda: _kimhc_items(lambda it: _pixel(it, 10 / 255)),
                       r"train image 1: pixel \(row 3, column 4\) is neither white nor one of the 6 colours"),
    "missing-colour": (lambda: _kimhc_items(lambda it: _erase(it, (0, 255, 255))), r"train image 0: no yellow object"),
    "odd-shape": (lambda: _kimhc_items(_blob), r"train image 0: the red pixels are not a 5 px square or circle"),
}


@pytest.mark.parametrize("name", list(KIMHC_CASES))
def test_kimhc_pickle_bad_via_data_cli(tmp_path, capsys, name):
    make, match = KIMHC_CASES[name]
    path = tmp_path / "k.pickle"
    path.write_bytes(make())
    expect_cli_error(["data", "sort-of-clevr", "--from-kimhc", str(path), "--out", str(tmp_path / "data")], match,
                     tmp_path, capsys)


def _folder(tmp_path: Path, edit=None) -> Path:
    from relnet.tasks.sort_of_clevr import data as soc

    params = soc.SortOfClevrParams(train_images=2, test_images=1)
    folder = soc.write_folder(tmp_path / "folder", {s: soc.generate_split(params, s) for s in soc.SPLITS}, {})
    if edit is not None:
        edit(folder)
    return folder


def _npz_edit(fn):
    def edit(folder: Path) -> None:
        with np.load(folder / "test.npz") as z:
            arrays = dict(z)
        fn(arrays)
        np.savez(folder / "test.npz", **arrays)

    return edit


FOLDER_CASES = {
    "no-train": (lambda f: (f / "train.npz").unlink(), r"folder: no train.npz"),
    "garbage": (lambda f: (f / "test.npz").write_bytes(b"junk"), r"test.npz: unreadable Sort-of-CLEVR split"),
    "missing-field": (_npz_edit(lambda a: a.pop("centres")), r"test.npz: not a Sort-of-CLEVR split: no field 'centres'"),
    "answers-shape": (_npz_edit(lambda a: a.__setitem__("answers", a["answers"][:, :5])),
                      r"test.npz: field 'answers' has shape \(1, 5\), expected \(1, 20\)"),
    "answer-range": (_npz_edit(lambda a: a.__setitem__("answers", a["answers"] + 10)),
                     r"test.npz: field 'answers' must hold class indices 0..9"),
    "question-bits": (_npz_edit(lambda a: a["questions"].__setitem__((0, 0, 1), 1)),
                      r"test.npz: field 'questions': each question needs one colour bit"),
    "images-size": (_npz_edit(lambda a: a.__setitem__("images", a["images"][:, :64, :64])),
                    r"test.npz: images are 64 px; relnet's Sort-of-CLEVR models read 75 x 75"),
    "images-dtype": (_npz_edit(lambda a: a.__setitem__("images", a["images"].astype(np.float32))),
                     r"test.npz: field 'images' must be square uint8 RGB"),
}


@pytest.mark.parametrize("name", list(FOLDER_CASES))
def test_data_folder_bad_via_eval_cli(tmp_path, capsys, name):
    ck = tiny_soc_checkpoint(tmp_path / "ck")
    folder = _folder(tmp_path)
    assert main(["eval", "sort-of-clevr", "--checkpoint", str(ck), "--data", str(folder), "--json"]) == 0
    capsys.readouterr()
    edit, match = FOLDER_CASES[name]
    edit(folder)
    expect_cli_error(["eval", "sort-of-clevr", "--checkpoint", str(ck), "--data", str(folder)], match, tmp_path,
                     capsys)


# -- the count the README quotes -------------------------------------------------------------------------------------

CASE_COUNT = (len(BABI_CASES) + len(BABI_FILE_CASES) + 1 + len(CLEVR_CASES) + len(CHECKPOINT_CASES) + 1
              + len(CLI_CASES) + 1 + 4 + len(HTTP_CASES) + len(KIMHC_CASES) + len(FOLDER_CASES))


def test_case_count():
    """The README's reliability section quotes this number (hypothesis cases count once)."""
    assert CASE_COUNT >= 50
    print(f"bad-input cases: {CASE_COUNT}")

