"""The showcase web app: one static page plus a small JSON API over a trained RN (Starlette + uvicorn).

The server is stateless: the page holds the scene and sends it with every question, so dragging an object is
just another ``/api/ask``. Two backends, chosen by the checkpoint's ``task``:

* ``showcase`` (``SceneBackend``): 6 coloured shapes at continuous positions, English questions parsed against the
  grammar of ``data.py``, a 6 x 6 grid of ``||g(o_i, o_j, q)||``.
* ``sort-of-clevr`` (``PixelBackend``, CNN+RN checkpoints): the 75 x 75 image rendered from the scene, the 36
  questions of the 11-bit encoding, and the 25 x 25 grid over CNN cells (cells as objects).

API (all JSON; errors are ``{"error": message}`` with a 4xx status, and the server keeps serving):

    GET  /api/info                    mode, seed questions, supported forms, colours, grid size
    POST /api/scene  {"seed"?: int}   a fresh random scene (+ questions about it)
    POST /api/ask    {"scene": ..., "question": str}
         -> question (canonical), family, answer, probability, correct, top answers, grid (n x n, diagonal and
            unused pairs null), strong pairs; pixel mode adds the re-rendered image.

Limits: request bodies over ``MAX_BODY`` bytes get 413, bodies that are not a JSON object 400, well-formed
requests with bad fields 422 (the message names the field).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from relnet.checkpoint import read_config
from relnet.errors import UserError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 16 * 1024  # bytes; a scene and a question take well under 1 KB


def _grid(norms: torch.Tensor, valid: torch.Tensor) -> list[list[float | None]]:
    """``(N, N)`` norms -> nested lists, ``None`` where g is not evaluated (the diagonal without self-pairs)."""
    return [[float(v) if ok else None for v, ok in zip(row, vrow)] for row, vrow in zip(norms.tolist(), valid.tolist())]


def _top(probs: torch.Tensor, names: list[str], k: int = 3) -> list[dict[str, Any]]:
    p, idx = probs.topk(k)
    return [{"answer": names[int(i)], "probability": float(v)} for v, i in zip(p, idx)]


class SceneBackend:
    """Showcase checkpoints: scenes of coloured shapes and English questions."""

    mode = "scene"

    def __init__(self, path: str | Path) -> None:
        from relnet.tasks.showcase.task import load_model

        self.model, self.config = load_model(path)

    def info(self) -> dict[str, Any]:
        from relnet.tasks.showcase import data

        return {"mode": self.mode, "task": "showcase", "questions": list(data.SEED_QUESTIONS), "forms": list(data.FORMS),
                "colors": data.COLOR_RGB, "shapes": list(data.SHAPES), "num_objects": data.NUM_OBJECTS,
                "families": list(data.FAMILIES)}

    def new_scene(self, seed: int) -> dict[str, Any]:
        from relnet.tasks.showcase import data

        rng = np.random.default_rng(seed)
        # The seed questions' referents are always present, so all four can be asked of every new scene.
        include = [(q.color, q.shape) for q in map(data.parse_question, data.SEED_QUESTIONS)]
        scene = data.random_scene(rng, include=include)
        extra = [data.random_question(rng, scene, f).text for f in data.FAMILIES]
        return {"seed": seed, "objects": scene.to_list(), "questions": list(data.SEED_QUESTIONS) + extra}

    def ask(self, scene_json: Any, text: Any) -> dict[str, Any]:
        from relnet.tasks.showcase import data

        if not isinstance(scene_json, dict):
            raise UserError("scene: expected an object {\"objects\": [...]}")
        scene = data.Scene.from_list(scene_json.get("objects"), where="scene.objects")
        q = data.parse_question(text)
        correct = data.answer(scene, q)  # also checks that the referent is in the scene
        inputs = data.encode([scene], [q])
        with torch.no_grad():
            objects, qv = self.model.encode(*inputs)
            probs = self.model.head(objects, qv).softmax(-1)[0]  # (C,)
            rel, valid = self.model.head.relations(objects, qv)  # (1, N, N, G), (1, N, N)
        norms = rel[0].norm(dim=-1)  # (N, N)
        k = int(probs.argmax())
        return {"question": q.text, "family": q.family, "referent": scene.find(q.color, q.shape),
                "answer": data.ANSWERS[k], "probability": float(probs[k]), "correct": correct,
                "top": _top(probs, list(data.ANSWERS)), "grid": _grid(norms, valid[0])}


class PixelBackend:
    """Sort-of-CLEVR CNN+RN checkpoints: the rendered image, 11-bit questions, and as objects either the CNN's 25
    grid cells or its K learned keypoints (``--model.cnn_objects=keypoints``; each answer then carries the
    keypoints' pixel positions, ``points``, so the page draws the pairs between them)."""

    mode = "pixels"

    def __init__(self, path: str | Path) -> None:
        from relnet.tasks.sort_of_clevr.task import load_model

        self.model, self.config = load_model(path)
        if self.config["model"].get("kind") != "rn":
            raise UserError(f"checkpoint {path}: a Sort-of-CLEVR {self.config['model'].get('kind')!r} model; the "
                            "showcase needs a pixel RN (kind 'rn') to show pair relations")
        from relnet.tasks.sort_of_clevr import data as soc

        self.soc = soc
        self.keypoints = self.config["model"].get("cnn_objects", "grid") == "keypoints"
        self.num_objects = self.model.cnn.num_keypoints if self.keypoints else self.model.grid ** 2
        self.texts = {soc.describe_question(soc.encode_question(c, s)): (c, s)
                      for s in range(len(soc.SUBTYPE_NAMES)) for c in range(soc.NUM_OBJECTS)}
        self.lookup = {self._norm(t): t for t in self.texts}

    @staticmethod
    def _norm(text: str) -> str:
        return " ".join(text.lower().replace("?", " ").replace("colour", "color").split())

    def info(self) -> dict[str, Any]:
        soc = self.soc
        return {"mode": self.mode, "task": "sort-of-clevr", "questions": self.seed_questions(),
                "forms": list(self.texts), "colors": {n: "#%02x%02x%02x" % tuple(int(v) for v in rgb)
                                                      for n, rgb in zip(soc.COLOR_NAMES, soc.COLORS)},
                "shapes": list(soc.SHAPE_NAMES), "num_objects": self.num_objects, "image_size": 75,
                "objects": "keypoints" if self.keypoints else "cells",
                "cells": None if self.keypoints else self.model.grid}

    def seed_questions(self) -> list[str]:
        soc = self.soc
        picks = [(2, 3), (1, 4), (0, 5), (5, 0), (3, 1), (4, 2)]  # (colour, subtype): one question of each subtype
        return [soc.describe_question(soc.encode_question(c, s)) for c, s in picks]

    def new_scene(self, seed: int) -> dict[str, Any]:
        soc = self.soc
        params = soc.SortOfClevrParams(train_images=1, test_images=1, seed=int(seed))
        arrays = soc.generate_split(params, "test")
        centres, shapes = arrays["centres"][0], arrays["shapes"][0]
        return {"seed": seed, "centres": centres.tolist(), "shapes": shapes.tolist(),
                "colors": list(soc.COLOR_NAMES), "questions": self.seed_questions(),
                "image": self._png(arrays["images"][0])}

    @staticmethod
    def _png(image: np.ndarray) -> str:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    def _scene(self, scene_json: Any) -> tuple[np.ndarray, np.ndarray]:
        soc = self.soc
        if not isinstance(scene_json, dict):
            raise UserError("scene: expected an object {\"centres\": [...], \"shapes\": [...]}")
        centres, shapes = scene_json.get("centres"), scene_json.get("shapes")
        lo, hi = 5, 75 - 1 - 5
        if not isinstance(centres, list) or len(centres) != soc.NUM_OBJECTS:
            raise UserError(f"scene.centres: expected {soc.NUM_OBJECTS} [x, y] pairs")
        for k, c in enumerate(centres):
            if (not isinstance(c, list) or len(c) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in c)):
                raise UserError(f"scene.centres[{k}]: expected [x, y] integers in [{lo}, {hi}], got {c!r}")
        if (not isinstance(shapes, list) or len(shapes) != soc.NUM_OBJECTS
                or not all(v in (0, 1) and not isinstance(v, bool) for v in shapes)):
            raise UserError(f"scene.shapes: expected {soc.NUM_OBJECTS} values, each 0 (square) or 1 (circle)")
        return np.array(centres, dtype=np.int64), np.array(shapes, dtype=np.uint8)

    def ask(self, scene_json: Any, text: Any) -> dict[str, Any]:
        soc = self.soc
        centres, shapes = self._scene(scene_json)
        if not isinstance(text, str) or len(text) > 200 or self._norm(text) not in self.lookup:
            shown = text[:80] if isinstance(text, str) else text
            raise UserError(f"question {shown!r} is not one of the 36 Sort-of-CLEVR questions, e.g. "
                            f"{self.seed_questions()[0]!r} (colours: {', '.join(soc.COLOR_NAMES)})")
        canonical = self.lookup[self._norm(text)]
        color, subtype = self.texts[canonical]
        qvec = soc.encode_question(color, subtype)
        image = soc.render_images(centres[None], shapes[None])[0]  # (75, 75, 3)
        correct = soc.answer_questions(centres[None], shapes[None], qvec[None, None])[0, 0]
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, 75, 75)
        q = torch.from_numpy(qvec)[None].float()  # (1, 11)
        with torch.no_grad():
            objects = self.model.objects(x)  # (1, 25, D)
            mask = self.model.object_mask(x)  # (1, 25) or None (mask_background off)
            probs = self.model.head(objects, q, mask).softmax(-1)[0]
            rel, valid = self.model.head.relations(objects, q, mask)
        norms = rel[0].norm(dim=-1)
        k = int(probs.argmax())
        out = {"question": canonical, "family": soc.SUBTYPE_NAMES[subtype], "referent": color,
               "answer": soc.ANSWERS[k], "probability": float(probs[k]), "correct": soc.ANSWERS[int(correct)],
               "top": _top(probs, list(soc.ANSWERS)), "grid": _grid(norms, valid[0]), "image": self._png(image)}
        if self.keypoints:  # where each keypoint object sits, in image pixels (x = column, y = row)
            points = self.model.cnn.pixel_positions(objects, tuple(image.shape[:2]))[0]
            out["points"] = [[round(float(x), 2), round(float(y), 2)] for x, y in points]
        return out


