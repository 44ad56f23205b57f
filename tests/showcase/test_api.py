"""The showcase server's API in-process (Starlette TestClient): answers, grid, and 4xx on bad input."""

from __future__ import annotations

import warnings

import pytest

from relnet.cli import main
from showcase_checker import check

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient notes that it will move to httpx2
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(tiny_checkpoint):
    from relnet.tasks.showcase.server import load_backend, make_app

    return TestClient(make_app(load_backend(tiny_checkpoint)))


@pytest.fixture(scope="module")
def pixel_client(pixel_checkpoint):
    from relnet.tasks.showcase.server import load_backend, make_app

    return TestClient(make_app(load_backend(pixel_checkpoint)))


def test_page_and_static_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<svg id=\"scene\"" in r.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_scene_and_ask(client):
    info = client.get("/api/info").json()
    assert info["mode"] == "scene" and len(info["questions"]) == 4
    scene = client.post("/api/scene", json={"seed": 3}).json()
    assert scene == client.post("/api/scene", json={"seed": 3}).json()  # a seed gives the same scene
    assert scene["questions"][:4] == info["questions"] and len(scene["questions"]) == 8
    for q in scene["questions"]:
        r = client.post("/api/ask", json={"scene": {"objects": scene["objects"]}, "question": q})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["question"] == q and out["correct"] == check(scene["objects"], q)
        assert 0 < out["probability"] <= 1 and out["answer"] == out["top"][0]["answer"]
        grid = out["grid"]
        assert len(grid) == 6 and all(len(row) == 6 for row in grid)
        assert all((grid[i][j] is None) == (i == j) for i in range(6) for j in range(6))
        ref = scene["objects"][out["referent"]]
        assert q.endswith(f"the {ref['color']} {ref['shape']}?")


def test_grid_is_the_relation_norms(client, tiny_checkpoint):
    """The grid equals ||g(o_i, o_j, q)|| computed here through the unfactorised g of the model's RN."""
    import torch

    from relnet.tasks.showcase import data
    from relnet.tasks.showcase.task import load_model

    scene = client.post("/api/scene", json={"seed": 9}).json()
    q = scene["questions"][1]
    grid = client.post("/api/ask", json={"scene": scene, "question": q}).json()["grid"]
    model, _ = load_model(tiny_checkpoint)
    s = data.Scene.from_list(scene["objects"])
    objects, qv = model.encode(*data.encode([s], [data.parse_question(q)]))
    rn = model.head
    for i in range(6):
        for j in range(6):
            if i != j:
                g = rn.g_rest(torch.relu(rn.g_in(torch.cat([objects[0, i], objects[0, j], qv[0]]))))
                assert grid[i][j] == pytest.approx(float(g.detach().norm()), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b'{"question": "What color is the object left of the blue circle?"}', 422, "required"),
    (b'{"scene": {}, "question": "x", "extra": 1}', 422, "unknown field"),
    (b'{"scene": {"objects": []}, "question": "x"}', 422, "expected a list of 6"),
    (b'{"scene": 5, "question": "x"}', 422, "expected an object"),
])
def test_malformed_ask_requests_get_4xx(client, body, status, message):
    r = client.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status and message in r.json()["error"]


def test_bad_fields_and_questions_get_422(client):
    scene = client.post("/api/scene", json={"seed": 1}).json()
    objs = scene["objects"]
    bad = [dict(o) for o in objs]
    bad[3]["y"] = "top"
    r = client.post("/api/ask", json={"scene": {"objects": bad}, "question": scene["questions"][0]})
    assert r.status_code == 422 and "scene.objects[3].y" in r.json()["error"]
    absent = next(f"{c} {s}" for c in ("red", "green", "blue", "yellow", "orange", "purple")
                  for s in ("circle", "square", "triangle")
                  if not any(o["color"] == c and o["shape"] == s for o in objs))
    r = client.post("/api/ask", json={"scene": scene, "question": f"Is there an object above the {absent}?"})
    assert r.status_code == 422 and f"no {absent}" in r.json()["error"]
    r = client.post("/api/ask", json={"scene": scene, "question": "Why is the sky blue?"})
    assert r.status_code == 422 and "supported forms" in r.json()["error"]
    for seed in (-1, "7", 1.5, True):
        r = client.post("/api/scene", json={"seed": seed})
        assert r.status_code == 422 and "seed" in r.json()["error"]


def test_oversized_requests_get_413_and_the_server_keeps_serving(client):
    big = b'{"question": "' + b"a" * 20_000 + b'"}'
    r = client.post("/api/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 1024

    r = client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/api/info").status_code == 200


def test_unknown_routes_and_methods(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert client.get("/api/ask").status_code == 405
    assert client.get("/static/../server.py").status_code == 404


def test_pixel_backend(pixel_client):
    from relnet.tasks.sort_of_clevr import data as soc

    info = pixel_client.get("/api/info").json()
    assert info["mode"] == "pixels" and len(info["forms"]) == 36
    scene = pixel_client.post("/api/scene", json={"seed": 2}).json()
    assert scene["image"].startswith("data:image/png;base64,")
    for q in scene["questions"]:
        out = pixel_client.post("/api/ask", json={"scene": scene, "question": q}).json()
        grid = out["grid"]
        assert len(grid) == 25 and all(len(row) == 25 for row in grid)
        qv = next(soc.encode_question(c, s) for c in range(6) for s in range(6)
                  if soc.describe_question(soc.encode_question(c, s)) == q)
        truth = soc.answer_questions([scene["centres"]], [scene["shapes"]], qv[None, None])[0, 0]
        assert out["correct"] == soc.ANSWERS[int(truth)]
    moved = dict(scene, centres=[[70, 5]] + scene["centres"][1:])
    r = pixel_client.post("/api/ask", json={"scene": moved, "question": scene["questions"][0]})
    assert r.status_code == 422 and "scene.centres[0]" in r.json()["error"]
    r = pixel_client.post("/api/ask", json={"scene": scene, "question": "What shape is the pink object?"})
    assert r.status_code == 422 and "36 Sort-of-CLEVR questions" in r.json()["error"]


def test_keypoint_pixel_backend(keypoint_checkpoint):
    """A keypoint model: 6 objects, and each answer says where its keypoints sit in the image."""
    from relnet.tasks.showcase.server import load_backend, make_app

    client = TestClient(make_app(load_backend(keypoint_checkpoint)))
    info = client.get("/api/info").json()
    assert info["objects"] == "keypoints" and info["num_objects"] == 6 and info["cells"] is None
    scene = client.post("/api/scene", json={"seed": 3}).json()
    out = client.post("/api/ask", json={"scene": scene, "question": scene["questions"][1]}).json()
    assert len(out["grid"]) == 6 and all(len(row) == 6 for row in out["grid"])
    points = out["points"]
    assert len(points) == 6 and all(0 <= v <= 74 for p in points for v in p)


def test_cli_errors(tiny_checkpoint, tmp_path, capsys):
    assert main(["showcase", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["showcase", "--checkpoint", str(tiny_checkpoint), "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
