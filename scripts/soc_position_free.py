"""How much of Sort-of-CLEVR's "relational" score needs no positions, and which trained models read the relation.

The first table is the best reader that knows every object's colour and shape but not where it is
(``relnet.tasks.sort_of_clevr.analysis``: shape and count exactly, closest and furthest by the shape most of the other
five objects have, 68.75% in expectation, so 79.2% of the relational questions). For each checkpoint given, the
second splits its closest / furthest accuracy by whether the right answer is that majority shape or the minority
one: a model that reads the relation gets both right; one that answers the majority gets the minority ones wrong.

    python scripts/soc_position_free.py --images 1000 --seed 2026 \
        --checkpoint checkpoints/sort_of_clevr/rn --checkpoint checkpoints/sort_of_clevr/mlp

Prints a markdown table and a ``RESULT {json}`` line. Uses the same fresh images as ``relnet eval sort-of-clevr``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.analysis import SUBTYPES, majority_shape_of_others, majority_split, position_free
from relnet.tasks.sort_of_clevr.cli import evaluate_on
from relnet.tasks.sort_of_clevr.report import relation_table
from relnet.tasks.sort_of_clevr.task import fresh_arrays, load_model


def read_relations(checkpoint: str, arrays: dict[str, np.ndarray]) -> dict:
    """A checkpoint's evaluation on ``arrays`` and its closest / furthest split by majority- and minority-shape
    answers."""
    result, correct = evaluate_on(load_model(checkpoint), arrays, images=0, seed=0)
    return {"metrics": result, "majority_split": majority_split(correct.numpy(), arrays)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--checkpoint", action="append", default=[], help="a Sort-of-CLEVR checkpoint (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arrays = fresh_arrays(images=args.images, seed=args.seed)
    subtype = soc.question_subtype(arrays["questions"]).reshape(-1)
    is_majority = majority_shape_of_others(arrays) == arrays["answers"].reshape(-1)
    free = position_free(arrays)
    print(f"{len(subtype)} questions on {args.images} fresh images (seed {args.seed})\n")
    print("| reader | " + " | ".join(soc.SUBTYPE_NAMES) + " | relational |")
    print("|---|" + "---|" * (len(soc.SUBTYPE_NAMES) + 1))
    print("| position-free (best possible) | " + " | ".join(f"{100 * free[n]:.1f}" for n in soc.SUBTYPE_NAMES)
          + f" | {100 * free['relational']:.1f} |")
    models = {c: read_relations(c, arrays) for c in args.checkpoint}
    if models:
        shares = {n: float(is_majority[subtype == SUBTYPES[n]].mean()) for n in ("closest", "furthest")}
        print(f"\nclosest / furthest questions whose answer is the majority shape of the other five: "
              f"{100 * shares['closest']:.1f}% / {100 * shares['furthest']:.1f}%\n")
        print(relation_table({f"`{c}` ({r['metrics']['model']})": r for c, r in models.items()}, free))
    print("RESULT " + json.dumps({"images": args.images, "seed": args.seed, "position_free": free,
                                 "models": {c: {**r["metrics"], **r["majority_split"]} for c, r in models.items()}}))


if __name__ == "__main__":
    main()
