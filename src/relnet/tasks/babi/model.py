"""bAbI model and presets: sentences as objects, a question LSTM, and an RN over sentence pairs (paper section 5).

    story (B, S, T) --shared sentence LSTM--> o_1..o_S (+ one-hot slot tag) --+
    question (B, Tq) --question LSTM--> q ------------------------------------+--> RN --> logits over answers

Objects are the last ``S = 20`` statements before the question, right-aligned: slot ``S - 1`` is the most recent
statement, and its one-hot slot index is the "relative position" tag the paper adds. Empty slots (stories shorter
than 20 statements) are masked: their pairs are never computed (``RelationNetwork`` packs the valid pairs), so a
6-sentence story costs 36 pairs, not 400. Over the training data the mean is 72 pairs per question.

Sentences are encoded once per batch: bAbI stories repeat a small set of statements (3,209 distinct ones in the
20-sentence windows of all 172,739 training questions), and the questions of one story share theirs, so the LSTM
runs over the *distinct* non-empty sentences of a batch and the results are gathered back into the slots
(``BabiObjects``).

Presets (``--preset``):

=======  =============================================  =================================  ================================
preset   encoders                                       RN                                 optimiser
=======  =============================================  =================================  ================================
paper    embedding 32 (separate tables), sentence LSTM  g 4 x 256, f 256, 512 + linear,    Adam 2e-4, batch 64, 100 epochs
         32, question LSTM 32, 20-d one-hot positions   all n^2 ordered pairs, sum
fast     as paper, one shared embedding table           as paper on the pairs i <= j       Adam 1e-3, batch 256, 500
                                                        (n(n+1)/2), dropout 0.1 on f's     warm-up steps, cosine to 1e-5
                                                        512, BatchNorm in g and f          over 28,000 steps (41.5
                                                                                           epochs), clip 5
=======  =============================================  =================================  ================================

``rounds=2`` (**a deviation**, off in both presets): a first g, with the same sizes, gives each sentence the mean of
g over the pairs it is in (either slot, its self-pair included) given the question, ``c_i``, and the RN runs over
``[o_i; LayerNorm(c_i)]``. Meant for tasks whose answer needs three facts (3, 16); it doubles the cost of g. Task 16
alone: 47-50%, the "guess the common colour" plateau, as with one round. Jointly (GPU, from scratch, stopped at step
7,000 of 14,000: `reports/babi_gpu_variants.md`) task 3 78.9%, against 69.5% with one round at step 9,000.
``grown`` turns a trained one-round model into a two-round one that starts from the same function.

``max_sentences`` (paper: 20): task 3 has 11 of its 190 validation questions with a supporting fact more than 20
statements back, none more than 40 (``scripts/babi_window.py``), so with 20 a pass (> 95%) is out of reach there.
``grown(model, max_sentences=40)`` keeps a trained model's slot tags for the newest 20 slots.

``hidden_norm="batch"`` (**a deviation**, on in ``fast``, off in ``paper``; moon1ite's 17/20 reproduction has it): a
BatchNorm between every hidden Linear of g and f and its ReLU, its statistics over the batch's real sentence pairs
only. Task 19 (path finding; probes in `runs/babiprobe`, `--data.tasks=...`, batch 64, constant rate):

* task 19 alone, lr 2e-4, 2,800 steps (20 epochs): validation 10.5% without a norm, 12.3% with BatchNorm, 12.4% with
  LayerNorm (chance 1/12). Continued with BatchNorm, training accuracy reached 93% by step 4,600 while validation
  stayed at 11-13%: alone, the task is memorised, not learned;
* tasks 4 and 19 together (task 4 states the same "X is north of Y" facts), lr 5e-4, 4,000 steps: task 19 at 7.5%
  without a norm; with BatchNorm 22.9% at step 2,000, 35.0% at 3,000 and 46.6% at 4,000, still rising.

The paper does not state batch size, epochs, embedding size or whether the two LSTMs share the embedding table;
``paper`` uses the public reproductions' embedding size (32) and separate tables. ``preset`` says why ``fast``
differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from relnet.errors import UserError
from relnet.nn import QuestionLSTM, RelationNetwork, SentenceObjects
from relnet.nn.relation import REDUCES
from relnet.tasks.babi.data import MAX_SENTENCES, PAD, Vocab
from relnet.train.config import TrainConfig
from relnet.train.options import check_hidden_norm

PRESETS = ("paper", "fast")
PAIRS = ("ordered", "unordered")


@dataclass
class ModelConfig:
    """Sizes of the bAbI RN. ``vocab_size``/``num_answers`` are not here: they come from the vocabulary."""

    embed_dim: int = 32
    sentence_dim: int = 32  # sentence LSTM units (paper: 32)
    question_dim: int = 32  # question LSTM units (paper: 32)
    share_embedding: bool = False  # one word-embedding table for sentences and questions
    max_sentences: int = MAX_SENTENCES  # S: the most recent statements kept (paper: 20)
    g_dims: tuple[int, ...] = (256, 256, 256, 256)
    f_dims: tuple[int, ...] = (256, 512)  # hidden layers of f; a linear layer to the answers follows
    f_dropout: tuple[float, ...] = (0.0, 0.0)
    reduce: str = "sum"  # sum (paper) | mean | max | sum+max over the valid pairs
    pairs: str = "ordered"  # ordered: all n^2 pairs (paper) | unordered: i <= j, about half
    rounds: int = 1  # 1: the paper; 2: a first g's per-sentence summary c_i is appended to each object (see BabiRN)
    hidden_norm: str = ""  # "" (paper) | layer | batch: a norm between each hidden Linear of g and f and its ReLU


@dataclass
class DataConfig:
    root: str = ""  # the bAbI folder (--data); holds qaN_*_{train,test}.txt, possibly in en-10k/ etc.
    valid_fraction: float = 0.1  # last 10% of each task's stories are the validation split
    tasks: tuple[int, ...] = ()  # train on these tasks only; () = every task found
    augment: tuple[int, ...] = ()  # rename words in these tasks' training questions (relnet.tasks.babi.augment)
    balance: bool = False  # repeat a task's training questions round(largest task's count / its count) times
    repeat: tuple[int, ...] = ()  # these tasks' training questions repeated repeat_times times more (after balance)
    repeat_times: int = 1


@dataclass
class RunConfig:
    task: str = "babi"
    preset: str = "fast"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def preset(name: str) -> RunConfig:
    """The run configuration of a named preset.

    ``paper``: the paper's sizes and Adam 2e-4; batch 64 (not stated in the paper; the public reproductions use
    20-64); 100 epochs of the 172,739 en-10k training questions (a budget: the paper gives none; ``--resume``
    continues a finished run when ``--train.steps`` is raised).

    ``fast``: the recipe of ``checkpoints/babi/rn_18of20`` (18/20 on the validation carve, `reports/babi_renamed.md`;
    the shipped 19/20 model continues it with task 16 oversampled, `reports/babi_gpu_variants.md`): BatchNorm
    between g's and f's hidden layers and their ReLUs, batch 256 at Adam 1e-3 with a cosine over 28,000 steps (41.5
    epochs, ~1.7 h on 1 thread of a 2-core AMD EPYC), and the words of tasks 3, 16 and 19 renamed in every
    training question (``relnet.tasks.babi.augment``). Without the BatchNorm task 19 (path finding) stays near
    chance; with it, it climbs to 90% (six variants side by side on a GPU: `reports/babi_gpu_variants.md`); with
    the renaming too, to 100% (17/20 -> 18/20, `reports/babi_bn256.md` without it). The ``fast`` before BatchNorm
    (no norm, batch 64, 40 epochs at 5e-4) passed 16/20 (`reports/babi.md`).
    Otherwise the same network over unordered pairs (i <= j: n(n+1)/2 pairs instead of n^2; the one-hot position
    tags still tell g which sentence came first), with one shared embedding table, dropout 0.1 before the logits and
    gradient clipping. Measured on the same 2,560 training questions, interleaved in one process (1 thread, busy
    2-core machine): 1.61 ms per question against 2.30 for ``paper`` (-30%). moon1ite's public TF reproduction also
    sums over unordered pairs, without self-pairs (17/20 passed; AndreaCossu's, over all ordered pairs, 14/20).
    Batch 256 is not cheaper per question than batch 64 on a busy CPU (2.25 vs 2.30 ms); it is used for its higher
    stable rate (1e-3), which starts task 19 sooner (`reports/babi_gpu_variants.md`). Shared vs
    separate embeddings: after 19,200 training questions (0.11 epoch) validation accuracy was 25.4% vs 26.1%, i.e.
    no measurable difference that early;
    sharing halves the embedding parameters and gives a word one meaning in statements and questions.
    """
    if name not in PRESETS:
        raise UserError(f"--preset {name}: expected one of {', '.join(PRESETS)}")
    epoch64 = 172_739 // 64  # optimiser steps per epoch of the en-10k training split at batch 64
    if name == "paper":
        model = ModelConfig()
        train = TrainConfig(steps=100 * epoch64, batch_size=64, lr=2e-4, eval_every=epoch64, checkpoint_every=epoch64,
                            log_every=100)
    else:
        model = ModelConfig(share_embedding=True, f_dropout=(0.0, 0.1), pairs="unordered", hidden_norm="batch")
        train = TrainConfig(steps=28_000, batch_size=256, lr=1e-3, schedule="cosine", warmup_steps=500, min_lr=1e-5,
                            clip_grad_norm=5.0, eval_every=2_000, checkpoint_every=500, log_every=100)
        return RunConfig(preset=name, model=model, train=train, data=DataConfig(augment=(3, 16, 19)))
    return RunConfig(preset=name, model=model, train=train)


def unique_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct rows of a 2-D integer tensor and, for each row, the index of its distinct row.

    The same result as ``torch.unique(x, dim=0, return_inverse=True)`` (rows sorted lexicographically), computed with
    one stable sort per column instead of torch's row-by-row comparison (measured 0.5 ms vs 2.1 ms for 640 rows).

    Shapes: ``(M, T) -> distinct (U, T), inverse (M,)`` with ``distinct[inverse] == x``.
    """
    M, T = x.shape
    order = torch.arange(M, device=x.device)
    for c in reversed(range(T)):  # least significant column first: stable sorts give lexicographic order
        order = order[torch.argsort(x[order, c], stable=True)]
    xs = x[order]  # (M, T) sorted rows
    new = torch.ones(M, dtype=torch.bool, device=x.device)
    new[1:] = (xs[1:] != xs[:-1]).any(dim=1)  # (M,) first row of each run of equal rows
    inverse = torch.empty(M, dtype=torch.long, device=x.device)
    inverse[order] = new.cumsum(0) - 1
    return xs[new], inverse


class BabiObjects(SentenceObjects):
    """``SentenceObjects`` that encodes each *distinct* sentence of a batch once.

    Exactly equal to ``SentenceObjects.forward`` (the LSTM is a function of the tokens alone); cheaper whenever the
    batch repeats sentences, which in bAbI it does (questions of one story share their statements).

    Shapes:
        tokens ``(B, S, T)`` long (PAD = 0 after the last word), lengths ``(B, S)`` long (0 = empty slot)
        -> objects ``(B, S, hidden + S)``, mask ``(B, S)``.
    """

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        B, S, T = tokens.shape
        if S != self.max_sentences:
            raise ValueError(f"expected {self.max_sentences} sentence slots, got {S}")
        mask = lengths > 0  # (B, S)
        real = tokens[mask]  # (M, T) the non-empty slots
        if real.shape[0] > 0:
            # PAD never occurs inside a sentence, so equal rows are equal sentences (and have equal lengths).
            distinct, inverse = unique_rows(real)  # (U, T), (M,)
            distinct_len = (distinct != PAD).sum(dim=1)  # (U,)
            encoded = self.encoder(distinct, distinct_len)[inverse]  # (M, hidden)
        else:
            encoded = self.encoder(real, lengths[mask])  # (0, hidden)
        states = encoded.new_zeros(B, S, encoded.shape[-1]).masked_scatter(mask[..., None], encoded)  # (B, S, hidden)
        tags = torch.eye(S, device=tokens.device, dtype=states.dtype).expand(B, S, S)  # (B, S, S)
        return torch.cat([states, tags], dim=-1), mask  # (B, S, hidden + S)


class BabiRN(nn.Module):
    """Sentence objects + question LSTM + RN, for all 20 tasks at once (one softmax over every answer).

    Args:
        cfg: sizes (``ModelConfig``).
        vocab_size: word ids (PAD = 0, UNK = 1 included).
        num_answers: answer classes (the logits).

    Shapes:
        story ``(B, S, T)`` long, story_len ``(B, S)`` long, question ``(B, Tq)`` long, question_len ``(B,)`` long
        -> logits ``(B, num_answers)``.
    """

    def __init__(self, cfg: ModelConfig, *, vocab_size: int, num_answers: int) -> None:
        super().__init__()
        if cfg.pairs not in PAIRS:
            raise UserError(f"--model.pairs={cfg.pairs}: expected one of {', '.join(PAIRS)}")
        if cfg.reduce not in REDUCES:
            raise UserError(f"--model.reduce={cfg.reduce}: expected one of {', '.join(REDUCES)}")
        check_hidden_norm(cfg.hidden_norm)
        if cfg.max_sentences < 1:
            raise UserError(f"--model.max_sentences={cfg.max_sentences}: must be at least 1")
        if len(cfg.f_dropout) != len(cfg.f_dims):
            raise UserError(f"--model.f_dropout has {len(cfg.f_dropout)} rates for {len(cfg.f_dims)} layers of f")
        self.cfg = cfg
        self.sentences = BabiObjects(vocab_size=vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.sentence_dim,
                                     max_sentences=cfg.max_sentences)
        shared = self.sentences.encoder.embedding if cfg.share_embedding else None
        self.question = QuestionLSTM(vocab_size=vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.question_dim,
                                     embedding=shared)
        if cfg.rounds not in (1, 2):
            raise UserError(f"--model.rounds={cfg.rounds}: expected 1 or 2")
        D = self.sentences.object_dim
        if cfg.rounds == 2:  # round 1: g only; each sentence's mean relation to the others, given the question
            self.context = RelationNetwork(object_dim=D, question_dim=cfg.question_dim, g_dims=cfg.g_dims,
                                           f_dims=(), out_dim=0, ordered=cfg.pairs == "ordered")
            self.context_norm = nn.LayerNorm(cfg.g_dims[-1])
            D += cfg.g_dims[-1]
        self.rn = RelationNetwork(object_dim=D, question_dim=cfg.question_dim,
                                  g_dims=cfg.g_dims, f_dims=cfg.f_dims, out_dim=num_answers,
                                  f_dropout=cfg.f_dropout, reduce=cfg.reduce, ordered=cfg.pairs == "ordered",
                                  hidden_norm=cfg.hidden_norm or None)
        self.vocab_size = vocab_size
        self.num_answers = num_answers

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, num_answers={self.num_answers}, "
                f"share_embedding={self.cfg.share_embedding}")

    def objects(self, story: Tensor, story_len: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, S, T), (B, S) -> objects (B, S, D), mask (B, S)``."""
        return self.sentences(story, story_len)

    def forward(self, story: Tensor, story_len: Tensor, question: Tensor, question_len: Tensor) -> Tensor:
        objects, mask = self.objects(story, story_len)  # (B, S, D), (B, S)
        q = self.question(question, question_len)  # (B, Qd)
        if self.cfg.rounds == 2:
            context = self.context_norm(self.context.per_object(objects, q, mask))  # (B, S, G)
            objects = torch.cat([objects, context], dim=-1)  # (B, S, D + G)
        return self.rn(objects, q, mask)  # (B, C)


def grown(model: BabiRN, *, rounds: int | None = None, max_sentences: int | None = None, seed: int = 0) -> BabiRN:
    """A trained model -> a larger one that starts from it (a grown model, for ``--train.init_from``).

    ``rounds=2`` (from 1): the second round appends each sentence's context (its LayerNorm'd mean relation to the
    others under a new g) to its object. The RN reads those columns through first-layer weights that start at 0, so
    the grown model computes exactly what ``model`` does; the new g starts from its seeded initialisation and gets
    gradient once training has moved those weights.

    ``max_sentences=S2`` (from a smaller S): the window keeps the last S2 statements. Slots are right-aligned, so old
    slot k is new slot k + S2 - S and keeps its tag weights; the S2 - S new, older slots start with the weights of the
    oldest old slot. Questions whose story fits the old window get exactly the old answers; longer stories now
    contribute their older sentences, which training must learn to use. ``scripts/babi_grow.py`` writes the grown
    checkpoint and checks the first property.
    """
    cfg = model.cfg
    rounds = cfg.rounds if rounds is None else rounds
    S, S2 = cfg.max_sentences, cfg.max_sentences if max_sentences is None else max_sentences
    if (rounds, S2) == (cfg.rounds, S) or rounds not in (cfg.rounds, 2) or S2 < S:
        raise UserError(f"grown: from rounds={cfg.rounds}, max_sentences={S} a model can grow to rounds=2 and/or a "
                        f"longer window, not to rounds={rounds}, max_sentences={S2}")
    with torch.random.fork_rng():  # seed the new tensors without touching the caller's random state
        torch.manual_seed(seed)
        new = BabiRN(dataclasses.replace(cfg, rounds=rounds, max_sentences=S2), vocab_size=model.vocab_size,
                     num_answers=model.num_answers)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for k, v in new.state_dict().items():
        if k not in state:  # the new round's g and norm
            state[k] = v
    H, G = cfg.sentence_dim, cfg.g_dims[-1]
    tags = [0] * (S2 - S) + list(range(S))  # new tag column -> old one (slots right-aligned: newest last)

    def block(w: torch.Tensor, context: bool) -> torch.Tensor:
        """One object's columns of a first layer: [state | tags (| context)] -> the grown layout."""
        parts = [w[:, :H], w[:, H:H + S][:, tags]]
        if context:
            parts.append(w[:, H + S:] if cfg.rounds == 2 else w.new_zeros(w.shape[0], G))
        return torch.cat(parts, dim=1)

    for name, context in (("rn", rounds == 2), ("context", False)):
        key = f"{name}.g_in.weight"
        if key not in model.state_dict():
            continue  # a new round's g keeps its initialisation
        w = state[key]  # (H', 2D + Q): [o_i | o_j | q]
        D = (w.shape[1] - cfg.question_dim) // 2
        state[key] = torch.cat([block(w[:, :D], context), block(w[:, D:2 * D], context), w[:, 2 * D:]], dim=1)
    new.load_state_dict(state, strict=True)
    return new.train(model.training)


def build_model(cfg: ModelConfig, vocab: Vocab) -> BabiRN:
    return BabiRN(cfg, vocab_size=vocab.num_words, num_answers=vocab.num_answers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
