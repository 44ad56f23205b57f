"""Training throughput (questions/second) of the compact Sort-of-CLEVR CNN+RN: relnet vs a naive reference.

The architecture is fixed (the one kimhc6028 trains): 4 conv layers of 24 channels (3x3, stride 2) on 75x75 images ->
25 cells + (x, y); g 4x256 over all 625 ordered pairs with the 11-bit question; f 256-256 (dropout 0.5) -10; Adam;
batch 64. The naive reference is written here in the common public pattern: coordinates concatenated, objects
repeated into an explicit (B, 625, 2*26+11) pair tensor, g as a plain MLP on every row, sum, f. Both models see the
same batches of real generated data and take real optimiser steps, alternately, in one process, so machine noise
hits both alike.

relnet's training loop also raises glibc's mmap/trim thresholds (``relnet.perf.keep_freed_memory``) so that the
pair-sized activations are not unmapped and re-faulted every step. The benchmark switches that setting per round:
``naive`` runs with glibc's initial thresholds (as a plain script does), ``relnet`` with relnet's setting, and a third
row ``naive+alloc`` gives the naive model relnet's allocator setting, to show how much of the gain is allocation
and how much is the model code. Usage:

    python benchmarks/sort_of_clevr_throughput.py [--steps 20] [--rounds 3] [--threads 2]

Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class NaiveCNNRN(nn.Module):
    def __init__(self):
        super().__init__()
        layers, prev = [], 3
        for _ in range(4):
            layers += [nn.Conv2d(prev, 24, 3, stride=2, padding=1), nn.BatchNorm2d(24), nn.ReLU()]
            prev = 24
        self.conv = nn.Sequential(*layers)
        dims = [2 * 26 + 11, 256, 256, 256, 256]
        self.g = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.f = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5),
                               nn.Linear(256, 10))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys], -1).reshape(25, 2))

    def forward(self, img, q):
        x = self.conv(img)  # (B, 24, 5, 5)
        B = x.shape[0]
        x = x.view(B, 24, 25).permute(0, 2, 1)  # (B, 25, 24)
        x = torch.cat([x, self.coords.expand(B, 25, 2)], dim=2)  # (B, 25, 26)
        xi = x.unsqueeze(1).repeat(1, 25, 1, 1)  # (B, 25, 25, 26)
        xj = x.unsqueeze(2).repeat(1, 1, 25, 1)  # (B, 25, 25, 26)
        qq = q[:, None, None, :].repeat(1, 25, 25, 1)  # (B, 25, 25, 11)
        pairs = torch.cat([xj, xi, qq], dim=3).view(B * 625, 63)  # (B*625, 63)
        g = self.g(pairs).view(B, 625, 256).sum(1)  # (B, 256)
        return self.f(g)


def relnet_model() -> nn.Module:
    from relnet.tasks.sort_of_clevr.model import build_model, preset

    return build_model(preset("compact", "rn").model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="optimiser steps per model per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from relnet.report import machine_description
    from relnet.tasks.sort_of_clevr import data as soc
    from relnet.tasks.sort_of_clevr.task import Examples

    arrays = soc.generate_split(soc.SortOfClevrParams(train_images=200, test_images=0), "train")
    examples = Examples(arrays, state=False)
    g = torch.Generator().manual_seed(0)
    batches = [examples.batch(torch.randint(0, len(examples), (args.batch,), generator=g)) for _ in range(args.steps)]

    torch.manual_seed(0)
    models = {"naive": NaiveCNNRN(), "relnet": relnet_model()}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(name, batch):
        x, q, y = batch
        opts[name].zero_grad(set_to_none=True)
        F.cross_entropy(models[name](x, q), y).backward()
        opts[name].step()

    from relnet.perf import keep_freed_memory

    variants = {"naive": ("naive", False), "naive+alloc": ("naive", True), "relnet": ("relnet", True)}
    for name in models:  # warm-up
        for b in batches[:3]:
            step(name, b)
    qps: dict[str, list[float]] = {k: [] for k in variants}
    faults: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for label, (name, alloc) in variants.items():
            keep_freed_memory(alloc)
            step(name, batches[0])  # settle the allocator state for this setting
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            for b in batches:
                step(name, b)
            qps[label].append(args.steps * args.batch / (time.perf_counter() - t))
            faults[label].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / args.steps)
    keep_freed_memory(False)
    naive, fast = statistics.median(qps["naive"]), statistics.median(qps["relnet"])
    naive_alloc = statistics.median(qps["naive+alloc"])
    print(f"machine: {machine_description()}")
    print(f"compact CNN+RN, batch {args.batch}, {args.rounds} rounds x {args.steps} steps each, interleaved")
    print(f"parameters: naive {params['naive']:,}, relnet {params['relnet']:,}")
    print("| implementation | training questions/s (median) | all rounds | minor page faults/step |")
    print("|---|---|---|---|")
    for name, v in qps.items():
        print(f"| {name} | {statistics.median(v):.0f} | {', '.join(f'{x:.0f}' for x in v)} | "
              f"{statistics.median(faults[name]):,.0f} |")
    print(f"speedup relnet vs naive: {fast / naive:.2f}x (model code alone, vs naive+alloc: {fast / naive_alloc:.2f}x)")
    print("RESULT " + json.dumps({"speedup_vs_naive": round(fast / naive, 3), "relnet_qps": round(fast, 1),
                                  "naive_qps": round(naive, 1), "naive_alloc_qps": round(naive_alloc, 1),
                                  "speedup_vs_naive_alloc": round(fast / naive_alloc, 3)}))


if __name__ == "__main__":
    main()
