"""The Relation Network module (Santoro et al. 2017, https://arxiv.org/abs/1706.01427).

    RN(O, q) = f_phi( sum_{(i,j) in pairs} g_theta(o_i, o_j, q) )

Dimension legend used in the shape comments below:
    B batch, N objects, D object features, Q question features, H width of g's first layer,
    G width of g's output (the "relation"), P number of computed pairs, C outputs of f.

Where the time goes: g runs once per pair, so its cost grows as N^2. Three things keep it lean here:

* the first layer of g is factorised. ``W [o_i; o_j; q] + b = W_a o_i + W_b o_j + (W_q q + b)`` is exact, so each
  object is projected once (B*N rows, not B*N^2) and the pair tensor ``(B, N, N, 2D+Q)`` is never built;
* objects that are masked out (padding in bAbI and CLEVR state descriptions) are not computed at all: the valid
  pairs are packed into one ``(P, H)`` matrix and summed back per example with ``index_add``;
* for very large N the pairs are processed in chunks under activation checkpointing, so memory stays bounded
  (at the price of recomputing g's forward during backward).
"""

from __future__ import annotations

from typing import Literal, Sequence, get_args

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from relnet.nn.mlp import MLP, make_norm

Reduce = Literal["sum", "mean", "max", "sum+max"]
REDUCES: tuple[str, ...] = get_args(Reduce)


def check_inputs(module: nn.Module, objects: Tensor, question: Tensor | None, mask: Tensor | None) -> None:
    """ValueError unless objects ``(B, N, module.object_dim)``, question ``(B, module.question_dim)`` (None when it
    is 0) and mask ``(B, N)`` bool or None fit together."""
    D, Q = module.object_dim, module.question_dim
    if objects.ndim != 3 or objects.shape[-1] != D:
        raise ValueError(f"objects must have shape (B, N, {D}), got {tuple(objects.shape)}")
    B, N, _ = objects.shape
    if Q:
        if question is None or question.shape != (B, Q):
            got = None if question is None else tuple(question.shape)
            raise ValueError(f"question must have shape ({B}, {Q}), got {got}")
    elif question is not None:
        raise ValueError(f"this {type(module).__name__} was built with question_dim=0 but a question was given")
    if mask is not None and (mask.shape != (B, N) or mask.dtype != torch.bool):
        raise ValueError(f"mask must be a bool tensor of shape ({B}, {N}), got {mask.dtype} {tuple(mask.shape)}")


def distance(u: Tensor, v: Tensor) -> Tensor:
    """Euclidean distance over the last axis, ``(..., 2), (..., 2) -> (...)``, with a finite gradient at 0 (an
    object paired with itself): what g's first layer reads with ``pair_distance``."""
    return ((u - v).pow(2).sum(-1) + 1e-8).sqrt()


