"""A small CPU renderer for CLEVR-like images, and the camera model shared with the scene sampler.

The official CLEVR images were rendered with Blender (Johnson et al. 2017). This module does not try to match them
pixel for pixel: it ray-casts the same scene geometry through a pinhole camera fitted to the real data, so that
objects land where they land in the real images, with their colours, and with CLEVR's look (grey floor, soft light,
shiny metal, matte rubber, soft shadows). Everything is vectorised NumPy; there is no global state.

Camera model (verified on the 1,000 real training scenes, see :func:`fit_camera`):

- Blender's default camera (35 mm lens on a 32 mm sensor, i.e. ``focal = 35/32 * 480 = 525`` px at 480x320)
  at :data:`CAMERA_LOCATION`, jittered per scene by ``U(-0.5, 0.5)`` on each axis (the generator's
  ``--camera_jitter 0.5``), always tracking the world origin with no roll (a Track-To constraint).
- Pixel coordinates follow ``bpy_extras.object_utils.world_to_camera_view``: ``u = W/2 + f*x/d`` and
  ``v = H/2 - f*y/d`` where ``(x, y, -d)`` is the point in camera space (``d`` is the depth that the official
  ``pixel_coords[2]`` holds), then ``round()`` for the stored integer pixel coordinates.

Scene geometry (official schema, see :mod:`relnet.tasks.clevr.scenes`): ``3d_coords`` is the object's centre,
``z`` equals its size radius ``r`` (0.7 large, 0.35 small), so every object rests on the ground plane ``z = 0``.
Spheres have radius ``r``; cylinders radius ``r`` and height ``2r``; cubes are boxes with half side
``CUBE_HALF_SIDE * r``, turned about the vertical axis by ``rotation``. The official generator assigns the
``rotation`` value in degrees to Blender's ``rotation_euler`` field, which is in radians, so the real turn is
``rotation`` *radians*; we reproduce that.

Shapes:
    render_scene(scene, width=W, height=H) -> ``np.ndarray`` uint8 ``(H, W, 3)``. Any ``W, H`` renders the
    same field of view as the 480x320 original (so 128x128 is the anisotropic resize the RN paper feeds its CNN).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

RESOURCES = Path(__file__).parent / "resources"

#: Size of the official images; the camera constants below are in pixels of this frame.
BASE_WIDTH = 480
BASE_HEIGHT = 320

# Fitted by ``fit_camera(real_scenes)`` on data/clevr/samples/scenes/CLEVR_train_scenes_1000.json (see
# tests/clevr/test_render.py::test_fit_camera_matches_constants, which refits and compares). The location is the
# mean of the 1,000 per-scene (jittered) camera locations; the focal length is the least-squares fit over all
# 6,455 objects with per-scene cameras. Both agree with Blender's default camera, (7.4811, -6.5076, 5.3437) and
# 35/32*480 = 525 px.
CAMERA_LOCATION = (7.4866, -6.5038, 5.3255)
CAMERA_FOCAL = 525.0
#: The generator's ``--camera_jitter``: each coordinate of the camera moves by U(-J, J) per scene.
CAMERA_JITTER = 0.5
#: The point the camera tracks (Track-To constraint); the real scenes' optical axes all hit it within 0.01.
CAMERA_TARGET = (0.0, 0.0, 0.0)

#: Half side of a cube relative to its size radius (judged against the real images).
CUBE_HALF_SIDE = 0.7

# Shading constants (display-independent; tuned by eye and by the colour statistics in the tests).
_LIGHT_DIR = np.array([-0.45, -0.85, 1.1])  # towards the key light: camera-left, a bit in front, above
_LIGHT_DIR = _LIGHT_DIR / np.linalg.norm(_LIGHT_DIR)
_AMBIENT = 0.35
_KEY = 0.95
_SHADOW_STRENGTH = 0.45

# Floor/backdrop colour as a quadratic in normalised screen coordinates (x, y in [0, 1] across the 480x320
# frame): value = c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2, one row per RGB channel, in display units 0..255.
# Fitted by ``fit_background`` on the 26 real images (per-pixel median over images, so objects drop out).
BACKGROUND_COEFFS = np.array(
    [
        [103.0, 0.0, 10.0, 0.0, 0.0, 35.0],
        [103.0, 0.0, 10.0, 0.0, 0.0, 33.0],
        [103.0, 0.0, 10.0, 0.0, 0.0, 30.0],
    ]
)


@lru_cache(maxsize=1)
def load_properties() -> dict[str, Any]:
    """The official ``properties.json`` (shapes, colours as 0-255 RGB, materials, size radii)."""
    with open(RESOURCES / "properties.json", encoding="utf-8") as fh:
        return json.load(fh)


# ---------------------------------------------------------------------------------------------------------------
# camera
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """A Track-To pinhole camera as in the CLEVR Blender scene.

    Args:
        location: camera position in world units.
        focal: focal length in pixels of the 480x320 frame.
        target: the point the camera looks at (no roll: the camera's x axis stays horizontal).
    """

    location: tuple[float, float, float] = CAMERA_LOCATION
    focal: float = CAMERA_FOCAL
    target: tuple[float, float, float] = CAMERA_TARGET

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation ``R`` (3, 3): rows are the camera's right, up and backward axes."""
        c = np.asarray(self.location, dtype=np.float64)
        fwd = np.asarray(self.target, dtype=np.float64) - c
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        return np.stack([right, up, -fwd])

    def project(self, points: np.ndarray) -> np.ndarray:
        """Continuous pixel coordinates and depth of world points.

        Shapes:
            points (N, 3) -> (N, 3) columns ``u, v, depth`` in the 480x320 frame.
        """
        p = np.atleast_2d(np.asarray(points, dtype=np.float64))
        cam = (p - np.asarray(self.location)) @ self.rotation().T  # (N, 3) camera space, looking along -z
        d = -cam[:, 2]
        u = BASE_WIDTH / 2 + self.focal * cam[:, 0] / d
        v = BASE_HEIGHT / 2 - self.focal * cam[:, 1] / d
        return np.stack([u, v, d], axis=1)

    def pixel_coords(self, point: Sequence[float]) -> list:
        """The official ``pixel_coords`` entry ``[int x, int y, float depth]`` of one world point."""
        u, v, d = self.project(np.asarray(point, dtype=np.float64)[None])[0]
        return [int(round(float(u))), int(round(float(v))), float(d)]

    def directions(self) -> dict[str, list[float]]:
        """The official ``directions`` entry: camera axes projected onto the ground plane.

        Key order follows the real scene files (right, behind, above, below, left, front).
        """
        r = self.rotation()
        behind = -r[2].copy()  # camera forward
        behind[2] = 0.0
        behind /= np.linalg.norm(behind)
        left = -r[0].copy()
        left[2] = 0.0
        left /= np.linalg.norm(left)
        as_list = lambda v: [float(x) for x in v]  # noqa: E731
        return {
            "right": as_list(-left),
            "behind": as_list(behind),
            "above": [0.0, 0.0, 1.0],
            "below": [0.0, 0.0, -1.0],
            "left": as_list(left),
            "front": as_list(-behind),
        }


def sample_camera(rng: np.random.Generator) -> Camera:
    """The generator's camera jitter: each coordinate of :data:`CAMERA_LOCATION` moves by U(-0.5, 0.5)."""
    loc = np.asarray(CAMERA_LOCATION) + rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, size=3)
    return Camera(location=tuple(float(x) for x in loc))


