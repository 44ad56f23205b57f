"""Sort-of-CLEVR subcommands: ``relnet data sort-of-clevr``."""

from __future__ import annotations

import argparse
import time

from relnet.tasks.sort_of_clevr import data
from relnet.train.options import add_run_options, print_summary, show_config


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
    p.add_argument("--train-images", type=int, default=defaults.train_images,
                   help="train images (default: %(default)s)")
    p.add_argument("--test-images", type=int, default=defaults.test_images, help="test images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="base seed, >= 0 (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="regenerate even if the cache exists")
    p.set_defaults(func=run_data)
    add_training_commands(verbs)


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


# -- train / eval / reproduce ----------------------------------------------------------------------------------------

EVAL_SEED = 2026  # fresh test images for `relnet eval` and reports: a stream never used for training


def add_training_commands(verbs: dict) -> None:
    from relnet.tasks.sort_of_clevr.model import MODELS, PRESETS

    p = verbs["train"].add_parser(
        "sort-of-clevr", help="train CNN+RN, CNN+MLP or a state-description RN on Sort-of-CLEVR",
        description="Train on Sort-of-CLEVR. Any config field can be overridden: --train.lr=3e-4, "
        "--model.g_dims=256,256, --data.train_images=2000 (see --show-config).")
    p.add_argument("--model", choices=MODELS, default="rn")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--out", default=None, help="run folder (default: runs/sort_of_clevr/<model>-<preset>)")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        "sort-of-clevr", help="evaluate a checkpoint on freshly generated Sort-of-CLEVR images",
        description="Generate K fresh test images with seed S and print accuracy overall, relational, "
        "non-relational and per subtype.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--seed", type=int, default=EVAL_SEED)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.set_defaults(func=run_eval)

    p = verbs["reproduce"].add_parser(
        "sort-of-clevr", help="train CNN+RN and CNN+MLP and write reports/sort_of_clevr.md",
        description="The paper's controlled experiment: CNN+RN vs CNN+MLP on relational and non-relational "
        "questions, evaluated on fresh images; writes a report with the table, wall time, machine and seed. "
        "Overrides such as --train.threads=1 apply to every model; --MODEL:section.key=value (e.g. "
        "--rn:train.steps=8000) to one model only.")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--models", default="rn,mlp,rn-state", help="comma-separated models to train (default: %(default)s)")
    p.add_argument("--runs", default="runs/sort_of_clevr", help="folder for the training runs")
    p.add_argument("--report", default="reports/sort_of_clevr.md")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    p.add_argument("--resume", action="store_true", help="resume unfinished runs")
    p.add_argument("--ship", action="store_true", help="also copy the trained models to checkpoints/sort_of_clevr/")
    p.set_defaults(func=run_reproduce, accepts_overrides=True)


def resolve_config(model: str, preset_name: str, overrides: list[str]):
    from relnet.tasks.sort_of_clevr.model import preset
    from relnet.train.config import apply_overrides

    return apply_overrides(preset(preset_name, model), overrides)


def train_one(cfg, out, *, resume: bool, progress: bool = True):
    """Train one model into ``out``; a two-stage configuration (``--preset keypoints``) first trains its objects
    into ``out/objects``. The result's seconds and history cover both stages (the main run's rows after the first
    stage's, with elapsed times counted from the start of the first)."""
    import dataclasses
    from pathlib import Path

    from relnet.tasks.sort_of_clevr.model import objects_stage
    from relnet.tasks.sort_of_clevr.task import SortOfClevrTask
    from relnet.train.config import to_dict
    from relnet.train.loop import train

    first = objects_stage(cfg)
    if first is None:
        return train(SortOfClevrTask(cfg), cfg.train, out, run_config=to_dict(cfg), resume=resume, progress=progress)
    stage = train(SortOfClevrTask(first), first.train, Path(out) / "objects", run_config=to_dict(first),
                  resume=resume, progress=progress)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=str(stage.run_dir / "checkpoint"),
                                                             init_only=("cnn.",)))
    result = train(SortOfClevrTask(cfg), cfg.train, out, run_config=to_dict(cfg), resume=resume, progress=progress)
    history = [{**r, "stage": "objects"} for r in stage.history] + [
        {**r, "elapsed": r["elapsed"] + stage.seconds} if "elapsed" in r else r for r in result.history]
    return dataclasses.replace(result, seconds=stage.seconds + result.seconds, history=history)


def run_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.model, args.preset, args.overrides)
    if show_config(args, cfg):
        return 0
    out = args.out or f"runs/sort_of_clevr/{args.model}-{args.preset}"
    result = train_one(cfg, out, resume=args.resume, progress=not args.quiet)
    print_summary(result)
    return 0


def evaluate_checkpoint(path, *, images: int, seed: int) -> dict:
    from relnet.tasks.sort_of_clevr.task import evaluate, fresh_examples, load_model

    model, config = load_model(path)
    examples = fresh_examples(images=images, seed=seed, state=config["model"]["kind"] == "rn-state")
    return {"task": "sort-of-clevr", "model": config["model"]["kind"], "seed": seed, "images": images,
            **evaluate(model, examples)}


def run_eval(args: argparse.Namespace) -> int:
    import json

    result = evaluate_checkpoint(args.checkpoint, images=args.images, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.checkpoint} ({result['model']}): {result['n']} questions on {args.images} fresh images "
              f"(seed {args.seed})")
        print(f"accuracy {result['accuracy']:.4f}  relational {result['relational']:.4f}  "
              f"non-relational {result['non_relational']:.4f}")
        for k, v in result["by_subtype"].items():
            print(f"  {k:9s} {v:.4f}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.sort_of_clevr.report import reproduce

    return reproduce(args)
