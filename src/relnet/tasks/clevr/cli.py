"""``relnet data clevr``: write a CLEVR-format data set (official v1.0 layout) readable by :func:`load_split`.

    relnet data clevr --scenes N --out DIR [--seed S] [--questions-per-scene K] [--split train] [--size 480x320|128]
                      [--no-images]
    relnet data clevr --from-scenes SCENES.json --out DIR [--questions-per-scene K] [--no-images]

Scenes come from :func:`relnet.tasks.clevr.scenes.sample_scenes` (or the given official scenes file), questions from
:func:`relnet.tasks.clevr.questions.generate_questions`, images from :func:`relnet.tasks.clevr.render.render_scene`.
Prints one JSON summary line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from relnet.errors import UserError
from relnet.train.options import add_run_options, positive_int, print_summary, show_config


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT (480x320) or one number (128)")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width and height must be in 8..4096")
    return w, h

def add_commands(verbs: dict) -> None:
    p = verbs["data"].add_parser(
        "clevr",
        help="generate a CLEVR-format data set (scenes, template questions, images)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenes", type=positive_int, metavar="N", help="sample N new scenes")
    src.add_argument("--from-scenes", type=Path, metavar="SCENES.json", help="use an existing official scenes file")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="root of the official layout to write")
    p.add_argument("--seed", type=int, default=0, help="seed for scenes and questions (default 0)")
    p.add_argument("--questions-per-scene", type=positive_int, default=10, metavar="K", help="default 10")
    p.add_argument("--split", default=None, help="split name (default train, or the scenes file's split)")
    p.add_argument("--size", type=_size, default=(480, 320), metavar="WxH", help="image size, 480x320 or 128")
    p.add_argument("--no-images", action="store_true", help="write questions and scenes only")
    p.set_defaults(func=run_data)
    add_training_commands(verbs)


def _write_png(path: Path, array) -> None:
    from PIL import Image

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_data(args: argparse.Namespace) -> int:
    from relnet.tasks.clevr.loader import parse_scenes, read_json, split_paths, write_json_atomic
    from relnet.tasks.clevr.questions import generate_questions

    if args.split is not None and not re.fullmatch(r"[A-Za-z0-9_]+", args.split):
        raise UserError(f"--split {args.split!r}: use letters, digits and '_' only")
    render_scene = None
    if not args.no_images:
        try:
            from relnet.tasks.clevr.render import render_scene
        except ImportError as e:
            raise UserError(f"the CLEVR renderer is not available ({e}); pass --no-images to skip images") from None

    if args.from_scenes is not None:
        scenes = parse_scenes(read_json(args.from_scenes), args.from_scenes)
        split = args.split or (scenes[0].get("split") if scenes and isinstance(scenes[0].get("split"), str) else None)
        split = split or "train"
        source = str(args.from_scenes)
    else:
        split = args.split or "train"
        try:
            from relnet.tasks.clevr.scenes import sample_scenes
        except ImportError as e:
            raise UserError(f"the CLEVR scene sampler is not available ({e}); use --from-scenes") from None
        scenes = sample_scenes(args.scenes, args.seed, split=split)
        scenes = parse_scenes({"scenes": scenes}, Path("<sampled scenes>"))
        source = "relnet.tasks.clevr.scenes.sample_scenes"

    # the written tree names every image after its split and index
    for s in scenes:
        s["split"] = split
        s["image_filename"] = f"CLEVR_{split}_{s['image_index']:06d}.png"

    questions = generate_questions(scenes, per_scene=args.questions_per_scene, seed=args.seed)
    paths = split_paths(args.out, split)
    info = {"split": split, "version": "1.0", "generator": "relnet", "seed": args.seed, "source": source,
            "license": "Creative Commons Attribution (CC BY 4.0)"}
    write_json_atomic(paths["scenes"], {"info": info, "scenes": scenes})
    write_json_atomic(paths["questions"], {"info": info, "questions": questions})

    n_images = 0
    if render_scene is not None:
        from tqdm import tqdm

        width, height = args.size
        paths["images"].mkdir(parents=True, exist_ok=True)
        for s in tqdm(scenes, desc="render", unit="img", file=sys.stderr):
            img = render_scene(s, width=width, height=height)
            if getattr(img, "shape", None) != (height, width, 3):
                raise ValueError(f"render_scene returned shape {getattr(img, 'shape', None)}, "
                                 f"expected {(height, width, 3)}")
            _write_png(paths["images"] / s["image_filename"], img)
            n_images += 1
    print(json.dumps({"out": str(args.out), "split": split, "scenes": len(scenes), "questions": len(questions),
                      "images": n_images}))
    return 0


# -- train / eval / reproduce ------------------------------------------------------------------------------------------

def add_training_commands(verbs: dict) -> None:
    from relnet.tasks.clevr.model import INPUTS, MODELS, PRESETS

    p = verbs["train"].add_parser(
        "clevr", help="train a state-description or pixel RN (or a baseline) on CLEVR-format data",
        description="Train on a CLEVR-format folder (real CLEVR v1.0 or `relnet data clevr` output). The val split "
        "is evaluated during training when present. Any config field can be overridden: --train.lr=3e-4, "
        "--model.g_dims=256,256, --data.max_train_questions=10000 (see --show-config). Multi-GPU: "
        "torchrun --nproc_per_node=K -m relnet.cli train clevr ... (--train.batch_size is the global batch).")
    p.add_argument("--input", choices=INPUTS, default="state", help="state descriptions or pixels (default state)")
    p.add_argument("--data", default=None, metavar="DIR", help="dataset root (questions/, scenes/, images/)")
    p.add_argument("--model", choices=MODELS, default="rn")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--out", default=None, help="run folder (default: runs/clevr/<input>-<model>-<preset>)")
    add_run_options(p, run_train)

    p = verbs["eval"].add_parser(
        "clevr", help="evaluate a CLEVR checkpoint per question family",
        description="Accuracy overall and per family (count, exist, compare_numbers, query_attribute, "
        "compare_attribute) on a split of a CLEVR-format folder. State input needs only the scenes and "
        "questions files.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset root in the official layout")
    p.add_argument("--split", default="val")
    p.add_argument("--input", choices=INPUTS, default=None, help="check that the checkpoint uses this input")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N questions (0 = all)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output is a table)")
    p.set_defaults(func=run_eval)

    p = verbs["reproduce"].add_parser(
        "clevr", help="generate CLEVR-format data, train the RN and the baselines, write reports/clevr.md",
        description="Generate (or reuse) a CLEVR-format data set with `relnet data clevr` machinery (train scenes "
        "and separate val scenes, never seen in training), train the RN and the Table 1 baselines, evaluate per "
        "family on val and write a report next to the paper's Table 1.")
    p.add_argument("--input", choices=INPUTS, default="state")
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--models", default="rn,mlp,lstm,qtype", help="comma-separated (default: rn,mlp,lstm,qtype)")
    p.add_argument("--data", default="data/clevr_generated", metavar="DIR",
                   help="dataset folder, generated if its files are missing (default: %(default)s)")
    p.add_argument("--train-scenes", type=positive_int, default=10_000)
    p.add_argument("--val-scenes", type=positive_int, default=1_000)
    p.add_argument("--questions-per-scene", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0, help="data seed: train uses seed, val seed + 1")
    p.add_argument("--runs", default="runs/clevr", help="folder for the training runs")
    p.add_argument("--report", default=None, help="default: reports/clevr.md (state), reports/clevr_pixels.md")
    p.add_argument("--resume", action="store_true", help="resume unfinished runs")
    p.add_argument("--ship", action="store_true", help="also copy the trained RN to checkpoints/clevr_<input>/rn/")
    p.set_defaults(func=run_reproduce, accepts_overrides=True)


# (a schedule length in steps, the same length in epochs) pairs of the CLEVR run config
STEP_EPOCH_KEYS = (("train.steps", "epochs"), ("train.warmup_steps", "warmup_epochs"),
                   ("train.step_every", "lr_double_epochs"))


def resolve_config(input: str, model: str, preset_name: str, data: str | None, overrides: list[str]):
    from relnet.tasks.clevr.model import preset
    from relnet.train.config import apply_overrides

    cfg = preset(preset_name, input, model)
    if data is not None:
        cfg.data.root = str(data)
    cfg = apply_overrides(cfg, overrides)
    # A preset may size its schedule in epochs; a count of steps given on the command line wins over the preset's
    # epochs (instead of being silently replaced once the data is loaded); both at once are contradictory.
    given = {item[2:].split("=", 1)[0] for item in overrides}  # well-formed: apply_overrides checked them
    for steps, epochs in STEP_EPOCH_KEYS:
        if steps in given:
            if epochs in given and getattr(cfg, epochs) > 0:
                raise UserError(f"--{steps} and --{epochs} both set the same length; give one of them")
            setattr(cfg, epochs, 0.0)
    return cfg


def train_one(cfg, out, *, resume: bool, progress: bool = True):
    """Train one model (the Q-type prior is fitted by counting); returns a ``TrainResult``."""
    import time

    from relnet.checkpoint import save_checkpoint
    from relnet.checkpoint import write_json_atomic as write_json
    from relnet.tasks.clevr.task import ClevrTask
    from relnet.train.config import to_dict
    from relnet.train.loop import TrainResult, train

    task = ClevrTask(cfg, progress=progress)
    if cfg.model.kind != "qtype":
        return train(task, cfg.train, out, run_config=to_dict(cfg), resume=resume, progress=progress)
    t = time.perf_counter()
    out = Path(out)
    model = task.build_model()
    save_checkpoint(out / "checkpoint", model, task.checkpoint_config())
    write_json(out / "config.json", to_dict(cfg))
    result = task.evaluate(model) or None
    seconds = time.perf_counter() - t
    history = [{"step": 0, "kind": "eval", "elapsed": seconds, **result}] if result else []
    return TrainResult(model, out, 0, history, seconds, result)


def run_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.input, args.model, args.preset, args.data, args.overrides)
    if show_config(args, cfg):
        return 0
    if not cfg.data.root:
        raise UserError("--data DIR is required (a CLEVR-format folder; make one with `relnet data clevr`)")
    out = args.out or f"runs/clevr/{args.input}-{args.model}-{args.preset}"
    result = train_one(cfg, out, resume=args.resume, progress=not args.quiet)
    print_summary(result)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from relnet.tasks.clevr.task import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, input=args.input, limit=args.limit)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['n']} questions of split {args.split!r} ({result['input']} input, model {result['model']})")
        print(f"accuracy {result['accuracy']:.4f}")
        for k, v in result["by_family"].items():
            print(f"  {k:18s} {v:.4f}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.clevr.report import reproduce

    return reproduce(args)
