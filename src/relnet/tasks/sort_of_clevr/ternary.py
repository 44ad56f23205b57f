"""Ternary Sort-of-CLEVR: questions about two objects and every other one, and a task that trains the ternary RN.

kimhc6028's Sort-of-CLEVR (its 2020 code) added a third question family, about two coloured objects A and B and the
objects around them, and a ternary RN to answer it; it published no ternary figure for that code (anchors.md 1.6).
relnet asks the same kind of question about its own Sort-of-CLEVR scenes (``relnet.tasks.sort_of_clevr.data``: the
same seeds give the same scenes and images), with the semantics fixed and exact (anchors.md 8.6):

    subtype   question                                                          answer
    between   how many other objects lie in the box spanned by A and B?         0 .. 4
    line      is another object on the line through A and B?                    yes / no
    obtuse    for how many other objects C has the triangle ABC an angle of     0 .. 4
              at least 90 degrees?
    left      is A left of B?                                                   yes / no

* A and B are two *different* colours of all six (kimhc6028 drew them from the first five only, so yellow was never
  asked about); "other objects" are the four that are neither A nor B.
* between: C's centre lies in the closed axis-aligned box of A's and B's centres,
  ``min(xA, xB) <= xC <= max(xA, xB)`` and the same for y. (kimhc6028 labels a count k as answer "k + 1".)
* line: C's centre is at most ``LINE_WIDTH`` pixels from the infinite line through A's and B's centres
  (perpendicular distance: ``cross(B - A, C - A)^2 <= LINE_WIDTH^2 |B - A|^2``), for some C. kimhc6028 measured
  the vertical distance, which a vertical line leaves undefined. Objects have a radius of 5 px; ``LINE_WIDTH = 8``
  makes the answer yes for 51.7% of the line questions of the default training set (4 px: 27%).
* obtuse: some corner of ABC has a non-positive dot product of its two edge vectors, e.g. at C
  ``(A - C) . (B - C) <= 0``. Centres are at least 10 px apart, so no side has zero length; three centres on one
  line count as obtuse (the middle corner is 180 degrees).
* left (a binary question, asked only with ``--data.subtypes=between,line,obtuse,left``): ``xA < xB`` (column of
  the centre; equal columns: no). I added it as a curriculum (kimhc6028 trained its ternary RN on binary and unary
  questions too): the three ternary subtypes are unchanged by the table's reflections, so at the start no
  first-order signal tells g which objects are A and B, and runs stopped after 1,000-2,000 steps were still at the
  most common answer.
  Measured at equal steps (6,000; with it each ternary subtype gets a quarter of the questions instead of a third)
  it did not help: without it the ternary RN learnt line and obtuse far better (89.1% and 81.3% against 76.0% and
  50.6%; between 82.5% against 85.1%; reports/sort_of_clevr_ternary_6k.md), so it is off by default.

All four are computed in integer arithmetic on the integer centres, so there are no ties to break.

Question: ``TERNARY_QUESTION_DIM`` = 16 bits: colour of A one-hot (bits 0-5, the colour order of
``data.COLOR_NAMES``), colour of B one-hot (6-11), subtype one-hot (12-15). Answers: ``TERNARY_ANSWERS`` = yes, no,
0, 1, 2, 3, 4 (7 classes). Questions of image ``k`` of split ``s`` come from
``np.random.default_rng([seed, SPLIT_CODES[s], k, TERNARY_STREAM])``, a stream of their own (the binary questions'
stream is untouched), which draws in blocks: the A of every question of the image (uniform over the six colours),
then an offset 1-5 for each B (``B = (A + offset) mod 6``: uniform over the other five), then every subtype (uniform
over the subtypes asked). So a different ``questions_per_image`` gives different questions from the first on.

The task (``TernaryTask``) reads each scene as its state description (``data.state_objects``: six objects of 10
features) and trains one of three models with the shared trainer: ``rn3`` (``relnet.nn.TernaryRelationNetwork``,
216 ordered triples), ``rn`` (the pair RN, 36 ordered pairs, otherwise the same sizes) or ``mlp`` (all objects and the
question flattened into one MLP). ``relnet train sort-of-clevr-ternary --model rn3`` trains one,
``relnet eval sort-of-clevr-ternary --checkpoint DIR`` scores it on fresh scenes (``fresh_examples``), and
``relnet reproduce sort-of-clevr-ternary`` trains the three side by side and writes
``reports/sort_of_clevr_ternary.md`` (``relnet.tasks.sort_of_clevr.ternary_report``; ``scripts/soc_ternary.py`` is
the same with its older command line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.checkpoint import load_weights, read_config
from relnet.errors import UserError
from relnet.nn.baselines import ObjectMLP
from relnet.nn.relation import RelationNetwork
from relnet.nn.ternary import TernaryRelationNetwork
from relnet.tasks.sort_of_clevr import data as soc
from relnet.train.config import TrainConfig, from_dict, to_dict
from relnet.train.device import model_device

TASK = "sort-of-clevr-ternary"
TERNARY_SUBTYPES = ("between", "line", "obtuse", "left")
DEFAULT_SUBTYPES = TERNARY_SUBTYPES[:3]  # the ternary ones; "left" only when asked for
TERNARY_ANSWERS = ("yes", "no", "0", "1", "2", "3", "4")
TERNARY_QUESTION_DIM = 2 * soc.NUM_OBJECTS + len(TERNARY_SUBTYPES)
TERNARY_STREAM = 3  # fourth seed word of the questions' stream; never 0: NumPy pads a seed list with zeros, so
# [seed, split, k, 0] would be the binary questions' stream [seed, split, k]
LINE_WIDTH = 8  # pixels: the "line" subtype's tolerance
YES, NO, ZERO = 0, 1, 2  # answer indices; count n -> ZERO + n
MODELS = ("rn3", "rn", "mlp")
STATE_DIM = 10  # data.state_objects: colour one-hot (6), square, circle, x, y


# ------------------------------------------------------------------------------------------------------ questions


def encode_ternary(a: int, b: int, subtype: int) -> np.ndarray:
    """The 16-bit question (uint8) asking ``TERNARY_SUBTYPES[subtype]`` about colours ``a`` and ``b`` (a != b)."""
    n = soc.NUM_OBJECTS
    if not (0 <= a < n and 0 <= b < n and a != b and 0 <= subtype < len(TERNARY_SUBTYPES)):
        raise ValueError(f"need two different colours in 0..{n - 1} and a subtype in 0..3, got {a}, {b}, {subtype}")
    q = np.zeros(TERNARY_QUESTION_DIM, dtype=np.uint8)
    q[a] = q[n + b] = q[2 * n + subtype] = 1
    return q


def decode_ternary(questions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(..., 16)`` questions -> colour of A, colour of B, subtype (each ``(...)`` int64); ValueError if malformed."""
    q = np.asarray(questions)
    n = soc.NUM_OBJECTS
    if q.shape[-1:] != (TERNARY_QUESTION_DIM,):
        raise ValueError(f"ternary questions must have a last dimension of {TERNARY_QUESTION_DIM}, got {q.shape}")
    parts = (q[..., :n], q[..., n:2 * n], q[..., 2 * n:])
    if not all(((p == 0) | (p == 1)).all() and (p.sum(-1) == 1).all() for p in parts):
        raise ValueError("each ternary question needs one bit in 0-5, one in 6-11 and one in 12-15")
    a, b, s = (p.argmax(-1).astype(np.int64) for p in parts)
    if (a == b).any():
        raise ValueError("a ternary question asks about two different colours")
    return a, b, s


