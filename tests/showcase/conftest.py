"""Fixtures: tiny saved checkpoints (untrained, so they cost nothing) and a live server in a thread."""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # showcase_checker, under pytest's importlib mode
    sys.path.insert(0, str(Path(__file__).resolve().parent))


import socket
import threading
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "checkpoints" / "showcase" / "rn"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained showcase model saved as a real checkpoint folder."""
    from relnet.checkpoint import save_checkpoint
    from relnet.tasks.showcase.model import ModelConfig, RunConfig
    from relnet.tasks.showcase.task import ShowcaseTask

    cfg = RunConfig(model=ModelConfig(embed_dim=8, hidden_dim=16, g_dims=(16, 16), f_dims=(16,)))
    cfg.data.eval_scenes = 0
    task = ShowcaseTask(cfg)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "showcase"
    save_checkpoint(path, task.build_model(), task.checkpoint_config())
    return path


@pytest.fixture(scope="session")
def pixel_checkpoint(tmp_path_factory) -> Path:
    """An untrained Sort-of-CLEVR CNN+RN (tiny widths) saved as a real checkpoint folder."""
    from relnet.tasks.sort_of_clevr.model import ModelConfig

    cfg = ModelConfig(kind="rn", cnn_channels=(8, 8, 8, 8), g_dims=(16, 16), f_dims=(16,), f_dropout=(0.0,))
    return _save_soc(tmp_path_factory, cfg)


@pytest.fixture(scope="session")
def keypoint_checkpoint(tmp_path_factory) -> Path:
    """An untrained Sort-of-CLEVR keypoint CNN+RN (6 keypoints, pair distances) as a real checkpoint folder."""
    from relnet.tasks.sort_of_clevr.model import ModelConfig

    cfg = ModelConfig(kind="rn", cnn_objects="keypoints", cnn_channels=(8, 8, 8), keypoints=6, pair_distance=True,
                      keypoint_standardize=True, g_dims=(16, 16), f_dims=(16,), f_dropout=(0.0,))
    return _save_soc(tmp_path_factory, cfg)


def _save_soc(tmp_path_factory, cfg) -> Path:
    from relnet.checkpoint import save_checkpoint
    from relnet.tasks.sort_of_clevr import data as soc
    from relnet.tasks.sort_of_clevr.model import build_model
    from relnet.train.config import to_dict

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "soc"
    save_checkpoint(path, build_model(cfg), {"task": "sort-of-clevr", "model": to_dict(cfg),
                                              "answers": list(soc.ANSWERS)})
    return path


class LiveServer:
    def __init__(self, checkpoint: Path) -> None:
        import uvicorn

        from relnet.tasks.showcase.server import load_backend, make_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(make_app(load_backend(checkpoint)), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the showcase server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_scene_server(tiny_checkpoint):
    """The server over the shipped checkpoint when present (so answers are a trained RN's), else the tiny one."""
    srv = LiveServer(SHIPPED if (SHIPPED / "model.safetensors").is_file() else tiny_checkpoint)
    srv.trained = (SHIPPED / "model.safetensors").is_file()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def live_pixel_server(pixel_checkpoint):
    srv = LiveServer(pixel_checkpoint)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def live_keypoint_server(keypoint_checkpoint):
    srv = LiveServer(keypoint_checkpoint)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine two threads stall each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
