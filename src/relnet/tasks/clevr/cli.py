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


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT (480x320) or one number (128)")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width and height must be in 8..4096")
    return w, h


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def add_commands(verbs: dict) -> None:
    p = verbs["data"].add_parser(
        "clevr",
        help="generate a CLEVR-format data set (scenes, template questions, images)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenes", type=_positive, metavar="N", help="sample N new scenes")
    src.add_argument("--from-scenes", type=Path, metavar="SCENES.json", help="use an existing official scenes file")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="root of the official layout to write")
    p.add_argument("--seed", type=int, default=0, help="seed for scenes and questions (default 0)")
    p.add_argument("--questions-per-scene", type=_positive, default=10, metavar="K", help="default 10")
    p.add_argument("--split", default=None, help="split name (default train, or the scenes file's split)")
    p.add_argument("--size", type=_size, default=(480, 320), metavar="WxH", help="image size, 480x320 or 128")
    p.add_argument("--no-images", action="store_true", help="write questions and scenes only")
    p.set_defaults(func=run_data)


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
