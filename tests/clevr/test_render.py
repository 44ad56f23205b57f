"""CPU renderer and fitted camera vs the real CLEVR scenes and images."""

import colorsys
import json
import math

import numpy as np
import pytest
from PIL import Image

from relnet.tasks.clevr import render as R
from relnet.tasks.clevr.scenes import sample_scenes


@pytest.fixture
def real(shared_data):
    with open(shared_data / "clevr/samples/scenes/CLEVR_train_scenes_1000.json", encoding="utf-8") as fh:
        return json.load(fh)["scenes"]


def _blender_project(loc, focal, pts):
    """Independent pinhole: look-at the origin, no roll, Blender's world_to_camera_view + pixel conversion."""
    loc = np.asarray(loc, float)
    fwd = -loc / np.linalg.norm(loc)
    right = np.array([fwd[1], -fwd[0], 0.0]) / math.hypot(fwd[0], fwd[1])
    up = np.cross(right, fwd)
    rel = np.asarray(pts, float) - loc
    depth = rel @ fwd
    u = 240 + focal * (rel @ right) / depth
    v = 160 - focal * (rel @ up) / depth
    return np.stack([u, v, depth], 1)


def test_camera_project_matches_independent_pinhole():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-3, 3, size=(50, 3))
    for loc in [R.CAMERA_LOCATION, (7.9, -6.2, 5.0)]:
        ours = R.Camera(location=loc).project(pts)
        assert np.allclose(ours, _blender_project(loc, R.CAMERA_FOCAL, pts), atol=1e-9)


def test_fit_camera_matches_constants(real):
    fit = R.fit_camera(real[:100])
    # 100 jittered cameras: the mean location has sd 0.29/sqrt(100) = 0.03 per axis
    assert np.allclose(fit["location"], R.CAMERA_LOCATION, atol=0.1)
    assert abs(fit["focal"] - R.CAMERA_FOCAL) < 1.0
    assert all(0.2 < s < 0.38 for s in fit["jitter_std"])
    assert fit["per_scene_mean_px"] < 0.5 and fit["per_scene_max_px"] < 1.0  # only integer rounding is left


def test_projection_vs_real_pixel_coords(real):
    pts = np.array([o["3d_coords"] for s in real for o in s["objects"]])
    pix = np.array([o["pixel_coords"] for s in real for o in s["objects"]], float)
    err = np.linalg.norm(_blender_project(R.CAMERA_LOCATION, R.CAMERA_FOCAL, pts)[:, :2] - pix[:, :2], axis=1)
    # one camera for all scenes: the per-scene jitter (+-0.5 world units) leaves a few pixels
    assert err.mean() < 5.0 and err.max() < 25.0
    # per-scene cameras recovered from pixel_coords: rounding only
    errs = []
    for s in real[:200]:
        cam = R.camera_for_scene(s)
        p = np.array([o["3d_coords"] for o in s["objects"]])
        q = np.array([o["pixel_coords"] for o in s["objects"]], float)
        errs.append(np.abs(_blender_project(cam.location, cam.focal, p) - q))
    errs = np.concatenate(errs)
    assert errs[:, :2].max() <= 0.75 and errs[:, 2].max() < 0.01


def test_sampled_pixel_coords_reprojected():
    for s in sample_scenes(20, 5):
        cam = R.camera_for_scene(s)
        p = np.array([o["3d_coords"] for o in s["objects"]])
        q = np.array([o["pixel_coords"] for o in s["objects"]], float)
        assert np.abs(_blender_project(cam.location, cam.focal, p)[:, :2] - q[:, :2]).max() <= 0.75


def _sphere_scene(x=0.5, y=-0.5, size="large"):
    r = {"large": 0.7, "small": 0.35}[size]
    obj = {"color": "red", "size": size, "rotation": 0.0, "shape": "sphere", "3d_coords": [x, y, r],
           "material": "rubber"}
    return {"objects": [obj], "directions": R.DIRECTIONS}


