"""Showcase data: the grammar, the answers against the independent checker, balance, determinism, the CLI."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.showcase import data
from showcase_checker import check


def test_seed_questions_parse_to_their_families():
    fams = [data.parse_question(q).family for q in data.SEED_QUESTIONS]
    assert fams == ["relate", "extreme", "count", "exist"]
    for q in data.SEED_QUESTIONS:
        assert data.parse_question(q).text == q  # canonical text round-trips


@pytest.mark.parametrize("text, expected", [
    ("what colour is the object LEFT of the blue circle", "What color is the object left of the blue circle?"),
    ("  What shape is the object farthest from the red square ? ",
     "What shape is the object furthest from the red square?"),
    ("is there an object below the purple triangle?", "Is there an object below the purple triangle?"),
])
def test_free_text_is_normalised(text, expected):
    assert data.parse_question(text).text == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("What is the meaning of life?", "unknown words: 'meaning'"),
    ("What color is the object left of the pink circle?", "unknown colour 'pink'"),
    ("What color is the object left of the red hexagon?", "unknown shape 'hexagon'"),
    ("How many objects are left of the red circle?", "not supported"),
    ("x" * 201, "at most 200"),
])
def test_unsupported_questions_raise_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        data.parse_question(text)


def test_every_grammar_question_tokenises_within_the_vocabulary():
    qs = [data.Question(f, c, s, a, r) for c in data.COLORS for s in data.SHAPES
          for f, a, r in [("relate", a, r) for a in data.ATTRIBUTES for r in data.DIRECTIONS]
          + [("extreme", a, r) for a in data.ATTRIBUTES for r in data.EXTREMES]
          + [("count", a, "") for a in data.ATTRIBUTES] + [("exist", "", r) for r in data.DIRECTIONS]]
    assert len({q.text for q in qs}) == len(qs) == 18 * 18
    for q in qs:
        assert all(0 < t < len(data.VOCAB) for t in q.tokens())
        assert data.parse_question(q.text) == q


def test_answers_match_the_independent_checker_and_scenes_are_valid():
    seen = Counter()
    for k in range(300):
        scene, qs, answers = data.generate(5, "train", k, 8)
        objs = scene.to_list()
        assert len({(o["color"], o["shape"]) for o in objs}) == 6
        xy = scene.xy.astype(np.float64)
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))[np.triu_indices(6, 1)]
        assert d.min() >= 0.12 - 1e-6 and xy.min() >= 0.08 and xy.max() <= 0.92
        gaps = np.abs(xy[:, None] - xy[None])[np.triu_indices(6, 1)]  # (15, 2) per-axis gaps
        assert gaps.min() >= 0.03 - 1e-6
        for q, a in zip(qs, answers):
            assert a == check(objs, q.text), q.text
            assert a in data.ANSWERS
            seen[(q.family, a)] += 1
    fam = Counter(f for f, _ in seen.elements())
    assert set(fam.values()) == {600}  # families in turn
    assert 0.4 < seen[("exist", "yes")] / 600 < 0.6  # balanced by construction
    assert seen[("relate", "none")] > 20  # the "nothing on that side" case does occur


def test_answers_on_random_unconstrained_positions_match_the_checker():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = data.random_scene(rng)
        scene.xy = rng.uniform(0, 1, size=(6, 2)).astype(np.float32)  # dragging puts objects anywhere
        objs = scene.to_list()
        for f in data.FAMILIES:
            q = data.random_question(rng, scene, f)
            assert data.answer(scene, q) == check(objs, q.text)


def test_generation_is_deterministic_and_streams_differ():
    a = data.generate(1, "train", 7, 8)
    b = data.generate(1, "train", 7, 8)
    c = data.generate(1, "test", 7, 8)
    assert a[0].to_list() == b[0].to_list() and a[1] == b[1] and a[2] == b[2]
    assert a[0].to_list() != c[0].to_list()


def test_scene_from_list_names_the_bad_field():
    objs = data.generate(0, "train", 0, 1)[0].to_list()
    assert data.Scene.from_list(objs).to_list() == objs
    bad = [dict(o) for o in objs]
    bad[2]["x"] = 1.5
    with pytest.raises(UserError, match=r"scene\[2\]\.x"):
        data.Scene.from_list(bad)
    bad = [dict(o) for o in objs]
    bad[4] = dict(bad[0])
    with pytest.raises(UserError, match=r"scene\[4\]: a second"):
        data.Scene.from_list(bad)
    with pytest.raises(UserError, match="expected a list of 6"):
        data.Scene.from_list(objs[:3])


def test_data_cli_prints_scenes(capsys):
    assert main(["data", "showcase", "--scenes", "2", "--questions", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(len(r["questions"]) == 4 == len(r["answers"]) for r in rows)
    for r in rows:
        assert r["answers"] == [check(r["scene"], q) for q in r["questions"]]
