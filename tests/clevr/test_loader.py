"""CLEVR official-layout loader on the tiny fixture tree (tests/fixtures/clevr), malformed files, augmentation, CLI."""

import json
import shutil

import numpy as np
import pytest
import torch

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.clevr.loader import (
    ANSWERS,
    ATTR_VALUES,
    FAMILIES,
    Vocab,
    augment,
    load_split,
    tokenize,
)

# what the fixture's hand-written questions are (answers read off the scene JSON by hand)
EXPECTED = [
    (0, "3", "count"),
    (0, "no", "exist"),
    (0, "brown", "query_attribute"),
    (1, "yes", "compare_numbers"),
    (1, "yes", "compare_attribute"),
    (2, "1", "count"),
    (2, "rubber", "query_attribute"),
]


@pytest.fixture
def tree(tmp_path, fixtures):
    root = tmp_path / "clevr"
    shutil.copytree(fixtures / "clevr", root)
    return root


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_answers_and_tokenize():
    assert len(ANSWERS) == 28 and len(set(ANSWERS)) == 28
    assert set(ANSWERS) == {str(i) for i in range(11)} | {"yes", "no"} | set(ATTR_VALUES["color"]) | set(
        ATTR_VALUES["shape"]) | set(ATTR_VALUES["material"]) | set(ATTR_VALUES["size"])
    assert tokenize("There is a big cube; what COLOR is it?") == [
        "there", "is", "a", "big", "cube", ";", "what", "color", "is", "it"]
    assert tokenize("Red, or blue?") == ["red", ",", "or", "blue"]


def test_train_split_arrays(tree):
    sp = load_split(tree, "train")
    assert len(sp) == len(EXPECTED) and sp.num_images == 3
    assert sp.vocab.tokens[:2] == ["<pad>", "<unk>"]
    for q, (img, ans, fam) in enumerate(EXPECTED):
        assert sp.image_index[q] == img
        assert ANSWERS[sp.answers[q]] == ans
        assert FAMILIES[sp.families[q]] == fam
        toks = [sp.vocab.tokens[i] for i in sp.tokens[q, : sp.lengths[q]]]
        assert toks == tokenize(sp.texts[q])
        assert (sp.tokens[q, sp.lengths[q]:] == 0).all()
    assert sp.question_family_index.tolist() == [-1] * len(EXPECTED)
    # state descriptions against the scene JSON
    scenes = json.loads((tree / "scenes/CLEVR_train_scenes.json").read_text())["scenes"]
    st = sp.states
    assert st["coords"].shape == (3, 10, 3) and st["coords"].dtype == np.float32
    assert st["attrs"].shape == (3, 10, 4) and st["attrs"].dtype == np.int64
    assert st["mask"].sum(1).tolist() == [len(s["objects"]) for s in scenes] == [6, 9, 3]
    for s, scene in enumerate(scenes):
        for o, obj in enumerate(scene["objects"]):
            np.testing.assert_allclose(st["coords"][s, o], obj["3d_coords"], rtol=1e-6)
            names = [ATTR_VALUES[a][st["attrs"][s, o, k]] for k, a in enumerate(("color", "shape", "material", "size"))]
            assert names == [obj["color"], obj["shape"], obj["material"], obj["size"]]
        assert (st["coords"][s, len(scene["objects"]):] == 0).all()
    # scene 0 object 0 is blue: (42, 75, 215) in properties.json
    np.testing.assert_allclose(st["rgb"][0, 0] * 255, [42, 75, 215], atol=1e-3)
    assert "questions=7" in repr(sp)


def test_vocab_json_roundtrip_and_unk(tree):
    train = load_split(tree, "train")
    v2 = Vocab.from_dict(json.loads(json.dumps(train.vocab.to_dict())))
    assert v2.tokens == train.vocab.tokens
    test = load_split(tree, "test", vocab=v2)
    zebra = test.tokens[0, : test.lengths[0]].tolist()
    assert zebra == [v2.index["is"], v2.index["there"], v2.index["a"], 1]  # "zebra" is unknown


