"""How does the keypoints preset's first stage start, seed by seed? (diagnosis, not a result)

Trains the first stage of ``--preset keypoints`` (its own 8,000-step schedule) for each seed up to ``--stop`` steps,
into ``OUT/s<seed>`` (resumable: a finished seed is not trained again), and prints its training accuracy at every
1,000 steps: what ``--objects_restart`` judges a start by (reports/sort_of_clevr_diagnosis.md, section 15).

    python scripts/soc_stage1_check.py OUT --seeds 8 9 [--stop 3000] [--threads 1] [--model.x=y ...]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from relnet.tasks.sort_of_clevr.cli import resolve_config
from relnet.tasks.sort_of_clevr.model import objects_stage
from relnet.tasks.sort_of_clevr.task import SortOfClevrTask
from relnet.train.config import to_dict
from relnet.train.loop import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--stop", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    args, overrides = ap.parse_known_args()  # the rest: config overrides, e.g. --model.keypoints=8
    for seed in args.seeds:
        cfg = resolve_config("rn", "keypoints", [f"--objects.seed={seed}", f"--train.threads={args.threads}",
                                                 *overrides])
        first = objects_stage(cfg)
        first = dataclasses.replace(first, train=dataclasses.replace(first.train, seed=seed))
        run = Path(args.out) / f"s{seed}"
        rows = train(SortOfClevrTask(first), first.train, run, run_config=to_dict(first), resume=True,
                     progress=False, stop_after=args.stop).history
        acc = {r["step"]: r["accuracy"] for r in rows if r.get("kind") == "train" and r["step"] % 1000 == 0}
        print(f"seed {seed}: " + ", ".join(f"step {s} {a:.3f}" for s, a in sorted(acc.items())), flush=True)


if __name__ == "__main__":
    main()
