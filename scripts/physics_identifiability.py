"""How visible is each connection in the 16 recorded frames? A ceiling check for physics connection inference.

For every test scene (the stream `relnet eval physics --seed S` uses) this re-simulates the 16 frames from the state
at the first recorded frame, once under the true connections and once per single-edge change:

* every true edge removed;
* every pair that the model gets wrong toggled (a missed edge removed; a spurious edge added as a spring whose rest
  length is the pair's mean distance over the frames, clipped to the simulator's rest-length range, so that it
  pulls as little as a spring of the prior can).

The effect of a change is the largest distance between any ball's re-simulated positions with and without it, over
the 16 frames (box units: the table is 2 wide, a ball's radius 0.05). A connection whose removal moves no ball by
more than a few thousandths of the table is nearly invisible in the data: no model can be sure of it. The report
counts scenes with such a connection and, for the model's wrong scenes, how large the change behind the error is.

    python scripts/physics_identifiability.py --checkpoint checkpoints/physics/connections --scenes 4000 --seed 2026
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from relnet.tasks.physics import sim
from relnet.tasks.physics.task import Scenes, load_model, predict, sim_params

THRESHOLDS = (1e-3, 3e-3, 1e-2, 3e-2)


def initial_states(params: sim.PhysicsParams, n: int, seed: int) -> dict[str, np.ndarray]:
    """The sampled graphs and starting states of the first ``n`` scenes of stream ``(seed, test)`` (as simulate)."""
    parts = [sim.sample_block(params, (seed, sim.SPLITS["test"]), b, min(sim.BLOCK_SIZE, n - b * sim.BLOCK_SIZE))
             for b in range(-(-n // sim.BLOCK_SIZE))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def effect(params0: sim.PhysicsParams, x0, v0, pairs, kind, rest, ref: np.ndarray, frames: int | None = None,
           chunk: int = 4000) -> np.ndarray:
    """Max over the first ``frames`` frames (all if None) and the balls of |x - ref| for each variant (rows of
    x0 ... rest), re-simulated from frame 0."""
    out = np.empty(len(x0))
    for lo in range(0, len(x0), chunk):
        sl = slice(lo, lo + chunk)
        xs, _ = sim.rollout(x0[sl], v0[sl], pairs[sl], kind[sl], rest[sl], params=params0, record_velocities=False)
        out[sl] = np.linalg.norm(xs - ref[sl], axis=-1)[:, :frames].max(axis=(1, 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/physics/connections")
    ap.add_argument("--scenes", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()

    model, config = load_model(args.checkpoint, "connections")
    params = sim_params(config, args.checkpoint)
    data = sim.simulate(params, args.scenes, (args.seed, sim.SPLITS["test"]))
    pred = predict(model, Scenes(data, params)).numpy()  # (S, N, N) bool, as `relnet eval` counts it
    truth = data["edges"]
    wrong_scene = (pred != truth).any(axis=(1, 2))

    init = initial_states(params, args.scenes, args.seed)
    x_full, v_full = sim.rollout(init["pos0"], init["vel0"], init["pairs"], init["kind"], init["rest"], params=params)
    assert np.abs(x_full.astype(np.float32) - data["positions"]).max() < 1e-6, "initial states do not match simulate"
    p0 = dataclasses.replace(params, burn_in_frames=0)
    x0, v0 = x_full[:, 0], v_full[:, 0]
    ref, _ = sim.rollout(x0, v0, init["pairs"], init["kind"], init["rest"], params=p0, record_velocities=False)
    floor = np.linalg.norm(ref - x_full, axis=-1).max(axis=(1, 2))  # restarting at frame 0 vs the recorded run

    S, K = init["kind"].shape
    N = params.n_balls
    lo_rest, hi_rest = params.spring_rest
    # 1. every true edge removed
    s_idx, k_idx = np.nonzero(init["kind"])
    kind_r = init["kind"][s_idx].copy()
    kind_r[np.arange(len(s_idx)), k_idx] = sim.NONE
    removal = effect(p0, x0[s_idx], v0[s_idx], init["pairs"][s_idx], kind_r, init["rest"][s_idx], ref[s_idx])
    min_removal = np.full(S, np.inf)
    np.minimum.at(min_removal, s_idx, removal)
    edge_pair = init["pairs"][s_idx, k_idx]  # (E, 2)

    # 2. every wrongly predicted pair toggled on its own
    ws, wi, wj = np.nonzero(np.triu(pred != truth, 1))
    missed = truth[ws, wi, wj]
    err_effect = np.empty(len(ws))
    lookup = {(s, min(a, b), max(a, b)): e for e, (s, (a, b)) in enumerate(zip(s_idx, edge_pair))}
    for n, (s, i, j) in enumerate(zip(ws, wi, wj)):
        if missed[n]:
            err_effect[n] = removal[lookup[(s, i, j)]]
    add = np.nonzero(~missed)[0]
    if len(add):
        s = ws[add]
        d = np.linalg.norm(x_full[s, :, wi[add]] - x_full[s, :, wj[add]], axis=-1).mean(1)  # (A,)
        pairs_a = np.concatenate([init["pairs"][s], np.stack([wi[add], wj[add]], -1)[:, None]], 1)
        kind_a = np.concatenate([init["kind"][s], np.full((len(add), 1), sim.SPRING, np.int8)], 1)
        rest_a = np.concatenate([init["rest"][s], np.clip(d, lo_rest, hi_rest)[:, None]], 1)
        err_effect[add] = effect(p0, x0[s], v0[s], pairs_a, kind_a, rest_a, ref[s])
    # the same errors over the first 4 frames only (0.3 time units): a short horizon, before wall bounces and
    # chaotic amplification can make a small force look large
    early = np.empty(len(ws))
    if missed.any():
        m = np.nonzero(missed)[0]
        ks = np.array([lookup[(s, i, j)] for s, i, j in zip(ws[m], wi[m], wj[m])])
        early[m] = effect(p0, x0[s_idx[ks]], v0[s_idx[ks]], init["pairs"][s_idx[ks]], kind_r[ks],
                          init["rest"][s_idx[ks]], ref[s_idx[ks]], frames=4)
    if len(add):
        early[add] = effect(p0, x0[s], v0[s], pairs_a, kind_a, rest_a, ref[s], frames=4)

    # per wrong scene: the largest single-pair effect among its errors (how visible its most visible error is)
    worst = np.zeros(S)
    np.maximum.at(worst, ws, err_effect)
    wrong = np.nonzero(wrong_scene)[0]
    res = {
        "checkpoint": args.checkpoint, "scenes": S, "seed": args.seed,
        "scene_accuracy": float(1 - wrong_scene.mean()),
        "restart_floor_max": float(floor.max()), "restart_floor_median": float(np.median(floor)),
        "edges": int(len(removal)), "removal_effect_quantiles": {q: float(np.quantile(removal, q))
                                                                   for q in (0.001, 0.01, 0.05, 0.5)},
        "wrong_pairs": int(len(ws)), "wrong_missed": int(missed.sum()), "wrong_spurious": int((~missed).sum()),
        "by_threshold": {},
    }
    for t in THRESHOLDS:
        hidden = min_removal < t  # scenes with a connection whose removal moves no ball by t
        res["by_threshold"][str(t)] = {
            "scenes_with_a_hidden_edge": float(hidden.mean()),
            "of_those_model_wrong": float(wrong_scene[hidden].mean()) if hidden.any() else None,
            "model_wrong_scenes_with_a_hidden_edge": float(hidden[wrong].mean()),
            "wrong_scenes_all_errors_below": float((worst[wrong] < t).mean()),
            "wrong_pairs_below": float((err_effect < t).mean()),
            "edges_below": float((removal < t).mean()),
        }
    res["wrong_effect_quantiles"] = {q: float(np.quantile(err_effect, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
    res["wrong_effect_first4_quantiles"] = {q: float(np.quantile(early, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
    early_all = effect(p0, x0[s_idx], v0[s_idx], init["pairs"][s_idx], kind_r, init["rest"][s_idx], ref[s_idx],
                       frames=4)
    res["removal_effect_first4_quantiles"] = {q: float(np.quantile(early_all, q)) for q in (0.01, 0.05, 0.1, 0.5)}
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
