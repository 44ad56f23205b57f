"""Device selection and moving batches: RELNET_DEVICE, the torchrun GPU-count check, to_device on nested batches."""

import pytest
import torch

from relnet.errors import UserError
from relnet.train.device import model_device, to_device, use_cuda
from relnet.train.loop import init_distributed


def test_relnet_device_env_is_checked(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RELNET_DEVICE", "cpu")
    assert not use_cuda()
    assert init_distributed().device.type == "cpu"
    monkeypatch.setenv("RELNET_DEVICE", "gpu0")
    with pytest.raises(UserError, match="auto, cpu or cuda"):
        init_distributed()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("RELNET_DEVICE", "cuda")
    with pytest.raises(UserError, match="no GPU"):
        init_distributed()
    monkeypatch.setenv("RELNET_DEVICE", "auto")
    assert not use_cuda()


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    """torchrun process 1 of a node with one GPU: a one-line error before any CUDA call (checked with a fake GPU)."""
    monkeypatch.setenv("RELNET_DEVICE", "auto")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match="nproc_per_node"):
        init_distributed()


def test_to_device_moves_nested_tensors_and_keeps_the_rest():
    batch = {"a": torch.ones(2), "b": (torch.zeros(1), [torch.ones(3), 7]), "c": "text"}
    out = to_device(batch, torch.device("meta"))
    assert out["a"].device.type == "meta" and out["b"][0].device.type == "meta"
    assert out["b"][1][0].device.type == "meta" and out["b"][1][1] == 7 and out["c"] == "text"
    assert isinstance(out["b"], tuple) and isinstance(out["b"][1], list)
    assert model_device(torch.nn.Linear(2, 2)).type == "cpu"
    assert model_device(torch.nn.BatchNorm1d(2, affine=False)).type == "cpu"  # buffers only
