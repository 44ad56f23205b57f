"""CLEVR functional programs: the vocabulary of attributes and an executor over official scene dicts.

A *program* is a list of nodes in topological order, each ``{"function" | "type": name, "inputs": [node indices],
"value_inputs" | "side_inputs": [values]}`` (CLEVR v1.0 question files say ``function``/``value_inputs``; the
generator's templates say ``type``/``side_inputs``; both spellings are accepted). Functions (``metadata.json``):

- ``scene`` -> every object of the scene;
- ``filter_<attr>[v]`` (attr in size, color, material, shape) -> the input objects whose attr is ``v``;
- ``unique`` -> the single object of its input set; any other size makes the program *invalid*;
- ``relate[r]`` (r in left, right, behind, front) -> the objects that are ``r`` of the input object, read from the
  scene's ``relationships[r][object]`` lists (as the official generator does);
- ``same_<attr>`` -> the *other* objects sharing the input object's attr;
- ``union`` / ``intersect`` of two sets; ``count`` (int), ``exist`` (bool);
- ``query_<attr>`` -> the attr value of an object; ``equal_<attr>``, ``equal_integer``, ``less_than``,
  ``greater_than``, ``equal_object`` -> bool.

Sets are sorted lists of object indices, objects are ints. :func:`answer_str` maps the final output to the answer
token (``"yes"``/``"no"``, ``"3"``, ``"red"``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parent / "resources"

ATTRIBUTES = ("size", "color", "material", "shape")  # the order of <Z> <C> <M> <S> in the templates


class ProgramFailure(Exception):
    """The program is invalid on this scene (``unique`` did not see exactly one object, or a bad reference)."""


@lru_cache(maxsize=None)
def metadata() -> dict:
    """The official generator metadata (types and function signatures), read from the package resources."""
    return json.loads((RESOURCES / "metadata.json").read_text())


@lru_cache(maxsize=None)
def attribute_values() -> dict[str, tuple[str, ...]]:
    """``{"size": ("small", "large"), "color": (8 names), "material": (...), "shape": (...)}`` in metadata order."""
    types = metadata()["types"]
    return {a: tuple(types[a.capitalize()]) for a in ATTRIBUTES}


@lru_cache(maxsize=None)
def relations() -> tuple[str, ...]:
    return tuple(metadata()["types"]["Relation"])


def node_function(node: dict) -> str:
    """The function name of a program node, with the value folded in: ``filter_color`` + ``["red"]`` stays split."""
    fn = node.get("function", node.get("type"))
    if not isinstance(fn, str):
        raise ValueError(f"program node without a 'function'/'type': {node!r}")
    return fn


def node_values(node: dict) -> list:
    return list(node.get("value_inputs", node.get("side_inputs", [])) or [])


def _object_set(x: Any, fn: str) -> list[int]:
    if not isinstance(x, list):
        raise ProgramFailure(f"{fn} expects an object set, got {x!r}")
    return x


def _object(x: Any, fn: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ProgramFailure(f"{fn} expects one object, got {x!r}")
    return x


def execute_program(program: list[dict], scene: dict) -> list:
    """Run ``program`` on ``scene`` and return every node's output (the answer is the last one).

    Raises:
        ProgramFailure: when the program is invalid on the scene (non-unique ``unique``, unknown function, ...).
    """
    objects = scene["objects"]
    rels = scene["relationships"]
    out: list = []
    for k, node in enumerate(program):
        fn = node_function(node)
        args = []
        for i in node.get("inputs", []):
            if not (0 <= i < k):
                raise ProgramFailure(f"node {k} ({fn}) reads node {i}, which is not an earlier node")
            args.append(out[i])
        vals = node_values(node)
        if fn == "scene":
            res: Any = list(range(len(objects)))
        elif fn.startswith("filter_") and fn[7:] in ATTRIBUTES:
            attr = fn[7:]
            res = [o for o in _object_set(args[0], fn) if objects[o][attr] == vals[0]]
        elif fn == "unique":
            s = _object_set(args[0], fn)
            if len(s) != 1:
                raise ProgramFailure(f"unique saw {len(s)} objects")
            res = s[0]
        elif fn == "relate":
            res = sorted(rels[vals[0]][_object(args[0], fn)])
        elif fn.startswith("same_") and fn[5:] in ATTRIBUTES:
            attr = fn[5:]
            o = _object(args[0], fn)
            res = [j for j in range(len(objects)) if j != o and objects[j][attr] == objects[o][attr]]
        elif fn == "union":
            res = sorted(set(_object_set(args[0], fn)) | set(_object_set(args[1], fn)))
        elif fn == "intersect":
            res = sorted(set(_object_set(args[0], fn)) & set(_object_set(args[1], fn)))
        elif fn == "count":
            res = len(_object_set(args[0], fn))
        elif fn == "exist":
            res = len(_object_set(args[0], fn)) > 0
        elif fn.startswith("query_") and fn[6:] in ATTRIBUTES:
            res = objects[_object(args[0], fn)][fn[6:]]
        elif fn.startswith("equal_") and fn[6:] in ATTRIBUTES:
            res = args[0] == args[1]
        elif fn == "equal_integer":
            res = args[0] == args[1]
        elif fn == "less_than":
            res = args[0] < args[1]
        elif fn == "greater_than":
            res = args[0] > args[1]
        elif fn == "equal_object":
            res = _object(args[0], fn) == _object(args[1], fn)
        else:
            raise ProgramFailure(f"unknown function {fn!r} at node {k}")
        out.append(res)
    return out


def answer_str(value: Any) -> str:
    """The answer token of a program's final output: bools -> yes/no, ints -> decimal, names unchanged."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"a program must end in a bool, int or attribute value, got {value!r}")


def family_of_program(program: list[dict]) -> str:
    """The paper's question type from the last function: count, exist, compare_numbers, query_attribute,
    compare_attribute."""
    fn = node_function(program[-1])
    if fn == "count":
        return "count"
    if fn == "exist":
        return "exist"
    if fn in ("equal_integer", "less_than", "greater_than"):
        return "compare_numbers"
    if fn.startswith("query_"):
        return "query_attribute"
    if fn.startswith("equal_"):
        return "compare_attribute"
    raise ValueError(f"program ends in {fn!r}, which is not a CLEVR answer function")
