"""Sort-of-CLEVR generator: answers against a brute-force checker, pixels against the scene, determinism, cache, CLI.

The checkers below are written from the task spec, not from ``data.py``: they decode the question bits themselves and
loop over objects/pixels in plain Python.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.sort_of_clevr import data
from relnet.tasks.sort_of_clevr.data import SortOfClevrParams

RGB = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 156, 0), (128, 128, 128), (255, 255, 0)]  # spec, literal
WHITE = (255, 255, 255)
ANSWER_NAMES = ["yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6"]
SMALL = SortOfClevrParams(train_images=200, test_images=40, seed=7)


@pytest.fixture(scope="module")
def small():
    return {split: data.generate_split(SMALL, split) for split in ("train", "test")}


# ------------------------------------------------------------------------------------------- independent checkers


def brute_answer(centres, shapes, question) -> str:
    """Answer name of one question, from the spec, in plain Python (ties: lowest colour index)."""
    bits = [int(b) for b in question]
    assert len(bits) == 11 and all(b in (0, 1) for b in bits)
    assert sum(bits[0:6]) == 1 and sum(bits[6:8]) == 1 and sum(bits[8:11]) == 1
    c = bits[0:6].index(1)
    relational = bits[7] == 1
    sub = bits[8:11].index(1)
    shape_name = ["square", "circle"]
    cx, cy = int(centres[c][0]), int(centres[c][1])
    if not relational:
        if sub == 0:
            return shape_name[int(shapes[c])]
        if sub == 1:
            return "yes" if cx < 37.5 else "no"
        return "yes" if cy < 37.5 else "no"
    dist = [(cx - int(x)) ** 2 + (cy - int(y)) ** 2 for x, y in centres]
    if sub == 2:
        return str(sum(1 for s in shapes if int(s) == int(shapes[c])))
    best = None
    for j in range(6):
        if j == c:
            continue
        if best is None or (dist[j] < dist[best] if sub == 0 else dist[j] > dist[best]):
            best = j
    return shape_name[int(shapes[best])]


def covers(shape, cx, cy, px, py, r=5) -> bool:
    if shape == 0:
        return abs(px - cx) <= r and abs(py - cy) <= r
    return (px - cx) ** 2 + (py - cy) ** 2 <= r * r


def brute_pixel(centres, shapes, px, py):
    colour = WHITE
    for i in range(6):  # later objects are drawn over earlier ones
        if covers(int(shapes[i]), int(centres[i][0]), int(centres[i][1]), px, py):
            colour = RGB[i]
    return colour


# ------------------------------------------------------------------------------------------------------ constants


def test_constants_match_spec():
    assert data.COLORS.tolist() == [list(c) for c in RGB]
    assert list(data.COLOR_NAMES) == ["red", "green", "blue", "orange", "gray", "yellow"]
    assert list(data.ANSWERS) == ANSWER_NAMES
    assert list(data.SUBTYPE_NAMES) == ["shape", "left", "top", "closest", "furthest", "count"]


def test_schema(small):
    tr = small["train"]
    assert tr["images"].shape == (200, 75, 75, 3) and tr["images"].dtype == np.uint8
    assert tr["questions"].shape == (200, 20, 11) and tr["questions"].dtype == np.uint8
    assert tr["answers"].shape == (200, 20) and tr["answers"].dtype == np.int64
    assert tr["centres"].shape == (200, 6, 2) and tr["shapes"].shape == (200, 6)
    assert small["test"]["images"].shape == (40, 75, 75, 3)


# -------------------------------------------------------------------------------------------------------- answers


def test_every_answer_matches_brute_force(small):
    for arrays in small.values():
        for n in range(len(arrays["answers"])):
            for k in range(20):
                expected = brute_answer(arrays["centres"][n], arrays["shapes"][n], arrays["questions"][n, k])
                assert ANSWER_NAMES[arrays["answers"][n, k]] == expected, (n, k)


def test_closest_is_never_the_queried_object():
    # red sits alone in a corner, every other object > 31.6 px away (where kimhc6028's 999 sentinel picks red itself)
    centres = np.array([[[5, 5], [69, 6], [5, 69], [37, 69], [69, 37], [69, 69]]])
    shapes = np.array([[0, 0, 1, 0, 0, 0]])  # only blue (at (5, 69), the closest to red) is a circle
    questions = np.stack([data.encode_question(0, 3), data.encode_question(0, 4)])[None]
    answers = data.answer_questions(centres, shapes, questions)
    assert [ANSWER_NAMES[a] for a in answers[0]] == ["circle", "square"]
    assert brute_answer(centres[0], shapes[0], questions[0, 0]) == "circle"


def test_tie_goes_to_the_first_colour():
    centres = np.array([[[37, 37], [47, 37], [27, 37], [5, 5], [69, 69], [5, 69]]])  # green, blue both at d^2=100
    shapes = np.array([[0, 1, 0, 0, 0, 0]])
    answers = data.answer_questions(centres, shapes, data.encode_question(0, 3)[None, None])
    assert ANSWER_NAMES[answers[0, 0]] == "circle"  # green (index 1) beats blue (index 2)


def test_question_layout_and_helpers(small):
    q = small["train"]["questions"]
    assert (q[:, :10, 6] == 1).all() and (q[:, :10, 7] == 0).all()
    assert (q[:, 10:, 7] == 1).all() and (q[:, 10:, 6] == 0).all()
    sub = data.question_subtype(q)
    expected = np.argmax(q[..., 8:11], axis=-1) + 3 * q[..., 7]
    assert np.array_equal(sub, expected)
    for color in range(6):
        for s in range(6):
            v = data.encode_question(color, s)
            assert v.sum() == 3 and v[color] == 1 and v[6 + s // 3] == 1 and v[8 + s % 3] == 1
            assert data.question_subtype(v) == s and data.question_color(v) == color
    red_closest = data.encode_question(0, 3)
    assert data.describe_question(red_closest) == "What shape is the object closest to the red object?"
    count_yellow = "How many objects have the same shape as the yellow object?"
    assert data.describe_question(data.encode_question(5, 5)) == count_yellow
    assert "gray" in data.describe_question(data.encode_question(4, 1)) and "left" in data.describe_question(
        data.encode_question(4, 1)
    )
    with pytest.raises(ValueError):
        data.describe_question(np.zeros(11))
    with pytest.raises(ValueError):
        data.question_subtype(np.ones((2, 11)))


# --------------------------------------------------------------------------------------------------------- pixels


def test_pixels_agree_with_scene_exactly(small):
    tr = small["train"]
    for n in range(4):  # full brute-force render of a few images
        scene = (tr["centres"][n], tr["shapes"][n])
        expected = np.array([[brute_pixel(*scene, x, y) for x in range(75)] for y in range(75)], dtype=np.uint8)
        assert np.array_equal(tr["images"][n], expected), n


def test_pixel_landmarks(small):
    tr = small["train"]
    images, centres, shapes = tr["images"], tr["centres"], tr["shapes"]
    checked = {"square": 0, "circle": 0}
    for n in range(len(images)):
        for i in range(6):
            cx, cy = (int(v) for v in centres[n, i])
            assert 5 <= cx <= 69 and 5 <= cy <= 69
            assert tuple(images[n, cy, cx]) == RGB[i]
            others = [j for j in range(6) if j != i]
            for px, py in [(cx - 5, cy - 5), (cx + 5, cy - 5), (cx - 5, cy + 5), (cx + 5, cy + 5)]:
                if any(covers(int(shapes[n, j]), *centres[n, j].tolist(), px, py) for j in others):
                    continue  # touched by a neighbour
                if shapes[n, i] == 0:
                    assert tuple(images[n, py, px]) == RGB[i]
                    checked["square"] += 1
                else:
                    assert tuple(images[n, py, px]) == WHITE
                    checked["circle"] += 1
            if shapes[n, i] == 1:  # circle rim: (5, 0) and (3, 4) are inside, (4, 4) is not
                for px, py in [(cx + 5, cy), (cx - 3, cy + 4)]:
                    if not any(covers(int(shapes[n, j]), *centres[n, j].tolist(), px, py) for j in others):
                        assert tuple(images[n, py, px]) == RGB[i]
        # background: every pixel no object covers is white, and the count of white pixels matches exactly
        covered = np.zeros((75, 75), dtype=bool)
        ys, xs = np.mgrid[0:75, 0:75]
        for j in range(6):
            cx, cy = centres[n, j]
            if shapes[n, j] == 0:
                covered |= (abs(xs - cx) <= 5) & (abs(ys - cy) <= 5)
            else:
                covered |= (xs - cx) ** 2 + (ys - cy) ** 2 <= 25
        white = (images[n] == 255).all(-1)
        assert np.array_equal(white, ~covered)
        for a in range(6):
            for b in range(a + 1, 6):
                assert ((centres[n, a] - centres[n, b]) ** 2).sum() >= 100
    assert checked["square"] > 100 and checked["circle"] > 100


# ----------------------------------------------------------------------------------------------------- determinism


def test_determinism_and_streams(small):
    again = data.generate_split(SMALL, "train")
    for name, arr in small["train"].items():
        assert arr.tobytes() == again[name].tobytes(), name
    other_seed = data.generate_split(SortOfClevrParams(train_images=200, seed=8), "train")
    assert not np.array_equal(other_seed["images"], small["train"]["images"])
    assert not np.array_equal(other_seed["centres"], small["train"]["centres"])
    # the test split is a different stream: its image k is not train image k
    test = small["test"]
    assert not any(np.array_equal(test["centres"][k], small["train"]["centres"][k]) for k in range(40))


def test_any_image_regenerates_alone(small):
    picked = [0, 123, 57, 199]
    alone = data.generate_split(SMALL, "train", indices=picked)
    for name, arr in small["train"].items():
        assert np.array_equal(alone[name], arr[picked]), name
    # the split size is not part of an image's stream: a bigger split starts with the same images
    bigger = data.generate_split(SortOfClevrParams(train_images=250, test_images=40, seed=7), "train")
    assert np.array_equal(bigger["images"][:200], small["train"]["images"])


# ------------------------------------------------------------------------------------------------------ statistics


def test_statistics(small):
    tr = small["train"]
    shapes = tr["shapes"]
    assert set(np.unique(shapes)) <= {0, 1}
    assert abs(shapes.mean() - 0.5) < 0.06  # 1,200 objects: 4 sigma ~ 0.058
    colours = np.argmax(tr["questions"][..., :6], axis=-1).ravel()  # 4,000 questions
    assert np.all(np.abs(np.bincount(colours, minlength=6) - 4000 / 6) < 120)  # 5 sigma ~ 118
    sub = data.question_subtype(tr["questions"]).ravel()
    assert np.all(np.abs(np.bincount(sub, minlength=6) - 4000 / 6) < 120)
    answers, sub_q = tr["answers"], data.question_subtype(tr["questions"])
    assert np.isin(answers[sub_q == 0], [2, 3]).all()
    assert np.isin(answers[(sub_q == 1) | (sub_q == 2)], [0, 1]).all()
    assert np.isin(answers[(sub_q == 3) | (sub_q == 4)], [2, 3]).all()
    counts = answers[sub_q == 5]
    assert np.isin(counts, range(4, 10)).all()
    assert abs((counts - 3).mean() - 3.5) < 0.2  # 1 + Binomial(5, 1/2): mean 3.5
    left = answers[sub_q == 1]
    assert 0.4 < (left == 0).mean() < 0.6
    cx = tr["centres"][..., 0]
    assert cx.min() >= 5 and cx.max() <= 69 and cx.min() < 10 and cx.max() > 64


def test_state_objects(small):
    tr = small["train"]
    s = data.state_objects(tr["centres"], tr["shapes"])
    assert s.shape == (200, 6, 10) and s.dtype == np.float32
    assert np.array_equal(s[..., :6], np.broadcast_to(np.eye(6), (200, 6, 6)))
    assert np.array_equal(s[..., 7], tr["shapes"].astype(np.float32))
    assert np.array_equal(s[..., 6] + s[..., 7], np.ones((200, 6)))
    assert np.allclose(s[..., 8] * 32 + 37, tr["centres"][..., 0])
    assert np.allclose(s[..., 9] * 32 + 37, tr["centres"][..., 1])
    edge = data.state_objects(np.array([[[5, 69]] * 6]), np.zeros((1, 6), dtype=int))
    assert edge[0, 0, 8] == -1.0 and edge[0, 0, 9] == 1.0


# ------------------------------------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    "bad",
    [dict(train_images=0), dict(train_images=-3), dict(test_images=-1), dict(seed=-1), dict(questions_per_family=0)],
)
def test_bad_params_are_user_errors(bad):
    with pytest.raises(UserError, match=next(iter(bad))):
        SortOfClevrParams(**bad)


def test_exactly_min_distance_is_allowed():
    # a crowded 41 px image (centres in [5, 35]) often needs two centres exactly 10 px apart: the rule rejects < 10 only
    p = SortOfClevrParams(train_images=50, test_images=0, image_size=41)
    c = data.generate_split(p, "train")["centres"]
    d2 = ((c[:, :, None] - c[:, None]) ** 2).sum(-1) + np.eye(6, dtype=int) * 10**6  # (N, 6, 6), self excluded
    assert d2.min() == 100


def test_impossible_layout_is_a_user_error():
    p = SortOfClevrParams(train_images=1, test_images=0, image_size=21)  # only 4 spots 10 px apart
    with pytest.raises(UserError, match="cannot place"):
        data.generate_split(p, "train")


def test_key_covers_every_parameter():
    base = SortOfClevrParams()
    assert base.key() == SortOfClevrParams().key()
    keys = {base.key()}
    for field, value in dict(train_images=9801, test_images=201, seed=2, image_size=76, object_size=4,
                             min_distance=11, questions_per_family=9).items():
        keys.add(SortOfClevrParams(**{field: value}).key())
    assert len(keys) == 8


# -------------------------------------------------------------------------------------------------------- cache


def test_cache_is_reused(tmp_path, monkeypatch):
    p = SortOfClevrParams(train_images=30, test_images=10, seed=3)
    first = data.load_or_generate(p, tmp_path)
    folder = tmp_path / "sort_of_clevr" / f"{data.VERSION}-{p.key()}"
    assert data.cache_dir(p, tmp_path) == folder
    assert sorted(os.listdir(folder)) == ["params.json", "test.npz", "train.npz"]  # no temp files left behind

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(data, "generate_split", fail)
    second = data.load_or_generate(p, tmp_path)
    for split in ("train", "test"):
        for name, arr in first[split].items():
            assert np.array_equal(second[split][name], arr) and second[split][name].dtype == arr.dtype
    with pytest.raises(AssertionError, match="regenerated"):
        data.load_or_generate(p, tmp_path, force=True)
    with pytest.raises(AssertionError, match="regenerated"):  # another parameter: another folder, not reused
        data.load_or_generate(SortOfClevrParams(train_images=30, test_images=10, seed=4), tmp_path)


def test_cache_root_from_env_and_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RELNET_DATA", str(tmp_path / "env"))
    p = SortOfClevrParams(train_images=5, test_images=2)
    assert data.cache_dir(p) == tmp_path / "env" / "sort_of_clevr" / f"{data.VERSION}-{p.key()}"
    data.load_or_generate(p)
    (data.cache_dir(p) / "train.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="train.npz"):
        data.load_or_generate(p)
    assert data.load_or_generate(p, force=True)["train"]["images"].shape == (5, 75, 75, 3)


# ---------------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_cache(tmp_path, capsys):
    argv = ["data", "sort-of-clevr", "--out", str(tmp_path)]
    argv += ["--train-images", "20", "--test-images", "5", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    p = SortOfClevrParams(train_images=20, test_images=5, seed=3)
    folder = data.cache_dir(p, tmp_path)
    assert str(folder) in out and "train: 20 images, 400 questions" in out and "test: 5 images" in out
    with np.load(folder / "train.npz") as z:
        assert np.array_equal(z["images"], data.generate_split(p, "train")["images"])
    assert main(argv + ["--force"]) == 0


@pytest.mark.parametrize(
    "bad", [["--train-images", "0"], ["--train-images", "-5"], ["--test-images", "-1"], ["--seed", "-2"]]
)
def test_cli_bad_sizes(tmp_path, capsys, bad):
    assert main(["data", "sort-of-clevr", "--out", str(tmp_path), *bad]) == 2
    assert "relnet: error:" in capsys.readouterr().err
    assert not (tmp_path / "sort_of_clevr").exists()