def maybe_checkpoint(fn, *args: Tensor) -> Tensor:
    """``fn(*args)``, under activation checkpointing when a gradient will flow through it (one chunk of g: its
    activations are recomputed in backward instead of kept)."""
    if torch.is_grad_enabled() and any(a.requires_grad for a in args if isinstance(a, Tensor)):
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class RelationNetwork(nn.Module):
    """``f_phi(sum_ij g_theta(o_i, o_j, q))`` over a set of objects, optionally conditioned on a question.

    Args:
        object_dim: D, features per object.
        question_dim: Q, features of the question vector (0: no question).
        g_dims: widths of g's layers, each followed by ReLU (paper: four layers). The last is the relation size G.
        f_dims: widths of f's hidden layers (ReLU); a final linear layer maps to ``out_dim`` (the logits).
        out_dim: C, outputs of f. ``out_dim=0`` with no ``f_dims``: no f at all, for a module used only through
            :meth:`per_object` (its g).
        f_dropout: dropout after f's hidden layers: one rate for all, or one per hidden layer
            (paper, CLEVR: ``(0.0, 0.5)``, i.e. on the penultimate layer).
        reduce: ``"sum"`` (the paper) or ``"mean"`` over the computed pairs; ``"max"`` (each relation unit keeps its
            largest pair); ``"sum+max"`` (both side by side, so f reads ``2G`` numbers). Not in the paper: a max
            routes each unit's gradient to one pair instead of all N^2, and can pick out "the pair where this
            is largest" (closest, furthest) that a sum can only approximate; the sum still counts.
        self_pairs: include the pairs (i, i) (the paper does: all n^2 ordered pairs).
        ordered: ``True`` sums over ordered pairs (i, j) and (j, i); ``False`` over unordered ones (i < j, plus
            i == j when ``self_pairs``).
        pair_index: an explicit ``(P0, 2)`` list of (i, j) pairs to use instead (the paper: "can be adjusted to
            consider only some object pairs"); requires a fixed number of objects ``max(index) < N``.
        chunk_pairs: if set, g is evaluated on at most about this many pairs at a time, under activation
            checkpointing, so peak memory is bounded whatever N is (N=1024 -> ~1M pairs per example).
        aggregate_norm: ``"layer"`` applies a LayerNorm to the aggregated relation before f (not in the paper:
            the sum of N^2 non-negative relations has a large common component that slows early training). With
            ``reduce="sum+max"`` it normalises the sum half only.
        hidden_norm: ``"layer"`` or ``"batch"`` puts a LayerNorm or BatchNorm1d between every hidden Linear of g and
            f and its ReLU (not in the paper; moon1ite's bAbI RN uses BatchNorm there). A LayerNorm acts on each pair
            alone; a BatchNorm's training statistics run over all the computed pairs of the batch (so it cannot be
            combined with ``chunk_pairs``, whose chunks would each have their own).
        pair_distance: g's first layer also reads each pair's Euclidean distance ``||p_i - p_j||``, where ``p`` is
            the last two features of every object (its (x, y), as ``ConvObjects`` and ``KeypointObjects`` append
            them), through a learned weight per unit of the layer. Not in the paper: "which object is closest" then
            needs one ReLU threshold on an input instead of g building a squared distance out of ReLUs from four
            coordinates.

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
        reduce: Reduce = "sum",
        self_pairs: bool = True,
        ordered: bool = True,
        pair_index: Tensor | Sequence[Sequence[int]] | None = None,
        chunk_pairs: int | None = None,
        aggregate_norm: str | None = None,
        hidden_norm: str | None = None,
        pair_distance: bool = False,
    ) -> None:
        super().__init__()
        if not g_dims:
            raise ValueError("g_dims must have at least one layer")
        if reduce not in REDUCES:
            raise ValueError(f"reduce must be one of {', '.join(map(repr, REDUCES))}, got {reduce!r}")
        if chunk_pairs is not None and chunk_pairs < 1:
            raise ValueError(f"chunk_pairs must be positive, got {chunk_pairs}")
        self.object_dim = object_dim
        self.question_dim = question_dim
        self.reduce = reduce
        self.self_pairs = self_pairs
        self.ordered = ordered
        self.chunk_pairs = chunk_pairs
        # g's first layer acts on [o_i; o_j; q]; it is stored whole (so it reads like the paper) and applied split.
        if hidden_norm == "batch" and chunk_pairs is not None:
            raise ValueError("hidden_norm='batch' cannot be combined with chunk_pairs (per-chunk statistics)")
        self.g_in = nn.Linear(2 * object_dim + question_dim, g_dims[0])
        if pair_distance and object_dim < 2:
            raise ValueError(f"pair_distance needs objects with a position in their last 2 features, got object_dim "
                             f"{object_dim}")
        self.g_dist = nn.Parameter(torch.empty(g_dims[0])) if pair_distance else None  # (H,) weight of the distance
        self._init_g_dist()
        self.g_in_norm = make_norm(hidden_norm, g_dims[0])  # on the first layer's pre-activation, per pair
        self.g_rest = MLP(g_dims[0], list(g_dims[1:]), norm=hidden_norm)
        if aggregate_norm not in (None, "layer", "batch"):
            raise ValueError(f"aggregate_norm must be None, 'layer' or 'batch', got {aggregate_norm!r}")
        self.norm = make_norm(aggregate_norm, g_dims[-1])
        if out_dim == 0 and f_dims:
            raise ValueError("out_dim=0 (no f, g only) cannot have f_dims")
        if out_dim == 0:
            self.f = nn.Identity()
        else:
            self.f = MLP(g_dims[-1] * (2 if reduce == "sum+max" else 1), list(f_dims), out_dim, dropout=f_dropout,
                         norm=hidden_norm)
        self.relation_dim = g_dims[-1]
        if pair_index is not None:
            pair_index = torch.as_tensor(pair_index, dtype=torch.long)
            if pair_index.ndim != 2 or pair_index.shape[1] != 2 or len(pair_index) == 0:
                raise ValueError(f"pair_index must have shape (P, 2) with P > 0, got {tuple(pair_index.shape)}")
        self.register_buffer("pair_index", pair_index, persistent=False)

    def extra_repr(self) -> str:
        pairs = "explicit" if self.pair_index is not None else (
            ("ordered" if self.ordered else "unordered") + (" with self-pairs" if self.self_pairs else " without self-pairs")
        )
        g_only = ", g only (no f)" if isinstance(self.f, nn.Identity) else ""
        return (f"object_dim={self.object_dim}, question_dim={self.question_dim}, reduce={self.reduce}, "
                f"pairs={pairs}{g_only}")

    def reset_parameters(self) -> None:
        self.g_in.reset_parameters()
        self._init_g_dist()
        if not isinstance(self.g_in_norm, nn.Identity):
            self.g_in_norm.reset_parameters()
        self.g_rest.reset_parameters()
        if isinstance(self.norm, nn.LayerNorm):
            self.norm.reset_parameters()
        if not isinstance(self.f, nn.Identity):
            self.f.reset_parameters()

    # -- pieces -------------------------------------------------------------------------------------------------

    def _check(self, objects: Tensor, question: Tensor | None, mask: Tensor | None) -> None:
        check_inputs(self, objects, question, mask)
        N = objects.shape[1]
        if self.pair_index is not None and int(self.pair_index.max()) >= N:
            raise ValueError(f"pair_index refers to object {int(self.pair_index.max())} but there are only {N}")

    def _project(self, objects: Tensor, question: Tensor | None) -> tuple[Tensor, Tensor]:
        """The factorised first layer: per-object terms for the left and right slot of a pair."""
        D = self.object_dim
        w = self.g_in.weight  # (H, 2D+Q)
        left = objects @ w[:, :D].T  # (B, N, H)   W_a o_i
        right = objects @ w[:, D : 2 * D].T + self.g_in.bias  # (B, N, H)   W_b o_j + b
        if question is not None:
            right = right + (question @ w[:, 2 * D :].T)[:, None, :]  # (B, N, H)   + W_q q
        return left, right

    def _init_g_dist(self) -> None:
        """The distance weight is initialised as one more input column of ``g_in`` would be."""
        if self.g_dist is not None:
            bound = 1.0 / (self.g_in.in_features + 1) ** 0.5
            nn.init.uniform_(self.g_dist, -bound, bound)

    def _positions(self, objects: Tensor) -> Tensor | None:
        """``(B, N, 2)`` the objects' positions when g reads pair distances, else None."""
        return objects[..., -2:] if self.g_dist is not None else None

    def _with_distance(self, pre: Tensor, pos_i: Tensor | None, pos_j: Tensor | None) -> Tensor:
        """``pre + ||p_i - p_j|| w_dist`` (broadcast over pairs), or ``pre`` unchanged without pair distances."""
        if self.g_dist is None:
            return pre
        return pre + distance(pos_i, pos_j)[..., None] * self.g_dist

    def _pair_matrix(self, N: int, device: torch.device) -> Tensor | None:
        """(N, N) bool of the pairs to use, or None for all N^2 ordered pairs."""
        if self.pair_index is not None:
            m = torch.zeros(N, N, dtype=torch.bool, device=device)
            m[self.pair_index[:, 0], self.pair_index[:, 1]] = True
            return m
        if self.ordered and self.self_pairs:
            return None
        m = torch.ones(N, N, dtype=torch.bool, device=device)
        if not self.ordered:
            m = torch.triu(m, diagonal=0 if self.self_pairs else 1)
        elif not self.self_pairs:
            m.fill_diagonal_(False)
        return m

    def _g(self, pre: Tensor) -> Tensor:
        """g from its first layer's pre-activation: ``(..., H) -> (rows, G)``, ``pre`` overwritten.

        The ReLU runs in place on ``pre`` itself, not on a view of it, and g's other layers on a 2-D (rows, H)
        matrix: their Linear outputs are then plain tensors, so the in-place ReLUs stay in place (an in-place op on
        a view makes autograd copy the whole tensor: ~25% of the step)."""
        H = pre.shape[-1]
        if isinstance(self.g_in_norm, nn.BatchNorm1d):  # BatchNorm1d takes (rows, H) only
            pre = pre.reshape(-1, H)
        return self.g_rest(torch.relu_(self.g_in_norm(pre)).view(-1, H))

    def _pool(self, h: Tensor) -> Tensor:
        """``(B, P, G) -> (B, G)`` sum over pairs, or ``(B, 2G)`` sum and max side by side (a chunk's part)."""
        if self.reduce in ("sum", "mean"):
            return h.sum(dim=1)
        if self.reduce == "max":
            return h.amax(dim=1)
        return torch.cat([h.sum(dim=1), h.amax(dim=1)], dim=-1)

    def _combine(self, parts: list[Tensor]) -> Tensor:
        """Merge per-chunk pools: sums add, maxima take the larger."""
        if len(parts) == 1:
            return parts[0]
        if self.reduce in ("sum", "mean"):
            return torch.stack(parts).sum(0)
        if self.reduce == "max":
            return torch.stack(parts).amax(0)
        G = self.relation_dim
        stacked = torch.stack(parts)  # (chunks, B, 2G)
        return torch.cat([stacked[..., :G].sum(0), stacked[..., G:].amax(0)], dim=-1)

    def _dense_rows(self, left: Tensor, right: Tensor, pos_left: Tensor | None = None,
                    pos_right: Tensor | None = None) -> Tensor:
        """Pool of g over the pairs (i in rows of ``left``, every j): ``(B, n, H), (B, N, H) -> (B, G)``."""
        B, n, H = left.shape
        pre = left[:, :, None, :] + right[:, None, :, :]  # (B, n, N, H)
        if self.g_dist is not None:
            pre = self._with_distance(pre, pos_left[:, :, None, :], pos_right[:, None, :, :])
        h = self._g(pre)  # (B*n*N, G)
        return self._pool(h.view(B, -1, h.shape[-1]))  # (B, G) or (B, 2G)

    def _pair_g(self, left: Tensor, right: Tensor, pos: Tensor | None, b: Tensor, i: Tensor, j: Tensor) -> Tensor:
        """g of an explicit pair list: ``-> (P, G)``."""
        pre = left[b, i] + right[b, j]  # (P, H)
        return self._g(pre if pos is None else self._with_distance(pre, pos[b, i], pos[b, j]))

    def _packed(self, left: Tensor, right: Tensor, b: Tensor, i: Tensor, j: Tensor, B: int,
                pos: Tensor | None = None) -> Tensor:
        """Pool of g over an explicit pair list, per example: ``-> (B, G)`` (or ``(B, 2G)``)."""
        h = self._pair_g(left, right, pos, b, i, j)  # (P, G)
        G = h.shape[-1]
        parts = []
        if self.reduce != "max":
            parts.append(h.new_zeros(B, G).index_add_(0, b, h))  # (B, G)
        if self.reduce in ("max", "sum+max"):
            # g ends in a ReLU, so every relation is >= 0 and 0 is a safe start (an example with no pair pools 0)
            parts.append(h.new_zeros(B, G).scatter_reduce(0, b[:, None].expand(-1, G), h, "amax"))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def _valid_pairs(self, N: int, mask: Tensor | None, device: torch.device) -> Tensor | None:
        """(B, N, N) bool of the pairs to compute, or None when it is every ordered pair of every example."""
        pairs = self._pair_matrix(N, device)
        if mask is not None and bool(mask.all()):
            mask = None
        if mask is None:
            return None if pairs is None else pairs[None]
        valid = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
        return valid if pairs is None else valid & pairs

    # -- forward ------------------------------------------------------------------------------------------------

    def aggregate(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``sum_ij g(o_i, o_j, q)`` (or the mean, the max, or sum and max side by side), before f:
        ``-> (B, G)`` (``(B, 2G)`` for ``"sum+max"``)."""
        self._check(objects, question, mask)
        B, N, _ = objects.shape
        left, right = self._project(objects, question)
        pos = self._positions(objects)
        valid = self._valid_pairs(N, mask, objects.device)
        if valid is None:  # every ordered pair: broadcast, no index lists
            rows = N if self.chunk_pairs is None else max(1, self.chunk_pairs // max(1, B * N))
            if rows >= N:
                total = self._dense_rows(left, right, pos, pos)
            else:
                total = self._combine([
                    maybe_checkpoint(self._dense_rows, left[:, r : r + rows], right,
                                     None if pos is None else pos[:, r : r + rows], pos)
                    for r in range(0, N, rows)
                ])
            count = torch.full((B, 1), float(N * N), device=objects.device)  # float32: N^k overflows fp16
        else:
            valid = valid.expand(B, N, N)
            b, i, j = valid.nonzero(as_tuple=True)  # (P,) each
            P = b.numel()
            step = P if self.chunk_pairs is None else self.chunk_pairs
            if P <= step:
                total = self._packed(left, right, b, i, j, B, pos)
            else:
                total = self._combine([
                    maybe_checkpoint(
                        lambda l, r, s=s: self._packed(l, r, b[s : s + step], i[s : s + step], j[s : s + step], B,
                                                       pos),
                        left,
                        right,
                    )
                    for s in range(0, P, step)
                ])
            count = valid.sum(dim=(1, 2)).float()[:, None]  # (B, 1)
        if self.reduce == "mean":
            total = (total / count.clamp(min=1)).to(total.dtype)
        return total

    def readout(self, pooled: Tensor) -> Tensor:
        """f after the aggregate norm: ``(B, G) -> (B, C)``; with ``"sum+max"`` the norm sees the sum half only."""
        if self.reduce == "sum+max":
            G = self.relation_dim
            return self.f(torch.cat([self.norm(pooled[:, :G]), pooled[:, G:]], dim=-1))
        return self.f(self.norm(pooled))

    def forward(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``(B, N, D), (B, Q), (B, N) -> (B, C)`` logits."""
        return self.readout(self.aggregate(objects, question, mask))

    def per_object(self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """For each object, the mean of g over the computed pairs that it is in (either slot; a self-pair counts
        once): ``(B, N, D), (B, Q), (B, N) -> (B, N, G)``; zeros for a masked object. Differentiable.

        The per-object summary that a second round of relations can read (e.g. ``[o_i; LayerNorm(c_i)]``).
        Computes every pair at once: ``chunk_pairs`` does not bound its memory.
        """
        self._check(objects, question, mask)
        B, N, _ = objects.shape
        left, right = self._project(objects, question)
        valid = self._valid_pairs(N, mask, objects.device)
        valid = torch.ones(B, N, N, dtype=torch.bool, device=objects.device) if valid is None else valid.expand(B, N, N)
        b, i, j = valid.nonzero(as_tuple=True)  # (P,) each
        h = self._pair_g(left, right, self._positions(objects), b, i, j)  # (P, G)
        other = i != j  # a pair (i, j) also belongs to j; (i, i) only once
        rows = torch.cat([b * N + i, (b * N + j)[other]])  # (P + P',)
        vals = torch.cat([h, h[other]])  # (P + P', G)
        total = h.new_zeros(B * N, h.shape[-1]).index_add_(0, rows, vals)  # (B*N, G)
        count = h.new_zeros(B * N).index_add_(0, rows, torch.ones_like(rows, dtype=h.dtype))  # (B*N,)
        return (total / count.clamp(min=1)[:, None]).view(B, N, -1)

    @torch.no_grad()
    def relations(
        self, objects: Tensor, question: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Every pair's relation vector, for inspection and visualisation. Runs under ``no_grad``: nothing trains
        through it (to pool pairs your own way in training, use ``_project`` and ``g_rest`` as ``aggregate`` does).

        Returns:
            ``(relations (B, N, N, G), valid (B, N, N) bool)``; pairs that the module does not use are zero.
            ``relations.norm(dim=-1)`` gives the ``||g(o_i, o_j, q)||`` map that the showcase draws.
        """
        self._check(objects, question, mask)
        B, N, _ = objects.shape
        left, right = self._project(objects, question)
        valid = self._valid_pairs(N, mask, objects.device)
        valid = torch.ones(B, N, N, dtype=torch.bool, device=objects.device) if valid is None else valid.expand(B, N, N)
        b, i, j = valid.nonzero(as_tuple=True)
        out = left.new_zeros(B, N, N, self.relation_dim)
        out[b, i, j] = self._pair_g(left, right, self._positions(objects), b, i, j)
        return out, valid.clone()


def naive_relation_network(rn: RelationNetwork, objects: Tensor, question: Tensor | None = None,
                           mask: Tensor | None = None) -> Tensor:
    """The reference: a double loop over (i, j) through the unfactorised g. Slow; for tests only."""
    B, N, _ = objects.shape
    pairs = rn._pair_matrix(N, objects.device)
    outs = []
    for bi in range(B):
        rels = [objects.new_zeros(rn.relation_dim)]  # an example with no pair pools to zero
        for i in range(N):
            for j in range(N):
                if pairs is not None and not pairs[i, j]:
                    continue
                if mask is not None and not (mask[bi, i] and mask[bi, j]):
                    continue
                parts = [objects[bi, i], objects[bi, j]] + ([question[bi]] if question is not None else [])
                pre = rn.g_in(torch.cat(parts))[None]  # (1, H): one pair
                if rn.g_dist is not None:  # + ||p_i - p_j|| w_dist, p = the last two features
                    pre = pre + torch.sqrt(((objects[bi, i, -2:] - objects[bi, j, -2:]) ** 2).sum() + 1e-8) * rn.g_dist
                rels.append(rn.g_rest(torch.relu(rn.g_in_norm(pre)))[0])
        stacked = torch.stack(rels)
        total, top = stacked.sum(0), stacked.amax(0)
        pooled = {"sum": total, "mean": total / max(len(rels) - 1, 1), "max": top,
                  "sum+max": torch.cat([total, top])}[rn.reduce]
        outs.append(pooled)
    return rn.readout(torch.stack(outs))