def ternary_answers(centres: np.ndarray, a: np.ndarray, b: np.ndarray, subtype: np.ndarray) -> np.ndarray:
    """Answer index of each question, vectorised over images and questions.

    Shapes:
        centres ``(N, 6, 2)`` int (x, y); a, b, subtype ``(N, Q)`` int -> ``(N, Q)`` int64.

    Raises:
        ValueError: the shapes disagree, A equals B somewhere, or a colour or subtype is out of range.
    """
    centres = np.asarray(centres, dtype=np.int64)
    a, b, subtype = np.asarray(a), np.asarray(b), np.asarray(subtype)
    n = soc.NUM_OBJECTS
    if centres.shape[1:] != (n, 2) or a.ndim != 2 or not a.shape == b.shape == subtype.shape or len(a) != len(centres):
        raise ValueError(f"need centres (N, {n}, 2) and a, b, subtype (N, Q); got {centres.shape}, {a.shape}, "
                         f"{b.shape}, {subtype.shape}")
    if (a == b).any() or not ((0 <= a) & (a < n) & (0 <= b) & (b < n)).all():
        raise ValueError(f"A and B must be two different colours in 0..{n - 1}")
    if not ((0 <= subtype) & (subtype < len(TERNARY_SUBTYPES))).all():
        raise ValueError(f"subtypes must be in 0..{len(TERNARY_SUBTYPES) - 1}")

    def corner(idx: np.ndarray) -> np.ndarray:  # (N, Q) object indices -> their centres (N, Q, 1, 2)
        return np.take_along_axis(centres, idx[..., None], axis=1)[:, :, None]

    def dot(p: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:  # (u - p) . (v - p) <= 0: angle at p >= 90
        return ((u - p) * (v - p)).sum(-1)

    c = centres[:, None, :, :]  # (N, 1, 6, 2): every object as a candidate C
    pa, pb = corner(a), corner(b)  # (N, Q, 1, 2)
    objects = np.arange(n)
    other = (objects != a[..., None]) & (objects != b[..., None])  # (N, Q, 6)

    lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
    between = (other & ((lo <= c) & (c <= hi)).all(-1)).sum(-1)

    ab, ac = pb - pa, c - pa  # (N, Q, 1, 2), (N, Q, 6, 2)
    cross = ab[..., 0] * ac[..., 1] - ab[..., 1] * ac[..., 0]
    on_line = (other & (cross**2 <= LINE_WIDTH**2 * (ab**2).sum(-1))).any(-1)

    obtuse_at = (dot(pa, pb, c) <= 0) | (dot(pb, pa, c) <= 0) | (dot(c, pa, pb) <= 0)
    obtuse = (other & obtuse_at).sum(-1)

    line = np.where(on_line, YES, NO)
    left = np.where(pa[:, :, 0, 0] < pb[:, :, 0, 0], YES, NO)
    answer = np.select([subtype == 0, subtype == 1, subtype == 2], [ZERO + between, line, ZERO + obtuse], left)
    return answer.astype(np.int64)


def ternary_questions(centres: np.ndarray, *, seed: int, split: str, first_image: int = 0, per_image: int = 10,
                      subtypes: Sequence[str] = DEFAULT_SUBTYPES) -> tuple[np.ndarray, np.ndarray]:
    """``per_image`` ternary questions for each scene, image ``k`` being image ``first_image + k`` of ``split``,
    with subtypes drawn uniformly from ``subtypes`` (the three ternary ones by default).

    Shapes:
        centres ``(N, 6, 2)`` -> questions ``(N, per_image, 16)`` uint8, answers ``(N, per_image)`` int64.
    """
    if per_image < 1:
        raise UserError(f"per_image={per_image}: at least one ternary question per image is needed")
    if split not in soc.SPLIT_CODES:
        raise ValueError(f"split must be one of {soc.SPLITS}, got {split!r}")
    unknown = [name for name in subtypes if name not in TERNARY_SUBTYPES]
    if unknown or not subtypes:
        raise UserError(f"subtypes {list(subtypes)}: expected some of {', '.join(TERNARY_SUBTYPES)}")
    allowed = np.array([TERNARY_SUBTYPES.index(name) for name in subtypes])
    n_img = len(centres)
    a = np.empty((n_img, per_image), dtype=np.int64)
    b, s = np.empty_like(a), np.empty_like(a)
    code = soc.SPLIT_CODES[split]
    for k in range(n_img):
        rng = np.random.default_rng([seed, code, first_image + k, TERNARY_STREAM])
        a[k] = rng.integers(0, soc.NUM_OBJECTS, per_image)
        b[k] = (a[k] + rng.integers(1, soc.NUM_OBJECTS, per_image)) % soc.NUM_OBJECTS  # uniform over the other five
        s[k] = allowed[rng.integers(0, len(allowed), per_image)]
    n = soc.NUM_OBJECTS
    questions = np.zeros((n_img, per_image, TERNARY_QUESTION_DIM), dtype=np.uint8)
    np.put_along_axis(questions, a[..., None], 1, axis=-1)
    np.put_along_axis(questions, n + b[..., None], 1, axis=-1)
    np.put_along_axis(questions, 2 * n + s[..., None], 1, axis=-1)
    return questions, ternary_answers(centres, a, b, s)


def describe_ternary(question: np.ndarray) -> str:
    """English rendering of one ternary question."""
    a, b, s = (int(v[0]) for v in decode_ternary(np.asarray(question).reshape(1, -1)))
    A, B = soc.COLOR_NAMES[a], soc.COLOR_NAMES[b]
    return (f"How many other objects lie in the box spanned by the {A} and the {B} object?",
            f"Is another object on the line through the {A} and the {B} object?",
            f"For how many other objects C has the triangle of the {A} object, the {B} object and C an angle of at "
            "least 90 degrees?",
            f"Is the {A} object left of the {B} object?")[s]


# ---------------------------------------------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    kind: str = "rn3"  # rn3 (triples) | rn (pairs) | mlp
    g_dims: tuple[int, ...] = (256, 256, 256)  # rn3, rn
    f_dims: tuple[int, ...] = (256, 256)  # rn3, rn; the mlp's hidden layers are g_dims + f_dims
    f_dropout: tuple[float, ...] = (0.0, 0.1)
    reduce: str = "sum"  # rn3, rn: sum or mean over the triples / pairs
    tag_objects: bool = True  # each object also carries "is A" and "is B", read from the question (TaggedObjects)
    pair_distance: bool = True  # rn3, rn: g also reads the distances within its triple / pair (not in the paper)
    aggregate_norm: str = ""  # rn3, rn: "layer" normalises the pooled relation before f (not in the paper)


@dataclass
class DataConfig:
    train_images: int = 9800
    test_images: int = 500
    seed: int = 1
    questions_per_image: int = 10
    subtypes: tuple[str, ...] = DEFAULT_SUBTYPES  # asked in training and testing; add "left" to ask it too


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # 24,000 steps: the ternary RN answered 94.9-96.0% of fresh questions after 24,000 steps (seeds 0-2) and 84%
    # after 6,000 (reports/sort_of_clevr_ternary_gpu.md); the default was 10,000 before
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=24_000, batch_size=64, lr=1e-3, schedule="cosine", warmup_steps=200, min_lr=2e-5, eval_every=1000,
        log_every=100, checkpoint_every=1000))


