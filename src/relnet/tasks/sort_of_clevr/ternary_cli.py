"""Ternary Sort-of-CLEVR subcommands (``relnet.tasks.sort_of_clevr.ternary``):

    relnet train sort-of-clevr-ternary --model rn3|rn|mlp [--out DIR] [--resume] [--quiet] [--show-config]
        [--train.steps=24000 --model.g_dims=256,256,256 --data.train_images=9800 ...]
    relnet eval sort-of-clevr-ternary --checkpoint DIR [--images 1000] [--seed 2026] [--json]
    relnet reproduce sort-of-clevr-ternary [--models rn3,rn,mlp] [--runs runs/sort_of_clevr_ternary]
        [--report reports/sort_of_clevr_ternary.md] [--images 1000] [--seed 2026] [--resume] [--ship] [overrides]
"""

from __future__ import annotations

import argparse
import json
import shlex

from relnet.errors import UserError
from relnet.tasks.sort_of_clevr.cli import EVAL_SEED
from relnet.train.options import add_run_options, print_summary, show_config

NAME = "sort-of-clevr-ternary"  # the task on the command line (ternary.TASK, the checkpoints' task field)
DEFAULT_IMAGES = 1000  # fresh scenes of `relnet eval` and `relnet reproduce`: 10,000 questions


def add_commands(verbs: dict) -> None:
    """Register this task's subcommands on the ``relnet <verb>`` subparsers in ``verbs``."""
    from relnet.tasks.sort_of_clevr import ternary_report as tr
    from relnet.tasks.sort_of_clevr.ternary import MODELS

    p = verbs["train"].add_parser(
        NAME, help="train the ternary RN, the pair RN or an MLP on ternary Sort-of-CLEVR questions",
        description="Train one model on ternary Sort-of-CLEVR questions (about two objects A and B and the four "
        "others) over state descriptions. Any config field can be overridden: --train.steps=6000, "
        "--model.g_dims=128,128,128, --data.subtypes=between,line,obtuse,left (see --show-config).")
    p.add_argument("--model", choices=MODELS, default="rn3",
                   help="rn3: ternary RN (triples), rn: pair RN, mlp: MLP (default: %(default)s)")
    p.add_argument("--out", default=None, help="run folder (default: runs/sort_of_clevr_ternary/<model>)")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        NAME, help="evaluate a ternary checkpoint on freshly generated scenes",
        description="Generate K fresh test scenes of stream S with the checkpoint's questions per scene and "
        "subtypes, and print its accuracy overall and per subtype.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="how many fresh scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="stream of the fresh scenes (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.set_defaults(func=run_eval)

    p = verbs["reproduce"].add_parser(
        NAME, help="train rn3, rn and mlp on ternary questions and write reports/sort_of_clevr_ternary.md",
        description="Train the ternary RN, the pair RN and an MLP with one configuration apart from the model, "
        "score each on the ternary questions of fresh scenes beside the most common answer, and write a report "
        "with its JSON and curve. Overrides such as --train.steps=6000 apply to every model.")
    p.add_argument("--models", default=tr.DEFAULT_MODELS, help="comma-separated models to train (default: %(default)s)")
    p.add_argument("--runs", default=tr.DEFAULT_RUNS, help="folder for the training runs (default: %(default)s)")
    p.add_argument("--report", default=tr.DEFAULT_REPORT, help="default: %(default)s")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="fresh test scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="stream of the fresh scenes (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="resume unfinished runs; reuse finished ones")
    p.add_argument("--ship", action="store_true",
                   help=f"also copy each trained model to {tr.SHIP_ROOT.as_posix()}/ternary_<model>/")
    p.set_defaults(func=run_reproduce, accepts_overrides=True)


def resolve_config(model: str, overrides: list[str]):
    from relnet.tasks.sort_of_clevr import ternary as t
    from relnet.train.config import apply_overrides

    if any(o.split("=", 1)[0] == "--model.kind" for o in overrides):
        raise UserError("--model.kind: pick the model with --model")
    return apply_overrides(t.RunConfig(model=t.ModelConfig(kind=model)), overrides)


def run_train(args: argparse.Namespace) -> int:
    from relnet.tasks.sort_of_clevr import ternary as t
    from relnet.train.config import to_dict
    from relnet.train.loop import train

    cfg = resolve_config(args.model, args.overrides)
    if show_config(args, cfg):
        return 0
    out = args.out or f"runs/sort_of_clevr_ternary/{args.model}"
    result = train(t.TernaryTask(cfg), cfg.train, out, run_config=to_dict(cfg), resume=args.resume,
                   progress=not args.quiet)
    print_summary(result)
    return 0


def evaluate_checkpoint(path, *, images: int, seed: int) -> dict:
    """A ternary checkpoint's accuracy on ``images`` fresh scenes of stream ``seed``, asked the questions it was
    trained on (its saved ``data.questions_per_image`` and ``data.subtypes``), as ``relnet reproduce`` scores it."""
    from relnet.tasks.sort_of_clevr import ternary as t

    model, config = t.load_model(path)  # a bad checkpoint is reported before a bad --images
    data = t.checkpoint_data(config, path)
    fresh = t.fresh_examples(images=images, seed=seed, per_image=data.questions_per_image, subtypes=data.subtypes)
    return {"task": NAME, "model": config["model"].get("kind"), "seed": seed, "images": images,
            **t.evaluate(model, fresh)}


def run_eval(args: argparse.Namespace) -> int:
    result = evaluate_checkpoint(args.checkpoint, images=args.images, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.checkpoint} ({result['model']}): {result['n']} ternary questions on {args.images} fresh scenes "
              f"(seed {args.seed})")
        print(f"accuracy {result['accuracy']:.4f}")
        for k, v in result["by_subtype"].items():
            print(f"  {k:9s} {v:.4f}")
    return 0


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line that ran, for the report's "Generated by" line (every option spelt out, then overrides)."""
    words = ["relnet", "reproduce", NAME, "--models", args.models, "--runs", str(args.runs), "--report",
             str(args.report), "--images", str(args.images), "--seed", str(args.seed)]
    words += ["--resume"] * args.resume + ["--ship"] * args.ship + list(args.overrides)
    return shlex.join(words)


def run_reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.sort_of_clevr import ternary_report as tr

    tr.reproduce(models=tr.parse_models(args.models), runs=args.runs, report=args.report, images=args.images,
                 seed=args.seed, overrides=args.overrides, command=reproduce_command(args), resume=args.resume,
                 ship_to=tr.SHIP_ROOT if args.ship else None)
    return 0
