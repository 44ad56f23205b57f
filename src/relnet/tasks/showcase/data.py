"""Relational QA about a small scene of coloured shapes: the showcase task (the seed's Chapter 7).

Scene:
    ``NUM_OBJECTS`` = 6 objects, each a (colour, shape) with ``COLORS`` = red, green, blue, yellow, orange, purple and
    ``SHAPES`` = circle, square, triangle. No two objects share both colour and shape, so "the blue circle" names at
    most one object. Positions ``(x, y)`` are in the unit square, x to the right and y DOWNWARDS (screen
    coordinates: "above" means a smaller y).

    Generated scenes keep every pair of centres at least ``min_distance`` apart (so objects do not overlap when
    drawn) and at least ``margin`` apart along each axis, and every coordinate in ``[lo, hi]``; the margin keeps the
    left/right/above/below and nearest/furthest decisions of generated questions clear of ties.

Questions (``FAMILIES``), about a referent X = "the <colour> <shape>" that is in the scene:

    family   question                                                         answer
    relate   What <color|shape> is the object <left of|right of|above|below> the X?   colour / shape / none
    extreme  What <color|shape> is the object <closest to|furthest from> the X?       colour / shape
    count    How many objects are the same <color|shape> as the X?                    0 .. 5
    exist    Is there an object <left of|right of|above|below> the X?                 yes / no

Semantics (exact):
    * "left of X" = the objects with ``x < X.x``; "the object left of X" is the one among them with the smallest
      horizontal gap ``X.x - x`` (the next object to the left in x order), whatever its height. Likewise right
      (``x > X.x``), above (``y < X.y``, smallest ``X.y - y``) and below (``y > X.y``). If no object lies on that
      side, the answer is ``none`` (relate) or ``no`` (exist).
    * closest / furthest: Euclidean distance between centres, over the objects other than X.
    * count: the OTHER objects with the same colour (or shape) as X, so 0 .. 5 ("how many objects are the same
      shape as the red circle" does not count the red circle itself).
    * Exact ties (measure zero for continuous positions; generated scenes avoid near-ties) go to the lowest object
      index.

The four seed examples of the issue (``SEED_QUESTIONS``) parse as questions of this grammar; the vocabulary of the
word-level LSTM is fixed by the grammar (``VOCAB``), and free text is validated by ``parse_question``.

Answers: ``ANSWERS`` = yes, no, none, 0..5, the 6 colours, the 3 shapes (18 classes).

Randomness: scene ``k`` of split ``s`` and its questions use only ``np.random.default_rng([seed, SPLIT_CODES[s], k])``,
so any example can be regenerated alone and the splits never share a stream. Each scene gets
``questions_per_scene`` questions, cycling through the families in order (so every family is equally frequent).
For ``exist`` the answer (yes/no) is drawn first, 50/50, and the question among those with that answer, so the
family is balanced (otherwise ~5/6 of them would be "yes").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from relnet.errors import UserError

VERSION = "v1"

COLORS = ("red", "green", "blue", "yellow", "orange", "purple")
SHAPES = ("circle", "square", "triangle")
# RGB used by the page (data only; the model sees one-hot colours).
COLOR_RGB = {"red": "#e5484d", "green": "#30a46c", "blue": "#3e63dd", "yellow": "#f5d90a", "orange": "#f76b15",
             "purple": "#8e4ec6"}
FAMILIES = ("relate", "extreme", "count", "exist")
DIRECTIONS = ("left", "right", "above", "below")
EXTREMES = ("closest", "furthest")
ATTRIBUTES = ("color", "shape")
NUM_OBJECTS = 6
MAX_COUNT = NUM_OBJECTS - 1
ANSWERS = ("yes", "no", "none", *[str(k) for k in range(MAX_COUNT + 1)], *COLORS, *SHAPES)
ANSWER_INDEX = {a: k for k, a in enumerate(ANSWERS)}
SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

SEED_QUESTIONS = (
    "What color is the object left of the blue circle?",
    "What shape is the object closest to the green square?",
    "How many objects are the same shape as the red circle?",
    "Is there an object right of the yellow triangle?",
)

_PHRASE = {"left": "left of", "right": "right of", "above": "above", "below": "below", "closest": "closest to",
           "furthest": "furthest from"}
# Every word a question can contain, fixed by the grammar; id 0 is padding.
VOCAB = ("<pad>", "what", "is", "the", "object", "objects", "of", "to", "from", "how", "many", "are", "same", "as",
         "there", "an", "left", "right", "above", "below", "closest", "furthest", *ATTRIBUTES, *COLORS, *SHAPES)
WORD_INDEX = {w: k for k, w in enumerate(VOCAB)}


# ---------------------------------------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class Question:
    """One question of the grammar. ``relation`` is a direction (relate, exist), closest/furthest (extreme) or ""."""

    family: str
    color: str  # the referent X
    shape: str
    attribute: str = ""  # color | shape (relate, extreme, count)
    relation: str = ""

    def __post_init__(self) -> None:
        ok = (
            self.family in FAMILIES
            and self.color in COLORS
            and self.shape in SHAPES
            and (self.attribute in ATTRIBUTES) == (self.family != "exist")
            and (self.family != "exist" or self.attribute == "")
            and (self.relation in DIRECTIONS if self.family in ("relate", "exist") else True)
            and (self.relation in EXTREMES if self.family == "extreme" else True)
            and (self.relation == "" if self.family == "count" else True)
        )
        if not ok:
            raise ValueError(f"not a valid question: {self!r}")

    @property
    def text(self) -> str:
        """The canonical English question."""
        x = f"the {self.color} {self.shape}"
        if self.family in ("relate", "extreme"):
            return f"What {self.attribute} is the object {_PHRASE[self.relation]} {x}?"
        if self.family == "count":
            return f"How many objects are the same {self.attribute} as {x}?"
        return f"Is there an object {_PHRASE[self.relation]} {x}?"

    def tokens(self) -> list[int]:
        return [WORD_INDEX[w] for w in tokenize(self.text)]

    def to_dict(self) -> dict[str, str]:
        return {"family": self.family, "color": self.color, "shape": self.shape, "attribute": self.attribute,
                "relation": self.relation, "text": self.text}


@dataclass
class Scene:
    """``colors (N,)`` and ``shapes (N,)`` int indices into COLORS / SHAPES, ``xy (N, 2)`` float in the unit square."""

    colors: np.ndarray
    shapes: np.ndarray
    xy: np.ndarray

    def __len__(self) -> int:
        return len(self.colors)

    def find(self, color: str, shape: str) -> int | None:
        """Index of the object with this colour and shape, or None."""
        key = (COLORS.index(color), SHAPES.index(shape))
        for k, (c, s) in enumerate(zip(self.colors.tolist(), self.shapes.tolist())):
            if (c, s) == key:
                return k
        return None

    def to_list(self) -> list[dict]:
        return [{"color": COLORS[int(c)], "shape": SHAPES[int(s)], "x": float(p[0]), "y": float(p[1])}
                for c, s, p in zip(self.colors, self.shapes, self.xy)]

    @classmethod
    def from_list(cls, objects: Sequence[dict], *, where: str = "scene") -> "Scene":
        """Build a scene from ``[{"color", "shape", "x", "y"}, ...]``; UserError naming the bad object and field."""
        if not isinstance(objects, (list, tuple)) or len(objects) != NUM_OBJECTS:
            n = len(objects) if isinstance(objects, (list, tuple)) else type(objects).__name__
            raise UserError(f"{where}: expected a list of {NUM_OBJECTS} objects, got {n}")
        colors, shapes, xy, seen = [], [], [], set()
        for k, o in enumerate(objects):
            if not isinstance(o, dict):
                raise UserError(f"{where}[{k}]: expected an object with color, shape, x, y")
            if o.get("color") not in COLORS:
                raise UserError(f"{where}[{k}].color: {o.get('color')!r} is not one of {', '.join(COLORS)}")
            if o.get("shape") not in SHAPES:
                raise UserError(f"{where}[{k}].shape: {o.get('shape')!r} is not one of {', '.join(SHAPES)}")
            for axis in ("x", "y"):
                v = o.get(axis)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= float(v) <= 1.0):
                    raise UserError(f"{where}[{k}].{axis}: expected a number in [0, 1], got {v!r}")
            key = (o["color"], o["shape"])
            if key in seen:
                raise UserError(f"{where}[{k}]: a second {o['color']} {o['shape']} (each colour+shape at most once)")
            seen.add(key)
            colors.append(COLORS.index(o["color"]))
            shapes.append(SHAPES.index(o["shape"]))
            xy.append((float(o["x"]), float(o["y"])))
        return cls(np.array(colors, dtype=np.int64), np.array(shapes, dtype=np.int64), np.array(xy, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------- parsing


def tokenize(text: str) -> list[str]:
    """Lower-case words; '?', '.', ',' dropped; 'colour' -> 'color', 'farthest' -> 'furthest'."""
    words = re.sub(r"[?.,!]", " ", text.lower()).split()
    return [{"colour": "color", "farthest": "furthest"}.get(w, w) for w in words]


_WORD = r"([a-z]+)"
_PATTERNS = (
    ("relate", re.compile(rf"^what (color|shape) is the object (left of|right of|above|below) the {_WORD} {_WORD}$")),
    ("extreme", re.compile(rf"^what (color|shape) is the object (closest to|furthest from) the {_WORD} {_WORD}$")),
    ("count", re.compile(rf"^how many objects are the same (color|shape) as the {_WORD} {_WORD}$")),
    ("exist", re.compile(rf"^is there an object (left of|right of|above|below) the {_WORD} {_WORD}$")),
)
FORMS = (
    "What color|shape is the object left of|right of|above|below the <color> <shape>?",
    "What color|shape is the object closest to|furthest from the <color> <shape>?",
    "How many objects are the same color|shape as the <color> <shape>?",
    "Is there an object left of|right of|above|below the <color> <shape>?",
)


def parse_question(text: str) -> Question:
    """Parse free text against the grammar; UserError with the supported forms if it does not fit."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("question: empty; supported forms: " + " | ".join(FORMS))
    if len(text) > 200:
        raise UserError(f"question: {len(text)} characters, at most 200")
    norm = " ".join(tokenize(text))
    for family, pattern in _PATTERNS:
        m = pattern.match(norm)
        if not m:
            continue
        groups = m.groups()
        color, shape = groups[-2], groups[-1]
        if color not in COLORS:
            raise UserError(f"question: unknown colour {color!r}; colours are {', '.join(COLORS)}")
        if shape not in SHAPES:
            raise UserError(f"question: unknown shape {shape!r}; shapes are {', '.join(SHAPES)}")
        if family in ("relate", "extreme"):
            return Question(family, color, shape, groups[0], groups[1].split()[0])
        if family == "count":
            return Question(family, color, shape, groups[0])
        return Question(family, color, shape, "", groups[0].split()[0])
    unknown = [w for w in norm.split() if w not in WORD_INDEX]
    hint = f" (unknown words: {', '.join(repr(w) for w in unknown[:5])})" if unknown else ""
    raise UserError(f"question {text.strip()!r} is not supported{hint}; supported forms: " + " | ".join(FORMS))


