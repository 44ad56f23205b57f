"""Physics subcommands: ``relnet data|train|eval|reproduce physics``.

    relnet data physics [--scenes K] [--seed S] [--split train|val|test] [--out DIR] [--workers W]
    relnet train physics --task connections|count --model rn|mlp [--preset fast|paper] [--out RUN] [--resume]
    relnet eval physics --task connections|count --checkpoint PATH [--seed S --scenes K] [--json]
    relnet reproduce physics [--tasks connections,count] [--models rn,mlp] [--preset fast] [--ship]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from relnet.errors import UserError
from relnet.train.options import add_run_options, print_summary, show_config

EVAL_SEED = 2026  # fresh scenes for `relnet eval` and reports: a seed never used for training data
DEFAULT_CHECKPOINTS = "checkpoints/physics"


def _data(args: argparse.Namespace) -> int:
    from relnet.tasks.physics.sim import SPLITS, PhysicsParams, cache_dir, load_or_generate, system_counts

    if args.scenes < 1:
        raise UserError(f"--scenes must be >= 1, got {args.scenes}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {args.split!r}")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")
    if args.workers < 0:
        raise UserError(f"--workers must be >= 0 (0: one per CPU core), got {args.workers}")
    params = PhysicsParams()
    start = time.perf_counter()
    data = load_or_generate(params, args.split, args.scenes, args.seed, args.out, progress=sys.stderr.isatty(),
                            workers=args.workers or os.cpu_count() or 1)
    took = time.perf_counter() - start
    counts = system_counts(data["systems"], params.n_balls)
    print(f"physics {args.split}: {args.scenes} scenes (seed {args.seed}) in {cache_dir(params, args.out)}")
    print("systems: " + "  ".join(f"{c}:{n}" for c, n in counts.items()))
    print(f"time: {took:.1f} s")
    return 0


def add_commands(verbs: dict) -> None:
    """Register ``relnet data physics`` and the train / eval / reproduce commands."""
    p = verbs["data"].add_parser(
        "physics",
        help="simulate balls joined by springs and rods (dynamic physical systems)",
        description="Simulate 10 balls joined by random springs and rigid rods in a walled box (16 frames per "
        "scene) and cache them as .npz under <out>/physics/v1-<hash>/. A NumPy stand-in for the paper's MuJoCo "
        "scenes.",
    )
    p.add_argument("--scenes", type=int, default=100_000, help="number of scenes (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--split", default="train", help="train, val or test (each split gets its own scenes)")
    p.add_argument("--out", default=None, help="data root (default $RELNET_DATA or ./data)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that simulate (default 0: one per CPU core; the scenes do not depend on it)")
    p.set_defaults(func=_data)
    add_training_commands(verbs)


def add_training_commands(verbs: dict) -> None:
    from relnet.tasks.physics.model import MODELS, PRESETS, TASKS

    p = verbs["train"].add_parser(
        "physics", help="train an RN or the MLP baseline on connection inference or system counting",
        description="Train on simulated scenes (generated once and cached under --data.root, default $RELNET_DATA "
        "or ./data; validation on a separate split). Any config field can be overridden: --train.lr=3e-4, "
        "--model.g_dims=512,512,512, --data.train_scenes=50000 (see --show-config).")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--model", choices=MODELS, default="rn")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--out", default=None, help="run folder (default: runs/physics/<task>-<model>-<preset>)")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        "physics", help="evaluate a checkpoint on freshly simulated scenes",
        description="Simulate K fresh scenes with seed S (test stream, never cached) and print the metrics: "
        "connections: share of scenes with every connection right, per-pair accuracy, precision, recall; "
        "count: accuracy overall and per number of systems.")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--checkpoint", default=None,
                   help=f"checkpoint folder (default: {DEFAULT_CHECKPOINTS}/<task>)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the fresh scenes (default: %(default)s)")
    p.add_argument("--scenes", type=int, default=2000, help="number of fresh scenes (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.add_argument("--symmetries", action="store_true",
                   help="average the logits over each scene's 16 symmetric views (time reversal, the square's 8 "
                        "symmetries), which leave every label unchanged: 16x the compute")
    p.set_defaults(func=run_eval)

    p = verbs["reproduce"].add_parser(
        "physics", help="train RN and MLP on both physics tasks and write reports/physics.md",
        description="Train (or reuse) RN and MLP on connection inference and system counting, evaluate on fresh "
        "scenes, and write a report next to the paper's numbers, with wall time, machine, and a trajectory "
        "picture with the true and predicted connections.")
    p.add_argument("--tasks", default="connections,count", help="comma-separated tasks (default: %(default)s)")
    p.add_argument("--models", default="rn,mlp", help="comma-separated models (default: %(default)s)")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--runs", default="runs/physics", help="folder for the training runs (default: %(default)s)")
    p.add_argument("--report", default="reports/physics.md")
    p.add_argument("--eval-scenes", type=int, default=2000)
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    p.add_argument("--resume", action="store_true", help="resume unfinished runs (finished ones are reused)")
    p.add_argument("--ship", action="store_true", help=f"also copy the RN checkpoints to {DEFAULT_CHECKPOINTS}/<task>/")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF of the pictured scene")
    p.add_argument("--symmetries", action="store_true",
                   help="also evaluate each RN with its logits averaged over the 16 symmetric views of every test scene")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_reproduce, accepts_overrides=True)


def resolve_config(task: str, model: str, preset_name: str, overrides: list[str]):
    from relnet.tasks.physics.model import preset
    from relnet.train.config import apply_overrides

    cfg = apply_overrides(preset(preset_name, task, model), overrides)
    if cfg.task != task or cfg.model.task != task:
        raise UserError(f"--task {task}: the overrides --task/--model.task must not change it")
    return cfg


def train_one(cfg, out, *, resume: bool, progress: bool = True):
    from relnet.tasks.physics.task import PhysicsTask
    from relnet.train.config import to_dict
    from relnet.train.loop import train, validate_config

    validate_config(cfg.train)  # fail fast, before simulating any data
    task = PhysicsTask(cfg, progress=progress)
    return train(task, cfg.train, out, run_config=to_dict(cfg), resume=resume, progress=progress)


def run_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.task, args.model, args.preset, args.overrides)
    if show_config(args, cfg):
        return 0
    out = args.out or f"runs/physics/{args.task}-{args.model}-{args.preset}"
    result = train_one(cfg, out, resume=args.resume, progress=not args.quiet)
    print_summary(result)
    return 0


def evaluate_checkpoint(path, *, task: str, scenes: int, seed: int, return_data: bool = False,
                        symmetries: bool = False):
    """Metrics of the checkpoint at ``path`` on ``scenes`` fresh scenes of stream ``seed`` (``symmetries``: logits
    averaged over the 16 symmetric views of each scene)."""
    from relnet.tasks.physics.task import SYMMETRIES, TASK_NAMES, evaluate, fresh_scenes, load_model, sim_params

    model, config = load_model(path, task)
    data, sc = fresh_scenes(sim_params(config, path), scenes=scenes, seed=seed)
    result = {"task": TASK_NAMES[task], "model": config["model"]["kind"], "seed": seed, "scenes": scenes,
              "symmetries": SYMMETRIES if symmetries else 1, **evaluate(model, sc, symmetries=symmetries)}
    if task == "connections":
        result.pop("accuracy")  # the JSON names the paper's metric explicitly: scene_accuracy
    return (result, model, data) if return_data else result


def run_eval(args: argparse.Namespace) -> int:
    path = args.checkpoint or f"{DEFAULT_CHECKPOINTS}/{args.task}"
    result = evaluate_checkpoint(path, task=args.task, scenes=args.scenes, seed=args.seed,
                                 symmetries=args.symmetries)
    if args.json:
        print(json.dumps(result))
    elif args.task == "connections":
        print(f"{result['n']} fresh scenes (seed {args.seed}), model {result['model']}")
        print(f"scenes with every connection right {result['scene_accuracy']:.4f}  pair accuracy "
              f"{result['pair_accuracy']:.4f}  precision {result['precision']:.4f}  recall {result['recall']:.4f}")
    else:
        print(f"{result['n']} fresh scenes (seed {args.seed}), model {result['model']}")
        print(f"accuracy {result['accuracy']:.4f}")
        for c, v in result["by_systems"].items():
            print(f"  {c:>2} systems {v:.4f}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.physics.report import reproduce

    return reproduce(args)
