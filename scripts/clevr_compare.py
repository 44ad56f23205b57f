"""Two CLEVR checkpoints question by question on one split: how many questions only one of them gets right, and
McNemar's z for the difference (paired, so much tighter than comparing two accuracies).

    python scripts/clevr_compare.py OLD NEW --data DIR [--split val]
"""

from __future__ import annotations

import argparse
import json

from relnet.tasks.clevr.task import answered_correctly, load_examples, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    args = p.parse_args()
    old, config = load_model(args.old)
    new, new_config = load_model(args.new)
    if config["model"]["input"] != new_config["model"]["input"]:
        raise SystemExit("the two checkpoints read different inputs")
    if config["vocab"].to_dict() != new_config["vocab"].to_dict():
        raise SystemExit("the two checkpoints have different question vocabularies")
    examples = load_examples(args.data, args.split, input=config["model"]["input"], vocab=config["vocab"],
                             progress=False)
    a, b = answered_correctly(old, examples), answered_correctly(new, examples)
    only_new, only_old = int((b & ~a).sum()), int((a & ~b).sum())
    z = (only_new - only_old) / max(1, only_new + only_old) ** 0.5
    print(json.dumps({"n": len(a), "old": float(a.float().mean()), "new": float(b.float().mean()),
                      "only_new_right": only_new, "only_old_right": only_old, "mcnemar_z": round(z, 2)}))


if __name__ == "__main__":
    main()