# ---------------------------------------------------------------------------------------------------------- answers


def answer(scene: Scene, q: Question) -> str:
    """The correct answer (a string of ``ANSWERS``) to ``q`` about ``scene`` (semantics in the module docstring)."""
    x = scene.find(q.color, q.shape)
    if x is None:
        raise UserError(f"question: the scene has no {q.color} {q.shape}")
    others = [j for j in range(len(scene)) if j != x]
    xy = scene.xy.tolist()
    values = (scene.colors if q.attribute == "color" else scene.shapes).tolist()
    names = COLORS if q.attribute == "color" else SHAPES

    if q.family in ("relate", "exist"):
        axis, sign = {"left": (0, -1), "right": (0, 1), "above": (1, -1), "below": (1, 1)}[q.relation]
        side = [(sign * (xy[j][axis] - xy[x][axis]), j) for j in others]
        side = [(g, j) for g, j in side if g > 0]  # (gap, index) of the objects on that side
        if q.family == "exist":
            return "yes" if side else "no"
        return names[values[min(side)[1]]] if side else "none"
    if q.family == "extreme":
        d = [(math.hypot(xy[j][0] - xy[x][0], xy[j][1] - xy[x][1]), j) for j in others]
        best = min(d) if q.relation == "closest" else max(d, key=lambda t: (t[0], -t[1]))
        return names[values[best[1]]]
    return str(sum(1 for j in others if values[j] == values[x]))


