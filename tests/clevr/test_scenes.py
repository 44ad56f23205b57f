"""Scene sampler vs the official generator's rules and the 1,000 real CLEVR training scenes."""

import collections
import json
import math

import numpy as np
import pytest

from relnet.tasks.clevr.scenes import compute_relationships, sample_scenes

N_GEN = 240


@pytest.fixture(scope="module")
def generated():
    return sample_scenes(N_GEN, 11, split="new")


@pytest.fixture
def real(shared_data):
    with open(shared_data / "clevr/samples/scenes/CLEVR_train_scenes_1000.json", encoding="utf-8") as fh:
        return json.load(fh)["scenes"]


def _relations_brute(objs, dirs, eps=0.2):
    """Independent checker: the official nested loop, written out."""
    out = {}
    for name in ("left", "right", "front", "behind"):
        vec = dirs[name]
        lists = []
        for i, a in enumerate(objs):
            rel = []
            for j, b in enumerate(objs):
                if i == j:
                    continue
                dot = sum((b["3d_coords"][k] - a["3d_coords"][k]) * vec[k] for k in range(3))
                if dot > eps:
                    rel.append(j)
            lists.append(rel)
        out[name] = lists
    return out


def _schema(scene):
    obj_types = {k: type(v).__name__ for k, v in scene["objects"][0].items()}
    obj_types["3d_coords"] = [type(x).__name__ for x in scene["objects"][0]["3d_coords"]]
    obj_types["pixel_coords"] = [type(x).__name__ for x in scene["objects"][0]["pixel_coords"]]
    return (
        sorted(scene),
        obj_types,
        sorted(scene["relationships"]),
        sorted(scene["directions"]),
        type(scene["image_index"]).__name__,
        type(scene["split"]).__name__,
    )


def test_schema_matches_real(generated, real):
    assert _schema(generated[0]) == _schema(real[0])
    s = generated[5]
    assert s["image_filename"] == "CLEVR_new_000005.png" and s["image_index"] == 5 and s["split"] == "new"
    for name, lists in s["relationships"].items():
        assert len(lists) == len(s["objects"])
    json.dumps(s)  # plain JSON types only


def test_deterministic_and_reproducible_per_index():
    a = sample_scenes(4, 3, split="val")
    assert a == sample_scenes(4, 3, split="val")
    assert sample_scenes(1, 3, split="val", start_index=2)[0] == a[2]
    assert sample_scenes(2, 4, split="val")[0] != a[0]
    assert [s["image_filename"] for s in sample_scenes(2, 3, split="val", start_index=7)] == [
        "CLEVR_val_000007.png",
        "CLEVR_val_000008.png",
    ]


def test_object_count_distribution(generated, real):
    counts = collections.Counter(len(s["objects"]) for s in generated)
    assert set(counts) <= set(range(3, 11))
    expected = N_GEN / 8
    chi2 = sum((counts.get(k, 0) - expected) ** 2 / expected for k in range(3, 11))
    assert chi2 < 24.3  # chi-square, 7 dof, p = 0.001
    real_counts = collections.Counter(len(s["objects"]) for s in real)
    # real and generated means agree (uniform 3..10 has mean 6.5, sd 2.29)
    real_mean = sum(k * v for k, v in real_counts.items()) / len(real)
    gen_mean = sum(k * v for k, v in counts.items()) / N_GEN
    assert abs(real_mean - gen_mean) < 4 * 2.29 * math.sqrt(1 / N_GEN + 1 / len(real))


@pytest.mark.parametrize("attr", ["shape", "color", "material", "size"])
def test_attribute_frequencies(generated, real, attr):
    def freqs(scenes):
        c = collections.Counter(o[attr] for s in scenes for o in s["objects"])
        n = sum(c.values())
        return {k: v / n for k, v in c.items()}, n

    fr, nr = freqs(real)
    fg, ng = freqs(generated)
    assert set(fg) == set(fr)
    for k in fr:
        p = fr[k]
        sd = math.sqrt(p * (1 - p) * (1 / nr + 1 / ng))
        assert abs(fg[k] - p) < 4.5 * sd, (attr, k, fg[k], p)


def test_small_objects_outnumber_large_as_in_real(generated):
    # the visibility check rejects scenes with hidden objects; large objects hide more, so fewer survive
    c = collections.Counter(o["size"] for s in generated for o in s["objects"])
    assert c["small"] > c["large"]


def test_relationships_of_real_scenes_reproduced(real):
    for s in real:
        assert compute_relationships(s["objects"], s["directions"]) == s["relationships"], s["image_index"]


def test_generated_relationships_consistent(generated):
    for s in generated:
        brute = _relations_brute(s["objects"], s["directions"])
        for name in brute:
            assert s["relationships"][name] == brute[name]


def test_placement_constraints(generated):
    for s in generated:
        d = s["directions"]
        objs = s["objects"]
        for o in objs:
            x, y, z = o["3d_coords"]
            r = {"large": 0.7, "small": 0.35}[o["size"]]
            assert -3 <= x <= 3 and -3 <= y <= 3 and z == r
            assert 0 <= o["rotation"] < 360
        for i, a in enumerate(objs):
            for j, b in enumerate(objs):
                if i == j:
                    continue
                dx = a["3d_coords"][0] - b["3d_coords"][0]
                dy = a["3d_coords"][1] - b["3d_coords"][1]
                assert math.hypot(dx, dy) - a["3d_coords"][2] - b["3d_coords"][2] >= 0.25 - 1e-9
                for name in ("left", "right", "front", "behind"):
                    m = dx * d[name][0] + dy * d[name][1]
                    assert not (0 < m < 0.4), (s["image_index"], i, j, name, m)


def test_directions_like_real(generated, real):
    # the official generator records the un-jittered camera's directions: identical in every real scene
    assert all(s["directions"] == real[0]["directions"] for s in real)
    for s in generated:
        assert s["directions"] == real[0]["directions"]
    d = {k: np.asarray(v) for k, v in generated[0]["directions"].items()}
    for v in d.values():
        assert abs(np.linalg.norm(v) - 1) < 1e-6
    assert np.allclose(d["left"], -d["right"]) and np.allclose(d["front"], -d["behind"])
    assert abs(d["left"] @ d["behind"]) < 1e-6 and d["behind"][2] == 0


def test_camera_really_jittered(generated):
    # same 3d point, different scenes -> different pixels; recover the jitter from pixel_coords like fit_camera does
    from relnet.tasks.clevr.render import CAMERA_LOCATION, camera_for_scene

    locs = np.array([camera_for_scene(s).location for s in generated[:60]])
    spread = locs - np.asarray(CAMERA_LOCATION)
    assert np.all(np.abs(spread) < 0.5 + 0.05)
    assert np.all(spread.std(axis=0) > 0.2)  # U(-0.5, 0.5) has sd 0.289


def test_pixel_coords_like_real(generated, real):
    def stats(scenes):
        p = np.array([o["pixel_coords"] for s in scenes for o in s["objects"]], dtype=float)
        return p

    pr, pg = stats(real), stats(generated)
    for col in range(3):
        assert pr[:, col].min() - 15 <= pg[:, col].min() and pg[:, col].max() <= pr[:, col].max() + 15
        assert abs(pr[:, col].mean() - pg[:, col].mean()) < 0.15 * pr[:, col].std() + 3
    assert all(isinstance(o["pixel_coords"][0], int) for s in generated for o in s["objects"])
    # further objects sit higher in the image
    assert np.corrcoef(pg[:, 1], pg[:, 2])[0, 1] < -0.8