class TaggedObjects(nn.Module):
    """Puts before each object's features whether it is the question's A and whether it is its B, then runs
    ``inner`` (in front, so that the position stays the last two features, where ``pair_distance`` reads it).

    An object's tags are its colour one-hot (features 0-5) dotted with the question's colour bits, so the model need
    not learn to match colours: what remains is the geometry of A, B and the others, where triples and pairs differ.

    Shapes:
        objects ``(B, 6, 10)``, question ``(B, 16)`` -> ``inner(objects (B, 6, 12), question)``.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, objects: Tensor, question: Tensor) -> Tensor:
        n = soc.NUM_OBJECTS
        colour = objects[..., :n]  # (B, 6, 6)
        tags = torch.stack([(colour * question[:, None, :n]).sum(-1),
                            (colour * question[:, None, n:2 * n]).sum(-1)], dim=-1)  # (B, 6, 2)
        return self.inner(torch.cat([tags, objects], dim=-1), question)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The ``cfg.kind`` model over six state objects and a 16-bit question, giving 7 logits."""
    dim = STATE_DIM + 2 * cfg.tag_objects
    common = dict(object_dim=dim, question_dim=TERNARY_QUESTION_DIM, out_dim=len(TERNARY_ANSWERS))
    relation = dict(g_dims=cfg.g_dims, f_dims=cfg.f_dims, f_dropout=cfg.f_dropout, reduce=cfg.reduce,
                    aggregate_norm=cfg.aggregate_norm or None, pair_distance=cfg.pair_distance)
    if cfg.kind == "rn3":
        model: nn.Module = TernaryRelationNetwork(**common, **relation)
    elif cfg.kind == "rn":
        model = RelationNetwork(**common, **relation)
    elif cfg.kind == "mlp":
        model = ObjectMLP(**common, num_objects=soc.NUM_OBJECTS, hidden_dims=(*cfg.g_dims, *cfg.f_dims),
                          dropout=(*[0.0] * len(cfg.g_dims), *cfg.f_dropout))
    else:
        raise UserError(f"--model {cfg.kind}: expected one of {', '.join(MODELS)}")
    return TaggedObjects(model) if cfg.tag_objects else model