def test_sphere_silhouette_brute_force():
    scene = _sphere_scene()
    ids = R.object_id_map(scene, width=96, height=64)
    cam = R.camera_for_scene(scene)
    # brute force: a pixel sees the sphere iff its ray passes within r of the centre (and the centre is in front)
    loc = np.asarray(cam.location)
    fwd = -loc / np.linalg.norm(loc)
    right = np.array([fwd[1], -fwd[0], 0.0]) / math.hypot(fwd[0], fwd[1])
    up = np.cross(right, fwd)
    c = np.array(scene["objects"][0]["3d_coords"]) - loc
    expect = np.zeros((64, 96), bool)
    for i in range(64):
        for j in range(96):
            u, v = (j + 0.5) * 5, (i + 0.5) * 5
            d = fwd * cam.focal + right * (u - 240) - up * (v - 160)
            d /= np.linalg.norm(d)
            expect[i, j] = np.linalg.norm(c - (c @ d) * d) < 0.7
    assert expect.sum() > 30
    assert np.array_equal(ids == 0, expect)


@pytest.mark.parametrize("size", [(480, 320), (128, 128), (64, 48)])
def test_render_shape_dtype_and_colour(size):
    w, h = size
    scene = _sphere_scene()
    img = R.render_scene(scene, width=w, height=h)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    u, v, _ = R.camera_for_scene(scene).project(np.array([scene["objects"][0]["3d_coords"]]))[0]
    px = img[int(v * h / 320), int(u * w / 480)].astype(float) / 255
    hue = colorsys.rgb_to_hsv(*px)[0] * 360
    assert min(hue, 360 - hue) < 10 and px[0] > px[1] + 0.1  # red
    empty = R.render_scene({"objects": []}, width=w, height=h)
    assert np.abs(empty.astype(int) - np.round(R.background(w, h)).astype(int)).max() <= 2


def test_direct_128_render_matches_downsampled_full_render():
    scene = sample_scenes(1, 2)[0]
    full = R.render_scene(scene, width=480, height=320)
    small = R.render_scene(scene, width=128, height=128)
    down = np.asarray(Image.fromarray(full).resize((128, 128), Image.BILINEAR)).astype(float)
    assert np.abs(small.astype(float) - down).mean() < 6.0


def test_render_colours_vs_real_images(real, shared_data):
    """At each fully visible object's centre, our render's hue matches the real image's (scaled 240x160)."""
    by_index = {s["image_index"]: s for s in real}
    files = sorted((shared_data / "clevr/samples/images/train").glob("CLEVR_train_*.png"))[:12]
    hue_err, rgb_err = [], []
    for f in files:
        s = by_index[int(f.stem[-6:])]
        real_img = np.asarray(Image.open(f).convert("RGB").resize((240, 160), Image.BILINEAR)).astype(float)
        ours = R.render_scene(s, width=240, height=160).astype(float)
        ids = R.object_id_map(s, width=240, height=160)
        for k, o in enumerate(s["objects"]):
            u, v = o["pixel_coords"][0] // 2, o["pixel_coords"][1] // 2
            if not (2 <= u < 238 and 2 <= v < 158) or not np.all(ids[v - 2 : v + 3, u - 2 : u + 3] == k):
                continue
            a = real_img[v - 2 : v + 3, u - 2 : u + 3].reshape(-1, 3).mean(0)
            b = ours[v - 2 : v + 3, u - 2 : u + 3].reshape(-1, 3).mean(0)
            rgb_err.append(np.abs(a - b).mean())
            if o["color"] != "gray":
                ha, hb = colorsys.rgb_to_hsv(*(a / 255))[0], colorsys.rgb_to_hsv(*(b / 255))[0]
                hue_err.append(min(abs(ha - hb), 1 - abs(ha - hb)) * 360)
    assert len(hue_err) >= 30
    assert np.median(hue_err) < 5 and np.mean(hue_err) < 8 and np.max(hue_err) < 40
    assert np.mean(rgb_err) < 30
