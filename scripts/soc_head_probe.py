"""Diagnostic: how fast does the Sort-of-CLEVR RN *head* learn when the CNN is replaced by ideal cell features?

Each of the 5x5 cells (15x15 px) of a 75x75 image becomes an object holding the fraction of its pixels that belong
to each (colour, shape) pair (12 numbers) plus the cell's (x, y): everything the questions need is present and
linearly readable, so what remains is the RN binding the question's colour to the right cell(s).
Variants ``state25`` / ``state25zero``: the 6 true state vectors plus 19 distractor rows that are zero except for a
grid cell's (x, y) / zero throughout (``--help`` lists the other switches).

    python scripts/soc_head_probe.py --features cells --lr 3e-4 --steps 2000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from relnet.nn import RelationNetwork
from relnet.tasks.sort_of_clevr import data as soc


def cell_features(arrays: dict, grid: int = 5, gate: bool = False) -> torch.Tensor:
    """``(N, grid*grid, 14)``: per cell the pixel fraction of each (colour, shape), then x, y in [-1, 1]."""
    n = len(arrays["centres"])
    size = arrays["images"].shape[1]
    owner = np.full((n, size, size), -1, dtype=np.int64)  # object index drawn last at each pixel
    sq, ci = soc._stamp_offsets(5)
    for i in range(6):
        for shape, offs in enumerate((sq, ci)):
            sel = np.flatnonzero(arrays["shapes"][:, i] == shape)
            rows = arrays["centres"][sel, i, 1, None] + offs[None, :, 0]
            cols = arrays["centres"][sel, i, 0, None] + offs[None, :, 1]
            owner[sel[:, None], rows, cols] = i
    cell = -(-size // grid)
    out = np.zeros((n, grid, grid, 12), dtype=np.float32)
    shape_of = arrays["shapes"].astype(np.int64)  # (N, 6)
    for r in range(grid):
        for c in range(grid):
            block = owner[:, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell].reshape(n, -1)  # (N, P)
            for i in range(6):
                frac = (block == i).mean(1)
                out[np.arange(n), r, c, 2 * i + shape_of[:, i]] = frac
    out *= 4.0
    ys, xs = np.meshgrid(np.linspace(-1, 1, grid), np.linspace(-1, 1, grid), indexing="ij")
    coords = np.broadcast_to(np.stack([xs, ys], -1)[None], (n, grid, grid, 2))
    if gate:  # no position on empty cells
        coords = coords * (out.sum(-1, keepdims=True) > 0)
    return torch.from_numpy(np.concatenate([out, coords], -1).reshape(n, grid * grid, 14).astype(np.float32))


def state25(arrays: dict, coords: bool = True) -> torch.Tensor:
    s = soc.state_objects(arrays["centres"], arrays["shapes"])  # (N, 6, 10)
    n = len(s)
    pad = np.zeros((n, 19, 10), dtype=np.float32)
    ys, xs = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), indexing="ij")
    pad[:, :, 8] = xs.ravel()[:19] * coords
    pad[:, :, 9] = ys.ravel()[:19] * coords
    return torch.from_numpy(np.concatenate([s, pad], 1))


class FilmRN(torch.nn.Module):
    """RN whose every g layer is modulated by the question: ``h = relu(W h_prev * (1 + gamma(q)) + beta(q))``."""

    def __init__(self, d: int, g: list[int]) -> None:
        super().__init__()
        dims = [2 * d] + g
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.film = torch.nn.ModuleList(torch.nn.Linear(11, 2 * b) for b in g)
        self.norm = torch.nn.LayerNorm(g[-1])
        self.f = torch.nn.Sequential(torch.nn.Linear(g[-1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                     torch.nn.ReLU(), torch.nn.Linear(256, 10))

    def forward(self, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        B, N, D = o.shape
        h = torch.cat([o[:, :, None].expand(B, N, N, D), o[:, None].expand(B, N, N, D)], -1).reshape(B, N * N, 2 * D)
        for lin, film in zip(self.layers, self.film):
            gamma, beta = film(q)[:, None].chunk(2, -1)
            h = torch.relu(lin(h) * (1 + gamma) + beta)
        return self.f(self.norm(h.sum(1)))


class GatedRN(torch.nn.Module):
    """RN whose pair (i, j) is weighted by ``w_i w_j`` before the sum: ``w_i = sigmoid(v . o_i + b)`` (``object``)
    or ``sigmoid(o_i^T W q + v . o_i + b)`` (``bilinear``: a question-conditioned choice of objects)."""

    def __init__(self, d: int, g: list[int], kind: str) -> None:
        super().__init__()
        self.rn = RelationNetwork(object_dim=d, question_dim=11, g_dims=g, f_dims=(256, 256), out_dim=10,
                                  aggregate_norm="layer")
        self.kind = kind
        self.score = torch.nn.Linear(d, 1)
        self.bilinear = torch.nn.Parameter(torch.zeros(d, 11)) if kind == "bilinear" else None

    def forward(self, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        s = self.score(o).squeeze(-1)  # (B, N)
        if self.bilinear is not None:
            s = s + torch.einsum("bnd,de,be->bn", o, self.bilinear, q)
        w = torch.sigmoid(s)
        rel = dense_relations(self.rn, o, q)  # (B, N, N, G)
        agg = (rel * (w[:, :, None] * w[:, None, :])[..., None]).sum((1, 2))
        return self.rn.f(self.rn.norm(agg))


class PoolRN(torch.nn.Module):
    """RN whose pairs are pooled by ``max`` (each g unit keeps its strongest pair) or ``summax`` (LayerNorm'd sum
    and max side by side): max routes each unit's gradient to one pair instead of all N^2."""

    def __init__(self, d: int, g: list[int], pool: str) -> None:
        super().__init__()
        self.rn = RelationNetwork(object_dim=d, question_dim=11, g_dims=g, f_dims=(256, 256), out_dim=10,
                                  aggregate_norm="layer")
        self.pool = pool
        width = g[-1] * (2 if pool == "summax" else 1)
        self.f = torch.nn.Sequential(torch.nn.Linear(width, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                     torch.nn.ReLU(), torch.nn.Linear(256, 10))

    def forward(self, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        rel = dense_relations(self.rn, o, q)  # (B, N, N, G)
        top = rel.flatten(1, 2).amax(1)
        if self.pool == "max":
            return self.f(top)
        return self.f(torch.cat([self.rn.norm(rel.sum((1, 2))), top], -1))


def dense_relations(rn: RelationNetwork, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Every pair's g output ``(B, N, N, G)`` *with* gradients (``RelationNetwork.relations`` is for inspection
    and runs under ``no_grad``)."""
    left, right = rn._project(o, q)
    return rn.g_rest(torch.relu(left[:, :, None] + right[:, None]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="cells", choices=["cells", "cells-gated", "state25", "state25zero", "state"])
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--g", default="128,128,128")
    ap.add_argument("--agg", default="layer")
    ap.add_argument("--reduce", default="sum")
    ap.add_argument("--unordered", action="store_true")
    ap.add_argument("--film", action="store_true")
    ap.add_argument("--gate", default="", choices=["", "object", "bilinear"])
    ap.add_argument("--q-scale", type=float, default=1.0, help="multiply the question vector (Adam: a faster pathway)")
    ap.add_argument("--xy-onehot", action="store_true", help="cells: one-hot column and row instead of (x, y)")
    ap.add_argument("--xy-scale", type=float, default=1.0, help="multiply the objects' last two features (x, y)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--pool", default="sum", choices=["sum", "max", "summax"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    sets = soc.load_or_generate(soc.SortOfClevrParams(seed=1))
    feats = {"cells": cell_features, "cells-gated": lambda a: cell_features(a, gate=True), "state25": state25,
             "state25zero": lambda a: state25(a, coords=False),
             "state": lambda a: torch.from_numpy(soc.state_objects(a["centres"], a["shapes"]))}[args.features]
    xs = {k: feats(v) for k, v in sets.items()}
    qs = {k: args.q_scale * torch.from_numpy(v["questions"].reshape(-1, 11)).float() for k, v in sets.items()}
    for x in xs.values():
        x[..., -2:] *= args.xy_scale
    if args.xy_onehot:
        eye = torch.eye(5)
        xs = {k: torch.cat([x[..., :-2], eye[((x[..., -2] + 1) * 2).round().long()],
                            eye[((x[..., -1] + 1) * 2).round().long()]], -1) for k, x in xs.items()}
    ys = {k: torch.from_numpy(v["answers"].reshape(-1)) for k, v in sets.items()}
    sub = soc.question_subtype(sets["test"]["questions"]).reshape(-1)
    d, g = xs["train"].shape[-1], [int(x) for x in args.g.split(",")]
    if args.film:
        model = FilmRN(d, g)
    elif args.pool != "sum":
        model = PoolRN(d, g, args.pool)
    elif args.gate:
        model = GatedRN(d, g, args.gate)
    else:
        model = RelationNetwork(object_dim=d, question_dim=11, g_dims=g, f_dims=(256, 256), out_dim=10,
                                aggregate_norm=args.agg or None, reduce=args.reduce, ordered=not args.unordered)
    dev = torch.device(args.device)
    model = model.to(dev)
    xs, qs, ys = ({k: v.to(dev) for k, v in t.items()} for t in (xs, qs, ys))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = len(ys["train"])
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, n, (args.batch,), device=dev)
        loss = F.cross_entropy(model(xs["train"][idx // 20], qs["train"][idx]), ys["train"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0:
            model.eval()
            with torch.no_grad():
                pred = model(xs["test"].repeat_interleave(20, 0), qs["test"]).argmax(-1)
            model.train()
            ok = (pred == ys["test"]).cpu().numpy()
            print(json.dumps({"step": step, "s": round(time.perf_counter() - t0), "acc": round(ok.mean(), 3),
                              "non_rel": round(ok[sub < 3].mean(), 3), "rel": round(ok[sub >= 3].mean(), 3),
                              "by": [round(ok[sub == k].mean(), 2) for k in range(6)]}), flush=True)


if __name__ == "__main__":
    main()
