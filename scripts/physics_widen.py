"""Widen a trained physics RN's hidden layers of g, starting from what it computes (for ``--train.init_from``).

    python scripts/physics_widen.py SRC OUT --g-dims 384,384,256 [--scenes 500 --seed 0]

Every round's g keeps its old weights; the new hidden units start with fresh input weights and outgoing weights of
0, so the widened model answers exactly as SRC (``relnet.tasks.physics.model.widened``). The script runs both on
``--scenes`` freshly simulated scenes and prints the largest logit difference (not exactly 0: the wider matrices sum
in another order); above 1e-6 of the largest logit it fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from relnet.checkpoint import save_checkpoint
from relnet.errors import UserError
from relnet.tasks.physics.model import count_parameters, widened
from relnet.tasks.physics.task import fresh_scenes, load_model, sim_params


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--g-dims", required=True, help="the new widths of g, e.g. 384,384,256")
    p.add_argument("--scenes", type=int, default=500, help="fresh scenes on which the two models are compared")
    p.add_argument("--seed", type=int, default=0, help="seed of the new units' initialisation and of the scenes")
    args = p.parse_args()
    try:
        dims = tuple(int(d) for d in args.g_dims.split(","))
    except ValueError:
        sys.exit(f"--g-dims {args.g_dims}: expected comma-separated widths")
    try:
        src, config = load_model(args.src)
        new = widened(src, dims, seed=args.seed).eval()
        _, scenes = fresh_scenes(sim_params(config, args.src), scenes=args.scenes, seed=args.seed)
    except UserError as e:
        sys.exit(f"{args.src}: {e}")
    with torch.no_grad():
        a, b = src(scenes.objects), new(scenes.objects)
    diff, scale = float((a - b).abs().max()), float(a.abs().max())
    same = (a > 0) == (b > 0) if a.ndim == 3 else a.argmax(-1) == b.argmax(-1)  # per pair (connections) or scene
    print(f"{args.scenes} fresh scenes (seed {args.seed}): largest logit difference {diff:.2e} (largest logit "
          f"{scale:.1f}), the same decision on {float(same.float().mean()):.2%} of the "
          f"{'pairs' if a.ndim == 3 else 'scenes'}")
    if diff > 1e-6 * scale:
        sys.exit("the widened model does not compute the same function")
    out_config = {k: v for k, v in config.items() if k not in ("format", "version")}
    out_config["model"] = {**config["model"], "g_dims": list(dims)}
    save_checkpoint(Path(args.out), new, out_config)
    print(f"{args.out}: {args.src} widened to g {','.join(map(str, dims))} ({count_parameters(new):,} parameters)")


if __name__ == "__main__":
    main()
