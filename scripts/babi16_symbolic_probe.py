"""bAbI task 16 (basic induction) with ideal sentence codes: is the RN's plateau the sentence LSTM's fault or the
pairwise join's? Diagnosis, not a result.

    python scripts/babi16_symbolic_probe.py [--model pair|triple|gated|rrn|product|gated-product] [--rename]
        [--seconds 600] [--seed 0] [--width 256] [--lr 1e-3]
    python scripts/babi16_symbolic_probe.py --rule   # what the join written as a rule answers (no training)

Each statement of a task-16 story ("lily is a frog", "lily is green") becomes an exact symbolic object instead of an
LSTM state: one-hot name (5), kind (species or colour), value (4 species + 4 colours) and a one-hot position among
the story's 9 statements; the question is the one-hot name asked about. The answer needs three statements: the
asked animal's species, another animal of that species, and that animal's colour.

``pair``: ``relnet.RelationNetwork`` over all ordered pairs with the bAbI sizes (g 4 x 256, f 256, 512, 4 colours).
``triple``: the same idea over all ordered triples (g 3 x 256 on [o_i; o_j; o_k; q], summed, f 256): one g sees all
three statements at once, a positive control. ``gated``: a pair RN whose f also reads the elementwise product of
two pooled halves of g's output (``GatedRN``). ``rrn``: a recurrent relational network (``RecurrentRN``, Palm et al.
2018; ``--steps`` message-passing rounds, a loss after each). ``product``: a pair RN whose g also reads elementwise
products of the two objects and of each with the question (``ProductRN``: equality tests become linear);
``gated-product``: both changes. ``--width`` sets the pair model's width (g 4 x W, f W, 2W). ``--rename``: names,
species and colours permuted at random in every training question (as ``--data.augment=16``), so nothing can be
learnt by heart. Validation: the last 10% of the stories (relnet's carve), 1,000 questions. Adam (``--lr``), clip 5,
1 thread; prints validation accuracy every 250 steps and a last JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from relnet.nn import MLP, RelationNetwork
from relnet.tasks.babi.data import parse_files, split_train_valid

FILE = Path(__file__).resolve().parents[1] / "../shared/data/babi/en-10k/qa16_basic-induction_train.txt"
NAMES = ("bernhard", "brian", "greg", "julius", "lily")
SPECIES = ("frog", "lion", "rhino", "swan")
COLOURS = ("gray", "green", "white", "yellow")
S = 9  # statements per story in task 16
D = len(NAMES) + 2 + len(SPECIES) + len(COLOURS) + S


def encode(ex, perm: tuple[list[int], list[int], list[int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One question -> objects (S, D), question (5,), answer colour index, under a renaming ``perm``."""
    pn, ps, pc = perm
    x = torch.zeros(S, D)
    for k, words in enumerate(ex.story[-S:]):
        x[k, pn[NAMES.index(words[0])]] = 1
        if words[2] == "a":  # "<name> is a <species>"
            x[k, 5] = 1
            x[k, 7 + ps[SPECIES.index(words[3])]] = 1
        else:  # "<name> is <colour>"
            x[k, 6] = 1
            x[k, 11 + pc[COLOURS.index(words[2])]] = 1
        x[k, 15 + k] = 1
    q = torch.zeros(len(NAMES))
    q[pn[NAMES.index(ex.question[3])]] = 1  # "what color is <name> ?"
    return x, q, pc[COLOURS.index(ex.answer)]


def batch(examples, index: torch.Tensor, rename: bool, gen: torch.Generator):
    identity = (list(range(5)), list(range(4)), list(range(4)))
    out = [encode(examples[i], tuple(torch.randperm(n, generator=gen).tolist() for n in (5, 4, 4)) if rename
                  else identity) for i in index.tolist()]
    xs, qs, ys = zip(*out)
    return torch.stack(xs), torch.stack(qs), torch.tensor(ys)


class TripleRN(nn.Module):
    """``f(sum_{i,j,k} g(o_i, o_j, o_k, q))``: the positive control."""

    def __init__(self) -> None:
        super().__init__()
        self.g = MLP(3 * D + len(NAMES), [256, 256], 256)
        self.f = MLP(256, [256], len(COLOURS))

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        parts = [x[:, :, None, None].expand(B, S, S, S, D), x[:, None, :, None].expand(B, S, S, S, D),
                 x[:, None, None].expand(B, S, S, S, D), q[:, None, None, None].expand(B, S, S, S, len(NAMES))]
        return self.f(torch.relu(self.g(torch.cat(parts, -1))).sum((1, 2, 3)))


