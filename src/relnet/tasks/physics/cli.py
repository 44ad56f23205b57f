"""``relnet data physics``: generate (or load from the cache) the dynamic-physical-systems scenes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from relnet.errors import UserError


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
    params = PhysicsParams()
    start = time.perf_counter()
    data = load_or_generate(params, args.split, args.scenes, args.seed, args.out, progress=sys.stderr.isatty())
    took = time.perf_counter() - start
    counts = system_counts(data["systems"], params.n_balls)
    print(f"physics {args.split}: {args.scenes} scenes (seed {args.seed}) in {cache_dir(params, args.out)}")
    print("systems: " + "  ".join(f"{c}:{n}" for c, n in counts.items()))
    print(f"time: {took:.1f} s")
    return 0


def add_commands(verbs: dict) -> None:
    """Register ``relnet data physics``."""
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
    p.set_defaults(func=_data)
