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
CAMERA_LOCATION = (7.4866, -6.5037, 5.3256)
CAMERA_FOCAL = 525.0
#: The generator's ``--camera_jitter``: each coordinate of the camera moves by U(-J, J) per scene.
CAMERA_JITTER = 0.5
#: The point the camera tracks (Track-To constraint); the real scenes' optical axes all hit it within 0.01.
CAMERA_TARGET = (0.0, 0.0, 0.0)

#: The ``directions`` entry of every real scene (identical in all 1,000 real scenes, to the last bit). The official
#: generator computes them from ``camera.matrix_world`` right after jittering the camera's location, before Blender
#: refreshes that matrix, so they are the *un-jittered* camera's axes even though ``pixel_coords`` (computed after
#: the objects were added) use the jittered camera. We copy that behaviour: sampled scenes carry these directions.
DIRECTIONS = {
    "right": [0.6563112735748291, 0.7544902563095093, -0.0],
    "behind": [-0.754490315914154, 0.6563112735748291, 0.0],
    "above": [0.0, 0.0, 1.0],
    "below": [-0.0, -0.0, -1.0],
    "left": [-0.6563112735748291, -0.7544902563095093, 0.0],
    "front": [0.754490315914154, -0.6563112735748291, -0.0],
}

#: Half side of a cube relative to its size radius (measured on the real images: a large cube is ~0.93 as wide
#: as a large cylinder seen the same way). Cubes are drawn resting on the floor (centre z = half side).
CUBE_HALF_SIDE = 0.93

# Shading constants (display-independent; tuned by eye and by the colour statistics in the tests).
_LIGHT_DIR = np.array([-0.1, -1.0, 1.3])  # towards the key light: camera-left, in front, above
_LIGHT_DIR = _LIGHT_DIR / np.linalg.norm(_LIGHT_DIR)
_AMBIENT = 0.19
_KEY = 0.52
_LIGHT_TINT = np.array([1.0, 0.98, 0.93])  # the real images' light is slightly warm
_SHADOW_STRENGTH = 0.22

