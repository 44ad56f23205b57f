"""CLEVR programs + template questions, checked by an independent set-based interpreter written here.

The checker differs from relnet.tasks.clevr.programs on purpose: it evaluates recursively from the answer node,
uses frozensets, and derives spatial relations from 3d_coords and the scene's direction vectors (the official
renderer's rule: j is <r> of i when (p_j - p_i) . dir_r > 0.2) instead of the stored relationship lists.
"""

import collections
import hashlib
import json
import re

import pytest

from relnet.tasks.clevr.programs import RESOURCES as RES
from relnet.tasks.clevr.programs import ProgramFailure, answer_str, execute_program
from relnet.tasks.clevr.questions import expand_program, generate_questions, load_templates

SCENES = "clevr/samples/scenes/CLEVR_train_scenes_1000.json"


# -- independent checker -------------------------------------------------------------------------------------------
def related(scene, rel, i):
    d = scene["directions"][rel]
    pi = scene["objects"][i]["3d_coords"]
    out = set()
    for j, o in enumerate(scene["objects"]):
        if j != i and sum((o["3d_coords"][k] - pi[k]) * d[k] for k in range(3)) > 0.2:
            out.add(j)
    return frozenset(out)


class Invalid(Exception):
    pass


def check(program, scene):
    """Evaluate the program's last node by recursion; returns the answer string."""
    objs = scene["objects"]
    memo = {}

    def ev(k):
        if k in memo:
            return memo[k]
        node = program[k]
        fn = node.get("function") or node.get("type")
        vals = node.get("value_inputs", [])
        a = [ev(i) for i in node["inputs"]]
        if fn == "scene":
            r = frozenset(range(len(objs)))
        elif fn == "unique":
            if len(a[0]) != 1:
                raise Invalid(f"unique over {len(a[0])}")
            (r,) = a[0]
        elif fn == "relate":
            r = related(scene, vals[0], a[0])
        elif fn == "union":
            r = a[0] | a[1]
        elif fn == "intersect":
            r = a[0] & a[1]
        elif fn == "count":
            r = len(a[0])
        elif fn == "exist":
            r = "yes" if a[0] else "no"
        elif fn in ("equal_integer", "less_than", "greater_than"):
            r = "yes" if {"equal_integer": a[0] == a[1], "less_than": a[0] < a[1],
                          "greater_than": a[0] > a[1]}[fn] else "no"
        else:
            kind, attr = fn.split("_", 1)
            if kind == "filter":
                r = frozenset(o for o in a[0] if objs[o][attr] == vals[0])
            elif kind == "same":
                r = frozenset(o for o in range(len(objs)) if o != a[0] and objs[o][attr] == objs[a[0]][attr])
            elif kind == "query":
                r = objs[a[0]][attr]
            elif kind == "equal":
                r = "yes" if a[0] == a[1] else "no"
            else:
                raise AssertionError(fn)
        memo[k] = r
        return r

    return str(ev(len(program) - 1))


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture
def scenes(shared_data):
    return json.loads((shared_data / SCENES).read_text())["scenes"]


_CACHE = {}


@pytest.fixture
def generated(scenes):
    """Questions for the first 200 real scenes (generated once per session)."""
    if "qs" not in _CACHE:
        _CACHE["qs"] = generate_questions(scenes[:200], per_scene=10, seed=0, progress=False)
    return _CACHE["qs"]


# -- tests ---------------------------------------------------------------------------------------------------------
def test_relations_from_coordinates_match_scene_lists(scenes):
    """Validates the checker's relation rule against the stored lists on all 1,000 real scenes."""
    for scene in scenes:
        for rel, lists in scene["relationships"].items():
            for i, lst in enumerate(lists):
                assert related(scene, rel, i) == frozenset(lst), (scene["image_index"], rel, i)


def _p(*nodes):
    return [{"function": f, "inputs": i, "value_inputs": v} for f, i, v in nodes]


# scene 0 of CLEVR v1.0 train, read by hand: 0 large blue rubber cube, 1 large green metal cylinder,
# 2 small cyan rubber cube, 3 large brown metal cylinder, 4 small gray rubber cube, 5 large brown metal sphere
HAND = [
    ("how many cubes", _p(("scene", [], []), ("filter_shape", [0], ["cube"]), ("count", [1], [])), "3"),
    ("is there a red thing", _p(("scene", [], []), ("filter_color", [0], ["red"]), ("exist", [1], [])), "no"),
    ("what color is the sphere",
     _p(("scene", [], []), ("filter_shape", [0], ["sphere"]), ("unique", [1], []), ("query_color", [2], [])), "brown"),
    ("how many things left of the cyan cube",
     _p(("scene", [], []), ("filter_color", [0], ["cyan"]), ("unique", [1], []), ("relate", [2], ["left"]),
        ("count", [3], [])), "4"),
    ("more cubes than cylinders",
     _p(("scene", [], []), ("filter_shape", [0], ["cube"]), ("count", [1], []), ("scene", [], []),
        ("filter_shape", [3], ["cylinder"]), ("count", [4], []), ("greater_than", [2, 5], [])), "yes"),
    ("green cylinder same material as the sphere",
     _p(("scene", [], []), ("filter_color", [0], ["green"]), ("unique", [1], []), ("scene", [], []),
        ("filter_shape", [3], ["sphere"]), ("unique", [4], []), ("query_material", [2], []),
        ("query_material", [5], []), ("equal_material", [6, 7], [])), "yes"),
    ("how many other things are the same size as the cyan cube",
     _p(("scene", [], []), ("filter_color", [0], ["cyan"]), ("unique", [1], []), ("same_size", [2], []),
        ("count", [3], [])), "1"),
    ("what shape is the brown thing in front of the blue cube",
     _p(("scene", [], []), ("filter_color", [0], ["blue"]), ("unique", [1], []), ("relate", [2], ["front"]),
        ("filter_color", [3], ["brown"]), ("unique", [4], []), ("query_shape", [5], [])), None),  # 3 and 5: invalid
    ("big rubber things or cylinders",
     _p(("scene", [], []), ("filter_size", [0], ["large"]), ("filter_material", [1], ["rubber"]), ("scene", [], []),
        ("filter_shape", [3], ["cylinder"]), ("union", [2, 4], []), ("count", [5], [])), "3"),
]