class GatedRN(nn.Module):
    """``f([a; b; a * b])`` with ``[a; b] = LayerNorm'd halves of sum_{i,j} g(o_i, o_j, q)``: a pair RN whose f gets
    the product of two pooled relation codes, so a lookup that joins facts from different pairs (the asked animal's
    species from one, a species' colour from another) is one elementwise product instead of a function f must
    learn to multiply with."""

    def __init__(self, width: int = 256, products: bool = False) -> None:
        super().__init__()
        self.products = products
        if products:  # g reads ``product_pairs``: equality tests are linear in its input
            self.g = MLP(5 * D + len(NAMES), [256, 256, 256], 2 * width)
        else:
            self.g = RelationNetwork(object_dim=D, question_dim=len(NAMES), g_dims=(256, 256, 256, 2 * width),
                                     f_dims=(), out_dim=0)  # g only: its aggregate is the sum over pairs
        self.norm_a, self.norm_b = nn.LayerNorm(width), nn.LayerNorm(width)
        self.f = MLP(3 * width, [256, 512], len(COLOURS))

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        pooled = summed_product_g(self.g, x, q) if self.products else self.g.aggregate(x, q)
        a, b = pooled.chunk(2, dim=-1)
        a, b = self.norm_a(a), self.norm_b(b)
        return self.f(torch.cat([a, b, a * b], -1))


class ProductRN(nn.Module):
    """A pair RN whose g also reads elementwise products: ``g([o_i; o_j; q; o_i * o_j; o_i * q'; o_j * q'])`` with
    ``q'`` the question padded to the object width. On one-hot codes a product is an equality test, so "same name",
    "same species" and "this statement is about the asked animal" are linear in g's input instead of something g's
    first layers must learn. The join across pairs is still f's."""

    def __init__(self) -> None:
        super().__init__()
        self.g = MLP(5 * D + len(NAMES), [256, 256, 256], 256)
        self.f = MLP(256, [256, 512], len(COLOURS))

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.f(summed_product_g(self.g, x, q))