# Floor/backdrop colour as a quadratic in normalised screen coordinates (x, y in [0, 1] across the 480x320
# frame): value = c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2, one row per RGB channel, in display units 0..255.
# Fitted by ``fit_background`` on the 26 real images (per-pixel median over images, so objects drop out).
BACKGROUND_COEFFS = np.array(
    [
        [103.2, 15.1, 35.9, -29.6, 42.7, -17.7],
        [102.8, 15.1, 40.4, -29.4, 38.8, -22.7],
        [102.6, 12.3, 50.7, -27.3, 34.0, -33.6],
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

    lo, hi = 500.0, 550.0
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = (per_scene(x)[1].__pow__(2).mean() for x in (a, b))
    for _ in range(12):
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


# ---------------------------------------------------------------------------------------------------------------
# ray casting
# ---------------------------------------------------------------------------------------------------------------

_SHAPE_CODES = {"sphere": 0, "cube": 1, "cylinder": 2}


@dataclass(frozen=True)
class _Objects:
    """Scene objects as arrays. Shapes: centre (N, 3), radius (N,), shape (N,) int code, angle (N,) radians."""

    centre: np.ndarray
    radius: np.ndarray
    shape: np.ndarray
    angle: np.ndarray


def _objects_from_scene(scene: Mapping[str, Any]) -> _Objects:
    sizes = load_properties()["sizes"]
    objs = scene.get("objects", [])
    centre = np.array([o["3d_coords"] for o in objs], dtype=np.float64).reshape(-1, 3)
    radius = np.array([float(sizes[o["size"]]) for o in objs], dtype=np.float64)
    shape = np.array([_SHAPE_CODES[o["shape"]] for o in objs], dtype=np.int64)
    # the official generator writes degrees into a radians field: the real turn is `rotation` radians
    angle = np.array([float(o.get("rotation", 0.0)) for o in objs], dtype=np.float64)
    return _Objects(centre=centre, radius=radius, shape=shape, angle=angle)


def _camera_rays(cam: Camera, width: int, height: int, supersample: int) -> np.ndarray:
    """Unit ray directions through pixel centres (sub-pixel centres when supersampling).

    Shapes: -> (height*s, width*s, 3) world directions, ``s = supersample``.
    """
    hs, ws = height * supersample, width * supersample
    u = (np.arange(ws) + 0.5) * (BASE_WIDTH / ws)  # same field of view whatever the output size
    v = (np.arange(hs) + 0.5) * (BASE_HEIGHT / hs)
    x = (u - BASE_WIDTH / 2) / cam.focal
    y = -(v - BASE_HEIGHT / 2) / cam.focal
    d = np.empty((hs, ws, 3))
    d[..., 0] = x[None, :]
    d[..., 1] = y[:, None]
    d[..., 2] = -1.0
    d = d @ cam.rotation()  # camera -> world: R^T d, written as d R for row vectors
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d


def _intersect(origin: np.ndarray, dirs: np.ndarray, obj: _Objects, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray hits with object ``k``: distance (inf where missed) and unit world normal.

    ``origin`` is (3,) or (M, 3); ``dirs`` (M, 3). Returns t (M,), normal (M, 3).
    """
    c, r, shape = obj.centre[k], obj.radius[k], obj.shape[k]
    o = origin - c  # (M, 3) or (3,)
    m = dirs.shape[0]
    inf = np.full(m, np.inf)
    eps = 1e-6
    if shape == 0:  # sphere
        b = dirs @ o if o.ndim == 1 else np.einsum("mi,mi->m", dirs, o)
        cc = (o * o).sum(-1) - r * r
        disc = b * b - cc
        with np.errstate(invalid="ignore"):
            t = -b - np.sqrt(disc)
        t = np.where((disc > 0) & (t > eps), t, inf)
        p = o + t[:, None] * dirs
        n = p / r
        return t, n
    if shape == 1:  # cube: a slab test in the cube's frame (turned by angle about z)
        h = CUBE_HALF_SIDE * r
        o = o + np.array([0.0, 0.0, c[2] - h])  # rest on the floor: the box centre is at z = h, not z = r
        ca, sa = math.cos(obj.angle[k]), math.sin(obj.angle[k])
        rot = np.array([[ca, sa, 0.0], [-sa, ca, 0.0], [0.0, 0.0, 1.0]])  # world -> local: Rz(-angle)
        ol = o @ rot.T
        dl = dirs @ rot.T
        dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
        t1 = (-h - ol) / dl
        t2 = (h - ol) / dl
        tnear = np.minimum(t1, t2)
        tfar = np.maximum(t1, t2).min(-1)
        axis = tnear.argmax(-1)
        tmin = tnear.max(-1)
        hit = (tmin <= tfar) & (tmin > eps)
        t = np.where(hit, tmin, inf)
        nl = np.zeros((m, 3))
        nl[np.arange(m), axis] = -np.sign(dl[np.arange(m), axis])
        return t, nl @ rot  # local -> world: Rz(angle)
    # cylinder: radius r, from z = 0 to z = 2r, vertical axis
    if o.ndim == 1:
        o = np.broadcast_to(o, dirs.shape)
    a = dirs[:, 0] ** 2 + dirs[:, 1] ** 2
    b = o[:, 0] * dirs[:, 0] + o[:, 1] * dirs[:, 1]
    cc = o[:, 0] ** 2 + o[:, 1] ** 2 - r * r
    disc = b * b - a * cc
    with np.errstate(invalid="ignore", divide="ignore"):
        ts = (-b - np.sqrt(disc)) / a
    zs = o[:, 2] + ts * dirs[:, 2]
    side = (disc > 0) & (ts > eps) & (np.abs(zs) <= r)
    ts = np.where(side, ts, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = (r - o[:, 2]) / dirs[:, 2]  # top cap at local z = +r
    pc = o[:, :2] + tc[:, None] * dirs[:, :2]
    cap = (tc > eps) & ((pc**2).sum(-1) <= r * r)
    tc = np.where(cap, tc, np.inf)
    t = np.minimum(ts, tc)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs
    n = np.zeros((m, 3))
    n[:, :2] = p[:, :2] / r
    top = tc <= ts
    n[top] = (0.0, 0.0, 1.0)
    return t, n


def _bounds_mask(cam: Camera, obj: _Objects, k: int, dirs_flat: np.ndarray) -> np.ndarray:
    """Rays that can hit object ``k`` (inside a cone around its bounding sphere): a cheap cull."""
    c = obj.centre[k] - np.asarray(cam.location)
    dist = np.linalg.norm(c)
    rb = obj.radius[k] * (math.sqrt(3) * CUBE_HALF_SIDE + 0.1 if obj.shape[k] == 1 else math.sqrt(2)) * 1.01
    cos_lim = math.cos(math.asin(min(1.0, rb / dist)))
    return dirs_flat @ (c / dist) >= cos_lim


def trace(
    cam: Camera, obj: _Objects, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary rays from the camera: nearest hit per ray.

    Shapes: dirs (M, 3) -> t (M,) (ground where id is -1; inf where nothing is hit), id (M,) int (-1 ground),
    normal (M, 3).
    """
    origin = np.asarray(cam.location, dtype=np.float64)
    m = dirs.shape[0]
    with np.errstate(divide="ignore"):
        tg = np.where(dirs[:, 2] < -1e-9, -origin[2] / dirs[:, 2], np.inf)
    t = tg.copy()
    ids = np.full(m, -1, dtype=np.int64)
    normal = np.zeros((m, 3))
    normal[:, 2] = 1.0
    for k in range(len(obj.radius)):
        sel = np.flatnonzero(_bounds_mask(cam, obj, k, dirs))
        if sel.size == 0:
            continue
        tk, nk = _intersect(origin, dirs[sel], obj, k)
        better = tk < t[sel]
        idx = sel[better]
        t[idx] = tk[better]
        ids[idx] = k
        normal[idx] = nk[better]
    return t, ids, normal


def _in_shadow(points: np.ndarray, obj: _Objects, light: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """Whether the segment from each point towards the (directional) light hits an object. (M, 3) -> (M,) bool."""
    m = points.shape[0]
    shadow = np.zeros(m, dtype=bool)
    dirs = np.broadcast_to(light, (m, 3))
    for k in range(len(obj.radius)):
        cand = ~shadow if skip is None else (~shadow & (skip != k))
        # cull: the object's bounding sphere must be near the shadow ray
        c = obj.centre[k]
        rel = c - points
        along = rel @ light
        perp2 = (rel * rel).sum(-1) - along**2
        rb = obj.radius[k] * (math.sqrt(3) * CUBE_HALF_SIDE + 0.1 if obj.shape[k] == 1 else math.sqrt(2))
        cand &= (along > -rb) & (perp2 <= rb * rb)
        sel = np.flatnonzero(cand)
        if sel.size == 0:
            continue
        tk, _ = _intersect(points[sel], dirs[sel], obj, k)
        shadow[sel[np.isfinite(tk)]] = True
    return shadow


def background(width: int, height: int, coeffs: np.ndarray = BACKGROUND_COEFFS) -> np.ndarray:
    """Unshadowed floor/backdrop colour, display units 0..255. Shapes: -> (height, width, 3) float."""
    x = (np.arange(width) + 0.5) / width
    y = (np.arange(height) + 0.5) / height
    xx, yy = np.meshgrid(x, y)
    feats = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1)  # (H, W, 6)
    return feats @ np.asarray(coeffs).T


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.clip(c, 0.0, 1.0) ** 2.2


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.clip(c, 0.0, 1.0) ** (1 / 2.2)


def render_scene(
    scene: Mapping[str, Any], *, width: int = 480, height: int = 320, supersample: int | None = None
) -> np.ndarray:
    """Render a CLEVR scene dict (official schema) to an RGB image.

    The camera is recovered from the scene (:func:`camera_for_scene`); colours come from ``properties.json``
    (treated, as Blender does, as linear albedo). Rubber is Lambert-shaded with a faint sheen, metal reflects a
    grey environment with a tinted highlight; the floor casts soft-edged shadows from one key light.

    Args:
        scene: a dict with ``objects`` (``3d_coords``, ``size``, ``shape``, ``color``, ``material``, ``rotation``)
            and, ideally, ``directions`` and ``pixel_coords`` (to recover the jittered camera).
        width, height: output size. The field of view is always that of the 480x320 original, so a 128x128
            render equals a (much sharper) anisotropic resize of the full frame.
        supersample: sub-pixel samples per axis (anti-aliasing); default 2 below 200k pixels, else 1.

    Shapes:
        -> ``np.ndarray`` uint8 ``(height, width, 3)``.
    """
    if width < 1 or height < 1:
        raise ValueError(f"render_scene: width and height must be positive, got {width}x{height}")
    s = supersample if supersample is not None else (2 if width * height < 200_000 else 1)
    props = load_properties()
    cam = camera_for_scene(scene)
    obj = _objects_from_scene(scene)
    dirs = _camera_rays(cam, width, height, s).reshape(-1, 3)
    t, ids, normal = trace(cam, obj, dirs)
    origin = np.asarray(cam.location)
    hit = origin + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs

    hs, ws = height * s, width * s
    out = _srgb_to_linear(background(ws, hs).reshape(-1, 3) / 255.0)
    light = _LIGHT_DIR

    ground = np.flatnonzero(ids < 0)
    if ground.size and len(obj.radius):
        sh = _in_shadow(hit[ground] + 1e-4 * np.array([0, 0, 1.0]), obj, light)
        out[ground[sh]] *= 1.0 - _SHADOW_STRENGTH

    on = np.flatnonzero(ids >= 0)
    if on.size:
        objs = scene["objects"]
        albedo = np.array([[c / 255.0 for c in props["colors"][o["color"]]] for o in objs])[ids[on]]
        metal = np.array([o["material"] == "metal" for o in objs])[ids[on]]
        n = normal[on]
        v = -dirs[on]
        p = hit[on] + 1e-4 * n
        ndl = np.clip(n @ light, 0.0, None)
        lit = ~_in_shadow(p, obj, light, skip=ids[on])
        diff = _AMBIENT * (0.6 + 0.4 * n[:, 2:3]) + _KEY * (ndl * lit)[:, None]
        half = light + v
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        ndh = np.clip((n * half).sum(1), 0.0, None)
        # rubber: Lambert + faint broad sheen
        col = albedo * diff + (0.04 * ndh**8 * lit)[:, None]
        # metal: darker diffuse, grey environment reflection tinted by the colour, tight bright highlight
        refl = dirs[on] - 2 * (dirs[on] * n).sum(1, keepdims=True) * n
        env = np.where(refl[:, 2:3] > 0, 0.55 + 0.25 * refl[:, 2:3], 0.22)
        fres = 0.25 + 0.75 * (1 - np.clip((n * v).sum(1), 0, 1))[:, None] ** 5
        metal_col = albedo * (0.35 * diff + 0.9 * env) * (1 - 0.3 * fres) + 0.3 * fres * env
        metal_col += (0.9 * ndh**80 * lit)[:, None] * (0.5 + 0.5 * albedo)
        col = np.where(metal[:, None], 0.62 * metal_col, col) * _LIGHT_TINT
        out[on] = col

    img = _linear_to_srgb(out).reshape(hs, ws, 3)
    if s > 1:
        img = img.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def object_id_map(scene: Mapping[str, Any], *, width: int = 480, height: int = 320) -> np.ndarray:
    """Which object each pixel centre sees (-1 for the floor), with the same camera as :func:`render_scene`.

    Shapes: -> int64 ``(height, width)``.
    """
    cam = camera_for_scene(scene)
    dirs = _camera_rays(cam, width, height, 1).reshape(-1, 3)
    _, ids, _ = trace(cam, _objects_from_scene(scene), dirs)
    return ids.reshape(height, width)


def fit_background(images: Sequence[np.ndarray], *, step: int = 4) -> np.ndarray:
    """Fit :data:`BACKGROUND_COEFFS` to real 480x320 CLEVR images.

    The per-pixel median over the images removes the objects (they sit in different places); a quadratic in the
    normalised screen coordinates is then fitted per channel by least squares on every ``step``-th pixel.

    Shapes: images K arrays (H, W, 3 or 4) uint8 -> (3, 6) coefficients.
    """
    stack = np.stack([np.asarray(im)[..., :3] for im in images]).astype(np.float64)  # (K, H, W, 3)
    med = np.median(stack, axis=0)[::step, ::step]  # (h, w, 3)
    h, w = stack.shape[1:3]
    y = (np.arange(0, h, step) + 0.5) / h
    x = (np.arange(0, w, step) + 0.5) / w
    xx, yy = np.meshgrid(x, y)
    feats = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1).reshape(-1, 6)
    coef, *_ = np.linalg.lstsq(feats, med.reshape(-1, 3), rcond=None)
    return coef.T
