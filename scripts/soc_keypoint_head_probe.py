"""Which part of a keypoint Sort-of-CLEVR RN's objects keeps its head from closest/furthest? (diagnosis)

The keypoint CNN of a trained checkpoint (6 keypoints, each following one colour, e.g. runs/kp14/R-k6-both-pd) is
frozen; its objects are computed once for the default training and test images. Fresh RN heads (the `fast` head:
g 3x128 with BatchNorm, LayerNorm on the sum, f 256-256, Adam 1e-3 cosine, batch 64, pair distances) are then trained
on four object sets that swap the keypoints' features and positions for the scene description's:

- `keypoints`: the keypoint objects as the model sees them (features, soft and local positions);
- `kp-features+true-xy`: the keypoint features, with each keypoint's position replaced by its colour's true centre;
- `one-hot+kp-xy`: one-hot colour and shape of each keypoint's colour, with the keypoint's local position;
- `state`: one-hot colour and shape and true centre (the state RN's input);
- `kp-local-features+kp-xy`: the features pooled in the 3x3 window at each keypoint's peak, and its local position.

    python scripts/soc_keypoint_head_probe.py runs/kp14/R-k6-both-pd/checkpoint [--steps 6000] [--seed 0] [--sets ...]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from relnet.nn import RelationNetwork
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.model import ObjectEncoder
from relnet.tasks.sort_of_clevr.task import Examples, cnn_objects, load_model, metrics


def keypoint_colours(model, images: torch.Tensor, centres: np.ndarray) -> np.ndarray:
    """The colour each keypoint follows: the object nearest its local position, by majority over the images."""
    with torch.no_grad():
        objs, _ = model.cnn(images)
    pix = model.cnn.pixel_positions(objs, (75, 75)).numpy()  # (B, K, 2)
    d = np.linalg.norm(pix[:, :, None] - centres[:, None].astype(float), axis=-1)  # (B, K, 6)
    return np.array([np.bincount(d[:, k].argmin(-1), minlength=6).argmax() for k in range(pix.shape[1])])


def object_sets(model, arrays, colour_of) -> dict[str, torch.Tensor]:
    examples = Examples(arrays, state=False)
    kp = cnn_objects(model, examples)  # (N, K, D)
    state = torch.from_numpy(soc.state_objects(arrays["centres"], arrays["shapes"]))[:, colour_of]  # (N, K, 10)
    true_xy = state[..., -2:]
    model.cnn.local_features = True  # the features pooled in the 3x3 window at each peak, then the positions
    kp_local = cnn_objects(model, examples)
    model.cnn.local_features = False
    C = kp.shape[-1] - 4
    return {"keypoints": kp,
            "kp-local-features+kp-xy": torch.cat([kp_local[..., C : 2 * C], kp[..., -2:]], -1),
            "kp-features+true-xy": torch.cat([kp[..., :-4], true_xy, true_xy], -1),
            "one-hot+kp-xy": torch.cat([state[..., :-2], kp[..., -2:]], -1),
            "state": state}


def fast_head(object_dim: int) -> RelationNetwork:
    """The `fast` preset's RN head with pair distances."""
    return RelationNetwork(object_dim=object_dim, question_dim=soc.QUESTION_DIM, g_dims=(128, 128, 128),
                           f_dims=(256, 256), out_dim=soc.NUM_ANSWERS, aggregate_norm="layer", hidden_norm="batch",
                           pair_distance=True)


class EncodedHead(torch.nn.Module):
    """The pixel model's ``ObjectEncoder`` (2 x 64, positions passed on) before the RN head."""

    def __init__(self, object_dim: int) -> None:
        super().__init__()
        self.encoder = ObjectEncoder(object_dim, (64, 64))
        self.rn = fast_head(self.encoder.object_dim)

    def forward(self, objects, question):
        return self.rn(self.encoder(objects), question)


def train_head(train_obj, train_q, train_a, test_obj, test_q, test_answers, test_sub, steps: int,
               seed: int = 0, encoder: bool = False) -> dict:
    torch.manual_seed(seed)
    head = EncodedHead(train_obj.shape[-1]) if encoder else fast_head(train_obj.shape[-1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    n_q = train_q.shape[1]
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(train_a.numel(), (64,), generator=g)  # (image, question) pairs of every image
        img, q = idx // n_q, idx % n_q
        loss = F.cross_entropy(head(train_obj[img], train_q[img, q]), train_a[img, q])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        n_img = len(test_obj)
        obj = test_obj[:, None].expand(-1, n_q, -1, -1).reshape(n_img * n_q, *test_obj.shape[1:])
        pred = head(obj, test_q.reshape(n_img * n_q, -1)).argmax(-1)
    return metrics(pred == test_answers, test_sub)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0, help="the heads' initialisation and question order")
    ap.add_argument("--encoder", action="store_true", help="a per-object MLP before the RN (EncodedHead)")
    ap.add_argument("--sets", default="keypoints,kp-features+true-xy,one-hot+kp-xy,state", help="comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    params = soc.SortOfClevrParams()
    train = soc.generate_split(params, "train")
    test = soc.generate_split(params, "test")
    images = torch.from_numpy(test["images"]).permute(0, 3, 1, 2).float() / 255.0
    colour_of = keypoint_colours(model, images, test["centres"])
    print("keypoint -> colour:", [soc.COLOR_NAMES[c] for c in colour_of])
    if sorted(colour_of) != list(range(6)):
        raise SystemExit("the keypoints do not follow the 6 colours one each; this probe needs such a model")
    train_sets, test_sets = object_sets(model, train, colour_of), object_sets(model, test, colour_of)
    tq, ta = torch.from_numpy(train["questions"]).float(), torch.from_numpy(train["answers"]).long()
    eq = torch.from_numpy(test["questions"]).float()
    answers = torch.from_numpy(test["answers"].reshape(-1)).long()
    subtypes = torch.from_numpy(soc.question_subtype(test["questions"]).reshape(-1)).long()
    for name in args.sets.split(","):
        m = train_head(train_sets[name], tq, ta, test_sets[name], eq, answers, subtypes, args.steps, args.seed,
                       args.encoder)
        sub = m.get("by_subtype", {})
        print(f"{name:22s} relational {100 * m['relational']:.1f}  non-relational {100 * m['non_relational']:.1f}  "
              + "  ".join(f"{k} {100 * v:.1f}" for k, v in sub.items()), flush=True)


if __name__ == "__main__":
    main()