def summed_product_g(g: nn.Module, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``sum_{i,j} relu(g(product_pairs(x, q)))``: ``(B, S, D), (B, 5) -> (B, g's width)``."""
    return torch.relu(g(product_pairs(x, q))).sum((1, 2))


def product_pairs(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``(B, S, D), (B, 5) -> (B, S, S, 5 D + 5)``: ``[o_i; o_j; q; o_i * o_j; o_i * q'; o_j * q']`` for every
    ordered pair, ``q'`` the question padded to the object width (the name one-hot sits first in an object)."""
    B = x.shape[0]
    xq = x * nn.functional.pad(q, (0, D - len(NAMES)))[:, None]
    oi, oj = x[:, :, None].expand(B, S, S, D), x[:, None].expand(B, S, S, D)
    return torch.cat([oi, oj, q[:, None, None].expand(B, S, S, len(NAMES)), oi * oj,
                      xq[:, :, None].expand(B, S, S, D), xq[:, None].expand(B, S, S, D)], -1)


class RecurrentRN(nn.Module):
    """A recurrent relational network (Palm et al. 2018) over the statements: ``steps`` rounds of
    ``m_i = sum_j msg([h_i; h_j])``, ``h_i <- GRU([x_i; q; m_i], h_i)``, and an answer after every round from
    ``out(sum_i h_i)``; the loss is the mean over rounds (``forward`` returns every round's logits, the last one
    answers). A join across three statements is two message steps, each a pairwise comparison."""

    def __init__(self, steps: int = 3, width: int = 128) -> None:
        super().__init__()
        self.steps = steps
        self.enc = MLP(D + len(NAMES), [width], width)
        self.msg = MLP(2 * width, [width, width], width)
        self.node = nn.GRUCell(D + len(NAMES) + width, width)
        self.out = MLP(width, [width], len(COLOURS))

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        xq = torch.cat([x, q[:, None].expand(B, S, len(NAMES))], -1)  # (B, S, D + 5)
        h = self.enc(xq)  # (B, S, W)
        W = h.shape[-1]
        logits = []
        for _ in range(self.steps):
            pairs = torch.cat([h[:, :, None].expand(B, S, S, W), h[:, None].expand(B, S, S, W)], -1)
            m = self.msg(pairs).sum(2)  # (B, S, W)
            h = self.node(torch.cat([xq, m], -1).reshape(B * S, -1), h.reshape(B * S, W)).view(B, S, W)
            logits.append(self.out(h.sum(1)))
        return torch.stack(logits)  # (steps, B, C)


def rule_check(examples) -> dict[str, float]:
    """The join written as a rule: the colours of the other animals of the asked animal's species, in story order.
    Counts the questions where that colour is unique and right, and where several differ (the most recent right or
    not): how far a model that learns the join can get. And what needs no join: the expected accuracy of answering
    one of the story's most frequent colours at random (``majority_colour``, a share of the questions)."""
    counts = {"unique_right": 0, "unique_wrong": 0, "ambiguous_last_right": 0, "ambiguous_last_wrong": 0, "none": 0}
    majority = 0.0
    for ex in examples:
        species, colours = {}, []
        for words in ex.story[-S:]:
            if words[2] == "a":
                species[words[0]] = words[3]
            else:
                colours.append((words[0], words[2]))
        story_colours = Counter(c for _, c in colours)
        top = [c for c, n in story_colours.items() if n == max(story_colours.values())]
        majority += (ex.answer in top) / len(top)
        asked = ex.question[3]
        found = [c for name, c in colours if name != asked and species.get(name) == species.get(asked)]
        if not found:
            counts["none"] += 1
        elif len(set(found)) == 1:
            counts["unique_right" if found[0] == ex.answer else "unique_wrong"] += 1
        else:
            counts["ambiguous_last_right" if found[-1] == ex.answer else "ambiguous_last_wrong"] += 1
    return {**counts, "majority_colour": round(majority / len(examples), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("pair", "triple", "gated", "rrn", "product", "gated-product"), default="pair")
    p.add_argument("--steps", type=int, default=3, help="rrn: message-passing rounds")
    p.add_argument("--rename", action="store_true")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=256, help="pair: g 4 x WIDTH, f WIDTH, 2 x WIDTH")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rule", action="store_true", help="only count what the join written as a rule answers")
    args = p.parse_args()
    if args.rule:
        print(json.dumps(rule_check(parse_files([FILE], task=16))))
        return
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train, valid = split_train_valid(parse_files([FILE], task=16))
    vx, vq, vy = batch(valid, torch.arange(len(valid)), False, gen)
    if args.model == "pair":
        model = RelationNetwork(object_dim=D, question_dim=len(NAMES), g_dims=(args.width,) * 4,
                                f_dims=(args.width, 2 * args.width), out_dim=len(COLOURS))
    elif args.model == "rrn":
        model = RecurrentRN(args.steps)
    elif args.model == "product":
        model = ProductRN()
    elif args.model == "gated-product":
        model = GatedRN(products=True)
    else:
        model = TripleRN() if args.model == "triple" else GatedRN()
    rounds = (lambda out: out) if args.model == "rrn" else (lambda out: out[None])  # (rounds, B, C)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    t0, step, acc = time.perf_counter(), 0, float("nan")
    while time.perf_counter() - t0 < args.seconds:
        step += 1
        x, q, y = batch(train, torch.randint(len(train), (args.batch,), generator=gen), args.rename, gen)
        out = rounds(model(x, q))
        loss = nn.functional.cross_entropy(out.flatten(0, 1), y.repeat(out.shape[0]))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % 250 == 0:
            model.eval()
            with torch.no_grad():
                acc = float((rounds(model(vx, vq))[-1].argmax(-1) == vy).float().mean())
            model.train()
            print(f"step {step}: loss {loss.item():.3f}, validation {acc:.1%}, {time.perf_counter() - t0:.0f} s",
                  flush=True)
    print(json.dumps({"model": args.model, **({"rounds": args.steps} if args.model == "rrn" else {}),
                      "rename": args.rename, "seed": args.seed, "steps": step,
                      "batch": args.batch, "seconds": round(time.perf_counter() - t0), "valid_n": len(valid),
                      "valid_accuracy": acc}))


if __name__ == "__main__":
    main()
