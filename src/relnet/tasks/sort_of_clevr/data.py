"""Sort-of-CLEVR generator (Santoro et al. 2017, section 4; kimhc6028's generator with its "closest" bug fixed).

Scene (one per image):
    * a ``75 x 75`` RGB image, white background, exactly 6 objects, one per colour, drawn in the colour order
      red (255,0,0), green (0,255,0), blue (0,0,255), orange (255,156,0), gray (128,128,128), yellow (255,255,0);
      object ``i`` always has colour ``i``.
    * each object is a square (filled, ``centre - 5 .. centre + 5`` inclusive: 11 x 11 px) or a circle (filled,
      radius 5: the pixels with ``dx^2 + dy^2 <= 25``), 50/50.
    * integer centres ``(x = column, y = row)``, each uniform in ``[5, 69]``; a candidate whose squared distance to
      an earlier centre is ``< 10^2`` is rejected and redrawn. Objects may touch at their edges; where stamps
      overlap, the later colour wins (the centres themselves are never covered).

Questions: 10 non-relational then 10 relational per image (``questions_per_family``); colour and subtype drawn
uniformly with replacement. A question is an 11-bit vector:

    bits 0-5   colour one-hot of the queried object (order above)
    bit 6      non-relational        bit 7  relational
    bits 8-10  subtype one-hot

    family          subtype  question                                         answer
    non-relational  0        what shape is the <c> object?                    square / circle
    non-relational  1        is the <c> object on the left?  (x < 37.5)       yes / no
    non-relational  2        is the <c> object on top?       (y < 37.5)       yes / no
    relational      0        shape of the object closest to <c>?              square / circle
    relational      1        shape of the object furthest from <c>?           square / circle
    relational      2        how many objects have the shape of <c>?          1 .. 6 (including <c> itself)

Distances are squared Euclidean between centres. "Closest" ranges over the 5 OTHER objects only (kimhc6028 put a
999 sentinel on the self-distance, so in ~7% of its closest questions the queried object answered itself). Ties
(rare: equal integer squared distances) go to the first object in colour order (``argmin``/``argmax``).
``question_subtype`` flattens (family, subtype) to 0..5 = ``SUBTYPE_NAMES``.

Answers: 10 classes ``ANSWERS`` = yes, no, square, circle, 1, 2, 3, 4, 5, 6 (kimhc6028 calls class 2 "rectangle").

State descriptions (``state_objects``): per object ``[colour one-hot (6), square, circle, x, y]`` (float32, 10),
with ``x = (cx - 37) / 32`` and ``y = (cy - 37) / 32``, so centres in ``[5, 69]`` map to ``[-1, 1]``.

Randomness: image ``k`` of split ``s`` uses only ``np.random.default_rng([seed, SPLIT_CODES[s], k])`` and draws,
in order: 6 shapes; centre candidates in blocks of 32 (x, y) pairs, consumed in order until 6 are accepted; then
the colours and subtypes of the non-relational questions, then of the relational ones. So any image can be
regenerated alone (``generate_split(params, split, indices=[k])``), and train and test never share a stream.

Storage schema (one ``.npz`` per split, and the dict ``generate_split`` returns), N images, Q = 2 * 10 questions:

    images     uint8  (N, 75, 75, 3)   RGB, HWC
    questions  uint8  (N, Q, 11)       first Q/2 non-relational, then Q/2 relational
    answers    int64  (N, Q)           index into ANSWERS
    centres    int64  (N, 6, 2)        (x = column, y = row) of object i (colour i)
    shapes     uint8  (N, 6)           0 square, 1 circle

Cache layout: ``<root>/sort_of_clevr/<VERSION>-<params.key()>/{train,test}.npz`` (compressed: the default set is
about 2 MB) plus ``params.json``; ``root``
defaults to ``$RELNET_DATA`` or ``./data``. The key hashes VERSION and every field of ``SortOfClevrParams``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from relnet.errors import UserError

VERSION = "v1"

COLORS = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 156, 0], [128, 128, 128], [255, 255, 0]], dtype=np.uint8
)  # (6, 3) RGB, object i has colour i
COLOR_NAMES = ("red", "green", "blue", "orange", "gray", "yellow")
SHAPE_NAMES = ("square", "circle")
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
SUBTYPE_NAMES = ("shape", "left", "top", "closest", "furthest", "count")
SPLITS = ("train", "test")
SPLIT_CODES = {"train": 0, "test": 1}

NUM_OBJECTS = len(COLOR_NAMES)
QUESTION_DIM = 11
NUM_ANSWERS = len(ANSWERS)
YES, NO, SQUARE, CIRCLE, COUNT_1 = 0, 1, 2, 3, 4  # answer indices; count n -> COUNT_1 + n - 1

_CANDIDATES = 32  # centre candidates drawn per block (part of the documented stream; changing it needs a new VERSION)
_MAX_BLOCKS = 1000  # give up placing objects after this many blocks (only reachable with a too small image)


@dataclass(frozen=True)
class SortOfClevrParams:
    """Everything that determines the generated data (hashed into the cache key).

    Args:
        train_images: images in the train split (paper: 9,800).
        test_images: images in the test split (paper: 200 held out).
        seed: non-negative base seed; image k of split s uses ``default_rng([seed, SPLIT_CODES[s], k])``.
        image_size: side of the square image in pixels.
        object_size: half-side of a square and radius of a circle.
        min_distance: centres closer than this (Euclidean) are rejected.
        questions_per_family: questions per image of each family (non-relational, relational).

    Raises:
        UserError: a field is out of range (the message names it).
    """

    train_images: int = 9800
    test_images: int = 200
    seed: int = 1
    image_size: int = 75
    object_size: int = 5
    min_distance: int = 10
    questions_per_family: int = 10

    def __post_init__(self) -> None:
        lower = {"train_images": 1, "test_images": 0, "seed": 0, "image_size": 1, "object_size": 0,
                 "min_distance": 0, "questions_per_family": 1}
        for name, low in lower.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise UserError(f"Sort-of-CLEVR parameter {name} must be an integer, got {value!r}")
            if value < low:
                raise UserError(f"Sort-of-CLEVR parameter {name} must be at least {low}, got {value}")
        if self.image_size < 2 * self.object_size + 1:
            raise UserError(f"Sort-of-CLEVR parameter image_size={self.image_size} is too small for "
                            f"object_size={self.object_size} (needs at least {2 * self.object_size + 1})")

    def key(self) -> str:
        """Short hash of VERSION and every field: the cache folder name is ``f"{VERSION}-{key}"``."""
        blob = json.dumps({"version": VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in dataclasses.asdict(self).items()}

    def num_images(self, split: str) -> int:
        _check_split(split)
        return self.train_images if split == "train" else self.test_images


# ----------------------------------------------------------------------------------------------------------- helpers


def _check_split(split: str) -> None:
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _stamp_offsets(object_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) offsets of a square's and a circle's pixels relative to the centre: two ``(P, 2)`` int arrays."""
    r = np.arange(-object_size, object_size + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    square = np.stack([dy.ravel(), dx.ravel()], axis=1)  # (11*11, 2)
    inside = (dy**2 + dx**2).ravel() <= object_size**2
    return square, square[inside]  # circle: (81, 2) for object_size 5


def encode_question(color: int, subtype: int) -> np.ndarray:
    """The 11-bit vector (uint8) asking ``SUBTYPE_NAMES[subtype]`` (0..5) about object/colour ``color`` (0..5)."""
    if not (0 <= color < NUM_OBJECTS and 0 <= subtype < len(SUBTYPE_NAMES)):
        raise ValueError(f"color must be in 0..5 and subtype in 0..5, got color={color}, subtype={subtype}")
    q = np.zeros(QUESTION_DIM, dtype=np.uint8)
    q[color] = 1
    q[6 + subtype // 3] = 1
    q[8 + subtype % 3] = 1
    return q


def _decode(questions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(..., 11)`` question vectors -> (colour ``(...)``, flat subtype 0..5 ``(...)``); ValueError if malformed."""
    q = np.asarray(questions)
    if q.shape[-1:] != (QUESTION_DIM,):
        raise ValueError(f"questions must have a last dimension of {QUESTION_DIM}, got shape {q.shape}")
    parts = (q[..., 0:6], q[..., 6:8], q[..., 8:11])
    if not all(((p == 0) | (p == 1)).all() and (p.sum(-1) == 1).all() for p in parts):
        raise ValueError("each question needs one colour bit (0-5), one family bit (6-7) and one subtype bit (8-10)")
    color, family, sub = (p.argmax(-1) for p in parts)
    return color, 3 * family + sub


def question_subtype(questions: np.ndarray) -> np.ndarray:
    """Flat subtype of each question, 0..5 = ``SUBTYPE_NAMES`` (0-2 non-relational, 3-5 relational).

    Shapes:
        questions ``(..., 11)`` -> ``(...)`` int64.
    """
    return _decode(questions)[1].astype(np.int64)


def question_color(questions: np.ndarray) -> np.ndarray:
    """Index of the queried colour/object (0..5) of each question. Shapes: ``(..., 11)`` -> ``(...)`` int64."""
    return _decode(questions)[0].astype(np.int64)


def describe_question(question: np.ndarray | Sequence[int]) -> str:
    """English rendering of one 11-bit question, e.g. ``"What shape is the object closest to the red object?"``."""
    color, subtype = _decode(np.asarray(question).reshape(-1)[None])
    c = COLOR_NAMES[int(color[0])]
    return (
        f"What shape is the {c} object?",
        f"Is the {c} object on the left?",
        f"Is the {c} object on top?",
        f"What shape is the object closest to the {c} object?",
        f"What shape is the object furthest from the {c} object?",
        f"How many objects have the same shape as the {c} object?",
    )[int(subtype[0])]


# ---------------------------------------------------------------------------------------------------------- renderer


def render_images(centres: np.ndarray, shapes: np.ndarray, *, image_size: int = 75, object_size: int = 5) -> np.ndarray:
    """Draw scenes: white background, object i in ``COLORS[i]``, later objects over earlier ones.

    Vectorised over images: one fancy-index paste per (object, shape), no per-pixel loop.

    Shapes:
        centres ``(N, 6, 2)`` int (x, y), shapes ``(N, 6)`` (0 square, 1 circle) -> images ``(N, S, S, 3)`` uint8.
    """
    centres = np.asarray(centres, dtype=np.int64)
    shapes = np.asarray(shapes)
    n = centres.shape[0]
    if centres.shape != (n, NUM_OBJECTS, 2) or shapes.shape != (n, NUM_OBJECTS):
        raise ValueError(f"expected centres (N, 6, 2) and shapes (N, 6), got {centres.shape} and {shapes.shape}")
    lo, hi = centres.min(initial=object_size), centres.max(initial=object_size)
    if lo < object_size or hi > image_size - 1 - object_size:
        raise ValueError(f"centres must lie in [{object_size}, {image_size - 1 - object_size}], got [{lo}, {hi}]")
    images = np.full((n, image_size, image_size, 3), 255, dtype=np.uint8)  # (N, S, S, 3)
    stamps = _stamp_offsets(object_size)
    for i in range(NUM_OBJECTS):  # colour order: later objects overwrite earlier ones where stamps touch
        for shape, offsets in enumerate(stamps):
            sel = np.flatnonzero(shapes[:, i] == shape)  # (M,)
            rows = centres[sel, i, 1, None] + offsets[None, :, 0]  # (M, P)
            cols = centres[sel, i, 0, None] + offsets[None, :, 1]  # (M, P)
            images[sel[:, None], rows, cols] = COLORS[i]
    return images


# ------------------------------------------------------------------------------------------------------------ labels


def answer_questions(centres: np.ndarray, shapes: np.ndarray, questions: np.ndarray, *,
                     image_size: int = 75) -> np.ndarray:
    """Ground-truth answer index (into ``ANSWERS``) of each question about each scene (rules in the module docstring).

    Shapes:
        centres ``(N, 6, 2)``, shapes ``(N, 6)``, questions ``(N, Q, 11)`` -> answers ``(N, Q)`` int64.
    """
    centres = np.asarray(centres, dtype=np.int64)
    shapes = np.asarray(shapes, dtype=np.int64)
    color, subtype = _decode(questions)  # (N, Q), (N, Q)
    n = centres.shape[0]
    diff = centres[:, :, None, :] - centres[:, None, :, :]  # (N, 6, 6, 2)
    d2 = (diff**2).sum(-1).astype(np.float64)  # (N, 6, 6) squared distances
    furthest = d2.argmax(-1)  # (N, 6) self has distance 0 < any other, never chosen
    d2[:, np.arange(NUM_OBJECTS), np.arange(NUM_OBJECTS)] = np.inf  # closest ranges over the OTHER objects only
    closest = d2.argmin(-1)  # (N, 6) first index wins ties
    same = (shapes[:, :, None] == shapes[:, None, :]).sum(-1)  # (N, 6) including itself, 1..6

    rows = np.arange(n)[:, None]  # (N, 1)
    half = image_size / 2
    x, y = centres[rows, color, 0], centres[rows, color, 1]  # (N, Q)
    table = np.stack(
        [
            SQUARE + shapes[rows, color],  # shape
            np.where(x < half, YES, NO),  # left
            np.where(y < half, YES, NO),  # top
            SQUARE + shapes[rows, closest[rows, color]],  # closest
            SQUARE + shapes[rows, furthest[rows, color]],  # furthest
            COUNT_1 - 1 + same[rows, color],  # count
        ]
    )  # (6, N, Q)
    return np.take_along_axis(table, subtype[None], axis=0)[0].astype(np.int64)


def state_objects(centres: np.ndarray, shapes: np.ndarray, *, image_size: int = 75, object_size: int = 5) -> np.ndarray:
    """State-description objects of the same scenes: ``[colour one-hot (6), square, circle, x, y]`` per object.

    ``x = (cx - c0) / (c0 - object_size)`` with ``c0 = (image_size - 1) / 2`` (75, 5: ``(cx - 37) / 32``), so the
    centre range maps to [-1, 1]; the same for y (row, downwards).

    Shapes:
        centres ``(N, 6, 2)``, shapes ``(N, 6)`` -> objects ``(N, 6, 10)`` float32.
    """
    centres = np.asarray(centres, dtype=np.float64)
    shapes = np.asarray(shapes, dtype=np.int64)
    n = centres.shape[0]
    c0 = (image_size - 1) / 2
    span = max(c0 - object_size, 1.0)
    out = np.zeros((n, NUM_OBJECTS, NUM_OBJECTS + 4), dtype=np.float32)  # (N, 6, 10)
    out[:, :, :NUM_OBJECTS] = np.eye(NUM_OBJECTS, dtype=np.float32)
    out[:, :, NUM_OBJECTS : NUM_OBJECTS + 2] = np.eye(2, dtype=np.float32)[shapes]
    out[:, :, NUM_OBJECTS + 2 :] = (centres - c0) / span
    return out


# --------------------------------------------------------------------------------------------------------- generator


def _sample_scene(rng: np.random.Generator, params: SortOfClevrParams, shapes: np.ndarray, centres: np.ndarray,
                  questions: np.ndarray) -> None:
    """Draw one image's scene and questions from ``rng`` into the given row views (order: module docstring)."""
    shapes[:] = rng.integers(0, 2, size=NUM_OBJECTS)
    lo, hi = params.object_size, params.image_size - 1 - params.object_size
    min_d2 = params.min_distance**2
    placed: list[tuple[int, int]] = []
    for _ in range(_MAX_BLOCKS):
        for x, y in rng.integers(lo, hi + 1, size=(_CANDIDATES, 2)).tolist():
            if all((x - px) ** 2 + (y - py) ** 2 >= min_d2 for px, py in placed):
                placed.append((x, y))
                if len(placed) == NUM_OBJECTS:
                    break
        if len(placed) == NUM_OBJECTS:
            break
    else:
        raise UserError(f"Sort-of-CLEVR: cannot place {NUM_OBJECTS} objects {params.min_distance} px apart in a "
                        f"{params.image_size} px image (image_size={params.image_size}, min_distance="
                        f"{params.min_distance}); use a larger image_size or a smaller min_distance")
    centres[:] = placed
    q = params.questions_per_family
    for family in range(2):
        color = rng.integers(0, NUM_OBJECTS, size=q)
        sub = rng.integers(0, 3, size=q)
        block = questions[family * q : (family + 1) * q]  # (q, 11) view
        block[np.arange(q), color] = 1
        block[:, 6 + family] = 1
        block[np.arange(q), 8 + sub] = 1


def generate_split(params: SortOfClevrParams, split: str, indices: Sequence[int] | np.ndarray | None = None,
                   *, progress: bool = False) -> dict[str, np.ndarray]:
    """Generate images ``indices`` (default: all ``params.num_images(split)``) of ``split`` ("train" or "test").

    Image k depends only on (params, split, k), so ``generate_split(p, s, [k])`` equals row k of the full split.

    Returns:
        dict with ``images, questions, answers, centres, shapes`` (schema in the module docstring).
    """
    _check_split(split)
    if indices is None:
        indices = np.arange(params.num_images(split))
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if (indices < 0).any():
        raise ValueError("image indices must be non-negative")
    n, q = len(indices), 2 * params.questions_per_family
    shapes = np.zeros((n, NUM_OBJECTS), dtype=np.uint8)  # (N, 6)
    centres = np.zeros((n, NUM_OBJECTS, 2), dtype=np.int64)  # (N, 6, 2)
    questions = np.zeros((n, q, QUESTION_DIM), dtype=np.uint8)  # (N, Q, 11)
    rows = enumerate(indices.tolist())
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, total=n, desc=f"sort-of-clevr {split}", unit="img", leave=False)
    code = SPLIT_CODES[split]
    for row, k in rows:
        rng = np.random.default_rng([params.seed, code, k])
        _sample_scene(rng, params, shapes[row], centres[row], questions[row])
    return {
        "images": render_images(centres, shapes, image_size=params.image_size, object_size=params.object_size),
        "questions": questions,
        "answers": answer_questions(centres, shapes, questions, image_size=params.image_size),
        "centres": centres,
        "shapes": shapes,
    }


# ------------------------------------------------------------------------------------------------------------- cache


def default_root() -> Path:
    """``$RELNET_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("RELNET_DATA") or "data")


def cache_dir(params: SortOfClevrParams, root: str | os.PathLike | None = None) -> Path:
    """``<root>/sort_of_clevr/<VERSION>-<params.key()>``."""
    return Path(root if root is not None else default_root()) / "sort_of_clevr" / f"{VERSION}-{params.key()}"


FIELDS = ("images", "questions", "answers", "centres", "shapes")


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One split file in the storage schema above, checked field by field; UserError naming the file and field."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [name for name in FIELDS if name not in z.files]
            if missing:
                raise UserError(f"{path}: not a Sort-of-CLEVR split: no field {missing[0]!r}")
            arrays = {name: z[name] for name in FIELDS}
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: unreadable Sort-of-CLEVR split ({e})") from None
    images, questions = arrays["images"], arrays["questions"]
    n = len(images)
    expected = {"images": (n, *images.shape[1:3], 3), "questions": (n, *questions.shape[1:2], QUESTION_DIM),
                "answers": (n, *questions.shape[1:2]), "centres": (n, NUM_OBJECTS, 2), "shapes": (n, NUM_OBJECTS)}
    for name, shape in expected.items():
        if arrays[name].ndim != len(shape) or arrays[name].shape != shape:
            raise UserError(f"{path}: field {name!r} has shape {arrays[name].shape}, expected {shape} "
                            f"({n} images, {questions.shape[1:2] or '?'} questions each)")
    if images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        raise UserError(f"{path}: field 'images' must be square uint8 RGB, got {images.dtype} {images.shape}")
    try:
        _decode(questions)
    except ValueError as e:
        raise UserError(f"{path}: field 'questions': {e}") from None
    if arrays["answers"].size and not (0 <= arrays["answers"].min() and arrays["answers"].max() < NUM_ANSWERS):
        raise UserError(f"{path}: field 'answers' must hold class indices 0..{NUM_ANSWERS - 1}")
    return arrays


def load_folder(folder: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, np.ndarray]]:
    """``{split: arrays}`` for ``splits`` from ``<folder>/{train,test}.npz`` in the storage schema: a cache folder, or
    the one ``relnet data sort-of-clevr --from-kimhc`` writes. Only the files of ``splits`` are read, but the folder
    must hold train.npz. A missing test file gives an empty test split shaped like train's (train.npz is then read
    for its shapes)."""
    folder = Path(folder)
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: a Sort-of-CLEVR data folder holds {', '.join(SPLITS)}")
    if not (folder / "train.npz").is_file():
        raise UserError(f"{folder}: no train.npz (a Sort-of-CLEVR data folder holds train.npz and test.npz)")
    out = {split: read_npz(folder / f"{split}.npz") for split in splits if (folder / f"{split}.npz").is_file()}
    if "train" in out and len(out["train"]["images"]) == 0:
        raise UserError(f"{folder / 'train.npz'}: no images")
    for split in splits:
        if split not in out:  # only test.npz may be missing: an empty split shaped like train's
            template = out["train"] if "train" in out else read_npz(folder / "train.npz")
            out[split] = {k: v[:0] for k, v in template.items()}
    size = SortOfClevrParams().image_size
    for split, arrays in out.items():
        if arrays["images"].shape[1:3] != (size, size):
            raise UserError(f"{folder / (split + '.npz')}: images are {arrays['images'].shape[1]} px; relnet's "
                            f"Sort-of-CLEVR models read {size} x {size}")
    return out


def _write_split(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays``' storage fields as one compressed npz file, written atomically (mostly white: ~80x smaller)."""
    from relnet.checkpoint import write_atomic  # here: writing data needs no torch

    write_atomic(path, lambda f: np.savez_compressed(f, **{k: arrays[k] for k in FIELDS}))


def write_folder(folder: str | os.PathLike, splits: dict[str, dict[str, np.ndarray]], meta: dict) -> Path:
    """Write ``splits`` as ``<folder>/{train,test}.npz`` (compressed, atomically) and ``meta`` as ``source.json``."""
    from relnet.checkpoint import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, arrays in splits.items():
        _write_split(folder / f"{split}.npz", arrays)
    text = json.dumps(meta, indent=2) + "\n"
    write_atomic(folder / "source.json", lambda f: f.write(text.encode()))
    return folder


def _load_npz(path: Path, expected: int, params: SortOfClevrParams) -> dict[str, np.ndarray]:
    try:
        arrays = read_npz(path)
    except UserError as e:
        raise UserError(f"{e}; delete it or rerun with --force") from None
    s, q = params.image_size, 2 * params.questions_per_family
    if arrays["images"].shape != (expected, s, s, 3) or arrays["questions"].shape != (expected, q, QUESTION_DIM):
        raise UserError(f"{path}: images/questions have shapes {arrays['images'].shape}/{arrays['questions'].shape}, "
                        f"expected {expected} images; delete it or rerun with --force")
    return arrays


def load_or_generate(params: SortOfClevrParams, root: str | os.PathLike | None = None, force: bool = False,
                     *, progress: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Both splits, read from the cache (``cache_dir``) when present, else generated and written atomically.

    Args:
        params: generation parameters (the cache key).
        root: cache root; default ``default_root()``.
        force: regenerate and overwrite even if the files exist.
        progress: show a tqdm bar on stderr while generating.

    Returns:
        ``{"train": arrays, "test": arrays}``, arrays as returned by ``generate_split``.
    """
    from relnet.checkpoint import write_atomic  # here: generating data needs no torch

    folder = cache_dir(params, root)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "params.json"
    if force or not meta.exists():
        text = json.dumps({"version": VERSION, **params.to_dict()}, indent=2) + "\n"
        write_atomic(meta, lambda f: f.write(text.encode()))
    out = {}
    for split in SPLITS:
        path = folder / f"{split}.npz"
        if path.exists() and not force:
            out[split] = _load_npz(path, params.num_images(split), params)
            continue
        arrays = generate_split(params, split, progress=progress)
        _write_split(path, arrays)
        out[split] = arrays
    return out
