"""Sort-of-CLEVR subcommands: ``relnet data sort-of-clevr``."""

from __future__ import annotations

import argparse
import time

from relnet.tasks.sort_of_clevr import data


def add_commands(verbs: dict) -> None:
    """Register this task's subcommands on the ``relnet <verb>`` subparsers in ``verbs``."""
    defaults = data.SortOfClevrParams()
    p = verbs["data"].add_parser(
        "sort-of-clevr",
        help="generate the Sort-of-CLEVR data set (cached; seconds)",
        description="Generate Sort-of-CLEVR images, questions and answers into "
        "<out>/sort_of_clevr/<version>-<hash>/{train,test}.npz (reused when present).",
    )
    p.add_argument("--out", default=None, help="cache root (default: $RELNET_DATA or ./data)")
    p.add_argument("--train-images", type=int, default=defaults.train_images, help="train images (default: %(default)s)")
    p.add_argument("--test-images", type=int, default=defaults.test_images, help="test images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="base seed, >= 0 (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="regenerate even if the cache exists")
    p.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    params = data.SortOfClevrParams(train_images=args.train_images, test_images=args.test_images, seed=args.seed)
    start = time.perf_counter()
    splits = data.load_or_generate(params, root=args.out, force=args.force, progress=True)
    elapsed = time.perf_counter() - start
    print(data.cache_dir(params, args.out))
    for split, arrays in splits.items():
        n, q = arrays["questions"].shape[:2]
        print(f"{split}: {n} images, {n * q} questions")
    print(f"time: {elapsed:.2f} s")
    return 0
