"""Where a Sort-of-CLEVR checkpoint gets 'closest' and 'furthest' wrong: accuracy by the distance margin that decides
the answer, on freshly generated test images.

The answer to "shape of the object closest to (furthest from) the red one" is the shape of the nearest (furthest)
other object. Only a competitor of the *other* shape can make a ranking mistake cost the answer, so the deciding
margin is |d(answer object) - d(nearest-ranked object of the other shape)| in pixels, where "nearest-ranked" means
next in the ranking (the closest other-shape object for 'closest', the furthest one for 'furthest'). Questions
whose other objects all share one shape have no competitor ("none"). If errors concentrate at margins under one
5x5 cell (15 px), the model's objects do not carry positions finer than a cell.

Usage (repo root): python scripts/soc_margin_errors.py [--checkpoint checkpoints/sort_of_clevr/rn] [--images 1000]
    [--seed 2026] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.task import Examples, correct_answers, load_model

BUCKETS = (0, 3, 6, 10, 15, 25, 40)  # px; the last bucket is open-ended


def deciding_margins(centres: np.ndarray, shapes: np.ndarray, questions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per question: its subtype and the deciding margin in px (NaN: not closest/furthest or no competitor).

    centres (N, 6, 2), shapes (N, 6), questions (N, Q, 11) as in :func:`relnet.tasks.sort_of_clevr.data.generate_split`.
    """
    subtype = soc.question_subtype(questions)  # (N, Q)
    colour = soc.question_color(questions)  # (N, Q)
    margin = np.full(subtype.shape, np.nan)
    closest, furthest = soc.SUBTYPE_NAMES.index("closest"), soc.SUBTYPE_NAMES.index("furthest")
    for n, q in zip(*np.nonzero((subtype == closest) | (subtype == furthest))):
        c = colour[n, q]
        d = np.linalg.norm(centres[n] - centres[n, c], axis=1).astype(float)  # (6,)
        d[c] = np.nan
        sign = 1.0 if subtype[n, q] == closest else -1.0  # rank by sign * d, smallest first
        target = int(np.nanargmin(sign * d))
        rivals = [j for j in range(len(d)) if j != c and shapes[n, j] != shapes[n, target]]
        if rivals:
            margin[n, q] = min(sign * (d[j] - d[target]) for j in rivals)
    return subtype, margin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/sort_of_clevr/rn")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    arrays = soc.generate_split(soc.SortOfClevrParams(train_images=1, test_images=args.images, seed=args.seed), "test")
    correct = correct_answers(model, Examples(arrays, state=config["model"]["kind"] == "rn-state")).numpy()
    subtype, margin = deciding_margins(arrays["centres"], arrays["shapes"], arrays["questions"])
    subtype, margin = subtype.reshape(-1), margin.reshape(-1)
    edges = [*BUCKETS, np.inf]
    out = {"checkpoint": args.checkpoint, "images": args.images, "seed": args.seed, "by_margin": {}}
    for name in ("closest", "furthest"):
        sel = subtype == soc.SUBTYPE_NAMES.index(name)
        buckets = {"none": sel & np.isnan(margin)}
        for lo, hi in zip(edges[:-1], edges[1:]):
            buckets[f"{lo}-{hi:g}" if np.isfinite(hi) else f">={lo}"] = sel & (margin >= lo) & (margin < hi)
        buckets["all"] = sel
        out["by_margin"][name] = {k: {"accuracy": float(correct[b].mean()) if b.any() else None, "n": int(b.sum())}
                                  for k, b in buckets.items()}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.checkpoint}: {args.images} fresh images (seed {args.seed}); accuracy by deciding margin (px)")
    for name, rows in out["by_margin"].items():
        print(f"  {name}")
        for k, r in rows.items():
            acc = "  n/a " if r["accuracy"] is None else f"{100 * r['accuracy']:5.1f}%"
            print(f"    {k:>8s}  {acc}  ({r['n']} questions)")


if __name__ == "__main__":
    main()
