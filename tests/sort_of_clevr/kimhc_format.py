"""Writes pickles in kimhc6028/relational-networks' Sort-of-CLEVR format, following its sort_of_clevr_generator.py
(anchors.md section 1.2), written here independently of relnet's generator and reader.

Objects are drawn as OpenCV draws them: ``cv2.rectangle(img, c - 5, c + 5, colour, -1)`` fills the 11 x 11 box and
``cv2.circle(img, c, 5, colour, -1)`` the 81 pixels with dx^2 + dy^2 <= 25 (checked against OpenCV 5.1 by hand; no
OpenCV here). Colours are BGR; the image is float64 / 255; labels follow kimhc's rules, the 999 self-distance of
"closest" included.
"""

from __future__ import annotations

import pickle
import random

import numpy as np

BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 156, 255), (128, 128, 128), (0, 255, 255)]
SIZE, IMG = 5, 75


def draw(img: np.ndarray, centre, shape: str, colour) -> None:
    x0, y0 = int(centre[0]), int(centre[1])
    for y in range(y0 - SIZE, y0 + SIZE + 1):
        for x in range(x0 - SIZE, x0 + SIZE + 1):
            if shape == "r" or (x - x0) ** 2 + (y - y0) ** 2 <= SIZE**2:
                img[y, x] = colour


def scene(rng: random.Random, nrng: np.random.RandomState, centres=None, shapes=None):
    """objects [(colour, centre (x, y), 'r'|'c')] as kimhc places them (or as given) and the float image."""
    objects, img = [], np.ones((IMG, IMG, 3)) * 255
    for c, colour in enumerate(BGR):
        if centres is None:
            while True:
                centre = nrng.randint(SIZE, IMG - SIZE, 2)
                if all(((centre - o[1]) ** 2).sum() >= (2 * SIZE) ** 2 for o in objects):
                    break
        else:
            centre = np.array(centres[c])
        shape = ("r" if rng.random() < 0.5 else "c") if shapes is None else shapes[c]
        draw(img, centre, shape, colour)
        objects.append((c, centre, shape))
    return objects, img / 255.0


def question(dim: int, colour: int, kind: int, subtype: int, colour2: int | None = None) -> np.ndarray:
    q = np.zeros(dim)
    q[colour] = 1
    if dim == 11:
        q[6 + kind], q[8 + subtype] = 1, 1
    else:
        q[12 + kind], q[15 + subtype] = 1, 1
        if colour2 is not None:
            q[6 + colour2] = 1
    return q


def answer(objects, kind: int, subtype: int, colour: int) -> int:
    me = objects[colour]
    if kind == 0:
        return [2 if me[2] == "r" else 3, 0 if me[1][0] < IMG / 2 else 1, 0 if me[1][1] < IMG / 2 else 1][subtype]
    dist = [int(((me[1] - o[1]) ** 2).sum()) for o in objects]
    if subtype == 0:
        dist[dist.index(0)] = 999  # kimhc's self-distance
        return 2 if objects[dist.index(min(dist))][2] == "r" else 3
    if subtype == 1:
        return 2 if objects[dist.index(max(dist))][2] == "r" else 3
    return sum(o[2] == me[2] for o in objects) + 3


def item(layout: str, rng: random.Random, nrng: np.random.RandomState, n_q: int = 10, **fixed):
    """One pickle item in ``layout`` ("2017", "2018", "2020") and its objects."""
    dim = 11 if layout == "2017" else 18
    objects, img = scene(rng, nrng, **fixed)
    blocks = []
    for kind in (0, 1):
        qs, ans = [], []
        for _ in range(n_q):
            colour, subtype = rng.randint(0, 5), rng.randint(0, 2)
            qs.append(question(dim, colour, kind, subtype))
            ans.append(answer(objects, kind, subtype, colour))
        blocks.append((qs, ans))
    norel, rel = blocks
    if layout != "2020":
        return (img, rel, norel), objects
    tern = ([question(18, 0, 2, rng.randint(0, 2), colour2=1) for _ in range(n_q)], [4] * n_q)  # dropped on import
    return (img, tern, rel, norel), objects


def write(path, layout: str = "2020", train: int = 20, test: int = 5, seed: int = 1, n_q: int = 10):
    """Write a pickle like kimhc's (test generated first, as there) and return (train objects, test objects)."""
    rng, nrng = random.Random(seed), np.random.RandomState(seed)
    test_items = [item(layout, rng, nrng, n_q) for _ in range(test)]
    train_items = [item(layout, rng, nrng, n_q) for _ in range(train)]
    with open(path, "wb") as f:
        pickle.dump(([i for i, _ in train_items], [i for i, _ in test_items]), f)
    return [o for _, o in train_items], [o for _, o in test_items]


if __name__ == "__main__":  # a full-size pickle: python tests/sort_of_clevr/kimhc_format.py OUT [--test 200 ...]
    import argparse

    p = argparse.ArgumentParser(description="Write a pickle in kimhc6028's Sort-of-CLEVR format (its generator's "
                                "rules and layout, drawn without OpenCV).")
    p.add_argument("out")
    p.add_argument("--layout", choices=("2017", "2018", "2020"), default="2020")
    p.add_argument("--train", type=int, default=9800)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    write(a.out, a.layout, train=a.train, test=a.test, seed=a.seed)
