"""Typed config overrides; checkpoint folders: atomic writes, strict loading, one-line errors."""

import dataclasses
import json

import pytest
import torch

from relnet import RelationNetwork
from relnet.checkpoint import atomic_dir, load_weights, read_config, save_checkpoint
from relnet.errors import UserError
from relnet.train.config import TrainConfig, apply_overrides, from_dict, to_dict


@dataclasses.dataclass
class ModelCfg:
    g_dims: tuple[int, ...] = (256, 256)
    dropout: float = 0.0
    reverse: bool = False


@dataclasses.dataclass
class RunCfg:
    model: ModelCfg = dataclasses.field(default_factory=ModelCfg)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def test_overrides_are_typed():
    cfg = apply_overrides(RunCfg(), ["--train.lr=3e-4", "--model.g_dims=64,32", "--model.reverse=true",
                                     "--train.steps=7"])
    assert cfg.train.lr == 3e-4 and cfg.model.g_dims == (64, 32) and cfg.model.reverse is True
    assert cfg.train.steps == 7
    assert RunCfg().train.lr == 1e-4  # defaults untouched


@pytest.mark.parametrize("bad,match", [
    ("--train.lrr=1", "unknown key 'lrr'"),
    ("--train.steps=ten", "expected a value of type int"),
    ("--train=3", "is a section"),
    ("--model.reverse=maybe", "bool"),
    ("train.lr=1", "overrides look like"),
])
def test_bad_overrides(bad, match):
    with pytest.raises(UserError, match=match):
        apply_overrides(RunCfg(), [bad])


def test_config_round_trip():
    cfg = apply_overrides(RunCfg(), ["--model.g_dims=8,8"])
    again = from_dict(RunCfg, json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg


def small_rn(width=8):
    torch.manual_seed(0)
    return RelationNetwork(object_dim=3, g_dims=(width,), f_dims=(4,), out_dim=2)


def test_checkpoint_round_trip(tmp_path):
    rn = small_rn()
    save_checkpoint(tmp_path / "ck", rn, {"task": "toy", "model": {"width": 8}})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.safetensors"]
    cfg = read_config(tmp_path / "ck", task="toy")
    other = small_rn()
    torch.nn.init.zeros_(other.g_in.weight)
    load_weights(tmp_path / "ck", other)
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(other(x), rn(x))
    assert cfg["model"] == {"width": 8}


def test_checkpoint_errors_are_one_line(tmp_path):
    save_checkpoint(tmp_path / "ck", small_rn(), {"task": "toy", "model": {}})
    with pytest.raises(UserError, match="is for task 'toy', not 'babi'"):
        read_config(tmp_path / "ck", task="babi")
    with pytest.raises(UserError, match="does not fit the model"):
        load_weights(tmp_path / "ck", small_rn(width=16))
    with pytest.raises(UserError, match="does not exist"):
        read_config(tmp_path / "nope")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read weights"):
        load_weights(tmp_path / "ck", small_rn())
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_config(tmp_path / "ck")


def test_atomic_dir_keeps_old_on_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "a.txt").write_text("partial")
            raise RuntimeError("crash mid-write")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folders left behind
