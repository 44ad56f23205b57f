"""Sample CLEVR scenes in the official scene-file schema, following the official generator's distribution.

The official generator (``clevr-dataset-gen/image_generation/render_images.py``, Johnson et al. 2017) does, per image:

- jitter the camera (each coordinate of its location by U(-0.5, 0.5)); the camera tracks the origin. The
  ground-plane ``directions`` (left/right/front/behind/above/below) are the camera axes projected onto the floor,
  but taken from the *un-jittered* camera (a quirk of the official code, see ``render.DIRECTIONS``): they are the
  same in every real scene, and so in ours, while ``pixel_coords`` follow the jittered camera;
- draw the object count uniformly from 3..10;
- per object: a size (large r=0.7 / small r=0.35), then a position x, y ~ U(-3, 3) retried until it is at least
  ``0.25 + r_i + r_j`` from every earlier object and, along each of the four ground directions, not within
  ``(0, 0.4)`` of an earlier object (so left/right/front/behind are never ambiguous); after 50 failed tries the
  whole scene restarts; then a shape, a colour, a rotation U(0, 360) and a material, all uniform;
- ``3d_coords = (x, y, r)``, ``pixel_coords`` from the camera (see :mod:`relnet.tasks.clevr.render`);
- ``relationships[name][i]`` = sorted ``j != i`` with ``dot(coords_j - coords_i, directions[name]) > 0.2``,
  i.e. object ``j`` is *name* of object ``i`` (checked against all 1,000 real scenes in the tests).

The official generator also rejects scenes in which some object covers fewer than 200 rendered pixels (occluded);
we do the same with our ray caster at quarter resolution (50 pixels of 120x80). That is what makes real scenes
hold more small than large objects (53% small in the 1,000 real scenes).

Determinism: scene ``index`` is drawn from ``numpy.random.default_rng([seed, index])`` alone, so any scene can be
rebuilt without the others.

Schema (one scene, as in ``CLEVR_<split>_scenes.json``)::

    {"image_index": int, "image_filename": "CLEVR_<split>_<6 digits>.png", "split": str,
     "objects": [{"color": str, "size": str, "rotation": float, "shape": str, "3d_coords": [x, y, z],
                  "material": str, "pixel_coords": [int, int, float]}, ...],
     "relationships": {"right"|"behind"|"front"|"left": [[int, ...] per object]},
     "directions": {"right"|"behind"|"above"|"below"|"left"|"front": [x, y, z]}}
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from relnet.tasks.clevr.render import DIRECTIONS, Camera, _objects_from_scene, _camera_rays, load_properties, sample_camera, trace

MIN_OBJECTS = 3
MAX_OBJECTS = 10
MIN_DIST = 0.25
MARGIN = 0.4
MAX_RETRIES = 50
RELATION_EPS = 0.2
#: Visibility check: every object must cover this many pixels of a VIS_WIDTH x VIS_HEIGHT render
#: (the official 200 pixels of 480x320, scaled by the area ratio 1/16 and rounded down).
MIN_PIXELS = 12
VIS_WIDTH, VIS_HEIGHT = 120, 80
RELATIONS = ("right", "behind", "front", "left")


def compute_relationships(
    objects: Sequence[Mapping[str, Any]], directions: Mapping[str, Sequence[float]], *, eps: float = RELATION_EPS
) -> dict[str, list[list[int]]]:
    """The official ``relationships`` entry.

    ``out[name][i]`` lists (ascending) every ``j != i`` whose ``3d_coords`` lie more than ``eps`` from object ``i``
    along ``directions[name]``: object ``j`` is *name* of object ``i`` ("the things right of i").

    Shapes: objects N dicts with ``3d_coords`` -> {name: N lists of ints}.
    """
    pts = np.array([o["3d_coords"] for o in objects], dtype=np.float64).reshape(-1, 3)
    out: dict[str, list[list[int]]] = {}
    for name in RELATIONS:
        proj = pts @ np.asarray(directions[name], dtype=np.float64)  # (N,)
        rel = (proj[None, :] - proj[:, None]) > eps  # rel[i, j]: j is `name` of i
        np.fill_diagonal(rel, False)
        out[name] = [[int(j) for j in np.flatnonzero(row)] for row in rel]
    return out


def _place_objects(
    rng: np.random.Generator, num: int, directions: Mapping[str, Sequence[float]], radii: Sequence[float]
) -> np.ndarray | None:
    """Positions (num, 2) under the distance and margin rules, or None when some object ran out of tries."""
    dirs = np.array([directions[n][:2] for n in RELATIONS])  # (4, 2)
    pos = np.zeros((0, 2))
    rad = np.zeros(0)
    for k in range(num):
        r = radii[k]
        for _ in range(MAX_RETRIES):
            xy = rng.uniform(-3.0, 3.0, size=2)
            delta = xy[None, :] - pos  # (k, 2)
            dist_ok = np.all(np.hypot(delta[:, 0], delta[:, 1]) - r - rad >= MIN_DIST)
            margins = delta @ dirs.T  # (k, 4)
            margin_ok = not np.any((margins > 0) & (margins < MARGIN))
            if dist_ok and margin_ok:
                break
        else:
            return None
        pos = np.vstack([pos, xy])
        rad = np.append(rad, r)
    return pos


def _visible_counts(scene: Mapping[str, Any], cam: Camera) -> np.ndarray:
    """Pixels each object covers in a VIS_WIDTH x VIS_HEIGHT id-buffer render. (N,) int."""
    obj = _objects_from_scene(scene)
    dirs = _camera_rays(cam, VIS_WIDTH, VIS_HEIGHT, 1).reshape(-1, 3)
    _, ids, _ = trace(cam, obj, dirs)
    return np.bincount(ids[ids >= 0], minlength=len(obj.radius))


def sample_scene(rng: np.random.Generator, *, index: int = 0, split: str = "new") -> dict[str, Any]:
    """One scene from ``rng`` (a pure function of the generator state). See the module docstring."""
    props = load_properties()
    sizes = list(props["sizes"].items())
    shapes = list(props["shapes"])
    colors = list(props["colors"])
    materials = list(props["materials"])
    cam = sample_camera(rng)
    directions = {k: list(v) for k, v in DIRECTIONS.items()}
    num = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    while True:
        size_idx = rng.integers(len(sizes), size=num)
        radii = [float(sizes[i][1]) for i in size_idx]
        pos = _place_objects(rng, num, directions, radii)
        if pos is None:
            continue
        objects = []
        for k in range(num):
            xyz = [float(pos[k, 0]), float(pos[k, 1]), radii[k]]
            objects.append(
                {
                    "color": colors[int(rng.integers(len(colors)))],
                    "size": sizes[int(size_idx[k])][0],
                    "rotation": float(rng.uniform(0.0, 360.0)),
                    "shape": shapes[int(rng.integers(len(shapes)))],
                    "3d_coords": xyz,
                    "material": materials[int(rng.integers(len(materials)))],
                    "pixel_coords": cam.pixel_coords(xyz),
                }
            )
        scene = {
            "image_index": int(index),
            "objects": objects,
            "relationships": compute_relationships(objects, directions),
            "image_filename": f"CLEVR_{split}_{int(index):06d}.png",
            "split": split,
            "directions": directions,
        }
        if np.all(_visible_counts(scene, cam) >= MIN_PIXELS):
            return scene


def sample_scenes(n: int, seed: int, *, split: str = "new", start_index: int = 0) -> list[dict]:
    """``n`` scenes with image indices ``start_index .. start_index + n - 1``.

    Scene ``i`` depends only on ``(seed, i)``: ``sample_scenes(1, s, start_index=i)[0]`` equals the ``i``-th scene
    of any longer call with the same seed.

    Shapes: -> list of ``n`` official-schema scene dicts (see the module docstring).
    """
    if n < 0 or start_index < 0:
        raise ValueError(f"sample_scenes: n and start_index must be >= 0, got n={n}, start_index={start_index}")
    return [
        sample_scene(np.random.default_rng([int(seed), i]), index=i, split=split)
        for i in range(start_index, start_index + n)
    ]