@pytest.mark.parametrize("name,program,answer", HAND, ids=[h[0] for h in HAND])
def test_hand_checked_programs_on_real_scene_0(scenes, name, program, answer):
    scene = scenes[0]
    if answer is None:
        with pytest.raises(ProgramFailure):
            execute_program(program, scene)
        with pytest.raises(Invalid):
            check(program, scene)
    else:
        assert answer_str(execute_program(program, scene)[-1]) == answer
        assert check(program, scene) == answer


def test_template_expansion_and_family_order():
    ts = load_templates()
    assert len(ts) == 90
    files = [t["template_filename"] for t in ts]
    assert files == sorted(files)  # families follow sorted file names
    assert files.index("zero_hop.json") == 84 and files.count("same_relate.json") == 28
    count_t = ts[84]  # zero_hop: "How many <Z> <C> <M> <S>s are there?"
    assert count_t["nodes"][-1]["type"] == "filter_count"
    prog = expand_program(count_t, {"<Z>": "", "<C>": "red", "<M>": "", "<S>": "cube"})
    assert prog == _p(("scene", [], []), ("filter_color", [0], ["red"]), ("filter_shape", [1], ["cube"]),
                      ("count", [2], []))


def test_every_generated_question_checks_out(generated, scenes):
    official_words = set(json.loads((RES / "vocab.json").read_text())["question_token_to_idx"])
    official_words = {w.lower() for w in official_words}
    for q in generated:
        scene = scenes[q["image_index"]]
        assert check(q["program"], scene) == q["answer"], q["question"]
        words = re.findall(r"[A-Za-z]+|;", q["question"])
        assert set(w.lower() for w in words) <= official_words, q["question"]
        assert "<" not in q["question"] and "[" not in q["question"] and "  " not in q["question"]
        assert q["image_filename"] == scene["image_filename"] and q["split"] == "train"
        assert 0 <= q["question_family_index"] < 90


def test_constraints_hold(generated, scenes):
    """NULL: a queried object is never described by the queried attribute. OUT_NEQ: compared objects differ."""
    for q in generated:
        prog = q["program"]
        last = prog[-1]["function"]
        if last.startswith("query_"):
            attr = last[6:]
            k = prog[-1]["inputs"][0]  # the unique node
            k = prog[k]["inputs"][0]
            while prog[k]["function"].startswith("filter_"):
                assert prog[k]["function"] != f"filter_{attr}", q["question"]
                k = prog[k]["inputs"][0]
        if last.startswith("equal_") and last != "equal_integer":
            a, b = (prog[i]["inputs"][0] for i in prog[-1]["inputs"])
            sub_a = prog[: a + 1]
            sub_b = prog[: b + 1]
            oa = execute_program(sub_a, scenes[q["image_index"]])[-1]
            ob = execute_program(sub_b, scenes[q["image_index"]])[-1]
            assert oa != ob, q["question"]


def test_all_families_and_balance(generated):
    fams = collections.Counter(q["question_family_index"] for q in generated)
    assert set(fams) == set(range(90))
    assert len(generated) >= 1800  # ~10 per scene
    by = collections.defaultdict(collections.Counter)
    for q in generated:
        last = q["program"][-1]["function"]
        kind = ("count" if last == "count" else "exist" if last == "exist"
                else "compare_numbers" if last in ("equal_integer", "less_than", "greater_than")
                else "query" if last.startswith("query_") else "compare_attribute")
        by[kind][q["answer"]] += 1
    for kind in ("exist", "compare_numbers", "compare_attribute"):
        yes = by[kind]["yes"] / sum(by[kind].values())
        assert 0.35 <= yes <= 0.65, (kind, by[kind])
    assert set(by["exist"]) == {"yes", "no"}
    count_top = by["count"].most_common(1)[0][1] / sum(by["count"].values())
    assert count_top <= 0.3 and len(by["count"]) >= 6, by["count"]
    assert by["query"].most_common(1)[0][1] / sum(by["query"].values()) <= 0.2, by["query"]
    assert len(by["query"]) == 15  # 8 colours + 3 shapes + 2 materials + 2 sizes


def test_deterministic_by_seed(scenes):
    a = generate_questions(scenes[:15], per_scene=5, seed=1, progress=False)
    b = generate_questions(scenes[:15], per_scene=5, seed=1, progress=False)
    c = generate_questions(scenes[:15], per_scene=5, seed=2, progress=False)
    assert a == b
    assert [q["question"] for q in a] != [q["question"] for q in c]
    assert all(len({q["question"] for q in a if q["image_index"] == i}) ==
               sum(q["image_index"] == i for q in a) for i in range(15))  # no repeats within an image


def test_output_is_pinned(generated):
    # The exact questions for the first 200 real scenes, seed 0: generated data sets (and the reports trained on
    # them) stay reproducible across refactors of the search. The hash was checked equal for the uncached search
    # (commit 9566ab6) and the cached one. Change it only with a deliberate, documented change of the generator.
    digest = hashlib.sha256(json.dumps(generated, sort_keys=True).encode()).hexdigest()
    assert digest == "f40c82b200ec20610f68cdb7356f138467a584f3a9abf94d63063cc438a57b46"