# ----------------------------------------------------------------------------------------------------------- task


class TernaryExamples:
    """One split: the scenes' state objects and the flattened ternary questions (question k of image k // Q)."""

    def __init__(self, centres: np.ndarray, shapes: np.ndarray, *, seed: int, split: str, per_image: int,
                 first_image: int = 0, subtypes: Sequence[str] = DEFAULT_SUBTYPES) -> None:
        questions, answers = ternary_questions(centres, seed=seed, split=split, first_image=first_image,
                                               per_image=per_image, subtypes=subtypes)
        self.per_image = per_image
        self.objects = torch.from_numpy(soc.state_objects(centres, shapes))  # (N, 6, 10)
        self.questions = torch.from_numpy(questions.reshape(-1, TERNARY_QUESTION_DIM)).float()  # (N*Q, 16)
        self.answers = torch.from_numpy(answers.reshape(-1))  # (N*Q,)
        self.subtypes = torch.from_numpy(decode_ternary(questions)[2].reshape(-1))  # (N*Q,)

    def __len__(self) -> int:
        return len(self.answers)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.objects[indices // self.per_image], self.questions[indices], self.answers[indices]


def scenes(params: soc.SortOfClevrParams, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(N, 6, 2)`` and shapes ``(N, 6)`` of a split's scenes (the images are drawn and dropped)."""
    arrays = soc.generate_split(params, split)
    return arrays["centres"], arrays["shapes"]


@torch.no_grad()
def evaluate(model: nn.Module, examples: TernaryExamples, *, batch_size: int = 1000) -> dict[str, Any]:
    """Exact accuracy over every question, overall and per subtype (counts, not means of batch means)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = torch.zeros(len(examples), dtype=torch.bool)
    for start in range(0, len(examples), batch_size):
        idx = torch.arange(start, min(len(examples), start + batch_size))
        x, q, y = examples.batch(idx)
        correct[idx] = model(x.to(device), q.to(device)).argmax(-1).cpu() == y
    model.train(was_training)
    out: dict[str, Any] = {"n": len(examples), "accuracy": float(correct.float().mean()), "by_subtype": {}}
    for k, name in enumerate(TERNARY_SUBTYPES):
        sel = examples.subtypes == k
        if sel.any():  # subtypes not asked are left out
            out["by_subtype"][name] = float(correct[sel].float().mean())
    return out


class TernaryTask:
    """The ``relnet.train.loop.Task`` for ternary Sort-of-CLEVR on state descriptions."""

    name = TASK

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        d = cfg.data
        params = soc.SortOfClevrParams(train_images=d.train_images, test_images=d.test_images, seed=d.seed)
        self.train_set = TernaryExamples(*scenes(params, "train"), seed=d.seed, split="train",
                                         per_image=d.questions_per_image, subtypes=d.subtypes)
        self.test_set = (TernaryExamples(*scenes(params, "test"), seed=d.seed, split="test",
                                         per_image=d.questions_per_image, subtypes=d.subtypes)
                         if d.test_images else None)

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model)

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": to_dict(self.cfg.model), "data": to_dict(self.cfg.data),
                "answers": list(TERNARY_ANSWERS), "subtypes": list(TERNARY_SUBTYPES)}

    def train_size(self) -> int:
        return len(self.train_set)

    def batch(self, indices: Tensor, *, train: bool, generator: torch.Generator | None) -> Any:
        return self.train_set.batch(indices)

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        x, q, y = batch
        logits = model(x, q)
        stats = {"correct": float((logits.argmax(-1) == y).sum()), "count": float(len(y))}
        return F.cross_entropy(logits, y, reduction="sum"), stats

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        if self.test_set is None:
            return {}
        result = evaluate(model, self.test_set)
        result.update({f"acc_{k}": v for k, v in result.pop("by_subtype").items()})  # the log stays flat
        return result


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a ternary Sort-of-CLEVR model from a checkpoint folder (``model.safetensors`` + ``config.json``).

    Raises:
        UserError (one line): the folder, its config or its weights are missing or unreadable, it is another task's
            checkpoint (``read_config``), or its ``model`` / ``data`` fields do not describe a ternary model.
    """
    config = read_config(path, task=TASK)
    kind = config["model"].get("kind", ModelConfig.kind)
    if kind not in MODELS:
        raise UserError(f"checkpoint {path}: model kind {kind!r} is not one of {', '.join(MODELS)}")
    try:
        model = build_model(from_dict(ModelConfig, config["model"]))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:  # e.g. a negative or text width
        raise UserError(f"checkpoint {path}: field 'model' does not describe a ternary Sort-of-CLEVR model "
                        f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    checkpoint_data(config, path)  # the questions it was trained on, checked before the weights are read
    load_weights(path, model)
    return model.eval(), config


def checkpoint_data(config: dict[str, Any], path: str | Path = "") -> DataConfig:
    """The data config a checkpoint was trained with (``config["data"]``), checked: its ``questions_per_image`` and
    ``subtypes`` decide which questions ``fresh_examples`` asks. A checkpoint from before ``--data.subtypes`` asked
    all four subtypes (as ``ternary_report.check_reuse`` assumes too)."""
    data = config.get("data")
    if not isinstance(data, dict):
        raise UserError(f"checkpoint {path}: field 'data' is missing or not an object")
    data = {"subtypes": list(TERNARY_SUBTYPES), **data}
    per_image, subtypes = data.get("questions_per_image", DataConfig.questions_per_image), data["subtypes"]
    if isinstance(per_image, bool) or not isinstance(per_image, int) or per_image < 1:
        raise UserError(f"checkpoint {path}: field data.questions_per_image must be a whole number >= 1, "
                        f"got {per_image!r}")
    if (not isinstance(subtypes, list) or not subtypes
            or not all(isinstance(s, str) and s in TERNARY_SUBTYPES for s in subtypes)):
        raise UserError(f"checkpoint {path}: field data.subtypes must list some of {', '.join(TERNARY_SUBTYPES)}, "
                        f"got {subtypes!r}")
    return from_dict(DataConfig, data)


def fresh_examples(*, images: int, seed: int, per_image: int = DataConfig.questions_per_image,
                   subtypes: Sequence[str] = DEFAULT_SUBTYPES) -> TernaryExamples:
    """``images`` newly generated test scenes of stream ``seed`` with ``per_image`` ternary questions each (subtypes
    drawn from ``subtypes``): the scenes ``relnet eval`` and ``relnet reproduce sort-of-clevr-ternary`` score models
    on. Training and the task's own test scenes use stream ``data.seed`` (1 by default), never the default 2026."""
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise UserError(f"--images {images}: at least 1 fresh scene is needed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"--seed {seed}: the stream of the fresh scenes must be a whole number >= 0")
    params = soc.SortOfClevrParams(train_images=1, test_images=images, seed=seed)
    return TernaryExamples(*scenes(params, "test"), seed=seed, split="test", per_image=per_image, subtypes=subtypes)
