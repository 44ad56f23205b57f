"""Give a trained CLEVR state RN pair distances without changing what it computes (a grown model, for
``--train.init_from``).

    python scripts/clevr_add_pair_distance.py SRC OUT [--data DIR --split val --questions 2000]

``--model.pair_distance=true`` moves each object's (x, y) to the end of its row (where ``RelationNetwork`` reads the
positions) and adds one weight per unit of g's first layer for the pair's distance. This writes OUT, a checkpoint of
that model whose first layer of g is SRC's with its object columns permuted to the new row order, and whose distance
weights are 0: the same function as SRC, which training can then move away from. With ``--data``, both models are
run on the first questions of a split and the largest difference of their logits is printed (it must be below
1e-3, or the script fails; the shipped stage-2 model gives 3.7e-4, float rounding over a different order of sums).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from relnet.checkpoint import save_checkpoint
from relnet.errors import UserError
from relnet.tasks.clevr.model import with_pair_distance
from relnet.tasks.clevr.task import load_examples, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--data", help="check the two models agree on this CLEVR folder")
    p.add_argument("--split", default="val")
    p.add_argument("--questions", type=int, default=2000)
    args = p.parse_args()
    try:
        src, config = load_model(args.src)
        new = with_pair_distance(src)
    except UserError as e:
        sys.exit(f"{args.src}: {e}")
    if args.data:
        ex = load_examples(args.data, args.split, input="state", vocab=config["vocab"], limit=args.questions,
                           progress=False)
        with torch.no_grad():
            batch = ex.batch(torch.arange(len(ex)))
            a, b = src(batch), new(batch)
        diff = float((a - b).abs().max())
        same = float((a.argmax(-1) == b.argmax(-1)).float().mean())
        print(f"{len(ex)} questions: largest logit difference {diff:.2e}, same answer for {same:.2%}")
        if diff > 1e-3:
            sys.exit("the grown model does not compute the same function")
    out_config = {k: v for k, v in config.items() if k not in ("format", "version")}
    out_config["vocab"] = config["vocab"].to_dict()
    out_config["model"] = {**config["model"], "pair_distance": True}
    save_checkpoint(Path(args.out), new, out_config)
    print(f"{args.out}: {args.src} with pair distances (distance weights 0)")


if __name__ == "__main__":
    main()
