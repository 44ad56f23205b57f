"""CLEVR question generation from the 9 official template files (90 question families), written from the templates'
documented semantics (not a copy of the official generator).

Families. ``question_family_index`` numbers the templates 0..89 in *sorted file-name order*, then in file order:

    compare_integer 0-8, comparison 9-24, one_hop 25-30, same_relate 31-58, single_and 59-63,
    single_or 64-71, three_hop 72-77, two_hop 78-83, zero_hop 84-89

(this is our order; the released CLEVR v1.0 files number families in the order their generator listed the files).

Instantiating a template on a scene:

- The template nodes are searched depth-first in order. A node with side inputs (``filter*``, ``relate_filter*``,
  ``relate``) enumerates every value combination of its parameters - size/colour/material/shape or empty, and a
  relation for ``<R>`` - honouring ``NULL`` constraints (the parameter must stay empty, e.g. no shape in "what shape
  is the <S>"). Candidates are grouped by the output they produce; groups are tried in random order and each group is
  written with one random description (first a random number of named attributes, then a random combination).
- Rejected: ``*unique`` nodes that do not see exactly one object; a filter that names a value but removes nothing
  (redundant); ``OUT_NEQ`` constraints: the two nodes must select different objects / object sets (for
  ``filter_count``-like nodes we compare the filtered sets, not the counts, so "equal number of A and B" stays
  answerable with yes);
  an answer already over-represented in its family (below); the same question text twice for one image.
- Answer balance: per family we keep answer counts; an answer is refused when its count exceeds
  ``1.1 * m + 2`` where ``m`` is the lower median of the family's answer counts, taken over every possible answer
  for yes/no and attribute questions and over the answers seen so far for counts. The search
  then backtracks to find another answer (bounded by ``max_steps`` node visits per attempt).
- Text: a random text variant; ``[optional words]`` kept with probability 1/2; empty shape -> "thing"/"object";
  synonyms from ``synonyms.json`` for shapes, sizes, materials and relations ("left" -> "left of" | "to the left
  of" | ...); "a" -> "an" before a vowel.
- Per image, families are tried least-used first (random tie break), so all 90 families appear over a few hundred
  scenes. The program is expanded to primitive functions (``filter_unique`` -> ``filter_size``, ``filter_color``,
  ..., ``unique``) and written with the CLEVR v1.0 keys ``function`` / ``inputs`` / ``value_inputs``.

Determinism: each scene draws from ``np.random.default_rng([seed, image_index])``; the answer-balance and family
counts carry over from one scene to the next, so the output depends on the seed and the order of the scenes.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

import numpy as np

from relnet.tasks.clevr.programs import (
    ATTRIBUTES,
    RESOURCES,
    ProgramFailure,
    answer_str,
    attribute_values,
    execute_program,
    relations,
)

# parameter type in templates -> scene attribute
_PARAM_ATTR = {"Size": "size", "Color": "color", "Material": "material", "Shape": "shape"}
_FILTER_TYPES = {"filter", "filter_unique", "filter_count", "filter_exist"}
_RELATE_FILTER_TYPES = {"relate_filter", "relate_filter_unique", "relate_filter_count", "relate_filter_exist"}
_VOWEL_RE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


@lru_cache(maxsize=None)
def load_templates() -> tuple[dict, ...]:
    """The 90 templates in family order; each gets ``family_index``, ``template_filename``, ``template_index``."""
    out = []
    for path in sorted((RESOURCES / "templates").glob("*.json")):
        for i, t in enumerate(json.loads(path.read_text())):
            t = dict(t)
            t["family_index"] = len(out)
            t["template_filename"] = path.name
            t["template_index"] = i
            out.append(t)
    return tuple(out)


@lru_cache(maxsize=None)
def synonyms() -> dict[str, list[str]]:
    return json.loads((RESOURCES / "synonyms.json").read_text())


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


class _SceneIndex:
    """Bitmask views of one scene: per attribute value, per relation and object, per 'same attribute' object."""

    def __init__(self, scene: dict) -> None:
        objs = scene["objects"]
        self.n = len(objs)
        self.all = (1 << self.n) - 1
        vals = attribute_values()
        self.value_mask = {
            a: {v: sum(1 << i for i, o in enumerate(objs) if o[a] == v) for v in vals[a]} for a in ATTRIBUTES
        }
        self.rel = {r: [sum(1 << j for j in scene["relationships"][r][i]) for i in range(self.n)] for r in relations()}
        self.same = {
            a: [sum(1 << j for j, p in enumerate(objs) if j != i and p[a] == o[a]) for i, o in enumerate(objs)]
            for a in ATTRIBUTES
        }
        self.objects = objs
        # every (size, color, material, shape) combination, "" = unspecified -> mask
        choices = [("",) + vals[a] for a in ATTRIBUTES]
        self.combos: list[tuple[tuple[str, ...], int]] = []
        for combo in itertools.product(*choices):
            m = self.all
            for a, v in zip(ATTRIBUTES, combo):
                if v:
                    m &= self.value_mask[a][v]
            self.combos.append((combo, m))
        self._allowed: dict[tuple[bool, ...], list[tuple[tuple[str, ...], int, int]]] = {}

    def allowed_combos(self, nulls: tuple[bool, ...]) -> list[tuple[tuple[str, ...], int, int]]:
        """(combo, mask, how many values it names) for the combos that leave every NULL parameter empty."""
        got = self._allowed.get(nulls)
        if got is None:
            got = self._allowed[nulls] = [(combo, m, sum(map(bool, combo))) for combo, m in self.combos
                                          if not any(v and nl for v, nl in zip(combo, nulls))]
        return got


@dataclass
class _Balance:
    """Per-family answer counts and family usage counts, carried across scenes."""

    answers: list[dict[str, int]] = field(default_factory=lambda: [dict() for _ in range(len(load_templates()))])
    family_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(load_templates()), dtype=np.int64))
    ratio: float = 1.1
    slack: int = 2

    def allows(self, family: int, answer: str, domain: tuple[str, ...] | None) -> bool:
        """``domain``: every possible answer (yes/no, attribute values) or None to use the answers seen (counts)."""
        counts = self.answers[family]
        if not counts:
            return True
        seen = sorted(counts.get(a, 0) for a in domain) if domain else sorted(counts.values())
        lower_median = seen[(len(seen) - 1) // 2]
        return counts.get(answer, 0) <= self.ratio * lower_median + self.slack

    def add(self, family: int, answer: str) -> None:
        self.answers[family][answer] = self.answers[family].get(answer, 0) + 1
        self.family_counts[family] += 1


class _Search:
    """Depth-first instantiation of one template on one scene."""

    def __init__(self, template: dict, idx: _SceneIndex, rng: np.random.Generator, balance: _Balance,
                 max_steps: int) -> None:
        self.t = template
        self.nodes = template["nodes"]
        self.idx = idx
        self.rng = rng
        self.balance = balance
        self.max_steps = max_steps
        self.steps = 0
        self.null = {p for c in template["constraints"] if c["type"] == "NULL" for p in c["params"]}
        self.neq: dict[int, list[int]] = {}
        self.neq_nodes: set[int] = set()
        last = self.nodes[-1]["type"]
        if last.startswith("query_"):
            self.domain: tuple[str, ...] | None = attribute_values()[last[6:]]
        elif last.endswith(("exist", "equal_integer", "less_than", "greater_than")) or last.startswith("equal_"):
            self.domain = ("yes", "no")
        else:
            self.domain = None  # counts: balance over the answers seen so far
        for c in template["constraints"]:
            if c["type"] == "OUT_NEQ":
                i, j = c["params"]
                self.neq.setdefault(max(i, j), []).append(min(i, j))
                self.neq_nodes.update((i, j))
            elif c["type"] != "NULL":
                raise ValueError(f"unknown constraint type {c['type']!r} in {template['template_filename']}")

    # -- candidates for a node with side inputs: (assignment dict, output, object-set key, values named) ---------
    def _filter_candidates(self, params: list[str], base: int, kind: str):
        """Filter ``base`` by every allowed combination; kind in set/unique/count/exist."""
        out = []
        for combo, m, named in self.idx.allowed_combos(tuple(p in self.null for p in params)):
            res = base & m
            if named and res == base:
                continue  # a filter that names a value but removes nothing is redundant
            if kind == "unique":
                if res == 0 or res & (res - 1):
                    continue
                value: Any = res.bit_length() - 1
            elif kind == "count":
                value = res.bit_count()
            elif kind == "exist":
                value = res != 0
            else:
                value = res
            out.append((dict(zip(params, combo)), value, res, named))
        return out

    def _candidates(self, node: dict, args: list) -> list[tuple[dict, Any, int, int]]:
        """(assignment, output, object-set key, attribute values named) for every allowed parameter choice."""
        t = node["type"]
        side = node["side_inputs"]
        if t in _FILTER_TYPES:
            kind = {"filter": "set", "filter_unique": "unique", "filter_count": "count", "filter_exist": "exist"}[t]
            return self._filter_candidates(side, args[0], kind)
        if t in _RELATE_FILTER_TYPES:
            kind = {"relate_filter": "set", "relate_filter_unique": "unique", "relate_filter_count": "count",
                    "relate_filter_exist": "exist"}[t]
            out = []
            for r in relations():
                for assign, value, key, named in self._filter_candidates(side[1:], self.idx.rel[r][args[0]], kind):
                    assign[side[0]] = r
                    out.append((assign, value, key, named))
            return out
        if t == "relate":
            return [({side[0]: r}, self.idx.rel[r][args[0]], self.idx.rel[r][args[0]], 0) for r in relations()]
        if t.startswith("filter_") and t[7:] in ATTRIBUTES:  # single-attribute filter, value from a parameter
            a = t[7:]
            outs = [({side[0]: v}, args[0] & self.idx.value_mask[a][v]) for v in attribute_values()[a]]
            return [(asg, m, m, 1) for asg, m in outs if m != args[0]]
        raise ValueError(f"template node type {t!r} with side inputs is not supported")

    def _plain(self, t: str, args: list) -> Any:
        """Output of a node without side inputs; raises ProgramFailure when invalid."""
        idx = self.idx
        if t == "scene":
            return idx.all
        if t == "unique":
            if args[0] == 0 or args[0] & (args[0] - 1):
                raise ProgramFailure("unique")
            return args[0].bit_length() - 1
        if t == "union":
            return args[0] | args[1]
        if t == "intersect":
            return args[0] & args[1]
        if t == "count":
            return args[0].bit_count()
        if t == "exist":
            return args[0] != 0
        if t.startswith("same_"):
            return idx.same[t[5:]][args[0]]
        if t.startswith("query_"):
            return idx.objects[args[0]][t[6:]]
        if t.startswith("equal_") or t == "equal_integer":
            return args[0] == args[1]
        if t == "less_than":
            return args[0] < args[1]
        if t == "greater_than":
            return args[0] > args[1]
        raise ValueError(f"template node type {t!r} is not supported")

    def run(self) -> tuple[dict, str] | None:
        """Return (parameter assignment, answer) or None when no valid, balanced question was found."""
        return self._dfs(0, [], [], {})

    def _dfs(self, k: int, outs: list, keys: list, assign: dict) -> tuple[dict, str] | None:
        self.steps += 1
        if self.steps > self.max_steps:
            return None
        if k == len(self.nodes):
            answer = answer_str(outs[-1])
            if not self.balance.allows(self.t["family_index"], answer, self.domain):
                return None
            return assign, answer
        node = self.nodes[k]
        args = [outs[i] for i in node["inputs"]]
        if not node.get("side_inputs"):
            try:
                value = self._plain(node["type"], args)
            except ProgramFailure:
                return None
            choices = [({}, value, value)]
        else:
            # group by output (and by object set where an OUT_NEQ constraint looks at this node)
            by_out: dict[Any, list] = {}
            exact = k in self.neq_nodes
            for a, v, key, named in self._candidates(node, args):
                by_out.setdefault((v, key) if exact else v, [v, key, []])[2].append((a, named))
            groups = list(by_out.values())
            order = self.rng.permutation(len(groups))
            choices = [(self._pick(groups[i][2]), groups[i][0], groups[i][1]) for i in order]
        for a, value, key in choices:
            if any(keys[j] == key for j in self.neq.get(k, [])):
                continue
            res = self._dfs(k + 1, outs + [value], keys + [key], {**assign, **a})
            if res is not None:
                return res
            if self.steps > self.max_steps:
                return None
        return None

    def _pick(self, assigns: list[tuple[dict, int]]) -> dict:
        """One description: a random number of named values, then a random assignment with that many.

        ``assigns``: (assignment, how many attribute values it names; relations are not counted)."""
        by_k: dict[int, list[dict]] = {}
        for a, named in assigns:
            by_k.setdefault(named, []).append(a)
        ks = sorted(by_k)
        group = by_k[ks[int(self.rng.integers(len(ks)))]]
        return group[int(self.rng.integers(len(group)))]


def expand_program(template: dict, assign: dict) -> list[dict]:
    """Template nodes + parameter values -> a primitive program (CLEVR v1.0 keys)."""
    program: list[dict] = []
    where: list[int] = []  # template node -> index of its last primitive node
    for node in template["nodes"]:
        t = node["type"]
        ins = [where[i] for i in node["inputs"]]
        side = node.get("side_inputs", [])

        def emit(fn: str, inputs: list[int], values: list[str]) -> None:
            program.append({"function": fn, "inputs": inputs, "value_inputs": values})

        if t in _RELATE_FILTER_TYPES:
            emit("relate", ins, [assign[side[0]]])
            ins, side, t = [len(program) - 1], side[1:], t[len("relate_"):]
        if t in _FILTER_TYPES:
            for p, a in zip(side, ATTRIBUTES):
                if assign.get(p):
                    emit(f"filter_{a}", ins, [assign[p]])
                    ins = [len(program) - 1]
            tail = {"filter": None, "filter_unique": "unique", "filter_count": "count", "filter_exist": "exist"}[t]
            if tail is None:  # a plain filter is its last primitive (or its input when all values are empty)
                where.append(ins[0])
                continue
            emit(tail, ins, [])
        else:
            emit(t, ins, [assign[p] for p in side])
        where.append(len(program) - 1)
    return program


def _word(value: str, rng: np.random.Generator) -> str:
    syn = synonyms().get(value)
    return syn[int(rng.integers(len(syn)))] if syn else value


def render_text(template: dict, assign: dict, rng: np.random.Generator) -> str:
    """A question string for ``template`` with ``assign`` (see the module docstring for the rules)."""
    texts = template["text"]
    text = texts[int(rng.integers(len(texts)))]
    text = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1) if rng.random() < 0.5 else "", text)
    for p in template["params"]:
        name, ptype = p["name"], p["type"]
        if name not in text:
            continue
        v = assign.get(name, "")
        if ptype == "Shape":
            v = v or "thing"
        text = text.replace(name, _word(v, rng) if v else "")
    text = " ".join(text.split())
    text = re.sub(r" ([?;,])", r"\1", text)
    text = _VOWEL_RE.sub(lambda m: m.group(1) + "n ", text)
    return text[:1].upper() + text[1:]


def generate_questions(
    scenes: Iterable[dict],
    *,
    per_scene: int = 10,
    seed: int = 0,
    max_steps: int = 400,
    progress: bool | None = None,
) -> list[dict]:
    """Generate up to ``per_scene`` questions for each scene (official scene schema), deterministic by ``seed``.

    Args:
        scenes: official scene dicts (``objects`` with size/color/material/shape, ``relationships``,
            ``image_index``, ``image_filename``, ``split``).
        per_scene: questions wanted per scene (fewer when the scene cannot support that many families).
        seed: random seed; scene ``i`` uses ``default_rng([seed, image_index])``.
        max_steps: search budget (node visits) per template attempt.
        progress: tqdm bar on stderr; ``None`` = only on a terminal.

    Returns:
        question dicts in the CLEVR v1.0 schema: ``image_index``, ``image_filename``, ``split``, ``question``,
        ``answer``, ``program`` ([{function, inputs, value_inputs}]), ``question_family_index`` (0..89, see module
        docstring), ``question_index`` (running), ``template_filename``.
    """
    from tqdm import tqdm

    templates = load_templates()
    balance = _Balance()
    scenes = list(scenes)
    out: list[dict] = []
    for scene in tqdm(scenes, desc="questions", unit="scene", disable=(None if progress is None else not progress)):
        rng = np.random.default_rng([seed, int(scene["image_index"])])
        idx = _SceneIndex(scene)
        order = np.lexsort((rng.random(len(templates)), balance.family_counts))
        texts: set[str] = set()
        got = 0
        for f in order:
            if got >= per_scene:
                break
            t = templates[int(f)]
            res = _Search(t, idx, rng, balance, max_steps).run()
            if res is None:
                continue
            assign, answer = res
            text = render_text(t, assign, rng)
            if text in texts:
                continue
            program = expand_program(t, assign)
            check = answer_str(execute_program(program, scene)[-1])
            if check != answer:  # the two evaluators disagree: a bug, never expected
                raise AssertionError(f"family {t['family_index']}: search said {answer!r}, program gives {check!r}")
            texts.add(text)
            balance.add(t["family_index"], answer)
            got += 1
            out.append({
                "image_index": int(scene["image_index"]),
                "image_filename": scene.get("image_filename", ""),
                "split": scene.get("split", ""),
                "question": text,
                "answer": answer,
                "program": program,
                "question_family_index": t["family_index"],
                "question_index": len(out),
                "template_filename": t["template_filename"],
            })
    return out
