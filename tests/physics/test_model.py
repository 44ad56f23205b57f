"""Physics models: output shapes and semantics, the per-pair readout against a naive loop, symmetry, parameter
budgets of the baselines, permutation equivariance, whitening, metrics against hand counts, and tiny overfits."""

from __future__ import annotations

import pytest
import torch

from relnet.tasks.physics import sim
from relnet.errors import UserError
from relnet.tasks.physics.model import (DataConfig, ModelConfig, build_model, count_parameters, pair_distances,
                                         pair_features, preset, widened)
from relnet.tasks.physics.task import (SYMMETRIES, PhysicsTask, Scenes, connection_metrics, count_metrics, predict,
                                        symmetry_view, task_loss)

SMALL = dict(g_dims=(32, 32), f_dims=(32,))


def small(task="connections", kind="rn", **kw):
    return build_model(ModelConfig(task=task, kind=kind, **{**SMALL, **kw}))


@pytest.mark.parametrize("task,kind,readout", [("connections", "rn", "f"), ("connections", "rn", "pair"),
                                               ("connections", "mlp", "f"), ("count", "rn", "f"),
                                               ("count", "mlp", "f")])
def test_output_shapes(task, kind, readout):
    m = small(task, kind, readout=readout)
    out = m(torch.randn(4, 10, 35))
    assert out.shape == ((4, 10, 10) if task == "connections" else (4, 10))


def test_pair_readout_matches_naive_loop():
    torch.manual_seed(0)
    m = small(readout="pair")
    x = torch.randn(2, 10, 35)
    out = m(x)
    net = m.net
    for b in range(2):
        for i in range(10):
            for j in range(10):
                h = net.g_rest(torch.relu(net.g_in(torch.cat([x[b, i], x[b, j]]))))
                assert torch.allclose(out[b, i, j], net.edge(h)[0], atol=1e-5)


def test_pair_logit_depends_only_on_its_two_balls():
    m = small(readout="pair")
    x = torch.randn(1, 10, 35, requires_grad=True)
    m(x)[0, 2, 7].backward()
    touched = x.grad[0].abs().sum(-1) > 0
    assert touched.tolist() == [k in (2, 7) for k in range(10)]


@pytest.mark.parametrize("kind,readout", [("rn", "f"), ("rn", "pair"), ("mlp", "f")])
def test_symmetric_logits(kind, readout):
    m = small(kind=kind, readout=readout, symmetric=True)
    out = m(torch.randn(3, 10, 35))
    assert torch.allclose(out, out.transpose(1, 2))
    m2 = small(kind=kind, readout=readout, symmetric=False)
    out2 = m2(torch.randn(3, 10, 35))
    assert not torch.allclose(out2, out2.transpose(1, 2))


def test_rn_is_permutation_equivariant():
    # relabelling the balls permutes the pair logits the same way (count: leaves the logits unchanged)
    torch.manual_seed(1)
    x = torch.randn(2, 10, 35)
    perm = torch.randperm(10)
    pair = small(readout="pair")
    assert torch.allclose(pair(x[:, perm]),
                          pair(x)[:, perm][:, :, perm], atol=1e-5)
    count = small("count", aggregate_norm="layer")
    assert torch.allclose(count(x[:, perm]), count(x), atol=1e-5)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="readout 'pair'"):
        small("count", readout="pair")
    with pytest.raises(ValueError, match="input_norm"):
        small(input_norm="batch")
    with pytest.raises(ValueError, match=r"\(B, 10, D\)"):
        small()(torch.randn(2, 9, 35))


