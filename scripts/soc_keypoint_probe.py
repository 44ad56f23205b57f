"""Where do a keypoint Sort-of-CLEVR RN's keypoints look? (diagnosis, not a result)

For each keypoint of a checkpoint trained with ``--model.cnn_objects=keypoints``: its attention's entropy (in
positions: exp(entropy), 1 = one position, 361 = uniform over a 19x19 map), the share of its attention that falls
on pixels of each of the 6 colours, and its position error against the object of the colour it attends most.

    python scripts/soc_keypoint_probe.py CHECKPOINT [--images 50]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.task import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--images", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    params = soc.SortOfClevrParams(train_images=1, test_images=args.images, seed=2026)
    arrays = soc.generate_split(params, "test")
    images = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        att, _ = model.cnn.attention(images)  # (B, K, h, w)
        objs, _ = model.cnn(images)
    B, K, h, w = att.shape
    up = F.interpolate(att, size=images.shape[-2:], mode="nearest")  # (B, K, 75, 75), each cell's weight repeated
    up = up / up.sum(dim=(2, 3), keepdim=True)
    pix = arrays["images"].astype(np.int16)  # (B, 75, 75, 3)
    colour_masks = np.stack([(np.abs(pix - np.array(c)).sum(-1) < 30) for c in soc.COLORS], axis=1)  # (B, 6, 75, 75)
    share = torch.einsum("bkhw,bchw->bkc", up, torch.from_numpy(colour_masks).float())  # (B, K, 6)
    ent = -(att.clamp_min(1e-12).log() * att).flatten(2).sum(-1)  # (B, K)
    centres = arrays["centres"]  # (B, 6, 2) pixel (x, y)?
    for k in range(K):
        s = share[:, k].mean(0)
        best = int(s.argmax())
        xy = objs[:, k, -2:].numpy()  # [-1, 1]
        true = centres[:, best].astype(np.float64) / (75 - 1) * 2 - 1
        err = np.abs(xy - true).mean() * 37
        print(f"keypoint {k}: exp(entropy) {ent[:, k].exp().mean():6.1f}, on objects {s.sum():.2f}, "
              f"mostly {soc.COLOR_NAMES[best]} ({s[best]:.2f}), position error ~{err:.1f} px")


if __name__ == "__main__":
    main()