def test_test_split_without_answers_with_images(tree, tmp_path):
    sp = load_split(tree, "test", with_images=True, cache_dir=tmp_path / "cache")
    assert sp.answers.tolist() == [-1, -1] and sp.families.tolist() == [-1, -1]
    assert sp.states is None
    assert sp.images.shape == (2, 128, 128, 3) and sp.images.dtype == np.uint8
    assert (sp.images[0] == np.array([10, 20, 30], np.uint8)).all()
    assert (sp.images[1] == np.array([200, 100, 50], np.uint8)).all()


def test_image_cache_reused_and_keyed(tree, tmp_path):
    cache = tmp_path / "cache"
    a = load_split(tree, "train", with_images=True, cache_dir=cache)
    assert [tuple(a.images[i, 64, 64]) for i in range(3)] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    (npy,) = cache.glob("images_128_*/images.npy")
    stamp = npy.stat().st_mtime_ns
    load_split(tree, "train", with_images=True, cache_dir=cache)
    assert npy.stat().st_mtime_ns == stamp  # reused, not rebuilt
    b = load_split(tree, "train", with_images=True, cache_dir=cache, image_size=64)
    assert b.images.shape == (3, 64, 64, 3)
    assert len(list(cache.glob("images_*/manifest.json"))) == 2
    assert not list(cache.glob("images_*/.images.*"))  # no temp file left behind


def test_state_input_needs_no_images(tree):
    shutil.rmtree(tree / "images")
    sp = load_split(tree, "train")
    assert sp.states is not None and sp.images is None
    with pytest.raises(UserError, match=r"CLEVR_train_000000.png: image file not found"):
        load_split(tree, "train", with_images=True)


def _drop(key):
    return lambda d: d["questions"][3].pop(key)


MALFORMED = {
    "bad-json": ("questions/CLEVR_train_questions.json", None, r"CLEVR_train_questions.json: line \d+: invalid JSON"),
    "no-questions-list": ("questions/CLEVR_train_questions.json", lambda d: d.pop("questions"),
                          r"CLEVR_train_questions.json: expected an object with a 'questions' list"),
    "missing-question": ("questions/CLEVR_train_questions.json", _drop("question"),
                         r"question 3: missing field 'question'"),
    "missing-image-index": ("questions/CLEVR_train_questions.json", _drop("image_index"),
                            r"question 3: missing field 'image_index'"),
    "image-index-out-of-range": ("questions/CLEVR_train_questions.json",
                                 lambda d: d["questions"][5].update(image_index=7),
                                 r"question 5: image_index 7 is out of range \(3 scenes\)"),
    "unknown-answer": ("questions/CLEVR_train_questions.json", lambda d: d["questions"][2].update(answer="pink"),
                       r"question 2: unknown answer 'pink'"),
    "unknown-function": ("questions/CLEVR_train_questions.json",
                         lambda d: d["questions"][1]["program"][1].update(function="filter_smell"),
                         r"question 1: program node 1 has unknown function 'filter_smell'"),
    "question-not-text": ("questions/CLEVR_train_questions.json", lambda d: d["questions"][0].update(question=5),
                          r"question 0: field 'question' has the wrong type"),
    "unknown-color": ("scenes/CLEVR_train_scenes.json", lambda d: d["scenes"][1]["objects"][4].update(color="pink"),
                      r"CLEVR_train_scenes.json: scene 1 object 4: unknown color 'pink'"),
    "missing-coords": ("scenes/CLEVR_train_scenes.json", lambda d: d["scenes"][2]["objects"][0].pop("3d_coords"),
                       r"scene 2 object 0: missing field '3d_coords'"),
    "too-many-objects": ("scenes/CLEVR_train_scenes.json",
                         lambda d: d["scenes"][0]["objects"].extend(d["scenes"][1]["objects"]),
                         r"scene 0: 15 objects, expected 1..10"),
    "scene-order": ("scenes/CLEVR_train_scenes.json", lambda d: d["scenes"][1].update(image_index=4),
                    r"scene 1: image_index is 4, expected 1"),
    "bad-relationship": ("scenes/CLEVR_train_scenes.json",
                         lambda d: d["scenes"][2]["relationships"]["left"][0].append(9),
                         r"scene 2: relationships\['left'\] holds an invalid object index"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files(tree, case):
    rel, fn, pattern = MALFORMED[case]
    path = tree / rel
    if fn is None:
        path.write_text(path.read_text()[:200])
    else:
        _edit(path, fn)
    with pytest.raises(UserError, match=pattern):
        load_split(tree, "train")


def test_missing_questions_file(tmp_path):
    with pytest.raises(UserError, match=r"CLEVR_val_questions.json: file not found"):
        load_split(tmp_path, "val")


# -- augmentation --------------------------------------------------------------------------------------------------
def test_augment_crop_is_one_of_the_81_crops_and_deterministic():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 16, 16, 3), dtype=torch.uint8, generator=g)
    out = augment(x, generator=torch.Generator().manual_seed(3), max_angle=0.0)
    assert out.shape == (6, 3, 16, 16) and out.dtype == torch.float32
    padded = np.pad(x.numpy().astype(np.float32) / 255, ((0, 0), (4, 4), (4, 4), (0, 0)))  # (B, 24, 24, 3)
    offsets = set()
    for b in range(6):
        got = out[b].permute(1, 2, 0).numpy()
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if np.allclose(got, padded[b, dy:dy + 16, dx:dx + 16], atol=1e-5)]
        assert len(hits) == 1, f"sample {b} is not a crop of the padded image"
        offsets.add(hits[0])
    assert len(offsets) > 1  # not always the same crop
    again = augment(x, generator=torch.Generator().manual_seed(3), max_angle=0.0)
    assert torch.equal(out, again)


