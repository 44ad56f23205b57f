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

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

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
        dims = [3 * D + Q, *G]
        self.g = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.f = nn.Sequential(nn.Linear(G[-1], F_DIMS[0]), nn.ReLU(), nn.Linear(F_DIMS[0], F_DIMS[1]), nn.ReLU(),
                               nn.Dropout(F_DROPOUT[1]), nn.Linear(F_DIMS[1], C))

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
    torch.set_num_threads(threads)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = build(impl, n)
    B = BATCH.get(n, 64)
    g = torch.Generator().manual_seed(1)
    x, q = torch.randn(B, n, D, generator=g), torch.randn(B, Q, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    times = []
    for r in range(repeats + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x, q), y).backward()
        if r > 0:  # the first step warms allocator and kernels
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "n": n, "batch": B, "triples": B * n**3, "ms": 1000 * statistics.median(times),
            "peak_mib": peak, "base_mib": base_rss}


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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", default="6,12,25")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: impl,n
    args = p.parse_args()
    if args.one:
        impl, n = args.one.split(",")
        print(json.dumps(run_one(impl, int(n), args.repeats, args.threads)))
        return
    torch.set_num_threads(args.threads)
    err = check_equivalence()
    if not err <= TOL:  # also catches NaN
        sys.exit(f"naive and relnet ternary RNs differ: max |difference| {err:.2e} > {TOL:.0e}")
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        print(f"N={n}: batch {BATCH.get(n, 64)}", file=sys.stderr)
        for impl in ("naive", "relnet"):
            out = subprocess.run([sys.executable, __file__, "--one", f"{impl},{n}", "--repeats", str(args.repeats),
                                  "--threads", str(args.threads)], capture_output=True, text=True)
            if out.returncode != 0:
                lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
                rows.append({"impl": impl, "n": n, "error": lines[-1]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {rows[-1]}", file=sys.stderr)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
          f"(set {args.threads}), torch {torch.__version__}; max |naive - relnet| output difference: {err:.2e}")
    print(f"g {'-'.join(map(str, G))}, f {'-'.join(map(str, F_DIMS))}-{C}, D={D}, Q={Q}; all N^3 ordered triples, "
          f"sum; batch per N {BATCH}")
    print()
    print("| N | batch | triples/step | naive ms | relnet ms | speedup | naive peak MiB | relnet peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    result = {"max_abs_diff": err}
    for n in sorted({r["n"] for r in rows}):
        a = next(r for r in rows if r["n"] == n and r["impl"] == "naive")
        b = next(r for r in rows if r["n"] == n and r["impl"] == "relnet")
        fmt = lambda r, k: f"{r[k]:.1f}" if k in r else "failed"  # noqa: E731
        speed = a["ms"] / b["ms"] if "ms" in a and "ms" in b else float("nan")
        print(f"| {n} | {BATCH.get(n, 64)} | {BATCH.get(n, 64) * n**3} | {fmt(a, 'ms')} | {fmt(b, 'ms')} | "
              f"{speed:.2f}x | {fmt(a, 'peak_mib')} | {fmt(b, 'peak_mib')} |")
        result[f"speedup_vs_naive_n{n}"] = round(speed, 3)
        if "peak_mib" in b:
            result[f"peak_mib_n{n}"] = round(b["peak_mib"], 1)
        if "peak_mib" in a:
            result[f"naive_peak_mib_n{n}"] = round(a["peak_mib"], 1)
    base = next((r["base_mib"] for r in rows if "base_mib" in r), float("nan"))
    print(f"\npeak RSS includes the process baseline after importing torch: {base:.0f} MiB")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
