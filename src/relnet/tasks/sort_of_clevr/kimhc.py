"""kimhc6028/relational-networks' Sort-of-CLEVR pickle -> relnet's arrays, so both codes can run on the same images.

kimhc6028's ``sort_of_clevr_generator.py`` writes ``data/sort-of-clevr.pickle``: ``pickle.dump((train, test))``, each
a list with one item per image. Its history has three item layouts; all are read:

    2017         (img, (rel_q, rel_a), (norel_q, norel_a))                     questions 11-d (relnet's layout)
    2018-2019    (img, (rel_q, rel_a), (norel_q, norel_a))                     questions 18-d
    2020 (HEAD)  (img, (tern_q, tern_a), (rel_q, rel_a), (norel_q, norel_a))   questions 18-d; ternary ones dropped

* ``img``: float (75, 75, 3), BGR, HWC, divided by 255, white background, drawn with OpenCV.
* 18-d question: colour one-hot 0-5, second colour 6-11 (ternary only), type 12 non-relational / 13 relational /
  14 ternary, subtype one-hot 15-17. 11-d: colour 0-5, type 6-7, subtype 8-10, relnet's own layout.
* Answers: the same 10 classes as relnet (its class 2 "rectangle" is relnet's "square").

**Scenes from pixels.** OpenCV's filled rectangle (centre +- 5) and radius-5 circle are pixel for pixel relnet's
square and circle stamps, and objects are drawn in colour order. So each object's centre and shape are recovered
exactly: the one stamp that holds every pixel of its colour and whose other pixels are all painted by later colours
(drawn over it). The recovered scenes must redraw every image exactly (:func:`recover_scenes` checks it). The stamps
were compared with OpenCV 5.1; an OpenCV that drew them otherwise would make the recovery fail with an error naming
the image, never give a wrong scene silently.

**Labels.** From the scene, relnet recomputes every answer by its rules (``data.answer_questions``). They differ from
kimhc's only in "closest" questions whose queried object is more than sqrt(999) px from every other: kimhc puts 999
on the self-distance, so there the object answers with its own shape. ``labels="fixed"`` (the default) keeps relnet's
answers; ``labels="theirs"`` keeps kimhc's, to compare with its published numbers. :func:`convert` counts the labels
that differ by subtype and how many of them that 999 rule explains; anything else would mean a different generator.

The pickle is read with an unpickler that builds only lists, tuples, numbers and NumPy arrays, never other objects.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from relnet.errors import UserError
from relnet.tasks.sort_of_clevr import data as soc

LABELS = ("fixed", "theirs")
LAYOUTS = {(3, 11): "2017", (3, 18): "2018", (4, 18): "2020"}  # (item length, question size) -> layout
_HALF = 5  # kimhc's object size: squares centre +- 5, circles of radius 5
_SELF_DISTANCE = 999  # kimhc's sentinel for the queried object's distance to itself in "closest"

# The only globals a pickle of lists of NumPy arrays needs (NumPy 1.x names the module numpy.core, 2.x numpy._core).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


def _multiarray():
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # NumPy 1.x
        return importlib.import_module("numpy.core.multiarray")


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a Sort-of-CLEVR pickle never needs")
        return getattr(np if module == "numpy" else _multiarray(), name)


def read_pickle(path: str | os.PathLike) -> tuple[list, list]:
    """``(train_items, test_items)`` from kimhc6028's pickle; UserError naming the file if it is not one."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArraysOnly(f, encoding="latin1").load()  # latin1: Python 2 pickles of arrays
    except OSError as e:
        raise UserError(f"{path}: cannot read kimhc6028 pickle ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is the file's fault
        raise UserError(f"{path}: not a kimhc6028 Sort-of-CLEVR pickle ({e})") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(s, (list, tuple)) for s in obj)):
        raise UserError(f"{path}: expected a pair (train list, test list), got {type(obj).__name__}")
    return obj[0], obj[1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------------- items


def _family(item: Any, where: str, k: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One (questions, answers) pair of an item -> ``(Q, dim)`` float, ``(Q,)`` int64."""
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise UserError(f"{where}: question block {k} is not a (questions, answers) pair")
    try:
        q = np.asarray(item[0], dtype=np.float64)
        a = np.asarray(item[1], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: question block {k} is not numeric ({e})") from None
    if q.ndim != 2 or q.shape[1] != dim or a.shape != (len(q),):
        raise UserError(f"{where}: question block {k} has questions {q.shape} and answers {a.shape}, expected "
                        f"(Q, {dim}) and (Q,)")
    return q, a


def _to_relnet(q: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """kimhc questions ``(Q, 11|18)`` -> relnet 11-bit ``(Q', 11)`` uint8 and the kept rows ``(Q,)`` bool (ternary
    questions are not kept)."""
    if not ((q == 0) | (q == 1)).all():
        raise UserError(f"{where}: question vectors must hold only 0 and 1")
    if q.shape[1] == soc.QUESTION_DIM:
        colour, family, sub = q[:, 0:6], q[:, 6:8], q[:, 8:11]
    else:
        colour, family, sub = q[:, 0:6], q[:, 12:15], q[:, 15:18]
    if not all((p.sum(1) == 1).all() for p in (colour, family, sub)):
        raise UserError(f"{where}: each question needs one colour bit, one type bit and one subtype bit")
    keep = family[:, :2].any(1)  # type 14 (ternary) has no relnet counterpart
    out = np.zeros((int(keep.sum()), soc.QUESTION_DIM), np.uint8)
    out[:, 0:6], out[:, 6:8], out[:, 8:11] = colour[keep], family[keep, :2], sub[keep]
    return out, keep


def _layout(item: Any, where: str) -> tuple[int, int]:
    """(item length, question size) of one item, checked against ``LAYOUTS``."""
    try:
        key = (len(item), np.asarray(item[-1][0][0]).shape[-1])
    except (TypeError, IndexError, KeyError):
        key = None
    if key not in LAYOUTS:
        got = f"a {type(item).__name__}" + (f" of {key[0]} with {key[1]}-d questions" if key else "")
        raise UserError(f"{where}: expected (img, relational, non-relational) with 11- or 18-d questions, or (img, "
                        f"ternary, relational, non-relational) with 18-d ones; got {got}")
    return key


def _split(items: list, name: str, path: Path, layout: tuple[int, int]) -> tuple[dict[str, np.ndarray], int]:
    """One split's items -> images (N, 75, 75, 3) uint8 RGB, questions (N, Q, 11) and kimhc's answers (N, Q),
    non-relational first as relnet stores them; and the number of ternary questions left out."""
    n = len(items)
    images = np.zeros((n, 75, 75, 3), np.uint8)
    questions, answers, ternary = [], [], 0
    for i, item in enumerate(items):
        where = f"{path}: {name} item {i}"
        found = _layout(item, where)
        if found != layout:
            raise UserError(f"{where}: layout {found} differs from the first item's {layout}")
        img = np.asarray(item[0])
        if img.shape != (75, 75, 3) or not np.issubdtype(img.dtype, np.number):
            raise UserError(f"{where}: image has shape {img.shape} and dtype {img.dtype}, expected (75, 75, 3) numbers")
        scaled = img.astype(np.float64) * (255.0 if img.dtype.kind == "f" else 1.0)
        pixels = np.rint(scaled)
        if np.abs(scaled - pixels).max() > 1e-3 or pixels.min() < 0 or pixels.max() > 255:
            raise UserError(f"{where}: image values are not 8-bit colours divided by 255")
        images[i] = pixels[:, :, ::-1]  # BGR -> RGB
        blocks = [_family(b, where, k, layout[1]) for k, b in enumerate(item[1:])]
        q = np.concatenate([b[0] for b in blocks[::-1]])  # non-relational, relational, (ternary): relnet's order
        a = np.concatenate([b[1] for b in blocks[::-1]])
        q, keep = _to_relnet(q, where)
        ternary += int((~keep).sum())
        questions.append(q)
        answers.append(a[keep])
        if len(q) != len(questions[0]):
            raise UserError(f"{where}: {len(q)} questions, item 0 has {len(questions[0])}")
    q_count = len(questions[0]) if n else 0
    qs = np.stack(questions) if n else np.zeros((0, q_count, soc.QUESTION_DIM), np.uint8)
    ans = np.stack(answers) if n else np.zeros((0, q_count), np.int64)
    if ans.size and (ans.min() < 0 or ans.max() >= soc.NUM_ANSWERS):
        raise UserError(f"{path}: {name} answers must be class indices 0..{soc.NUM_ANSWERS - 1}")
    return {"images": images, "questions": qs, "answers": ans}, ternary


# -------------------------------------------------------------------------------------------------------- scenes


def colour_map(images: np.ndarray) -> np.ndarray:
    """Each pixel's object colour: ``(N, S, S, 3)`` uint8 RGB -> ``(N, S, S)`` int8, -1 white, 0..5 ``COLORS``,
    -2 any other value."""
    weights = np.array([65536, 256, 1], np.int32)  # one int per RGB triple
    codes = images.astype(np.int32) @ weights  # (N, S, S)
    palette = np.concatenate([[0xFFFFFF], soc.COLORS.astype(np.int32) @ weights])
    order = np.argsort(palette)
    pos = np.clip(np.searchsorted(palette[order], codes), 0, len(palette) - 1)
    found = palette[order][pos] == codes
    return np.where(found, order[pos] - 1, -2).astype(np.int8)


def recover_scenes(images: np.ndarray, *, where: str = "images") -> tuple[np.ndarray, np.ndarray, int]:
    """Centres ``(N, 6, 2)`` int64 (x = column, y = row) and shapes ``(N, 6)`` uint8 of Sort-of-CLEVR images, and the
    number of objects whose pixels fit more than one stamp (the first is kept: any of them redraws the same image).

    Raises:
        UserError: a pixel of another colour, or an object that no square or circle stamp explains (names the image).
    """
    ids = colour_map(images)  # (N, S, S)
    n, size = ids.shape[:2]
    r = _HALF
    lo, hi = r, size - 1 - r
    stamps = soc._stamp_offsets(r)
    centres = np.zeros((n, soc.NUM_OBJECTS, 2), np.int64)
    shapes = np.zeros((n, soc.NUM_OBJECTS), np.uint8)
    ambiguous = 0
    for k in range(n):
        m = ids[k]
        bad = np.argwhere(m == -2)
        if len(bad):
            y, x = bad[0]
            raise UserError(f"{where} {k}: pixel (row {y}, column {x}) is neither white nor one of the 6 colours")
        for c in range(soc.NUM_OBJECTS):
            ys, xs = np.nonzero(m == c)
            if len(xs) == 0:
                raise UserError(f"{where} {k}: no {soc.COLOR_NAMES[c]} object")
            fits = []
            for cy in range(max(ys.max() - r, lo), min(ys.min() + r, hi) + 1):
                for cx in range(max(xs.max() - r, lo), min(xs.min() + r, hi) + 1):
                    for shape, off in enumerate(stamps):
                        under = m[cy + off[:, 0], cx + off[:, 1]]  # the stamp's pixels as drawn
                        if (under == c).sum() == len(xs) and ((under == c) | (under > c)).all():
                            fits.append((cx, cy, shape))
            if not fits:
                raise UserError(f"{where} {k}: the {soc.COLOR_NAMES[c]} pixels are not a 5 px square or circle "
                                f"drawn in colour order")
            ambiguous += len(fits) > 1
            centres[k, c] = fits[0][:2]
            shapes[k, c] = fits[0][2]
    if n and not np.array_equal(soc.render_images(centres, shapes, image_size=size), images):
        raise UserError(f"{where}: the recovered scenes do not redraw the images")  # unreachable by construction
    return centres, shapes, ambiguous


def kimhc_answers(centres: np.ndarray, shapes: np.ndarray, questions: np.ndarray,
                  answers: np.ndarray) -> np.ndarray:
    """What kimhc6028's generator answers: relnet's ``answers`` (``data.answer_questions`` of the same scenes and
    questions), except "closest" with the self-distance set to 999."""
    colour, subtype = soc.question_color(questions), soc.question_subtype(questions)  # (N, Q)
    d2 = ((centres[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)  # (N, 6, 6)
    d2[:, np.arange(soc.NUM_OBJECTS), np.arange(soc.NUM_OBJECTS)] = _SELF_DISTANCE
    closest = d2.argmin(-1)  # (N, 6): itself where every other object is further than sqrt(999)
    rows = np.arange(len(centres))[:, None]
    theirs = soc.SQUARE + shapes[rows, closest[rows, colour]].astype(np.int64)
    return np.where(subtype == soc.SUBTYPE_NAMES.index("closest"), theirs, answers)


# ------------------------------------------------------------------------------------------------------- convert


def convert(path: str | os.PathLike, *, labels: str = "fixed") -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Read kimhc6028's pickle at ``path`` into relnet's splits and a summary of what was found.

    Returns:
        ``({"train": arrays, "test": arrays}, summary)``: arrays in ``data``'s schema (images, questions, answers,
        centres, shapes); summary with the file's sha256, the layout, image and question counts, dropped ternary
        questions, objects fitting more than one stamp, and per split the labels that differ from relnet's by subtype
        (``changed``) and how many of those kimhc's 999 self-distance explains (``explained``).
    """
    if labels not in LABELS:
        raise UserError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    path = Path(path)
    train, test = read_pickle(path)
    if not len(train) and not len(test):
        raise UserError(f"{path}: both splits are empty")
    layout = _layout(train[0], f"{path}: train item 0") if len(train) else _layout(test[0], f"{path}: test item 0")
    summary: dict[str, Any] = {"source": str(path), "sha256": sha256(path),
                               "layout": LAYOUTS[layout], "labels": labels, "splits": {}}
    out = {}
    for name, items in (("train", train), ("test", test)):
        arrays, ternary = _split(items, name, path, layout)
        centres, shapes, ambiguous = recover_scenes(arrays["images"], where=f"{path}: {name} image")
        theirs, q = arrays["answers"], arrays["questions"]
        ours = soc.answer_questions(centres, shapes, q)
        rule = kimhc_answers(centres, shapes, q, ours)
        sub = soc.question_subtype(q)
        diff = ours != theirs
        summary["splits"][name] = {
            "images": len(items), "questions": int(theirs.size), "ternary_dropped": ternary,
            "ambiguous_objects": ambiguous,
            "changed": {s: int((diff & (sub == i)).sum()) for i, s in enumerate(soc.SUBTYPE_NAMES)},
            "explained": int((diff & (rule == theirs)).sum()),
        }
        out[name] = {**arrays, "answers": ours if labels == "fixed" else theirs, "centres": centres, "shapes": shapes}
    return out, summary


def folder_name(summary: dict) -> str:
    """Cache folder name for a converted pickle: ``kimhc-<sha256[:10]>-<labels>``."""
    return f"kimhc-{summary['sha256'][:10]}-{summary['labels']}"
