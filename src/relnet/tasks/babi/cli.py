"""bAbI subcommands: ``relnet train babi``, ``relnet eval babi``, ``relnet reproduce babi``.

    relnet train babi --data DIR [--preset paper|fast] [--out RUN] [--resume] [--train.steps=...]
    relnet eval babi --checkpoint PATH --data DIR [--split test|valid] [--json]
    relnet reproduce babi --data DIR [--preset fast] [--report reports/babi.md] [--ship] [--resume]

``DIR`` holds the official ``qaN_*_{train,test}.txt`` files, directly or in ``en-10k/``, ``en/``, ``en-valid-10k/``,
``tasks_1-20_v1-2/en-10k/`` ... (search rule: ``relnet.tasks.babi.data``).
"""

from __future__ import annotations

import argparse
import json
from relnet.train.options import add_run_options, print_summary, show_config

DEFAULT_CHECKPOINT = "checkpoints/babi/rn"


def add_commands(verbs: dict) -> None:
    from relnet.tasks.babi.model import PRESETS

    p = verbs["train"].add_parser(
        "babi", help="train the sentence-object RN jointly on the 20 bAbI tasks",
        description="Joint training on every bAbI task found under --data (the last 10%% of each task's stories are "
        "held out for validation). Any config field can be overridden: --train.lr=3e-4, --model.share_embedding=true, "
        "--data.tasks=1,2,3 (see --show-config).")
    p.add_argument("--data", default=None, help="bAbI folder with the qaN_*_train.txt files")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--out", default=None, help="run folder (default: runs/babi/<preset>)")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        "babi", help="evaluate a checkpoint on bAbI test (or validation) files",
        description="Accuracy per task and the number of tasks passed (> 95%%) on the official qaN_*_test.txt files "
        "under --data (or on the validation carve of the training files with --split valid). Tasks without files are "
        "left out. Words unseen in training are read as <unk>.")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help="checkpoint folder (model.safetensors + config.json; default: %(default)s)")
    p.add_argument("--data", required=True, help="bAbI folder")
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.set_defaults(func=run_eval)

    p = verbs["reproduce"].add_parser(
        "babi", help="train jointly on bAbI and write reports/babi.md",
        description="Train (or resume) the joint model, evaluate it per task on the validation carve (and on the "
        "official test files when --data has them) and write a report next to the paper's and the public "
        "reproductions' pass counts, with wall time and machine.")
    p.add_argument("--data", required=True, help="bAbI folder")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--runs", default="runs/babi", help="folder for the training run (default: %(default)s)")
    p.add_argument("--report", default="reports/babi.md")
    p.add_argument("--resume", action="store_true", help="resume an unfinished run (a finished one is reused)")
    p.add_argument("--ship", action="store_true", help=f"also copy the trained model to {DEFAULT_CHECKPOINT}/")
    p.set_defaults(func=run_reproduce, accepts_overrides=True)


def resolve_config(preset_name: str, data: str | None, overrides: list[str]):
    from relnet.tasks.babi.model import preset
    from relnet.train.config import apply_overrides

    cfg = preset(preset_name)
    if data:
        cfg.data.root = str(data)
    return apply_overrides(cfg, overrides)


def train_one(cfg, out, *, resume: bool, progress: bool = True):
    from relnet.tasks.babi.task import BabiTask
    from relnet.train.config import to_dict
    from relnet.train.loop import train

    task = BabiTask(cfg)
    return train(task, cfg.train, out, run_config=to_dict(cfg), resume=resume, progress=progress)


def run_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.preset, args.data, args.overrides)
    if show_config(args, cfg):
        return 0
    out = args.out or f"runs/babi/{args.preset}"
    result = train_one(cfg, out, resume=args.resume, progress=not args.quiet)
    print_summary(result)
    return 0


def format_table(result: dict) -> str:
    from relnet.tasks.babi.report import TASK_NAMES

    lines = [f"{result['n']} questions ({result['split']}): accuracy {result['accuracy']:.4f}, "
             f"{result['passed']}/{len(result['by_task'])} tasks passed (> 95%)"]
    for t, acc in result["by_task"].items():
        mark = "pass" if acc > 0.95 else "FAIL"
        lines.append(f"  {int(t):2d} {TASK_NAMES[int(t)]:24s} {acc:.4f}  {mark}")
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    from relnet.tasks.babi.task import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.data, args.split)
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.babi.report import reproduce

    return reproduce(args)
