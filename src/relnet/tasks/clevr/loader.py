"""Read CLEVR v1.0 in its official layout: questions, scenes (state descriptions) and images (cached at 128x128).

Layout of a root folder (``split`` in train / val / test; test has no answers, programs or scenes)::

    images/<split>/CLEVR_<split>_000000.png            480x320 RGBA PNGs
    questions/CLEVR_<split>_questions.json             {"info": ..., "questions": [...]}
    scenes/CLEVR_<split>_scenes.json                   {"info": ..., "scenes": [...]}

Encodings:

- Question text: lower-cased; ``;`` and ``,`` are tokens, ``?`` and ``.`` are dropped; words split on spaces.
  :class:`Vocab` maps tokens to ids with ``<pad>`` = 0 and ``<unk>`` = 1, then the sorted training tokens.
- Answers: the 28 CLEVR answers in :data:`ANSWERS` order (the ``vocab.json`` answer tokens without specials).
- Question type (``families``): the paper's five groups from the program's last function, ids in :data:`FAMILIES`
  order: count, exist, compare_numbers (equal_integer / less_than / greater_than), query_attribute (query_*),
  compare_attribute (equal_*).
- State descriptions, padded to ``max_objects`` = 10 with a mask: ``coords`` (S, 10, 3) float32 = ``3d_coords``;
  ``attrs`` (S, 10, 4) int64 = indices of (color 0..7, shape 0..2, material 0..1, size 0..1) in ``metadata.json``
  order (:data:`ATTR_VALUES`); ``rgb`` (S, 10, 3) float32 in [0, 1] from ``properties.json``; ``mask`` (S, 10) bool.
- Images: resized to ``size`` x ``size`` with PIL bilinear (antialiased) resampling, alpha dropped, stored as a
  uint8 ``.npy`` (N, size, size, 3) opened as a memmap. The cache folder is keyed by the image file list (names,
  byte sizes, mtimes) and the size, holds ``images.npy`` + ``manifest.json``, and is written atomically.

Training augmentation (:func:`augment`, paper-spec 2.2): pad 4 -> 136, random 128 crop, random rotation uniform in
[-0.05, 0.05] rad, one ``grid_sample`` per batch, deterministic given a ``torch.Generator``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from relnet.errors import UserError
from relnet.tasks.clevr.programs import RESOURCES, metadata

SPLITS = ("train", "val", "test")
FAMILIES = ("count", "exist", "compare_numbers", "query_attribute", "compare_attribute")
STATE_ATTRS = ("color", "shape", "material", "size")  # column order of ``attrs``
PAD, UNK = "<pad>", "<unk>"
MAX_OBJECTS = 10


@lru_cache(maxsize=None)
def _answers() -> tuple[str, ...]:
    table = json.loads((RESOURCES / "vocab.json").read_text())["answer_token_to_idx"]
    return tuple(a for a, _ in sorted(table.items(), key=lambda kv: kv[1]) if not a.startswith("<"))


ANSWERS: tuple[str, ...] = _answers()
ANSWER_INDEX = {a: i for i, a in enumerate(ANSWERS)}
ATTR_VALUES: dict[str, tuple[str, ...]] = {a: tuple(metadata()["types"][a.capitalize()]) for a in STATE_ATTRS}
_ATTR_INDEX = {a: {v: i for i, v in enumerate(vs)} for a, vs in ATTR_VALUES.items()}
_RGB = json.loads((RESOURCES / "properties.json").read_text())["colors"]
_FUNCTIONS = {f["name"] for f in metadata()["functions"] if not f.get("template_only")}
_TOKEN_RE = re.compile(r"[a-z0-9]+|[;,]")


# -- text ----------------------------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """``"There is a cube; what color is it?"`` -> ``["there", "is", "a", "cube", ";", "what", "color", "is", "it"]``."""
    return _TOKEN_RE.findall(text.lower())


@dataclass
class Vocab:
    """Question tokens -> ids: ``<pad>`` = 0, ``<unk>`` = 1, then the tokens (sorted when built)."""

    tokens: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {self.tokens[:2]!r}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> "Vocab":
        words = sorted({w for t in texts for w in tokenize(t)})
        return cls([PAD, UNK] + words)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, 1) for t in tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(list(d["tokens"]))


# -- files ---------------------------------------------------------------------------------------------------------
def read_json(path: Path) -> object:
    """Parse a JSON file; a missing or malformed file is a UserError naming it (and the line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from None


def write_json_atomic(path: Path, obj: object) -> None:
    """Write JSON through a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_paths(root: Path, split: str) -> dict[str, Path]:
    root = Path(root)
    return {
        "questions": root / "questions" / f"CLEVR_{split}_questions.json",
        "scenes": root / "scenes" / f"CLEVR_{split}_scenes.json",
        "images": root / "images" / split,
    }


def _records(data: object, key: str, path: Path) -> list:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise UserError(f"{path}: expected an object with a {key!r} list")
    return data[key]


def _field(rec: object, name: str, types, path: Path, where: str):
    if not isinstance(rec, dict):
        raise UserError(f"{path}: {where}: expected an object")
    if name not in rec:
        raise UserError(f"{path}: {where}: missing field {name!r}")
    v = rec[name]
    if isinstance(v, bool) or not isinstance(v, types):
        raise UserError(f"{path}: {where}: field {name!r} has the wrong type ({type(v).__name__})")
    return v


def parse_scenes(data: object, path: Path, *, max_objects: int = MAX_OBJECTS) -> list[dict]:
    """Check an official scenes object (``{"scenes": [...]}``) and return the scene list.

    Each scene needs ``image_index`` equal to its position, ``objects`` (1..max_objects, each with ``3d_coords`` and a
    known color/shape/material/size) and ``relationships`` with left/right/front/behind lists of valid indices.
    """
    scenes = _records(data, "scenes", path)
    for s, scene in enumerate(scenes):
        where = f"scene {s}"
        idx = _field(scene, "image_index", int, path, where)
        if idx != s:
            raise UserError(f"{path}: {where}: image_index is {idx}, expected {s} (scenes are listed in order)")
        objs = _field(scene, "objects", list, path, where)
        if not 1 <= len(objs) <= max_objects:
            raise UserError(f"{path}: {where}: {len(objs)} objects, expected 1..{max_objects}")
        for o, obj in enumerate(objs):
            ow = f"{where} object {o}"
            c = _field(obj, "3d_coords", list, path, ow)
            if len(c) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in c):
                raise UserError(f"{path}: {ow}: field '3d_coords' must be 3 numbers")
            for a in STATE_ATTRS:
                v = _field(obj, a, str, path, ow)
                if v not in _ATTR_INDEX[a]:
                    raise UserError(f"{path}: {ow}: unknown {a} {v!r} (expected one of {', '.join(ATTR_VALUES[a])})")
        rels = _field(scene, "relationships", dict, path, where)
        for r in ("left", "right", "front", "behind"):
            lists = rels.get(r)
            if not isinstance(lists, list) or len(lists) != len(objs):
                raise UserError(f"{path}: {where}: relationships[{r!r}] must hold one list per object")
            for lst in lists:
                if not isinstance(lst, list) or not all(
                    isinstance(j, int) and not isinstance(j, bool) and 0 <= j < len(objs) for j in lst
                ):
                    raise UserError(f"{path}: {where}: relationships[{r!r}] holds an invalid object index")
    return scenes


def scene_states(scenes: Sequence[dict], *, max_objects: int = MAX_OBJECTS) -> dict[str, np.ndarray]:
    """State descriptions of parsed scenes.

    Shapes:
        coords (S, max_objects, 3) float32, attrs (S, max_objects, 4) int64 (color, shape, material, size),
        rgb (S, max_objects, 3) float32 in [0, 1], mask (S, max_objects) bool. Padding rows are zero.
    """
    S = len(scenes)
    coords = np.zeros((S, max_objects, 3), np.float32)
    attrs = np.zeros((S, max_objects, 4), np.int64)
    rgb = np.zeros((S, max_objects, 3), np.float32)
    mask = np.zeros((S, max_objects), bool)
    for s, scene in enumerate(scenes):
        for o, obj in enumerate(scene["objects"]):
            coords[s, o] = obj["3d_coords"]
            attrs[s, o] = [_ATTR_INDEX[a][obj[a]] for a in STATE_ATTRS]
            rgb[s, o] = np.asarray(_RGB[obj["color"]], np.float32) / 255.0
            mask[s, o] = True
    return {"coords": coords, "attrs": attrs, "rgb": rgb, "mask": mask}


def family_id(program: list, path: Path, where: str) -> int:
    """The paper's question type id (index into :data:`FAMILIES`) from the program's last function."""
    for k, node in enumerate(program):
        if not isinstance(node, dict):
            raise UserError(f"{path}: {where}: program node {k} is not an object")
        fn = node.get("function", node.get("type"))
        if fn not in _FUNCTIONS:
            raise UserError(f"{path}: {where}: program node {k} has unknown function {fn!r}")
    if not program:
        raise UserError(f"{path}: {where}: empty program")
    fn = program[-1].get("function", program[-1].get("type"))
    if fn == "count":
        return 0
    if fn == "exist":
        return 1
    if fn in ("equal_integer", "less_than", "greater_than"):
        return 2
    if fn.startswith("query_"):
        return 3
    if fn.startswith("equal_"):
        return 4
    raise UserError(f"{path}: {where}: program ends in {fn!r}, which does not produce an answer")


# -- images --------------------------------------------------------------------------------------------------------
def image_cache(files: Sequence[Path], cache_dir: Path, *, size: int = 128, progress: bool | None = None) -> np.ndarray:
    """Decode + resize ``files`` once into ``cache_dir/images_<size>_<key>/images.npy`` and return it as a memmap.

    Shapes:
        returns (N, size, size, 3) uint8, row i = ``files[i]`` resized with PIL bilinear (antialiased).
    """
    from PIL import Image
    from tqdm import tqdm

    desc = []
    for f in files:
        try:
            st = os.stat(f)
        except FileNotFoundError:
            raise UserError(f"{f}: image file not found") from None
        desc.append([Path(f).name, st.st_size, st.st_mtime_ns])
    key = hashlib.sha1(json.dumps([size, "bilinear", desc]).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / f"images_{size}_{key}"
    npy, manifest = folder / "images.npy", folder / "manifest.json"
    if manifest.is_file() and npy.is_file():
        arr = np.load(npy, mmap_mode="r")
        if arr.shape == (len(files), size, size, 3) and arr.dtype == np.uint8:
            return arr
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".images.", suffix=".npy", dir=folder)
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3))
        for i, f in enumerate(tqdm(files, desc="images", unit="img", disable=(None if progress is None else not progress))):
            try:
                with Image.open(f) as im:
                    out[i] = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
            except OSError as e:
                raise UserError(f"{f}: cannot read image ({e})") from None
        out.flush()
        del out
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json_atomic(manifest, {"size": size, "resample": "bilinear", "files": desc})
    return np.load(npy, mmap_mode="r")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W) in [0, 1] (no mean subtraction, as mesnico's ToTensor)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def augment(
    images: torch.Tensor, *, generator: torch.Generator, pad: int = 4, max_angle: float = 0.05
) -> torch.Tensor:
    """Pad by ``pad`` (zeros), random crop back to the input size, random rotation in [-max_angle, max_angle] rad.

    Crop and rotation are one affine ``grid_sample`` (bilinear, zero fill); with angle 0 it is an exact crop.

    Shapes:
        images: (B, 3, H, W) float (or uint8, converted with :func:`to_float` semantics from (B, H, W, 3)).
        returns (B, 3, H, W) float32.
    """
    if images.dtype == torch.uint8:
        images = to_float(images)
    B, C, H, W = images.shape
    if H != W:
        raise ValueError(f"augment expects square images, got {tuple(images.shape)}")
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
    P = H + 2 * pad
    off = torch.randint(0, 2 * pad + 1, (B, 2), generator=generator).to(images.dtype)  # crop corner (x, y)
    angle = (torch.rand(B, generator=generator) * 2 - 1).to(images.dtype) * max_angle
    cos, sin = torch.cos(angle), torch.sin(angle)
    scale = H / P
    theta = torch.zeros(B, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = scale * cos, -scale * sin
    theta[:, 1, 0], theta[:, 1, 1] = scale * sin, scale * cos
    theta[:, :, 2] = 2 * (off + H / 2) / P - 1  # crop centre in the padded image, normalised
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# -- splits --------------------------------------------------------------------------------------------------------
@dataclass
class ClevrSplit:
    """One split, as arrays.

    Shapes (Q questions, T longest question, S scenes = images):
        tokens (Q, T) int64 padded with 0; lengths (Q,) int64; answers (Q,) int64 index into ANSWERS, -1 when the
        split has no answers; families (Q,) int64 index into FAMILIES, -1 without programs;
        question_family_index (Q,) int64, -1 when absent; image_index (Q,) int64.
        states: {coords (S,10,3), attrs (S,10,4), rgb (S,10,3), mask (S,10)} or None without a scenes file.
        images: (S, size, size, 3) uint8 memmap or None.
    """

    split: str
    vocab: Vocab
    texts: list[str]
    tokens: np.ndarray
    lengths: np.ndarray
    answers: np.ndarray
    families: np.ndarray
    question_family_index: np.ndarray
    image_index: np.ndarray
    states: dict[str, np.ndarray] | None
    images: np.ndarray | None
    num_images: int

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return (
            f"ClevrSplit(split={self.split!r}, questions={len(self)}, images={self.num_images}, "
            f"vocab={len(self.vocab)}, states={self.states is not None}, pixels={self.images is not None})"
        )


def load_split(
    root: str | os.PathLike,
    split: str,
    *,
    vocab: Vocab | None = None,
    with_images: bool = False,
    with_scenes: bool | None = None,
    image_size: int = 128,
    cache_dir: str | os.PathLike | None = None,
    max_objects: int = MAX_OBJECTS,
    progress: bool | None = None,
) -> ClevrSplit:
    """Load ``split`` of the official layout under ``root`` (see module docstring).

    Args:
        vocab: the training vocabulary; None builds one from this split's questions (use that for train only).
        with_images: decode images into the 128x128 cache (``cache_dir``, default ``root/cache``).
        with_scenes: read the scenes file; None = when it exists. State input needs only scenes + questions.
    """
    root = Path(root)
    paths = split_paths(root, split)
    qpath = paths["questions"]
    records = _records(read_json(qpath), "questions", qpath)
    texts, img_idx, answers, fams, qfi, files = [], [], [], [], [], {}
    for q, rec in enumerate(records):
        where = f"question {q}"
        texts.append(_field(rec, "question", str, qpath, where))
        i = _field(rec, "image_index", int, qpath, where)
        if i < 0:
            raise UserError(f"{qpath}: {where}: image_index {i} is negative")
        img_idx.append(i)
        if "image_filename" in rec:
            files[i] = _field(rec, "image_filename", str, qpath, where)
        if "answer" in rec:
            a = _field(rec, "answer", (str, int), qpath, where)
            a = str(a)
            if a not in ANSWER_INDEX:
                raise UserError(f"{qpath}: {where}: unknown answer {a!r}")
            answers.append(ANSWER_INDEX[a])
        else:
            answers.append(-1)
        fams.append(family_id(_field(rec, "program", list, qpath, where), qpath, where) if "program" in rec else -1)
        qfi.append(_field(rec, "question_family_index", int, qpath, where) if "question_family_index" in rec else -1)

    states = None
    num_images = max(img_idx) + 1 if img_idx else 0
    if with_scenes or (with_scenes is None and paths["scenes"].is_file()):
        scenes = parse_scenes(read_json(paths["scenes"]), paths["scenes"], max_objects=max_objects)
        for q, i in enumerate(img_idx):
            if i >= len(scenes):
                raise UserError(f"{qpath}: question {q}: image_index {i} is out of range ({len(scenes)} scenes)")
        for s in scenes:
            if "image_filename" in s and isinstance(s["image_filename"], str):
                files.setdefault(s["image_index"], s["image_filename"])
        states = scene_states(scenes, max_objects=max_objects)
        num_images = len(scenes)

    if vocab is None:
        vocab = Vocab.build(texts)
    encoded = [vocab.encode(tokenize(t)) for t in texts]
    lengths = np.array([len(e) for e in encoded], np.int64)
    tokens = np.zeros((len(encoded), int(lengths.max()) if len(encoded) else 0), np.int64)
    for q, e in enumerate(encoded):
        tokens[q, : len(e)] = e

    images = None
    if with_images:
        names = [files.get(i, f"CLEVR_{split}_{i:06d}.png") for i in range(num_images)]
        images = image_cache(
            [paths["images"] / n for n in names],
            Path(cache_dir) if cache_dir is not None else root / "cache",
            size=image_size,
            progress=progress,
        )
    return ClevrSplit(
        split=split,
        vocab=vocab,
        texts=texts,
        tokens=tokens,
        lengths=lengths,
        answers=np.array(answers, np.int64),
        families=np.array(fams, np.int64),
        question_family_index=np.array(qfi, np.int64),
        image_index=np.array(img_idx, np.int64),
        states=states,
        images=images,
        num_images=num_images,
    )
