"""Seconds per training step (forward + backward) of the Sort-of-CLEVR pixel RN's two parts, CNN and RN head, for
the old ``fast`` model (strided CNN, no norm inside g) and the new one (max-pooled CNN, BatchNorm inside g and f).

Usage (repo root): python scripts/soc_cost_split.py [--batch 256] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.model import build_model, preset

VARIANTS = {"strided CNN, plain g": ("stride", ""), "max-pooled CNN, plain g": ("maxpool", ""),
            "max-pooled CNN, BatchNorm in g (fast)": ("maxpool", "batch")}


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = torch.rand(args.batch, 3, 75, 75)
    question = torch.zeros(args.batch, soc.QUESTION_DIM)
    question[:, 0] = 1
    for name, (downsample, hidden_norm) in VARIANTS.items():
        cfg = dataclasses.replace(preset("fast", "rn").model, cnn_downsample=downsample, hidden_norm=hidden_norm)
        model = build_model(cfg).train()
        objects = model.objects(image).detach().requires_grad_()
        cnn = seconds(lambda: model.objects(image).sum().backward(), args.repeats)
        head = seconds(lambda: model.head(objects, question).sum().backward(), args.repeats)
        print(f"{name:40s} CNN {cnn:.2f} s  head {head:.2f} s  per step of {args.batch} ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
