"""How far back bAbI's supporting facts lie, and what a checkpoint gets right inside and beyond its window.

    python scripts/babi_window.py --data DIR [--windows 20,30,40] [--checkpoint PATH] [--json]

For every task of the training files under DIR (split into relnet's training and validation carve, the last 10% of
each task's stories): the number of questions whose earliest supporting fact lies more than W statements before
the question, for each window W. The paper keeps the last 20 statements; a question whose supporting fact lies
beyond the window cannot be answered from the objects the RN sees, except by a guess. With ``--checkpoint``, the
validation accuracy of each task with such questions, split into those whose facts fit the checkpoint's window (or
lie at most ``--split-at`` statements back) and the others.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch

from relnet.tasks.babi import data as babi
from relnet.tasks.babi.task import Examples, load_model, predict


def reach(example: babi.Example) -> int:
    """How many statements back the earliest supporting fact lies (1 = the last statement; 0 = none given)."""
    if not example.supporting:
        return 0
    return len(example.story_ids) - min(example.story_ids.index(s) for s in example.supporting)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--windows", default="20,30,40")
    p.add_argument("--checkpoint")
    p.add_argument("--split-at", type=int, help="split the checkpoint's questions at this reach (default: its window)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    examples, _ = babi.load_training_examples(args.data)
    train, valid = babi.split_train_valid(examples, 0.1)
    out: dict = {"beyond": defaultdict(dict)}
    for name, split in (("train", train), ("valid", valid)):
        for task in sorted({e.task for e in split}):
            reaches = [reach(e) for e in split if e.task == task]
            out["beyond"][str(task)][name] = {"n": len(reaches), **{str(w): sum(r > w for r in reaches)
                                                                    for w in windows}}
    if args.checkpoint:
        torch.set_num_threads(1)
        model, config, vocab = load_model(args.checkpoint)
        S = model.cfg.max_sentences
        split_at = args.split_at or S
        fraction = float(config.get("data", {}).get("valid_fraction", 0.1))
        _, valid = babi.split_train_valid(examples, fraction)
        encoded = Examples(babi.encode(valid, vocab, max_sentences=S))
        right = predict(model, encoded) == encoded.answer  # an answer the model does not know (-1) is never right
        groups: dict = defaultdict(lambda: [0, 0, 0, 0])  # task -> right inside, n inside, right beyond, n beyond
        for e, ok in zip(valid, right.tolist()):
            g = groups[e.task]
            k = 0 if reach(e) <= split_at else 2
            g[k] += ok
            g[k + 1] += 1
        out["checkpoint"] = {"path": args.checkpoint, "window": S, "split_at": split_at, "by_task": {
            str(t): {"inside": f"{g[0]}/{g[1]}", "beyond": f"{g[2]}/{g[3]}"} for t, g in sorted(groups.items())
            if g[3]}}
    if args.json:
        print(json.dumps(out))
        return
    print("questions whose earliest supporting fact lies more than W statements back (train / valid):")
    for task, row in out["beyond"].items():
        cells = ", ".join(f"W={w}: {row['train'][str(w)]} / {row['valid'][str(w)]}" for w in windows)
        if any(row["train"][str(w)] or row["valid"][str(w)] for w in windows):
            print(f"  task {task} ({row['train']['n']} / {row['valid']['n']} questions): {cells}")
    if args.checkpoint:
        c = out["checkpoint"]
        print(f"{c['path']} (window {c['window']}), validation right, facts at most / more than {c['split_at']} back:")
        for task, g in c["by_task"].items():
            print(f"  task {task}: {g['inside']} / {g['beyond']}")


if __name__ == "__main__":
    main()