# -------------------------------------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class SceneParams:
    """Geometry of generated scenes (see the module docstring)."""

    num_objects: int = NUM_OBJECTS
    lo: float = 0.08
    hi: float = 0.92
    min_distance: float = 0.12
    margin: float = 0.03


def random_scene(rng: np.random.Generator, params: SceneParams = SceneParams(),
                 include: Sequence[tuple[str, str]] = ()) -> Scene:
    """A random scene; ``include`` lists (colour, shape) pairs that must be in it (the page's seed referents)."""
    n = params.num_objects
    fixed = [COLORS.index(c) * len(SHAPES) + SHAPES.index(s) for c, s in dict.fromkeys(include)]
    if len(fixed) > n:
        raise ValueError(f"cannot include {len(fixed)} objects in a scene of {n}")
    rest = [k for k in range(len(COLORS) * len(SHAPES)) if k not in fixed]
    combos = np.array(fixed + list(rng.choice(rest, size=n - len(fixed), replace=False)), dtype=np.int64)
    combos = combos[rng.permutation(n)]
    while True:  # rejection: a whole placement is redrawn when an object cannot be placed (rare)
        placed: list[list[float]] = []
        for px, py in rng.uniform(params.lo, params.hi, size=(400, 2)).tolist():
            if all(math.hypot(px - ox, py - oy) >= params.min_distance and abs(px - ox) >= params.margin
                   and abs(py - oy) >= params.margin for ox, oy in placed):
                placed.append([px, py])
                if len(placed) == n:
                    break
        if len(placed) == n:
            break
    return Scene(combos // len(SHAPES), combos % len(SHAPES), np.array(placed, dtype=np.float32))


def _clear(scene: Scene, q: Question, margin: float) -> bool:
    """Whether closest/furthest of ``q`` wins by at least ``margin`` (the axis decisions are clear by construction)."""
    if q.family != "extreme":
        return True
    x = scene.find(q.color, q.shape)
    xy = scene.xy.tolist()
    d = sorted(math.hypot(xy[j][0] - xy[x][0], xy[j][1] - xy[x][1]) for j in range(len(xy)) if j != x)
    return (d[1] - d[0] if q.relation == "closest" else d[-1] - d[-2]) >= margin


def random_question(rng: np.random.Generator, scene: Scene, family: str, margin: float = 0.03) -> Question:
    """A question of ``family`` about an object of ``scene`` (exist: yes/no balanced; extreme: no near-ties)."""
    objs = [(COLORS[int(c)], SHAPES[int(s)]) for c, s in zip(scene.colors, scene.shapes)]
    if family == "exist":
        # "no" exactly for the extreme object of each direction: the leftmost has nothing left of it, etc.
        ends = {"left": int(scene.xy[:, 0].argmin()), "right": int(scene.xy[:, 0].argmax()),
                "above": int(scene.xy[:, 1].argmin()), "below": int(scene.xy[:, 1].argmax())}
        want_no = rng.random() < 0.5
        options = [(k, r) for k in range(len(objs)) for r in DIRECTIONS if (ends[r] == k) == want_no]
        k, r = options[int(rng.integers(len(options)))]
        return Question("exist", *objs[k], "", r)
    for _ in range(100):
        c, s = objs[int(rng.integers(len(objs)))]
        a = ATTRIBUTES[int(rng.integers(2))]
        if family == "relate":
            q = Question(family, c, s, a, DIRECTIONS[int(rng.integers(4))])
        elif family == "extreme":
            q = Question(family, c, s, a, EXTREMES[int(rng.integers(2))])
        else:
            q = Question(family, c, s, a)
        if _clear(scene, q, margin):
            return q
    return q


def generate(seed: int, split: str, index: int, questions: int, params: SceneParams = SceneParams(), *,
             first_family: int = 0) -> tuple[Scene, list[Question], list[str]]:
    """Scene ``index`` of ``split`` with ``questions`` questions and their answers.

    Question ``j`` is of family ``FAMILIES[(first_family + j) % 4]``.
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    scene = random_scene(rng, params)
    qs = [random_question(rng, scene, FAMILIES[(first_family + k) % len(FAMILIES)], params.margin)
          for k in range(questions)]
    return scene, qs, [answer(scene, q) for q in qs]


# ---------------------------------------------------------------------------------------------------------- tensors


def encode(scenes: Sequence[Scene], questions: Sequence[Question]):
    """Model inputs: ``xy (B, N, 2)`` in [-1, 1], ``categorical (B, N, 2)`` long, ``tokens (B, T)``, ``lengths (B,)``."""
    import torch

    xy = torch.from_numpy(np.stack([s.xy for s in scenes]).astype(np.float32)) * 2 - 1  # (B, N, 2)
    cat = torch.from_numpy(np.stack([np.stack([s.colors, s.shapes], -1) for s in scenes]))  # (B, N, 2)
    toks = [q.tokens() for q in questions]
    T = max(len(t) for t in toks)
    tokens = torch.zeros(len(toks), T, dtype=torch.long)  # (B, T)
    for b, t in enumerate(toks):
        tokens[b, : len(t)] = torch.tensor(t)
    lengths = torch.tensor([len(t) for t in toks], dtype=torch.long)  # (B,)
    return xy, cat.long(), tokens, lengths