def test_augment_rotation_small_and_seeded():
    x = torch.zeros(4, 3, 32, 32)
    x[:, :, :, 16:] = 1.0  # left half 0, right half 1: a rotation tilts the vertical edge
    a = augment(x, generator=torch.Generator().manual_seed(1), pad=0, max_angle=0.05)
    b = augment(x, generator=torch.Generator().manual_seed(1), pad=0, max_angle=0.05)
    c = augment(x, generator=torch.Generator().manual_seed(2), pad=0, max_angle=0.05)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)
    # +-0.05 rad moves the edge by at most 16 * tan(0.05) < 1 px at the top and bottom rows; the zero fill
    # enters only within ~1 px of the border
    diff = (a - x).abs()[:, :, 2:-2]
    assert diff[:, :, :, :14].max() < 1e-5 and diff[:, :, :, 18:-2].max() < 1e-5
    assert diff[:, :, :, 14:18].max() > 0.05  # the edge did tilt


# -- CLI -----------------------------------------------------------------------------------------------------------
def test_cli_from_scenes_no_images(tree, tmp_path, capsys):
    from relnet.tasks.clevr.programs import answer_str, execute_program

    out = tmp_path / "out"
    rc = main(["data", "clevr", "--from-scenes", str(tree / "scenes/CLEVR_train_scenes.json"), "--out", str(out),
               "--questions-per-scene", "4", "--split", "val", "--no-images"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scenes"] == 3 and summary["images"] == 0 and 3 <= summary["questions"] <= 12
    train = load_split(tree, "train")
    sp = load_split(out, "val", vocab=train.vocab)
    assert len(sp) == summary["questions"] and sp.num_images == 3
    assert (sp.answers >= 0).all() and (sp.families >= 0).all()
    assert not (out / "images").exists()
    qs = json.loads((out / "questions/CLEVR_val_questions.json").read_text())["questions"]
    scenes = json.loads((out / "scenes/CLEVR_val_scenes.json").read_text())["scenes"]
    assert scenes[2]["image_filename"] == "CLEVR_val_000002.png"
    for q in qs:
        assert answer_str(execute_program(q["program"], scenes[q["image_index"]])[-1]) == q["answer"]
    assert not list(out.rglob(".*"))  # no temp files


def test_cli_sampled_scenes(tmp_path, capsys):
    pytest.importorskip("relnet.tasks.clevr.scenes")
    out = tmp_path / "s"
    assert main(["data", "clevr", "--scenes", "3", "--seed", "5", "--out", str(out), "--no-images"]) == 0
    sp = load_split(out, "train")
    assert sp.num_images == 3 and len(sp) > 0


def test_cli_bad_scenes_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc = main(["data", "clevr", "--from-scenes", str(bad), "--out", str(tmp_path / "o"), "--no-images"])
    assert rc == 2
    assert "bad.json: line 1: invalid JSON" in capsys.readouterr().err
