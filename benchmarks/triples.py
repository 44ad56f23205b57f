"""Forward+backward time and peak memory of one ternary RN step as the object count N grows: naive vs relnet.

The naive reference is the repeat-and-concatenate pattern of public RN code (kimhc6028's ternary RN among them)
taken to triples: repeat the objects into an explicit (B, N, N, N, 3D+Q) triple tensor (o_i, o_j, o_k, q) for all
N^3 ordered triples, run g as a plain MLP on every row, sum, f. relnet's ``TernaryRelationNetwork`` computes the same
function (checked here with shared weights) with the factorised first layer, which projects each object once per
slot instead of each triple, and never builds the triple tensor.

Architecture: the ternary Sort-of-CLEVR model as trained (``relnet.tasks.sort_of_clevr.ternary``): objects of
D=12 features (10 state features and the "is A" / "is B" tags), a 16-bit question, g 256-256-256, f 256-256, 7
answers, with ``distinct=False``, ``pair_distance=False`` and ``reduce="sum"`` (the trained model also reads the
distances within the triple; left out here, so that both sides compute exactly the same function). N=6 is the task.

Each (implementation, N) runs in a fresh subprocess so that its peak RSS is its own (the figure includes the
~0.3 GiB that importing torch costs; the baseline is printed). Usage:

    python benchmarks/triples.py [--repeats 5] [--threads 1] [--sizes 6,12,25]

Ends with one line ``RESULT {json}``; exits non-zero if the two differ by more than 1e-4.
"""

from __future__ import annotations

import json
import platform
import sys

import torch
from torch import nn

from pairs import measure_in_subprocesses, naive_g_f, parse_args, print_table, time_steps  # the same driver and table as the pair benchmark

D, Q, G, F_DIMS, C = 12, 16, (256, 256, 256), (256, 256), 7  # the ternary Sort-of-CLEVR architecture
F_DROPOUT = (0.0, 0.1)
# batch 64 as trained, at every N: the naive triple tensor (B, N^3, 3D+Q) is 0.2 GiB at N=25 (1M triples), under
# the ~2 GiB at which a smaller batch would be used; g's 256-wide activations on 1M triples are ~1 GiB a layer
BATCH = {6: 64, 12: 64, 25: 64}
TOL = 1e-4


class NaiveTernaryRN(nn.Module):
    """Repeat-and-concatenate ternary RN: builds the (B, N, N, N, 3D+Q) triple tensor explicitly."""

    def __init__(self):
        super().__init__()
        self.g, self.f = naive_g_f(3 * D + Q, G, F_DIMS, C, F_DROPOUT[1])

    def forward(self, x, q):
        B, N, _ = x.shape
        xi = x[:, :, None, None, :].repeat(1, 1, N, N, 1)  # (B, N, N, N, D)
        xj = x[:, None, :, None, :].repeat(1, N, 1, N, 1)  # (B, N, N, N, D)
        xk = x[:, None, None, :, :].repeat(1, N, N, 1, 1)  # (B, N, N, N, D)
        qq = q[:, None, None, None, :].repeat(1, N, N, N, 1)  # (B, N, N, N, Q)
        triples = torch.cat([xi, xj, xk, qq], dim=-1).view(B * N * N * N, -1)  # (B*N^3, 3D+Q)
        rel = self.g(triples).view(B, N * N * N, -1).sum(1)  # (B, G)
        return self.f(rel)


def build(impl: str, n: int) -> nn.Module:
    from relnet.nn.ternary import TernaryRelationNetwork

    torch.manual_seed(0)
    if impl == "naive":
        return NaiveTernaryRN()
    return TernaryRelationNetwork(object_dim=D, question_dim=Q, g_dims=G, f_dims=F_DIMS, out_dim=C,
                                  f_dropout=F_DROPOUT, reduce="sum", distinct=False, pair_distance=False)


def run_one(impl: str, n: int, repeats: int, threads: int) -> dict:
    B = BATCH.get(n, 64)
    row = time_steps(lambda: build(impl, n), B, n, (D, Q, C), repeats, threads)
    return {"impl": impl, "n": n, "batch": B, "triples": B * n**3, **row}


def check_equivalence() -> float:
    """relnet's ternary RN and the naive one compute the same function when given the same weights."""
    naive, fast = build("naive", 6), build("relnet", 6)
    lin = [m for m in naive.g if isinstance(m, nn.Linear)]
    with torch.no_grad():
        fast.g_in.weight.copy_(lin[0].weight)  # columns [o_i; o_j; o_k; q] in both
        fast.g_in.bias.copy_(lin[0].bias)
        rest = [m for m in fast.g_rest if isinstance(m, nn.Linear)]
        f_fast, f_naive = [m for m in fast.f if isinstance(m, nn.Linear)], [m for m in naive.f if isinstance(m, nn.Linear)]
        assert len(rest) == len(lin) - 1 and len(f_fast) == len(f_naive)
        for a, b in zip(rest + f_fast, lin[1:] + f_naive):
            a.weight.copy_(b.weight), a.bias.copy_(b.bias)
    naive.eval(), fast.eval()
    g = torch.Generator().manual_seed(2)
    x, q = torch.randn(3, 6, D, generator=g), torch.randn(3, Q, generator=g)
    with torch.no_grad():
        return float((naive(x, q) - fast(x, q)).abs().max())


def main() -> None:
    args = parse_args(__doc__, 1, "6,12,25", run_one)
    if args is None:
        return
    torch.set_num_threads(args.threads)
    err = check_equivalence()
    if not err <= TOL:  # also catches NaN
        sys.exit(f"naive and relnet ternary RNs differ: max |difference| {err:.2e} > {TOL:.0e}")
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        print(f"N={n}: batch {BATCH.get(n, 64)}", file=sys.stderr)
    rows = measure_in_subprocesses(__file__, sizes, args.threads, lambda n: args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
          f"(set {args.threads}), torch {torch.__version__}; max |naive - relnet| output difference: {err:.2e}")
    print(f"g {'-'.join(map(str, G))}, f {'-'.join(map(str, F_DIMS))}-{C}, D={D}, Q={Q}; all N^3 ordered triples, "
          f"sum; batch per N {BATCH}")
    print()
    result = print_table(rows, {"max_abs_diff": err}, "triples", naive_peak=True)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
