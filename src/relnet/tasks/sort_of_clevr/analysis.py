"""What Sort-of-CLEVR's questions need: the best answers of a reader that knows every object's colour and shape but
not where it is (``scripts/soc_position_free.py`` reports them beside trained models).

Shape and count need no position. Left and top do: without one, the more frequent answer (~50%). Closest and
furthest: positions are independent of shapes, so without them the closest (or furthest) object is any of the other
five with equal chance, and the best guess is the shape most of those five have (five is odd: always defined). With
fair, independent shapes that is right with probability E[max(k, 5 - k)] / 5, k ~ Binomial(5, 1/2), = 68.75%, so
the position-free reader scores (68.75 + 68.75 + 100) / 3 = 79.2% on the relational questions.
"""

from __future__ import annotations

import numpy as np

from relnet.tasks.sort_of_clevr import data as soc

SUBTYPES = {name: i for i, name in enumerate(soc.SUBTYPE_NAMES)}
RELATIONAL = ("closest", "furthest", "count")


def mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def majority_shape_of_others(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """For every question, the answer index of the shape most of the other five objects have: (N*Q,)."""
    shapes = arrays["shapes"].astype(np.int64)  # (N, 6), 0 square / 1 circle
    color = soc.question_color(arrays["questions"])  # (N, Q)
    circles_others = shapes.sum(1, keepdims=True) - np.take_along_axis(shapes, color, 1)  # (N, Q), of 5
    return (soc.ANSWERS.index("square") + (circles_others >= 3)).reshape(-1)


def position_free(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy per subtype of the best reader that knows colours and shapes but no positions."""
    answers = arrays["answers"].reshape(-1)
    subtype = soc.question_subtype(arrays["questions"]).reshape(-1)
    majority = majority_shape_of_others(arrays)
    out = {}
    for name, s in SUBTYPES.items():
        sel = subtype == s
        if not sel.any():
            out[name] = float("nan")
        elif name in ("shape", "count"):
            out[name] = 1.0
        elif name in ("left", "top"):
            out[name] = float(max((answers[sel] == a).mean() for a in np.unique(answers[sel])))
        else:
            out[name] = float((majority[sel] == answers[sel]).mean())
    out["relational"] = float(np.mean([out[n] for n in RELATIONAL]))
    return out


def majority_split(correct: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """A model's accuracy on the closest / furthest questions whose answer is (``_majority``) or is not
    (``_minority``) the shape most of the other five objects have: a model that reads the relation gets both right,
    the position-free reader only the first. ``correct``: (N*Q,) bool, in ``arrays`` question order."""
    correct = np.asarray(correct, dtype=bool)
    subtype = soc.question_subtype(arrays["questions"]).reshape(-1)
    is_majority = majority_shape_of_others(arrays) == arrays["answers"].reshape(-1)
    out = {}
    for name in ("closest", "furthest"):
        sel = subtype == SUBTYPES[name]
        out[f"{name}_majority"] = mean_or_nan(correct[sel & is_majority])
        out[f"{name}_minority"] = mean_or_nan(correct[sel & ~is_majority])
    return out
