"""The showcase model: state-description objects + a word-level question LSTM + a Relation Network.

    objects  o_i = [x, y, colour one-hot (6), shape one-hot (3)]      (11 features, x and y in [-1, 1])
    question q   = final hidden state of an LSTM over the question's words (vocabulary fixed by the grammar)
    answer       = f( sum_{i != j} g(o_i, o_j, q) )                 (18 logits, ``data.ANSWERS``)

Self-pairs are left out (``self_pairs=False``): no question is about an object and itself, and the page's grid
greys the diagonal because g is never evaluated there.

Preset ``default`` (the only one): g 3 x 128, f 128 -> 18, LSTM 64 units on 32-d word embeddings, AdamW 2e-3 with a
cosine schedule, batch 64, 7000 steps (every example is a freshly generated scene; ~90 ms per step on one busy CPU
core).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from relnet.nn import QuestionLSTM, RelationNetwork, StateObjects
from relnet.tasks.showcase import data
from relnet.train.config import TrainConfig

PRESETS = ("default",)


@dataclass
class ModelConfig:
    embed_dim: int = 32
    hidden_dim: int = 64  # question LSTM units
    g_dims: tuple[int, ...] = (128, 128, 128)
    f_dims: tuple[int, ...] = (128,)
    f_dropout: tuple[float, ...] = (0.0,)
    reduce: str = "sum"
    self_pairs: bool = False
    aggregate_norm: str = "layer"  # LayerNorm on the summed relation ("" for none): breaks the early plateau sooner


@dataclass
class DataConfig:
    seed: int = 0
    train_scenes: int = 1_000_000  # virtual: example k = scene k (one question), generated from (seed, k) on demand
    questions_per_scene: int = 8  # of the validation scenes
    eval_scenes: int = 250  # validation scenes (split "val") evaluated during training


@dataclass
class RunConfig:
    task: str = "showcase"
    preset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def preset(name: str = "default") -> RunConfig:
    from relnet.errors import UserError

    if name not in PRESETS:
        raise UserError(f"--preset {name}: expected one of {', '.join(PRESETS)}")
    train = TrainConfig(steps=20_000, batch_size=64, lr=2e-3, schedule="cosine", warmup_steps=200, min_lr=4e-5,
                        eval_every=1000, checkpoint_every=1000, log_every=100)
    return RunConfig(preset=name, train=train)


class ShowcaseModel(nn.Module):
    """RN over the 6 scene objects, conditioned on the LSTM-encoded question.

    Shapes:
        xy ``(B, N, 2)`` in [-1, 1], categorical ``(B, N, 2)`` long (colour, shape), tokens ``(B, T)`` long,
        lengths ``(B,)`` -> logits ``(B, len(ANSWERS))``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.state = StateObjects(continuous_dim=2, categorical={"color": len(data.COLORS), "shape": len(data.SHAPES)})
        self.question = QuestionLSTM(vocab_size=len(data.VOCAB), embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim)
        self.head = RelationNetwork(object_dim=self.state.object_dim, question_dim=cfg.hidden_dim, g_dims=cfg.g_dims,
                                    f_dims=cfg.f_dims, out_dim=len(data.ANSWERS), f_dropout=cfg.f_dropout,
                                    reduce=cfg.reduce, self_pairs=cfg.self_pairs,
                                    aggregate_norm=cfg.aggregate_norm or None)

    def encode(self, xy: Tensor, categorical: Tensor, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        objects, _ = self.state(xy, categorical)  # (B, N, 11)
        return objects, self.question(tokens, lengths)  # (B, N, 11), (B, Q)

    def forward(self, xy: Tensor, categorical: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:
        objects, q = self.encode(xy, categorical, tokens, lengths)
        return self.head(objects, q)  # (B, C)


def build_model(cfg: ModelConfig) -> ShowcaseModel:
    return ShowcaseModel(cfg)
