"""Does a keypoints first stage's random start decide whether it forms its keypoints? (diagnosis, not a result)

For each training seed, builds the first stage's model exactly as training does (``torch.manual_seed(seed)``, then
the model) and, before any training step, measures on 200 training images where its 6 keypoints look: how many
distinct objects their local positions fall on (within 6 px of an object's centre), the share of keypoints on an
object, the share of attention mass on object cells, and each keypoint's most frequent colour
(reports/sort_of_clevr_diagnosis.md, section 15).

    python scripts/soc_init_coverage.py 0 1 3 2 4 5
    python scripts/soc_init_coverage.py 0 --anchored --model.keypoint_anchors=20   # colour anchors started as
                                                                                   # training starts them (section 16)
"""

from __future__ import annotations

import sys

import torch

from relnet.nn import colour_clusters
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.cli import resolve_config
from relnet.tasks.sort_of_clevr.model import build_model, objects_stage
from relnet.tasks.sort_of_clevr.task import ANCHOR_IMAGES

NEAR = 6.0  # px: a keypoint within this of an object's centre is on it (objects are 10 px wide)


def main() -> None:
    torch.set_num_threads(1)
    args = sys.argv[1:]
    cfg = objects_stage(resolve_config("rn", "keypoints", [a for a in args if a.startswith("--model.")]))
    train = soc.load_or_generate(soc.SortOfClevrParams(), progress=False)["train"]
    anchors = None
    if "--anchored" in args:  # the colours the task's prepare starts the anchors at
        first = torch.from_numpy(train["images"][:ANCHOR_IMAGES]).permute(0, 3, 1, 2).float() / 255
        anchors = colour_clusters(first, cfg.model.keypoints)
    n = 200
    images = torch.from_numpy(train["images"][:n]).permute(0, 3, 1, 2).float() / 255
    centres = torch.from_numpy(train["centres"][:n]).float()  # (n, 6, 2) (column, row)
    for seed in (int(a) for a in args if not a.startswith("--")):
        torch.manual_seed(seed)
        keypoints = build_model(cfg.model).cnn.train()  # as the loop builds it; train mode, as its first step sees it
        if anchors is not None:
            keypoints.set_anchors(anchors)
        with torch.no_grad():
            att, _ = keypoints.attention(images)  # (n, K, h, w)
            objects, _ = keypoints(images)
        nearest = torch.cdist(keypoints.pixel_positions(objects, (75, 75)), centres).min(-1)  # (n, K)
        on = nearest.values < NEAR
        covered = torch.tensor([len(set(nearest.indices[i][on[i]].tolist())) for i in range(n)]).float()
        h, w = att.shape[-2:]
        stride = 75 / w
        rows, cols = torch.meshgrid(torch.arange(h) * stride, torch.arange(w) * stride, indexing="ij")
        cells = torch.stack([cols.flatten(), rows.flatten()], -1)  # (h*w, 2)
        object_cell = (torch.cdist(cells.expand(n, -1, -1), centres).min(-1).values < NEAR).float()  # (n, h*w)
        mass = (att.flatten(2) * object_cell[:, None]).sum(-1).mean()
        colours = [soc.COLOR_NAMES[int(torch.bincount(nearest.indices[:, k][on[:, k]], minlength=6).argmax())]
                   if on[:, k].any() else "-" for k in range(att.shape[1])]
        print(f"seed {seed}: distinct objects under the keypoints {covered.mean():.2f} of 6, keypoints on an object "
              f"{on.float().mean():.2f}, attention mass on objects {mass:.2f}, colours {' '.join(colours)} "
              f"({len(set(colours) - {'-'})} distinct)", flush=True)


if __name__ == "__main__":
    main()
