"""``--train.init_from``: a run starts from another run's (or a shipped) checkpoint's weights, with a fresh optimiser
and schedule; a checkpoint of another task or architecture is a one-line error, and ``--resume`` takes precedence."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_task import TinyTask, run, tiny_config

from relnet.checkpoint import write_json_atomic
from relnet.errors import UserError
from relnet.train.loop import train


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "run"
    run(str(out))
    return out / "checkpoint"


def test_starts_from_the_checkpoint_weights(tmp_path, source):
    # lr 0 and no weight decay: the parameters never move, so the run ends exactly where the source did (BatchNorm's
    # running statistics do move: they are not parameters)
    r = run(str(tmp_path / "b"), lr=0.0, weight_decay=0.0, schedule="constant", warmup_steps=0, steps=4,
            init_from=str(source))
    got = load_file(str(tmp_path / "b" / "checkpoint" / "model.safetensors"))
    want = load_file(str(source / "model.safetensors"))
    assert got.keys() == want.keys()
    params = [k for k in want if not k.startswith("norm.")]
    assert all(torch.equal(got[k], want[k]) for k in params)
    assert not torch.equal(got["norm.num_batches_tracked"], want["norm.num_batches_tracked"])
    assert r.step == 4


def test_changes_the_starting_point(tmp_path, source):
    run(str(tmp_path / "scratch"), steps=4)
    run(str(tmp_path / "init"), steps=4, init_from=str(source))
    a = load_file(str(tmp_path / "scratch" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "init" / "checkpoint" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_other_architecture_is_a_clear_error(tmp_path, source):
    with pytest.raises(UserError, match="does not fit the model"):
        train(TinyTask(hidden=8), tiny_config(init_from=str(source)), tmp_path / "b", progress=False)


def test_other_task_is_a_clear_error(tmp_path, source):
    cfg = json.loads((source / "config.json").read_text())
    cfg["task"] = "sort-of-clevr"
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    write_json_atomic(other / "config.json", cfg)
    with pytest.raises(UserError, match="is for task 'sort-of-clevr', not 'tiny'"):
        run(str(tmp_path / "b"), init_from=str(other))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run(str(tmp_path / "b"), init_from=str(tmp_path / "nowhere"))


def test_resume_takes_precedence(tmp_path, source):
    out = tmp_path / "b"
    train(TinyTask(), tiny_config(), out, progress=False, stop_after=10)
    before = load_file(str(out / "checkpoint" / "model.safetensors"))
    # resumed at step 10 from its own checkpoint, not re-initialised from the source: 0 more steps change nothing
    r = train(TinyTask(), tiny_config(steps=10, init_from=str(source)), out, resume=True, progress=False)
    assert r.step == 10
    after = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_init_only_takes_just_the_named_part(tmp_path, source):
    # a model with a wider RN: only the input BatchNorm ("norm.") fits; it starts from the source's, the RN does not
    out = tmp_path / "b"
    train(TinyTask(hidden=8), tiny_config(lr=0.0, weight_decay=0.0, steps=1, init_from=str(source),
                                          init_only=("norm.",)), out, progress=False)
    got = load_file(str(out / "checkpoint" / "model.safetensors"))
    want = load_file(str(source / "model.safetensors"))
    assert torch.equal(got["norm.weight"], want["norm.weight"]) and torch.equal(got["norm.bias"], want["norm.bias"])
    assert got["rn.g_in.weight"].shape != want["rn.g_in.weight"].shape


def test_init_only_with_a_prefix_that_names_nothing_is_a_clear_error(tmp_path, source):
    with pytest.raises(UserError, match=r"no tensor named cnn\.\* in the file"):
        run(str(tmp_path / "b"), init_from=str(source), init_only=("cnn.",))


def test_init_only_needs_init_from(tmp_path):
    with pytest.raises(UserError, match="init_only=norm. needs --train.init_from"):
        run(str(tmp_path / "b"), init_only=("norm.",))
