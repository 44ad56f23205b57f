"""An independent answer checker for showcase questions, written from the spec in ``data.py``'s docstring.

It does not import ``relnet``: it parses the English question with its own word-by-word reading and answers with
sorting over plain tuples, so a bug in ``data.answer`` / ``data.parse_question`` cannot hide in both.
"""

from __future__ import annotations

import math


def check(objects: list[dict], question: str) -> str:
    """``objects``: ``[{"color", "shape", "x", "y"}, ...]`` (y downwards); ``question``: canonical English."""
    words = question.lower().rstrip("?").split()
    color, shape = words[-2], words[-1]
    ref = [o for o in objects if o["color"] == color and o["shape"] == shape]
    assert len(ref) == 1, f"referent {color} {shape} not unique/present"
    X = ref[0]
    others = [o for o in objects if o is not X]
    if words[:2] == ["how", "many"]:
        attr = words[words.index("same") + 1]
        return str(len([o for o in others if o[attr] == X[attr]]))
    if words[:2] == ["is", "there"]:
        return "yes" if _side(X, others, words[4]) else "no"
    attr = words[1]
    rel = words[5]
    if rel in ("closest", "furthest"):
        ranked = sorted(others, key=lambda o: math.dist((o["x"], o["y"]), (X["x"], X["y"])))
        return (ranked[0] if rel == "closest" else ranked[-1])[attr]
    side = _side(X, others, rel)
    return side[0][attr] if side else "none"


def _side(X: dict, others: list[dict], rel: str) -> list[dict]:
    """The objects on side ``rel`` of X, nearest along that axis first."""
    key = {"left": lambda o: X["x"] - o["x"], "right": lambda o: o["x"] - X["x"],
           "above": lambda o: X["y"] - o["y"], "below": lambda o: o["y"] - X["y"]}[rel]
    return sorted([o for o in others if key(o) > 0], key=key)
