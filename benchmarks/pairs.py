"""Forward+backward time and peak memory of one RN step as the object count N grows: naive vs relnet.

The naive reference is the pattern most public RN code uses (kimhc6028, mesnico): repeat the objects into an
explicit (B, N, N, 2D+Q) pair tensor, concatenate the question, run g as a plain MLP on every row, sum, f.
relnet's RN computes the same function (checked here on the first configuration) with the factorised first layer
and, for N=1024, chunked pairs under activation checkpointing.

Each (implementation, N) runs in a fresh subprocess so that its peak RSS is its own (the figure includes the
~0.3 GiB that importing torch costs; the baseline is printed). Usage:

    python benchmarks/pairs.py [--repeats 5] [--threads 2] [--sizes 8,25,64,256,1024]

Ends with one line ``RESULT {json}``.
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

D, Q, G, F_DIMS, C = 26, 11, (256, 256, 256, 256), (256, 256), 10  # the compact Sort-of-CLEVR architecture
BATCH = {8: 64, 25: 64, 64: 64, 256: 4, 1024: 1}
CHUNK = {1024: 65536}  # pairs per chunk for relnet at large N


def naive_g_f(in_dim: int, g_dims, f_dims, classes: int, dropout: float) -> tuple[nn.Sequential, nn.Sequential]:
    """g (Linear+ReLU per layer, on the explicit concatenated rows) and f (two Linear+ReLU, dropout, output) of a
    naive reference. Shared by ``triples.py``."""
    dims = [in_dim, *g_dims]
    g = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
    f = nn.Sequential(nn.Linear(g_dims[-1], f_dims[0]), nn.ReLU(), nn.Linear(f_dims[0], f_dims[1]), nn.ReLU(),
                      nn.Dropout(dropout), nn.Linear(f_dims[1], classes))
    return g, f


class NaiveRN(nn.Module):
    """Repeat-and-concatenate RN: builds the (B, N*N, 2D+Q) pair tensor explicitly."""

    def __init__(self):
        super().__init__()
        self.g, self.f = naive_g_f(2 * D + Q, G, F_DIMS, C, 0.5)

    def forward(self, x, q):
        B, N, _ = x.shape
        xi = x.unsqueeze(2).repeat(1, 1, N, 1)  # (B, N, N, D)
        xj = x.unsqueeze(1).repeat(1, N, 1, 1)  # (B, N, N, D)
        qq = q[:, None, None, :].repeat(1, N, N, 1)  # (B, N, N, Q)
        pairs = torch.cat([xi, xj, qq], dim=-1).view(B * N * N, -1)  # (B*N*N, 2D+Q)
        rel = self.g(pairs).view(B, N * N, -1).sum(1)  # (B, G)
        return self.f(rel)


def build(impl: str, n: int) -> nn.Module:
    from relnet import RelationNetwork

    torch.manual_seed(0)
    if impl == "naive":
        return NaiveRN()
    return RelationNetwork(object_dim=D, question_dim=Q, g_dims=G, f_dims=F_DIMS, out_dim=C, f_dropout=(0.0, 0.5),
                           chunk_pairs=CHUNK.get(n))


def run_one(impl: str, n: int, repeats: int, threads: int) -> dict:
    row = time_steps(lambda: build(impl, n), BATCH[n], n, (D, Q, C), repeats, threads)
    return {"impl": impl, "n": n, "batch": BATCH[n], "pairs": BATCH[n] * n * n, **row}


def time_steps(make_model, B: int, n: int, dims: tuple[int, int, int], repeats: int, threads: int) -> dict:
    """Median milliseconds of ``repeats`` forward+backward steps (after one warm-up step) of ``make_model()`` on a
    random batch of ``B`` scenes of ``n`` objects (``dims`` = object size D, question size Q, classes C), and the
    process's peak RSS before building the model and at the end. Shared by ``triples.py``."""
    d, q_dim, classes = dims
    torch.set_num_threads(threads)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = make_model()
    g = torch.Generator().manual_seed(1)
    x, q = torch.randn(B, n, d, generator=g), torch.randn(B, q_dim, generator=g)
    y = torch.randint(0, classes, (B,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    times = []
    for r in range(repeats + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x, q), y).backward()
        if r > 0:  # the first step warms allocator and kernels
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ms": 1000 * statistics.median(times), "peak_mib": peak, "base_mib": base_rss}


def check_equivalence() -> float:
    """relnet's RN and the naive one compute the same function when given the same weights."""
    naive, fast = build("naive", 8), build("relnet", 8)
    lin = [m for m in naive.g if isinstance(m, nn.Linear)]
    with torch.no_grad():
        fast.g_in.weight.copy_(lin[0].weight)
        fast.g_in.bias.copy_(lin[0].bias)
        for a, b in zip([m for m in fast.g_rest if isinstance(m, nn.Linear)], lin[1:]):
            a.weight.copy_(b.weight), a.bias.copy_(b.bias)
        for a, b in zip([m for m in fast.f if isinstance(m, nn.Linear)], [m for m in naive.f if isinstance(m, nn.Linear)]):
            a.weight.copy_(b.weight), a.bias.copy_(b.bias)
    naive.eval(), fast.eval()
    x, q = torch.randn(3, 8, D), torch.randn(3, Q)
    return float((naive(x, q) - fast(x, q)).abs().max())


def measure_in_subprocesses(script: str, sizes: list[int], threads: int, repeats) -> list[dict]:
    """Run ``script --one IMPL,N`` for naive and relnet at each size in ``sizes``, each in a fresh process (so its
    peak RSS is its own), with ``repeats(n)`` repeats; one row per run, ``{"error": last stderr line}`` if it failed.
    Shared by ``triples.py``."""
    rows = []
    for n in sizes:
        for impl in ("naive", "relnet"):
            out = subprocess.run([sys.executable, script, "--one", f"{impl},{n}", "--repeats", str(repeats(n)),
                                  "--threads", str(threads)], capture_output=True, text=True)
            if out.returncode != 0:
                lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
                rows.append({"impl": impl, "n": n, "error": lines[-1]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def print_table(rows: list[dict], result: dict, count_key: str, naive_peak: bool = False) -> dict:
    """Print the naive-vs-relnet table of ``measure_in_subprocesses`` rows and the torch baseline; return ``result``
    with the speedup and peak memory per N (also the naive peak with ``naive_peak``). ``count_key`` names the rows'
    units per step ("pairs", "triples")."""
    print(f"| N | batch | {count_key}/step | naive ms | relnet ms | speedup | naive peak MiB | relnet peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sorted({r["n"] for r in rows}):
        a = next(r for r in rows if r["n"] == n and r["impl"] == "naive")
        b = next(r for r in rows if r["n"] == n and r["impl"] == "relnet")
        fmt = lambda r, k: f"{r[k]:.1f}" if k in r else "failed"  # noqa: E731
        speed = a["ms"] / b["ms"] if "ms" in a and "ms" in b else float("nan")
        print(f"| {n} | {b.get('batch')} | {b.get(count_key)} | {fmt(a, 'ms')} | {fmt(b, 'ms')} | {speed:.2f}x | "
              f"{fmt(a, 'peak_mib')} | {fmt(b, 'peak_mib')} |")
        result[f"speedup_vs_naive_n{n}"] = round(speed, 3)
        if "peak_mib" in b:
            result[f"peak_mib_n{n}"] = round(b["peak_mib"], 1)
        if naive_peak and "peak_mib" in a:
            result[f"naive_peak_mib_n{n}"] = round(a["peak_mib"], 1)
    base = next((r["base_mib"] for r in rows if "base_mib" in r), float("nan"))
    print(f"\npeak RSS includes the process baseline after importing torch: {base:.0f} MiB")
    return result


def parse_args(doc: str, threads: int, sizes: str, run_one) -> argparse.Namespace | None:
    """The benchmarks' shared options. With the internal ``--one impl,n`` (how ``measure_in_subprocesses`` calls a
    benchmark back) it runs that one measurement, prints its JSON and returns None."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--sizes", default=sizes)
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: impl,n
    args = p.parse_args()
    if not args.one:
        return args
    impl, n = args.one.split(",")
    print(json.dumps(run_one(impl, int(n), args.repeats, args.threads)))
    return None


def main() -> None:
    args = parse_args(__doc__, 2, "8,25,64,256,1024", run_one)
    if args is None:
        return
    err = check_equivalence()
    rows = measure_in_subprocesses(__file__, [int(s) for s in args.sizes.split(",")], args.threads,
                                   lambda n: args.repeats if n < 1024 else max(1, args.repeats // 2))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
          f"(set {args.threads}), torch {torch.__version__}; max |naive - relnet| output difference: {err:.2e}")
    print(f"g 4x{G[0]}, f {F_DIMS}, D={D}, Q={Q}; relnet chunks {CHUNK} pairs at N=1024 (activation checkpointing)")
    print()
    result = print_table(rows, {"max_abs_diff": err}, "pairs")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
