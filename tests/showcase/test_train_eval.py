"""Training and evaluation commands end to end (tiny configs), a tiny overfit, and the shipped checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from relnet.cli import main
from relnet.tasks.showcase import data
from relnet.tasks.showcase.model import ModelConfig, build_model
from relnet.tasks.showcase.task import examples, make_batch

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "showcase" / "rn"
TINY = ["--model.g_dims=16,16", "--model.f_dims=16", "--model.hidden_dim=16", "--model.embed_dim=8",
        "--data.eval_scenes=4", "--train.eval_every=3", "--train.log_every=1", "--train.batch_size=8"]


def test_train_then_eval_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "showcase", "--quiet", "--out", str(out), "--train.steps=3", *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and set(summary["eval"]) >= {"accuracy", "family_relate", "family_exist"}
    ckpt = out / "checkpoint"
    assert (ckpt / "model.safetensors").is_file() and json.loads((ckpt / "config.json").read_text())["task"] == "showcase"
    assert main(["eval", "showcase", "--checkpoint", str(ckpt), "--scenes", "3", "--seed", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "showcase" and result["n"] == 24
    assert set(result["by_family"]) == set(data.FAMILIES) and 0 <= result["accuracy"] <= 1
    assert main(["eval", "showcase", "--checkpoint", str(ckpt), "--scenes", "0"]) == 2
    assert "--scenes 0" in capsys.readouterr().err
    assert main(["eval", "showcase", "--checkpoint", str(tmp_path)]) == 2  # a folder without config.json
    assert "config.json is missing" in capsys.readouterr().err
    assert main(["train", "showcase", "--train.nope=1"]) == 2
    assert "unknown key 'nope'" in capsys.readouterr().err


def test_tiny_overfit():
    """16 questions memorised by a small RN within 150 steps: gradients reach every part."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(embed_dim=16, hidden_dim=32, g_dims=(48, 48), f_dims=(48,)))
    inputs, y = make_batch(*examples(3, "train", 2, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(*inputs), y).backward()
        opt.step()
    assert (model(*inputs).argmax(-1) == y).float().mean() >= 0.95


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped checkpoint")
def test_shipped_checkpoint_is_accurate(capsys):
    """The shipped RN on 100 fresh scenes (800 questions; the full report uses 1000 scenes)."""
    assert main(["eval", "showcase", "--checkpoint", str(SHIPPED), "--scenes", "100", "--seed", "77", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] >= 0.95, result