def test_presets_match_the_paper_and_mlp_budget_is_comparable():
    p = preset("paper", "connections", "rn")
    assert p.model.g_dims == (1000, 1000, 1000, 500) and p.model.f_dims == (500, 100) and p.model.readout == "f"
    assert (p.train.lr, p.train.batch_size, p.train.schedule) == (1e-4, 50, "constant")
    rn = build_model(p.model)
    # g: 70->1000->1000->1000->500, f: 500->500->100->100 (weights + biases), counted by hand
    hand = (70 * 1000 + 1000) + 2 * (1000 * 1000 + 1000) + (1000 * 500 + 500) + (500 * 500 + 500) + \
        (500 * 100 + 100) + (100 * 100 + 100)
    assert count_parameters(rn) == hand
    for name in ("paper", "fast"):
        for task in ("connections", "count"):
            n_rn = count_parameters(build_model(preset(name, task, "rn").model))
            n_mlp = count_parameters(build_model(preset(name, task, "mlp").model))
            assert 0.5 <= n_mlp / n_rn <= 3.0, (name, task, n_rn, n_mlp)


def test_whitening_decorrelates_positions():
    data = sim.simulate(sim.PhysicsParams(), 300, seed=3)
    objects = torch.from_numpy(sim.objects(data))
    m = small(readout="pair", input_norm="whiten")
    m.fit_input_norm(objects)
    pos = ((objects[..., :32] - m.in_mean) @ m.in_proj).reshape(-1, 32).double()
    assert torch.allclose(torch.cov(pos.T), torch.eye(32, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(pos.mean(0), torch.zeros(32, dtype=torch.float64), atol=1e-4)
    # the buffers are part of the state dict, so a checkpoint carries them
    assert {"in_mean", "in_proj"} <= set(m.state_dict())


def test_pair_distances_by_hand():
    x = torch.randn(2, 10, 35)
    d = pair_distances(x)  # (B, N, N, 16)
    assert d.shape == (2, 10, 10, 16)
    for b, i, j, t in [(0, 1, 2, 0), (1, 9, 3, 15), (0, 4, 4, 7)]:
        want = ((x[b, i, t] - x[b, j, t]) ** 2 + (x[b, i, 16 + t] - x[b, j, 16 + t]) ** 2).sqrt()
        assert torch.allclose(d[b, i, j, t], want, atol=1e-5)


def test_dynamics_pair_features_radial_acceleration_by_hand():
    # ball 0 at rest at the origin, ball 1 on the x axis at 1 + 0.1 t^2: radial acceleration 0.2 every inner frame
    x = torch.zeros(1, 10, 35)
    t = torch.arange(16.0)
    x[0, 1, :16] = 1 + 0.1 * t**2
    x[0, 2, 16:32] = 0.5 + 0.3 * t  # ball 2 moves at constant speed along y: no radial acceleration w.r.t. ball 0
    e = pair_features(x, "dynamics")  # (1, N, N, 30)
    assert e.shape == (1, 10, 10, 30)
    assert torch.allclose(e[0, 1, 0, :16], 1 + 0.1 * t**2)
    assert torch.allclose(e[0, 1, 0, 16:], torch.full((14,), 0.2), atol=1e-4)
    assert torch.allclose(e[0, 0, 1, 16:], torch.full((14,), 0.2), atol=1e-4)  # the same seen from the other ball
    assert torch.allclose(e[0, 2, 0, 16:], torch.zeros(14), atol=1e-4)
    assert torch.allclose(e[0, 3, 3], torch.zeros(30), atol=1e-5)  # a ball with itself
    assert torch.equal(pair_features(x, "distance"), pair_distances(x))


@pytest.mark.parametrize("task,readout", [("connections", "pair"), ("count", "f")])
def test_pair_features_match_naive_loop_and_stay_equivariant(task, readout):
    torch.manual_seed(2)
    m = small(task, readout=readout, pair_features="distance", aggregate_norm="layer")
    x = torch.randn(2, 10, 35)
    m.fit_input_norm(torch.randn(50, 10, 35))
    assert {"pair_mean", "pair_proj"} <= set(m.state_dict())
    out = m(x)
    net = m.net
    e = (pair_distances(x) - m.pair_mean) @ m.pair_proj  # (B, N, N, 16)
    h = torch.stack([torch.stack([torch.stack([
        net.g_rest(torch.relu(net.g_in(torch.cat([x[b, i], x[b, j], e[b, i, j]])))) for j in range(10)])
        for i in range(10)]) for b in range(2)])  # (B, N, N, G)
    if task == "connections":
        want = net.edge(h).squeeze(-1)  # not symmetrised: small() keeps symmetric=False
    else:
        want = net.f(net.norm(h.sum(dim=(1, 2))))
    assert torch.allclose(out, want, atol=1e-4)
    perm = torch.randperm(10)
    if task == "connections":
        assert torch.allclose(m(x[:, perm]), out[:, perm][:, :, perm], atol=1e-5)
    else:
        assert torch.allclose(m(x[:, perm]), out, atol=1e-5)
    with pytest.raises(ValueError, match="pair_features"):
        small(kind="mlp", pair_features="distance")


def test_connection_metrics_by_hand():
    edges = torch.zeros(3, 10, 10, dtype=torch.bool)
    edges[:, 0, 1] = edges[:, 1, 0] = True
    pred = edges.clone()
    pred[1, 2, 3] = True  # scene 1: one false positive
    pred[2, 0, 1] = False  # scene 2: one false negative
    m = connection_metrics(pred, edges)
    assert m["n"] == 3 and m["scene_accuracy"] == pytest.approx(1 / 3)
    assert m["pair_accuracy"] == pytest.approx(298 / 300)
    assert m["precision"] == pytest.approx(5 / 6) and m["recall"] == pytest.approx(5 / 6)
    assert "by_systems" not in m
    by = connection_metrics(pred, edges, torch.tensor([9, 9, 10]))["by_systems"]
    assert by["9"] == pytest.approx(0.5) and by["10"] == 0.0 and by["1"] is None


def test_count_metrics_by_hand():
    truth = torch.tensor([1, 1, 2, 10])
    m = count_metrics(torch.tensor([1, 2, 2, 3]), truth)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["by_systems"]["1"] == pytest.approx(0.5) and m["by_systems"]["2"] == 1.0 and m["by_systems"]["10"] == 0
    assert m["by_systems"]["5"] is None  # no scene with 5 systems: JSON null, not NaN
    nothing = connection_metrics(torch.zeros(1, 10, 10, dtype=torch.bool), torch.eye(10, dtype=torch.bool)[None] * 0 > 0)
    assert nothing["precision"] is None and nothing["recall"] is None and nothing["scene_accuracy"] == 1.0


def test_loss_statistics():
    edges = torch.zeros(2, 10, 10, dtype=torch.bool)
    edges[0, 3, 4] = edges[0, 4, 3] = True
    logits = torch.where(edges, 5.0, -5.0)
    logits[1, 0, 0] = 1.0  # scene 1 has one wrong entry
    loss, stats = task_loss("connections", logits, edges, torch.tensor([9, 10]))
    assert stats == {"correct": 1.0, "count": 2.0}
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, edges.float(), reduction="sum") / 100
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    count_logits = torch.zeros(2, 10)
    count_logits[0, 8] = 3.0  # predicts 9 systems for scene 0 (right), class 0 for scene 1 (wrong)
    _, stats = task_loss("count", count_logits, edges, torch.tensor([9, 10]))
    assert stats["correct"] == 1.0


@pytest.fixture
def one_thread():
    # tiny matrices: a second thread only adds contention on a loaded 2-core machine (measured: 30x slower)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_scenes():
    return Scenes(sim.simulate(sim.PhysicsParams(), 64, seed=11), sim.PhysicsParams())


@pytest.mark.parametrize("task,steps,cfg", [
    ("connections", 280, dict(readout="pair", symmetric=True, input_norm="whiten")),
    ("count", 150, dict(aggregate_norm="layer", input_norm="whiten")),
])
def test_tiny_overfit(tiny_scenes, one_thread, task, steps, cfg):
    # 64 scenes memorised: every connection right in >= 90% of them / count right in >= 95%
    torch.manual_seed(0)
    m = build_model(ModelConfig(task=task, g_dims=(64, 64, 64), f_dims=(64,), **cfg))
    m.fit_input_norm(tiny_scenes.objects)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    x, e, s = tiny_scenes.batch(torch.arange(64))
    for _ in range(steps):
        loss, stats = task_loss(task, m(x), e, s)
        opt.zero_grad()
        (loss / 64).backward()
        opt.step()
    with torch.no_grad():
        _, stats = task_loss(task, m(x), e, s)
    assert stats["correct"] / 64 >= (0.9 if task == "connections" else 0.95), stats


@pytest.mark.parametrize("task,readout", [("connections", "pair"), ("count", "f")])
def test_two_rounds_match_naive_loop_and_stay_equivariant(task, readout):
    # round 2: g2([o_i; c_i], [o_j; c_j], e_ij) with c_i = LayerNorm(mean_k g(o_i, o_k, e_ik))
    torch.manual_seed(3)
    m = small(task, readout=readout, pair_features="distance", aggregate_norm="layer", rounds=2)
    x = torch.randn(2, 10, 35)
    m.fit_input_norm(torch.randn(50, 10, 35))
    out = m(x)
    net = m.net
    e = (pair_distances(x) - m.pair_mean) @ m.pair_proj  # (B, N, N, 16)

    def g(first, rest, rows, b, i, j):
        return rest(torch.relu(first(torch.cat([rows[b, i], rows[b, j], e[b, i, j]]))))

    h1 = torch.stack([torch.stack([torch.stack([g(net.g_in, net.g_rest, x, b, i, j) for j in range(10)])
                                   for i in range(10)]) for b in range(2)])  # (B, N, N, G)
    rows = torch.cat([x, net.context_norm(h1.mean(2))], -1)  # (B, N, D + G)
    h2 = torch.stack([torch.stack([torch.stack([g(net.g2_in, net.g2_rest, rows, b, i, j) for j in range(10)])
                                   for i in range(10)]) for b in range(2)])
    want = net.edge(h2).squeeze(-1) if task == "connections" else net.f(net.norm(h2.sum(dim=(1, 2))))
    assert torch.allclose(out, want, atol=1e-4)
    perm = torch.randperm(10)
    expected = out[:, perm][:, :, perm] if task == "connections" else out
    assert torch.allclose(m(x[:, perm]), expected, atol=1e-5)
    with pytest.raises(ValueError, match="rounds"):
        small(kind="mlp", rounds=2)
    with pytest.raises(ValueError, match="rounds"):
        small(rounds=0)
    with pytest.raises(ValueError, match="edge_memory"):
        small(rounds=1, edge_memory=True)


def test_three_rounds_with_edge_memory_match_naive_loop_and_stay_equivariant():
    # round r > 1: g_r([o_i; c_i], [o_j; c_j], [e_ij; h_ij]) with c_i = LayerNorm_r(mean_k h_ik), h the previous round
    torch.manual_seed(4)
    m = small("connections", readout="pair", pair_features="distance", rounds=3, edge_memory=True)
    x = torch.randn(2, 10, 35)
    m.fit_input_norm(torch.randn(50, 10, 35))
    out = m(x)
    net = m.net
    e = (pair_distances(x) - m.pair_mean) @ m.pair_proj  # (B, N, N, 16)

    def layer(first, rest, rows, pairs):
        return torch.stack([torch.stack([torch.stack([
            rest(torch.relu(first(torch.cat([rows[b, i], rows[b, j], pairs[b, i, j]])))) for j in range(10)])
            for i in range(10)]) for b in range(2)])  # (B, N, N, G)

    h = layer(net.g_in, net.g_rest, x, e)
    for norm, first, rest in [(net.context_norm, net.g2_in, net.g2_rest)] + [
            (r["norm"], r["g_in"], r["g_rest"]) for r in net.later]:
        h = layer(first, rest, torch.cat([x, norm(h.mean(2))], -1), torch.cat([e, h], -1))
    assert len(net.later) == 1
    assert torch.allclose(out, net.edge(h).squeeze(-1), atol=1e-4)
    perm = torch.randperm(10)
    assert torch.allclose(m(x[:, perm]), out[:, perm][:, :, perm], atol=1e-5)


def test_gated_rounds_add_to_the_round_before_and_start_as_the_smaller_model():
    # a gated round r: h <- h + a_r g_r([o_i; c_i], [o_j; c_j], [e_ij; h_ij]), a_r = 0 at initialisation
    torch.manual_seed(5)
    kw = dict(readout="pair", pair_features="distance", edge_memory=True)
    base, grown = small(rounds=2, **kw), small(rounds=4, gated_rounds=2, **kw)
    missing = set(grown.state_dict()) - set(base.state_dict())
    assert missing and all(k.startswith(("net.later.", "net.round_gates")) for k in missing)
    grown.load_state_dict(base.state_dict(), strict=False)
    x = torch.randn(2, 10, 35)
    assert torch.equal(grown(x), base(x))  # the new rounds add nothing until their gates open

    with torch.no_grad():
        grown.net.round_gates.copy_(torch.tensor([0.7, -0.3]))
    net = grown.net
    e = (pair_distances(x) - grown.pair_mean) @ grown.pair_proj

    def layer(first, rest, rows, pairs):
        return torch.stack([torch.stack([torch.stack([
            rest(torch.relu(first(torch.cat([rows[b, i], rows[b, j], pairs[b, i, j]])))) for j in range(10)])
            for i in range(10)]) for b in range(2)])  # (B, N, N, G)

    h = layer(net.g_in, net.g_rest, x, e)
    h = layer(net.g2_in, net.g2_rest, torch.cat([x, net.context_norm(h.mean(2))], -1), torch.cat([e, h], -1))
    for gate, r in zip((0.7, -0.3), net.later):
        h = h + gate * layer(r["g_in"], r["g_rest"], torch.cat([x, r["norm"](h.mean(2))], -1), torch.cat([e, h], -1))
    want = net.edge(h).squeeze(-1)
    out = grown(x)
    assert torch.allclose(out, want, atol=1e-4)
    perm = torch.randperm(10)
    assert torch.allclose(grown(x[:, perm]), out[:, perm][:, :, perm], atol=1e-5)
    for bad in (2, -1):
        with pytest.raises(ValueError, match="gated_rounds"):
            small(rounds=2, gated_rounds=bad, **kw)


def test_widened_keeps_the_function_and_the_old_weights_and_its_new_units_learn():
    torch.manual_seed(6)
    kw = dict(readout="pair", pair_features="dynamics", rounds=3, edge_memory=True, g_dims=(32, 24, 16))
    base = small(**kw)
    with torch.no_grad():  # nonzero statistics, so that a misplaced buffer would show
        base.pair_mean.normal_()
    wide = widened(base, (48, 40, 16), seed=1)
    assert [m.out_features for m in wide.net.g_rest if isinstance(m, torch.nn.Linear)] == [40, 16]
    assert wide.net.g2_in.out_features == 48 and wide.net.later[0]["g_in"].out_features == 48
    x = torch.randn(3, 10, 35)
    assert torch.allclose(wide(x), base(x), atol=1e-5)  # the same function
    old, new = base.state_dict(), wide.state_dict()
    for k, v in old.items():  # each old tensor keeps its place
        assert torch.equal(new[k][tuple(slice(0, n) for n in v.shape)], v), k
    w = wide.net.g_rest[0].weight  # (40, 48): old units read nothing from the new ones, new units read everything
    assert torch.all(w[:24, 32:] == 0) and torch.all(w[24:] != 0)
    assert torch.equal(widened(base, (48, 40, 16), seed=1).net.g_in.weight, wide.net.g_in.weight)  # seeded

    wide(x).square().mean().backward()  # the zero outgoing weights get gradient at once
    assert wide.net.g_rest[0].weight.grad[:24, 32:].abs().sum() > 0
    for bad in ((48, 40), (48, 40, 20), (16, 40, 16)):
        with pytest.raises(UserError, match="widened"):
            widened(base, bad)


def test_symmetry_views_keep_distances_and_colours(tiny_scenes):
    x = tiny_scenes.objects[:8]  # (S, N, 35)
    T = 16

    def distances(o):  # (S, N, N, T)
        return torch.sqrt((o[:, :, None, :T] - o[:, None, :, :T]) ** 2 + (o[:, :, None, T:2 * T] - o[:, None, :, T:2 * T]) ** 2)

    views = [symmetry_view(x, k) for k in range(SYMMETRIES)]
    for k, v in enumerate(views):
        expected = distances(x).flip(-1) if k & 1 else distances(x)
        torch.testing.assert_close(distances(v), expected)
        torch.testing.assert_close(v[..., 2 * T:], x[..., 2 * T:])  # colours
    assert len({tuple(v.flatten()[:200].tolist()) for v in views}) == SYMMETRIES  # 16 different views
    torch.testing.assert_close(views[0], x)


def test_one_view_per_scene_matches_the_single_views(tiny_scenes):
    x = tiny_scenes.objects[:SYMMETRIES]
    k = torch.randperm(SYMMETRIES)  # scene s in view k[s]
    expected = torch.stack([symmetry_view(x[s:s + 1], int(k[s]))[0] for s in range(SYMMETRIES)])
    torch.testing.assert_close(symmetry_view(x, k), expected, rtol=0, atol=0)
    torch.testing.assert_close(symmetry_view(x, torch.zeros(SYMMETRIES, dtype=torch.long)), x, rtol=0, atol=0)


def test_augmented_training_batches_keep_labels_and_follow_the_generator(tmp_path):
    cfg = preset("fast", "connections", "rn")
    cfg.data = DataConfig(train_scenes=40, val_scenes=0, root=str(tmp_path), augment=True)
    task = PhysicsTask(cfg, progress=False)
    idx = torch.arange(40)
    x, edges, systems, soft = task.batch(idx, train=True, generator=torch.Generator().manual_seed(3))
    assert soft is None  # no teacher
    x0, edges0, systems0 = task.train_set.batch(idx)
    assert torch.equal(edges, edges0) and torch.equal(systems, systems0)
    assert not torch.equal(x, x0)  # some scenes were turned
    again = task.batch(idx, train=True, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(x, again)
    # each scene is one of its own 16 views
    assert all(any(torch.equal(x[s], symmetry_view(x0[s:s + 1], k)[0]) for k in range(SYMMETRIES)) for s in range(40))
    cfg.data.augment = False
    assert torch.equal(task.batch(idx, train=True, generator=torch.Generator().manual_seed(3))[0], x0)


def test_predict_with_symmetries_averages_the_views(tiny_scenes):
    torch.manual_seed(0)
    for task in ("connections", "count"):
        model = small(task).eval()
        x = tiny_scenes.objects
        with torch.no_grad():
            mean = torch.stack([model(symmetry_view(x, k)) for k in range(SYMMETRIES)]).mean(0)
        expected = mean > 0 if task == "connections" else mean.argmax(-1) + 1
        assert torch.equal(predict(model, tiny_scenes, symmetries=True, batch_size=20), expected)
        assert torch.equal(predict(model, tiny_scenes), (model(x) > 0) if task == "connections"
                           else model(x).argmax(-1) + 1)
