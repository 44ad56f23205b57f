"""Test-time averaging over the physics task's 16 symmetries (the square table's 8 and time reversal), measured.

    python scripts/physics_symmetry_tta.py CHECKPOINT   # 1,000 fresh scenes, seed 2026, as the report

Prints, for each view k, the share of scenes with every connection right from that view alone and from the mean of
the logits of views 0..k. A diagnosis script: relnet does not use test-time averaging (see the physics model docs).
"""
import sys, torch, numpy as np
from relnet.tasks.physics.task import load_model, fresh_scenes, sim_params
from relnet.tasks.physics.task import connection_metrics
torch.set_num_threads(1)
path = sys.argv[1]
model, config = load_model(path, "connections")
data, sc = fresh_scenes(sim_params(config, path), scenes=1000, seed=2026)
T = 16
def view(x, k):
    pos = x[..., :2 * T].clone(); rest = x[..., 2 * T:]
    xs, ys = pos[..., :T], pos[..., T:]
    if k & 1: xs, ys = xs.flip(-1), ys.flip(-1)
    if k & 2: xs, ys = ys, xs
    if k & 4: xs = -xs
    if k & 8: ys = -ys
    return torch.cat([xs, ys, rest], -1)
model.eval()
outs = []
with torch.no_grad():
    for k in range(16):
        lg = torch.cat([model(view(sc.objects[s:s+500], k)) for s in range(0, len(sc), 500)])
        outs.append(lg)
        m1 = connection_metrics(lg > 0, sc.edges, sc.systems)["scene_accuracy"]
        mk = connection_metrics(torch.stack(outs).mean(0) > 0, sc.edges, sc.systems)["scene_accuracy"]
        print(k, "view alone", round(m1, 4), "mean of views 0..k", round(mk, 4), flush=True)