def _scene_arrays(scene: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    objs = scene.get("objects", [])
    pts = np.array([o["3d_coords"] for o in objs], dtype=np.float64).reshape(-1, 3)
    if objs and all(len(o.get("pixel_coords", ())) == 3 for o in objs):
        pix = np.array([o["pixel_coords"] for o in objs], dtype=np.float64)
    else:
        pix = None
    return pts, pix


def _camera_from_yaw(directions: Mapping[str, Sequence[float]] | None) -> Camera:
    """The mean camera turned about the vertical axis so that its ground-plane forward is ``directions['behind']``."""
    loc = np.asarray(CAMERA_LOCATION, dtype=np.float64)
    if not directions or "behind" not in directions:
        return Camera()
    b = np.asarray(directions["behind"], dtype=np.float64)[:2]
    b /= np.linalg.norm(b)
    dist = np.hypot(loc[0], loc[1])
    return Camera(location=(float(-b[0] * dist), float(-b[1] * dist), float(loc[2])))


def _refine_location(
    points: np.ndarray, pix: np.ndarray, init: np.ndarray, focal: float, iters: int = 8, damping: float = 1e-3
) -> np.ndarray:
    """Damped Gauss-Newton on the camera location so that projections match ``pix`` (u, v and depth).

    The depth residual is scaled to pixels (``focal * dd / d``) so the three residuals weigh alike. A weak prior
    (``damping``) keeps the problem well posed for scenes with one or two objects.
    """
    loc = init.astype(np.float64).copy()

    def resid(x: np.ndarray) -> np.ndarray:
        pr = Camera(location=tuple(x), focal=focal).project(points)
        r_uv = (pr[:, :2] - pix[:, :2]).ravel()
        r_d = focal * (pr[:, 2] - pix[:, 2]) / pix[:, 2]
        return np.concatenate([r_uv, r_d, damping * (x - init)])

    for _ in range(iters):
        r0 = resid(loc)
        jac = np.empty((r0.size, 3))
        for k in range(3):
            dx = np.zeros(3)
            dx[k] = 1e-5
            jac[:, k] = (resid(loc + dx) - r0) / 1e-5
        step, *_ = np.linalg.lstsq(jac, -r0, rcond=None)
        loc += step
        if np.abs(step).max() < 1e-7:
            break
    return loc


def camera_for_scene(scene: Mapping[str, Any], *, focal: float = CAMERA_FOCAL) -> Camera:
    """Recover one scene's (jittered) camera from its objects' ``3d_coords`` and ``pixel_coords``.

    The official schema does not store the camera, but ``pixel_coords`` (pixels and depth) pin it down: we start
    from the mean camera turned to the scene's ``directions`` and refine the location by least squares. Without
    ``pixel_coords`` the turned mean camera is returned.
    """
    cam = _camera_from_yaw(scene.get("directions"))
    pts, pix = _scene_arrays(scene)
    if pix is None or len(pts) == 0:
        return cam
    loc = _refine_location(pts, pix, np.asarray(cam.location), focal)
    return Camera(location=tuple(float(x) for x in loc), focal=focal)


def fit_camera(scenes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Fit the camera model to real scenes' (``3d_coords`` -> ``pixel_coords``) pairs.

    Steps: (1) with the focal length fixed, recover each scene's jittered camera location
    (:func:`camera_for_scene`); (2) refit the focal length by 1-D least squares on the per-scene pixel residuals
    (golden-section search); repeat (1) with it; (3) the single camera is the mean location with that focal length.
    Reproduce the constants with::

        python -c "import json; from relnet.tasks.clevr.render import fit_camera; \\
            print(fit_camera(json.load(open('CLEVR_train_scenes_1000.json'))['scenes']))"

    Returns:
        dict with ``location`` (3 floats), ``focal``, ``jitter_std`` (per-axis std of the per-scene locations),
        ``per_scene_mean_px`` / ``per_scene_max_px`` (pixel residuals with per-scene cameras) and
        ``single_mean_px`` / ``single_max_px`` (residuals of the one mean camera, turned per scene by nothing).
    """
    scenes = [s for s in scenes if s.get("objects")]
    data = [_scene_arrays(s) for s in scenes]

    def per_scene(focal: float) -> tuple[np.ndarray, np.ndarray]:
        locs, errs = [], []
        for s, (pts, pix) in zip(scenes, data):
            cam = camera_for_scene(s, focal=focal)
            locs.append(cam.location)
            errs.append(np.linalg.norm(cam.project(pts)[:, :2] - pix[:, :2], axis=1))
        return np.array(locs), np.concatenate(errs)

    lo, hi = 480.0, 570.0
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = (per_scene(x)[1].__pow__(2).mean() for x in (a, b))
    for _ in range(18):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = per_scene(a)[1].__pow__(2).mean()
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = per_scene(b)[1].__pow__(2).mean()
    focal = (lo + hi) / 2
    locs, errs = per_scene(focal)
    mean_loc = locs.mean(axis=0)
    single = Camera(location=tuple(float(x) for x in mean_loc), focal=focal)
    serr = np.concatenate([np.linalg.norm(single.project(p)[:, :2] - x[:, :2], axis=1) for p, x in data])
    return {
        "location": [float(x) for x in mean_loc],
        "focal": float(focal),
        "jitter_std": [float(x) for x in locs.std(axis=0)],
        "per_scene_mean_px": float(errs.mean()),
        "per_scene_max_px": float(errs.max()),
        "single_mean_px": float(serr.mean()),
        "single_max_px": float(serr.max()),
    }
