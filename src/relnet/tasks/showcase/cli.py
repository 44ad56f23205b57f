"""Showcase commands: ``relnet train|eval|data showcase`` and the web page ``relnet showcase``."""

from __future__ import annotations

import argparse
import json

from relnet.errors import UserError
from relnet.train.options import add_run_options, print_summary, show_config

EVAL_SEED = 2026  # fresh test scenes for `relnet eval showcase`: split "test", never used for training
DEFAULT_CHECKPOINT = "checkpoints/showcase/rn"


def add_commands(verbs: dict) -> None:
    """Register this task's subcommands on the ``relnet <verb>`` subparsers in ``verbs``."""
    from relnet.tasks.showcase.model import PRESETS

    p = verbs["train"].add_parser(
        "showcase", help="train the showcase RN (state objects + question LSTM; minutes on a CPU)",
        description="Train the RN behind `relnet showcase` on freshly generated scenes. Any config field can be "
        "overridden: --train.steps=3000, --model.g_dims=256,256 (see --show-config).")
    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument("--out", default="runs/showcase/rn", help="run folder (default: %(default)s)")
    p.add_argument("--ship", action="store_true", help=f"also copy the trained model to {DEFAULT_CHECKPOINT}/")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        "showcase", help="evaluate a showcase checkpoint on fresh scenes",
        description="Generate K fresh test scenes (8 questions each, 2 per family) with seed S and print the "
        "accuracy overall and per question family.")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="checkpoint folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="test stream (default: %(default)s)")
    p.add_argument("--scenes", type=int, default=1000, help="fresh scenes (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.set_defaults(func=run_eval)

    p = verbs["data"].add_parser(
        "showcase", help="print sample showcase scenes with their questions and answers (JSON lines)",
        description="Scenes are generated on demand (nothing is cached); this prints some, to look at.")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenes", type=int, default=3)
    p.add_argument("--questions", type=int, default=8, help="questions per scene (default: %(default)s)")
    p.set_defaults(func=run_data)

    p = verbs["top"].add_parser(
        "showcase", help="serve the showcase web page (an RN answering questions about a scene, live)",
        description="Serve the showcase page on http://HOST:PORT/. With a showcase checkpoint: a scene of coloured "
        "shapes, questions in English, the RN's answer and its ||g(o_i, o_j, q)|| for every pair. With a "
        "Sort-of-CLEVR pixel checkpoint: the image and the 25 x 25 cell-pair grid.")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help="showcase or Sort-of-CLEVR (pixel) checkpoint folder (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    p.set_defaults(func=run_showcase)


def run_train(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from relnet.checkpoint import atomic_dir
    from relnet.tasks.showcase.model import preset
    from relnet.tasks.showcase.task import ShowcaseTask
    from relnet.train.config import apply_overrides, to_dict
    from relnet.train.loop import train

    cfg = apply_overrides(preset(args.preset), args.overrides)
    if show_config(args, cfg):
        return 0
    result = train(ShowcaseTask(cfg), cfg.train, args.out, run_config=to_dict(cfg), resume=args.resume,
                   progress=not args.quiet)
    ckpt = Path(args.out) / "checkpoint"
    if args.ship:
        with atomic_dir(DEFAULT_CHECKPOINT) as tmp:
            for name in ("model.safetensors", "config.json"):
                shutil.copy2(ckpt / name, tmp / name)
    print_summary(result)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from relnet.tasks.showcase.task import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, seed=args.seed, scenes=args.scenes)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['n']} questions on {args.scenes} fresh scenes (seed {args.seed}): "
              f"accuracy {result['accuracy']:.4f}")
        for k, v in result["by_family"].items():
            print(f"  {k:8s} {v:.4f}")
    return 0


def run_data(args: argparse.Namespace) -> int:
    from relnet.tasks.showcase import data

    if args.scenes < 1 or args.questions < 1 or args.seed < 0:
        raise UserError("--scenes and --questions must be >= 1 and --seed >= 0")
    for k in range(args.scenes):
        scene, qs, ans = data.generate(args.seed, args.split, k, args.questions)
        print(json.dumps({"scene": scene.to_list(), "questions": [q.text for q in qs], "answers": ans}))
    return 0


def run_showcase(args: argparse.Namespace) -> int:
    from relnet.tasks.showcase.server import serve

    if not (0 <= args.port <= 65535):
        raise UserError(f"--port {args.port}: expected 0 .. 65535")
    return serve(args.checkpoint, host=args.host, port=args.port)
