"""Make docs/clevr_render_vs_real.png: real CLEVR images (left) next to relnet's CPU renders of the same scenes.

Usage (from the repo root, with the real data in ../shared/data):
    python scripts/clevr_side_by_side.py [--data ../shared/data] [--out docs/clevr_render_vs_real.png]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from relnet.tasks.clevr.render import render_scene

INDICES = (0, 5, 22)


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=repo.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=repo / "docs" / "clevr_render_vs_real.png")
    args = ap.parse_args()
    clevr = args.data / "clevr" / "samples"
    with open(clevr / "scenes" / "CLEVR_train_scenes_1000.json", encoding="utf-8") as fh:
        scenes = {s["image_index"]: s for s in json.load(fh)["scenes"]}
    rows = []
    for idx in INDICES:
        real = np.asarray(Image.open(clevr / "images" / "train" / f"CLEVR_train_{idx:06d}.png"))[..., :3]
        ours = render_scene(scenes[idx], width=480, height=320)
        small = render_scene(scenes[idx], width=128, height=128)
        small = np.asarray(Image.fromarray(small).resize((128, 128)))
        pad = np.full((320, 136, 3), 255, np.uint8)
        pad[4:132, 4:132] = small
        rows.append(np.concatenate([real, np.full((320, 4, 3), 255, np.uint8), ours, pad], axis=1))
    img = Image.fromarray(np.concatenate(rows, axis=0))
    draw = ImageDraw.Draw(img)
    for r, idx in enumerate(INDICES):
        draw.text((6, r * 320 + 4), f"real CLEVR_train_{idx:06d}", fill=(255, 255, 255))
        draw.text((490, r * 320 + 4), "relnet render 480x320", fill=(255, 255, 255))
        draw.text((968, r * 320 + 136), "render 128x128", fill=(0, 0, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=args.out.parent)
    os.close(fd)
    img.save(tmp)
    os.replace(tmp, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
