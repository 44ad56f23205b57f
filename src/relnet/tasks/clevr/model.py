"""CLEVR models and presets: the state-description RN, the pixel CNN+LSTM+RN, and the paper's baselines.

Models (``--model``), each for ``--input state`` (scene state descriptions) or ``--input pixels`` (128x128 images):

=========  =====================================================================================================
model      what it is
=========  =====================================================================================================
rn         objects + question LSTM -> Relation Network (paper section 5.1 / 5.2 and supplement)
mlp        objects flattened + question LSTM -> MLP: with pixels this is the paper's "CNN+LSTM" baseline (Table 1,
           from Johnson et al. 2017); with states the same baseline over the 10 (zero-padded) object rows
lstm       question LSTM -> MLP, no scene at all ("LSTM" row of Table 1)
qtype      the most common training answer of each question family (``question_family_index``; "Q-type
           baseline" row of Table 1); no parameters are trained, it is fitted by counting
=========  =====================================================================================================

Objects:

* ``state``: one object per scene object, at most 10, padded objects masked (the RN skips them entirely, the
  ``mlp`` baseline sees zeros). Features (13 with ``color="rgb"``, the paper's encoding): ``3d_coords`` x/3, y/3,
  z (x, y lie in [-3, 3]; z is the radius 0.35 or 0.7), the colour's RGB in [0, 1], one-hot shape (3), material (2)
  and size (2). ``color="onehot"`` replaces RGB by a one-hot of the 8 colour names (18 features).
* ``pixels``: 4 x (conv 3x3 stride 2, 24 channels, BN, ReLU) on 128x128 -> 8x8 = 64 cells, each tagged with its
  (x, y) in [-1, 1] (26 features).

Presets (``--preset``; paper-spec sections 2.3-2.6, 3.2 and 9):

========  ============================================  =============================================================
preset    state input                                   pixel input
========  ============================================  =============================================================
paper     LSTM 256, g 4x512, f 512-1024 (dropout        LSTM 128, g 4x256, f 256-256 (dropout 0.5), Adam 2.5e-4,
          0.02), Adam 1e-4, batch 640 (10 workers x     batch 640; questions in natural order
          64), questions in natural order
recipe    the paper's model with mesnico's recipe: batch 640, lr 5e-6 doubled every 20 epochs up to 5e-4,
          gradient clipping 50, weight decay 1e-4, questions reversed (the warm-up "that worked", anchors.md 2)
fast      found by short CPU measurements: LSTM 128, g 3x256, f 256-256 (dropout 0.05), mean over pairs, AdamW
          1e-3 (cosine, 1-epoch warm-up, weight decay 1e-4), clip 5, batch 64, questions reversed, one-hot colours
========  ==============================================================================================================

Every preset outputs 28 logits, one per CLEVR answer (the paper's 29 is taken as 28 answers + a spare;
paper-spec 2.3 "Answer vocabulary").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from relnet.errors import UserError
from relnet.nn import MLP, ConvObjects, ObjectMLP, QuestionLSTM, RelationNetwork, StateObjects
from relnet.tasks.clevr.loader import ANSWERS, ATTR_VALUES, FAMILIES, MAX_OBJECTS
from relnet.train.config import TrainConfig
from relnet.train.options import check_hidden_norm

INPUTS = ("state", "pixels")
MODELS = ("rn", "mlp", "lstm", "qtype")
PRESETS = ("paper", "recipe", "fast")
NUM_ANSWERS = len(ANSWERS)  # 28
NUM_QUESTION_FAMILIES = 90  # CLEVR v1.0 template families; larger indices fall back to the global prior
COORD_SCALE = (3.0, 3.0, 1.0)  # 3d_coords x, y in [-3, 3] -> [-1, 1]; z (the radius) kept


@dataclass
class ModelConfig:
    input: str = "state"  # state | pixels
    kind: str = "rn"  # rn | mlp | lstm | qtype
    vocab_size: int = 0  # question tokens incl. <pad>, <unk>; set from the training data
    embed_dim: int = 32
    lstm_dim: int = 128
    reverse_question: bool = True
    color: str = "rgb"  # state objects: rgb (paper) | onehot
    max_objects: int = MAX_OBJECTS  # state objects: rows per scene (padding is masked)
    image_size: int = 128
    cnn_channels: tuple[int, ...] = (24, 24, 24, 24)
    g_dims: tuple[int, ...] = (256, 256, 256, 256)
    f_dims: tuple[int, ...] = (256, 256)
    f_dropout: tuple[float, ...] = (0.0, 0.5)
    reduce: str = "sum"  # sum (paper) | mean
    aggregate_norm: str = ""  # "" (paper) | "layer": LayerNorm on the aggregated relation (see RelationNetwork)
    hidden_norm: str = ""  # "" (paper) | layer | batch: a norm between each hidden Linear of g and f and its ReLU
    pair_distance: bool = False  # rn: g also reads each pair's (x, y) distance (not in the paper; RelationNetwork)


@dataclass
class DataConfig:
    root: str = ""  # official layout: questions/, scenes/, images/ (required)
    train_split: str = "train"
    val_split: str = "val"  # evaluated during training when its questions file exists ("" = none)
    max_train_questions: int = 0  # 0 = all
    max_val_questions: int = 0  # 0 = all
    augment: bool = True  # pixels: pad-4 random crop + rotation in [-0.05, 0.05] rad (paper-spec 2.2)
    cache_dir: str = ""  # 128x128 image cache; "" = <root>/cache


@dataclass
class RunConfig:
    task: str = "clevr"
    preset: str = "fast"
    epochs: float = 0.0  # > 0: train.steps = ceil(epochs * train questions / batch_size), set once data is loaded
    lr_double_epochs: float = 0.0  # > 0: train.step_every = this many epochs in steps (the recipe's warm-up)
    warmup_epochs: float = 0.0  # > 0: train.warmup_steps = this many epochs in steps
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def preset(name: str, input: str = "state", kind: str = "rn") -> RunConfig:
    """The run configuration of preset ``name`` for ``input`` and model ``kind`` (see the module docstring)."""
    if name not in PRESETS:
        raise UserError(f"--preset {name}: expected one of {', '.join(PRESETS)}")
    if input not in INPUTS:
        raise UserError(f"--input {input}: expected one of {', '.join(INPUTS)}")
    if kind not in MODELS:
        raise UserError(f"--model {kind}: expected one of {', '.join(MODELS)}")
    common = dict(eval_every=1000, checkpoint_every=1000, log_every=50)
    if name in ("paper", "recipe"):
        if input == "state":  # paper-spec 3.2
            model = ModelConfig(input=input, kind=kind, lstm_dim=256, g_dims=(512,) * 4, f_dims=(512, 1024),
                                f_dropout=(0.0, 0.02), reverse_question=False)
            lr = 1e-4
        else:  # paper-spec 2.3
            model = ModelConfig(input=input, kind=kind, lstm_dim=128, g_dims=(256,) * 4, f_dims=(256, 256),
                                f_dropout=(0.0, 0.5), reverse_question=False)
            lr = 2.5e-4
        if name == "paper":
            train = TrainConfig(steps=100_000, batch_size=640, micro_batch_size=64, lr=lr, **common)
            run = RunConfig(preset=name, model=model, train=train)
        else:  # mesnico's recipe (paper-spec 2.6)
            model = dataclasses.replace(model, reverse_question=True)
            train = TrainConfig(steps=100_000, batch_size=640, micro_batch_size=64, lr=5e-6, schedule="step",
                                step_gamma=2.0, max_lr=5e-4, clip_grad_norm=50.0, weight_decay=1e-4, **common)
            run = RunConfig(preset=name, model=model, train=train, epochs=350, lr_double_epochs=20)
    else:
        model = ModelConfig(input=input, kind=kind, lstm_dim=128, g_dims=(256, 256, 256), f_dims=(256, 256),
                            f_dropout=(0.0, 0.05), reduce="mean", reverse_question=True, color="onehot")
        train = TrainConfig(steps=20_000, batch_size=64, lr=1e-3, optimizer="adamw", weight_decay=1e-4,
                            schedule="cosine", min_lr=1e-5, clip_grad_norm=5.0, **common)
        run = RunConfig(preset=name, model=model, train=train, epochs=60, warmup_epochs=1)
    return run


# -- modules -----------------------------------------------------------------------------------------------------


class StateEncoder(nn.Module):
    """Scene state descriptions -> objects ``(B, N, D)`` and mask ``(B, N)`` (see the module docstring)."""

    def __init__(self, color: str = "rgb", position_last: bool = False) -> None:
        super().__init__()
        if color not in ("rgb", "onehot"):
            raise UserError(f"--model.color={color}: expected rgb or onehot")
        self.color = color
        self.position_last = position_last  # (x, y) moved to the end of each row, where pair_distance reads them
        names = ("color", "shape", "material", "size") if color == "onehot" else ("shape", "material", "size")
        self.objects = StateObjects(continuous_dim=3 if color == "onehot" else 6,
                                    categorical={n: len(ATTR_VALUES[n]) for n in names})
        self.register_buffer("scale", torch.tensor(COORD_SCALE), persistent=False)
        self.object_dim = self.objects.object_dim

    def forward(self, coords: Tensor, attrs: Tensor, rgb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        continuous = coords / self.scale  # (B, N, 3)
        if self.color == "rgb":
            continuous = torch.cat([continuous, rgb], dim=-1)  # (B, N, 6)
            attrs = attrs[..., 1:]  # drop the colour index: (shape, material, size)
        objects, mask = self.objects(continuous, attrs, mask)  # (B, N, D)
        if self.position_last:
            objects = torch.cat([objects[..., 2:], objects[..., :2]], dim=-1)  # z, ..., x, y
        return objects * mask[..., None].to(objects.dtype), mask  # padding rows are exact zeros


class ClevrModel(nn.Module):
    """Question LSTM + scene objects + a head (RN or MLP), or the question LSTM alone (``kind="lstm"``).

    ``forward(batch)`` takes the collated batch dict of :mod:`relnet.tasks.clevr.task`: ``tokens (B, T)``,
    ``lengths (B,)`` and, for state input, ``coords (B, N, 3)``, ``attrs (B, N, 4)``, ``rgb (B, N, 3)``,
    ``mask (B, N)``; for pixel input ``image (B, 3, 128, 128)`` float in [0, 1]. Returns logits ``(B, 28)``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size < 3:
            raise UserError(f"model.vocab_size={cfg.vocab_size}: the question vocabulary must be known (>= 3)")
        self.cfg = cfg
        self.question = QuestionLSTM(vocab_size=cfg.vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.lstm_dim,
                                     reverse=cfg.reverse_question)
        self.scene: nn.Module | None = None
        if cfg.kind == "lstm":
            self.head = MLP(cfg.lstm_dim, list(cfg.f_dims), NUM_ANSWERS, dropout=cfg.f_dropout)
            return
        if cfg.input == "state":
            self.scene = StateEncoder(cfg.color, position_last=cfg.pair_distance)
            n_obj = cfg.max_objects
        else:
            self.scene = ConvObjects(channels=cfg.cnn_channels)
            d = ConvObjects.output_size(cfg.image_size, len(cfg.cnn_channels))
            n_obj = d * d
        object_dim = self.scene.object_dim
        if cfg.kind == "rn":
            self.head = RelationNetwork(object_dim=object_dim, question_dim=cfg.lstm_dim, g_dims=cfg.g_dims,
                                        f_dims=cfg.f_dims, out_dim=NUM_ANSWERS, f_dropout=cfg.f_dropout,
                                        reduce=cfg.reduce, aggregate_norm=cfg.aggregate_norm or None,
                                        hidden_norm=cfg.hidden_norm or None, pair_distance=cfg.pair_distance)
        else:  # the MLP baseline: as many layers of the same widths as g and f together
            dims = tuple(cfg.g_dims) + tuple(cfg.f_dims)
            dropout = (0.0,) * len(cfg.g_dims) + tuple(cfg.f_dropout)
            self.head = ObjectMLP(num_objects=n_obj, object_dim=object_dim, question_dim=cfg.lstm_dim,
                                  hidden_dims=dims, out_dim=NUM_ANSWERS, dropout=dropout)

    def objects(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        if self.cfg.input == "state":
            return self.scene(batch["coords"], batch["attrs"], batch["rgb"], batch["mask"])  # (B, 10, D), (B, 10)
        if "image" not in batch:
            raise UserError("a pixel model needs images: load the data with images (images/<split>/*.png)")
        return self.scene(batch["image"])  # (B, 64, 26), None

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        q = self.question(batch["tokens"], batch["lengths"])  # (B, lstm_dim)
        if self.scene is None:
            return self.head(q)  # (B, 28)
        objects, mask = self.objects(batch)
        return self.head(objects, q, mask)  # (B, 28)


class QTypePrior(nn.Module):
    """The Q-type baseline: answer each question with its family's most common training answer.

    ``table[k]`` is the answer id for ``question_family_index`` k; ``table[-1]`` (row ``num_families``) is the most
    common answer overall, used for unknown families. Fitted by :meth:`fit`; nothing is learned by gradient.

    Shapes: ``batch["qfi"] (B,)`` long -> logits ``(B, 28)`` (one-hot: 0 for the chosen answer, -inf elsewhere is
    avoided so that cross-entropy stays finite: -1e4).
    """

    def __init__(self, num_families: int = NUM_QUESTION_FAMILIES) -> None:
        super().__init__()
        self.num_families = num_families
        self.register_buffer("table", torch.zeros(num_families + 1, dtype=torch.long))

    def fit(self, qfi: Tensor, answers: Tensor) -> "QTypePrior":
        keep = answers >= 0
        qfi, answers = qfi[keep], answers[keep]
        fam = torch.where((qfi >= 0) & (qfi < self.num_families), qfi, torch.full_like(qfi, self.num_families))
        counts = torch.zeros(self.num_families + 1, NUM_ANSWERS, dtype=torch.long)
        counts.index_put_((fam, answers), torch.ones_like(answers), accumulate=True)
        overall = counts.sum(0)
        counts[self.num_families] = overall
        table = counts.argmax(1)
        table[counts.sum(1) == 0] = overall.argmax()  # a family never seen in training: the overall prior
        self.table.copy_(table)
        return self

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        qfi = batch["qfi"]
        fam = torch.where((qfi >= 0) & (qfi < self.num_families), qfi, torch.full_like(qfi, self.num_families))
        logits = torch.full((len(qfi), NUM_ANSWERS), -1e4, device=qfi.device)
        logits[torch.arange(len(qfi), device=qfi.device), self.table[fam]] = 0.0
        return logits


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.input not in INPUTS:
        raise UserError(f"model input {cfg.input!r}: expected one of {', '.join(INPUTS)}")
    check_hidden_norm(cfg.hidden_norm)
    if cfg.pair_distance and cfg.kind != "rn":
        raise UserError(f"--model.pair_distance needs --model rn, not {cfg.kind}")
    if cfg.kind == "qtype":
        return QTypePrior()
    if cfg.kind in ("rn", "mlp", "lstm"):
        return ClevrModel(cfg)
    raise UserError(f"model kind {cfg.kind!r}: expected one of {', '.join(MODELS)}")


def with_pair_distance(model: ClevrModel) -> ClevrModel:
    """A trained state RN without pair distances -> the same function as a model with them (a grown model).

    ``pair_distance=True`` moves each object's (x, y) to the end of its row and adds one weight per unit of g's first
    layer for the pair's distance. The new model's first layer of g is ``model``'s with its object columns permuted
    to the new row order, and its distance weights are 0; everything else is copied. Training can then use the
    distances (``scripts/clevr_add_pair_distance.py`` writes the checkpoint for ``--train.init_from``).
    """
    cfg = model.cfg
    if cfg.input != "state" or cfg.kind != "rn" or cfg.pair_distance:
        raise UserError("with_pair_distance: expected a state RN without pair distances")
    new = ClevrModel(dataclasses.replace(cfg, pair_distance=True))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    D = model.scene.object_dim
    perm = list(range(2, D)) + [0, 1]  # the new row is the old one with (x, y) moved last: new[k] = old[perm[k]]
    w = state["head.g_in.weight"]  # (H, 2D + Q): [o_i | o_j | q]
    state["head.g_in.weight"] = torch.cat([w[:, :D][:, perm], w[:, D:2 * D][:, perm], w[:, 2 * D:]], dim=1)
    state["head.g_dist"] = torch.zeros_like(new.head.g_dist)
    new.load_state_dict(state, strict=True)
    return new.train(model.training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(cfg: ModelConfig) -> str:
    """One line for reports: the architecture that ``cfg`` builds."""
    if cfg.kind == "qtype":
        return "most common training answer per question family"
    q = f"emb {cfg.embed_dim}, LSTM {cfg.lstm_dim}{' (reversed)' if cfg.reverse_question else ''}"
    scene = (f"state objects ({cfg.color} colour)" if cfg.input == "state"
             else f"CNN {list(cfg.cnn_channels)} on {cfg.image_size}px")
    if cfg.kind == "lstm":
        return f"{q}; MLP {list(cfg.f_dims)} dropout {list(cfg.f_dropout)}"
    if cfg.kind == "mlp":
        return f"{scene}; {q}; MLP {list(cfg.g_dims) + list(cfg.f_dims)}"
    return (f"{scene}; {q}; g {list(cfg.g_dims)}, f {list(cfg.f_dims)} dropout {list(cfg.f_dropout)}, "
            f"{cfg.reduce} over pairs" + (f", {cfg.aggregate_norm} norm on it" if cfg.aggregate_norm else "")
            + (f", {cfg.hidden_norm} norm inside g and f" if cfg.hidden_norm else "")
            + (", pair distances" if cfg.pair_distance else ""))


__all__ = ["ModelConfig", "DataConfig", "RunConfig", "preset", "build_model", "ClevrModel", "QTypePrior",
           "StateEncoder", "with_pair_distance", "INPUTS", "MODELS", "PRESETS", "NUM_ANSWERS", "FAMILIES", "describe", "count_parameters"]