def load_backend(path: str | Path) -> SceneBackend | PixelBackend:
    """The backend for a checkpoint folder: a showcase checkpoint or a Sort-of-CLEVR pixel RN."""
    task = read_config(path).get("task")
    if task == "showcase":
        return SceneBackend(path)
    if task == "sort-of-clevr":
        return PixelBackend(path)
    raise UserError(f"checkpoint {path} is for task {task!r}; the showcase takes 'showcase' or 'sort-of-clevr'")


# ------------------------------------------------------------------------------------------------------------ app


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_json(request) -> dict[str, Any]:
    """The request body as a JSON object, enforcing ``MAX_BODY`` while reading (not only via Content-Length)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise _BadRequest(413, f"request body too large: at most {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _BadRequest(413, f"request body too large: at most {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _BadRequest(400, f"request body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, "request body must be a JSON object")
    return body


def make_app(backend: SceneBackend | PixelBackend):
    """The Starlette app serving ``static/index.html`` and the API over ``backend``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    lock = threading.Lock()  # one inference at a time: the model is shared, the CPU is small

    def locked(fn, *args):
        with lock:
            return fn(*args)

    async def api(request: Request, handler) -> JSONResponse:
        try:
            body = await _read_json(request)
            return JSONResponse(await handler(body))
        except _BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except UserError as e:
            return JSONResponse({"error": str(e)}, status_code=422)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(backend.info())

    async def scene(request: Request) -> JSONResponse:
        async def handle(body: dict) -> dict:
            seed = body.get("seed")
            if seed is None:
                seed = int(np.random.default_rng().integers(0, 2**31 - 1))
            if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed < 2**63):
                raise UserError(f"seed: expected a non-negative integer, got {seed!r}")
            return await run_in_threadpool(locked, backend.new_scene, seed)

        return await api(request, handle)

    async def ask(request: Request) -> JSONResponse:
        async def handle(body: dict) -> dict:
            unknown = sorted(set(body) - {"scene", "question"})
            if unknown:
                raise UserError(f"unknown field(s) {', '.join(unknown)}; expected scene and question")
            if "scene" not in body or "question" not in body:
                raise UserError("both fields are required: scene and question")
            return await run_in_threadpool(locked, backend.ask, body["scene"], body["question"])

        return await api(request, handle)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error while serving %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/scene", scene, methods=["POST"]),
        Route("/api/ask", ask, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, 500: server_error})


def _require_web() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise UserError(f"the showcase needs the web extra ({e.name} is missing): pip install 'relnet[web]'") from None


def serve(checkpoint: str | Path, *, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Load ``checkpoint`` and serve the page until interrupted."""
    _require_web()
    import uvicorn

    backend = load_backend(checkpoint)
    app = make_app(backend)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"relnet showcase ({backend.mode} mode, {checkpoint}): http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.run()
    except OSError as e:
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e})") from None
    return 0
