"""A ternary Relation Network: one shared g over every triple of objects instead of every pair.

    TRN(O, q) = f_phi( sum_{(i,j,k)} g_theta(o_i, o_j, o_k, q) )

The paper's RN compares objects two at a time. Some questions are about three at once ("is the red object between
the blue and the green one?", kimhc6028's ternary Sort-of-CLEVR questions), which a pairwise g can only answer by
routing partial results through f. This module is the direct generalisation, built the way
:class:`relnet.nn.relation.RelationNetwork` is:

* the first layer of g is factorised, ``W [o_i; o_j; o_k; q] + b = W_a o_i + W_b o_j + (W_c o_k + W_q q + b)``,
  so each object is projected three times (B*N rows each) and the triple tensor ``(B, N, N, N, 3D+Q)`` is never
  built;
* masked objects (padding) are not computed at all: the valid triples are packed into one ``(P, H)`` matrix and
  summed back per example with ``index_add``;
* ``chunk_triples`` bounds g's activations under activation checkpointing (N^3 grows fast: N=25 is 15,625 triples
  per example). With masks or ``distinct`` the triple index lists themselves (4 int64 per valid triple) are still
  built whole, so for very large N leave out masks and use the dense path.

Dimension legend: B batch, N objects, D object features, Q question features, H width of g's first layer, G width of
g's output, P number of computed triples, C outputs of f.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from relnet.nn.mlp import MLP, make_norm
from relnet.nn.relation import check_inputs, distance, maybe_checkpoint


class TernaryRelationNetwork(nn.Module):
    """``f_phi(sum_ijk g_theta(o_i, o_j, o_k, q))`` over a set of objects, optionally conditioned on a question.

    Args:
        object_dim: D, features per object.
        question_dim: Q, features of the question vector (0: no question).
        g_dims: widths of g's layers, each followed by ReLU. The last is the relation size G.
        f_dims: widths of f's hidden layers (ReLU); a final linear layer maps to ``out_dim`` (the logits).
        out_dim: C, outputs of f.
        f_dropout: dropout after f's hidden layers (one rate, or one per hidden layer).
        reduce: ``"sum"`` over the computed triples (the paper's choice for pairs) or ``"mean"``.
        distinct: only triples of three different objects (``i, j, k`` pairwise distinct); by default all N^3
            ordered triples, repeats included, as the paper's RN takes all N^2 ordered pairs with self-pairs.
        chunk_triples: if set, g is evaluated on at most about this many triples at a time, under activation
            checkpointing. Without a mask and ``distinct`` a chunk is whole rows of i, so never under B*N^2 triples;
            with them, the index lists of all valid triples are built first (see the module docstring).
        aggregate_norm: ``"layer"`` or ``"batch"`` normalises the aggregated relation before f (not in the paper;
            see ``RelationNetwork``).
        pair_distance: g's first layer also reads the three distances within the triple, ``||p_i - p_j||``,
            ``||p_i - p_k||`` and ``||p_j - p_k||``, ``p`` being the last two features of every object, each through
            a learned weight per unit of the layer (as ``RelationNetwork(pair_distance=True)`` does for a pair). Not
            in the paper: e.g. "is the angle at k obtuse" is then ``d_ij^2 >= d_ik^2 + d_jk^2``, a smooth function
            of three inputs, instead of products that g would build out of ReLUs from six coordinates.

    Shapes:
        objects ``(B, N, D)``; question ``(B, Q)`` or None; mask ``(B, N)`` bool or None (True = real object).
        Output ``(B, C)``. Masked objects contribute exactly as if they were absent.
    """

    def __init__(
        self,
        *,
        object_dim: int,
        question_dim: int = 0,
        g_dims: Sequence[int] = (256, 256, 256, 256),
        f_dims: Sequence[int] = (256, 256),
        out_dim: int,
        f_dropout: float | Sequence[float] = 0.0,
        reduce: str = "sum",
        distinct: bool = False,
        chunk_triples: int | None = None,
        aggregate_norm: str | None = None,
        pair_distance: bool = False,
    ) -> None:
        super().__init__()
        if not g_dims:
            raise ValueError("g_dims must have at least one layer")
        if reduce not in ("sum", "mean"):
            raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        if chunk_triples is not None and chunk_triples < 1:
            raise ValueError(f"chunk_triples must be positive, got {chunk_triples}")
        if aggregate_norm not in (None, "layer", "batch"):
            raise ValueError(f"aggregate_norm must be None, 'layer' or 'batch', got {aggregate_norm!r}")
        self.object_dim = object_dim
        self.question_dim = question_dim
        self.reduce = reduce
        self.distinct = distinct
        self.chunk_triples = chunk_triples
        # g's first layer acts on [o_i; o_j; o_k; q]; stored whole (so it reads like the formula), applied split
        self.g_in = nn.Linear(3 * object_dim + question_dim, g_dims[0])
        if pair_distance and object_dim < 2:
            raise ValueError(f"pair_distance needs objects with a position in their last 2 features, got object_dim "
                             f"{object_dim}")
        # (3, H): the weights of d_ij, d_ik and d_jk, initialised as three more input columns of g_in would be
        self.g_dist = nn.Parameter(torch.empty(3, g_dims[0])) if pair_distance else None
        if self.g_dist is not None:
            bound = 1.0 / (self.g_in.in_features + 3) ** 0.5
            nn.init.uniform_(self.g_dist, -bound, bound)
        self.g_rest = MLP(g_dims[0], list(g_dims[1:]))
        self.relation_dim = g_dims[-1]
        self.norm = make_norm(aggregate_norm, g_dims[-1])
        self.f = MLP(g_dims[-1], list(f_dims), out_dim, dropout=f_dropout)

    def extra_repr(self) -> str:
        triples = "distinct" if self.distinct else "all ordered"
        return (f"object_dim={self.object_dim}, question_dim={self.question_dim}, reduce={self.reduce}, "
                f"triples={triples}")

    def _project(self, objects: Tensor, question: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """The factorised first layer: one ``(B, N, H)`` term per slot of a triple (bias and question in the last)."""
        D = self.object_dim
        w = self.g_in.weight  # (H, 3D+Q)
        first = objects @ w[:, :D].T  # W_a o_i
        second = objects @ w[:, D : 2 * D].T  # W_b o_j
        third = objects @ w[:, 2 * D : 3 * D].T + self.g_in.bias  # W_c o_k + b
        if question is not None:
            third = third + (question @ w[:, 3 * D :].T)[:, None, :]  # + W_q q
        return first, second, third

    def _g(self, pre: Tensor) -> Tensor:
        """g from its first layer's pre-activation: ``(..., H) -> (rows, G)``; ``pre`` is overwritten."""
        return self.g_rest(torch.relu_(pre).view(-1, pre.shape[-1]))

    def _distances(self, objects: Tensor) -> Tensor | None:
        """``(B, N, N)`` distances between the objects' positions (their last two features), or None without."""
        if self.g_dist is None:
            return None
        pos = objects[..., -2:]
        return distance(pos[:, :, None], pos[:, None, :])

    def _dense(self, first: Tensor, second: Tensor, third: Tensor, dist_rows: Tensor | None = None,
               dist: Tensor | None = None) -> Tensor:
        """Sum of g over the triples with i in the rows of ``first``: ``(B, n, H), (B, N, H) x2 -> (B, G)``;
        ``dist_rows`` ``(B, n, N)`` and ``dist`` ``(B, N, N)`` are the distances when g reads them."""
        B = first.shape[0]
        pre = first[:, :, None, None] + second[:, None, :, None] + third[:, None, None, :]  # (B, n, N, N, H)
        if self.g_dist is not None:
            w = self.g_dist
            pre = pre + dist_rows[:, :, :, None, None] * w[0] + dist_rows[:, :, None, :, None] * w[1]  # d_ij, d_ik
            pre = pre + dist[:, None, :, :, None] * w[2]  # d_jk
        return self._g(pre).view(B, -1, self.relation_dim).sum(dim=1)

    def _packed(self, first: Tensor, second: Tensor, third: Tensor, b: Tensor, i: Tensor, j: Tensor,
                k: Tensor, B: int, dist: Tensor | None = None) -> Tensor:
        """Sum of g over an explicit triple list, per example: ``-> (B, G)``."""
        pre = first[b, i] + second[b, j] + third[b, k]  # (P, H)
        if self.g_dist is not None:
            w = self.g_dist
            pre = pre + dist[b, i, j, None] * w[0] + dist[b, i, k, None] * w[1] + dist[b, j, k, None] * w[2]
        h = self._g(pre)  # (P, G)
        return h.new_zeros(B, self.relation_dim).index_add_(0, b, h)

    def _valid_triples(self, N: int, mask: Tensor | None, device: torch.device) -> Tensor | None:
        """(B or 1, N, N, N) bool of the triples to compute, or None when it is every ordered triple."""
        if mask is not None and bool(mask.all()):
            mask = None
        triples = None
        if self.distinct:
            r = torch.arange(N, device=device)
            ne = r[:, None] != r[None, :]  # (N, N)
            triples = (ne[:, :, None] & ne[:, None, :] & ne[None, :, :])[None]  # i!=j, i!=k, j!=k
        if mask is None:
            return triples
        valid = mask[:, :, None, None] & mask[:, None, :, None] & mask[:, None, None, :]  # (B, N, N, N)
        return valid if triples is None else valid & triples

    def aggregate(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``sum_ijk g(o_i, o_j, o_k, q)`` (or the mean) before f: ``-> (B, G)``."""
        check_inputs(self, objects, question, mask)
        B, N, _ = objects.shape
        first, second, third = self._project(objects, question)
        dist = self._distances(objects)  # (B, N, N) or None
        valid = self._valid_triples(N, mask, objects.device)
        if valid is None:  # every ordered triple: broadcast, no index lists
            rows = N if self.chunk_triples is None else max(1, self.chunk_triples // max(1, B * N * N))
            if rows >= N:
                total = self._dense(first, second, third, dist, dist)
            else:
                total = sum(maybe_checkpoint(self._dense, first[:, r : r + rows], second, third,
                                             None if dist is None else dist[:, r : r + rows], dist)
                            for r in range(0, N, rows))
            count = torch.full((B, 1), float(N**3), device=objects.device)  # float32: N^k overflows fp16
        else:
            valid = valid.expand(B, N, N, N)
            b, i, j, k = valid.nonzero(as_tuple=True)  # (P,) each
            P = b.numel()
            step = P if self.chunk_triples is None else self.chunk_triples
            if P <= step:
                total = self._packed(first, second, third, b, i, j, k, B, dist)
            else:
                total = sum(
                    maybe_checkpoint(
                        lambda x, y, z, d, s=s: self._packed(x, y, z, b[s : s + step], i[s : s + step],
                                                             j[s : s + step], k[s : s + step], B, d),
                        first, second, third, dist)
                    for s in range(0, P, step))
            count = valid.sum(dim=(1, 2, 3)).float()[:, None]  # (B, 1)
        if self.reduce == "mean":
            total = (total / count.clamp(min=1)).to(total.dtype)
        return total

    def forward(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``(B, N, D), (B, Q), (B, N) -> (B, C)`` logits."""
        return self.f(self.norm(self.aggregate(objects, question, mask)))


def naive_ternary_relation_network(trn: TernaryRelationNetwork, objects: Tensor, question: Tensor | None = None,
                                   mask: Tensor | None = None) -> Tensor:
    """The reference: a triple loop over (i, j, k) through the unfactorised g. Slow; for tests only."""
    B, N, _ = objects.shape
    outs = []
    for bi in range(B):
        rels = [objects.new_zeros(trn.relation_dim)]  # an example with no triple pools to zero
        for i in range(N):
            for j in range(N):
                for k in range(N):
                    if trn.distinct and len({i, j, k}) < 3:
                        continue
                    if mask is not None and not (mask[bi, i] and mask[bi, j] and mask[bi, k]):
                        continue
                    parts = [objects[bi, i], objects[bi, j], objects[bi, k]]
                    parts += [question[bi]] if question is not None else []
                    pre = trn.g_in(torch.cat(parts))
                    if trn.g_dist is not None:  # + d_ij w_0 + d_ik w_1 + d_jk w_2, positions = the last two features
                        for w, (u, v) in zip(trn.g_dist, ((i, j), (i, k), (j, k))):
                            pre = pre + torch.sqrt(((objects[bi, u, -2:] - objects[bi, v, -2:]) ** 2).sum() + 1e-8) * w
                    rels.append(trn.g_rest(torch.relu(pre)[None])[0])
        total = torch.stack(rels).sum(0)
        if trn.reduce == "mean":
            total = total / max(1, len(rels) - 1)
        outs.append(total)
    return trn.f(trn.norm(torch.stack(outs)))
