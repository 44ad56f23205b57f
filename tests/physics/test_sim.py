"""Tests of the physics simulator: physics checked against closed forms and hand-written checkers, labels against a
BFS written here, plus determinism, caching, objects() layout, CLI and plotting."""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import pytest

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.physics import sim
from relnet.tasks.physics.sim import COLORS, PhysicsParams, load_or_generate, objects, plot_scene, rollout, simulate

P = PhysicsParams()
SHORT = dataclasses.replace(P, n_frames=4, burn_in_frames=0, substeps=5)  # cheap, for label/determinism tests
NOWALL = 1e3  # a box this large is never reached in the hand-built scenes below


@pytest.fixture(scope="module")
def data():
    return simulate(P, 400, seed=7)


def _scene(pos, vel, pairs, kinds, rest=None):
    """One hand-built scene as batch-of-1 arrays; rods default to their starting length."""
    pos = np.asarray(pos, float)[None]
    vel = np.asarray(vel, float)[None]
    pairs = np.asarray(pairs, np.int64).reshape(1, -1, 2)
    kinds = np.asarray(kinds, np.int8)[None]
    if rest is None:
        rest = np.linalg.norm(pos[0, pairs[0, :, 0]] - pos[0, pairs[0, :, 1]], axis=-1)
    return pos, vel, pairs, kinds, np.asarray(rest, float).reshape(1, -1)


def _energy(xs, vs, pairs, kinds, rest, k):
    """Kinetic + spring energy per frame, written independently of sim.spring_energy: (T,)."""
    ke = 0.5 * (vs**2).sum(axis=(-1, -2))
    pe = np.zeros(xs.shape[0])
    for (i, j), kind, r in zip(pairs, kinds, rest):
        if kind == 1:
            pe += 0.5 * k * (np.linalg.norm(xs[:, i] - xs[:, j], axis=-1) - r) ** 2
    return ke + pe


# ------------------------------------------------------------------------------------------------------------ physics


def test_energy_conserved_without_walls():
    # 5 balls: a spring triangle 0-1-2 with a rod 2-3 hanging off it, and a spring 3-4
    pos = [[0, 0], [0.3, 0.05], [0.1, 0.35], [0.4, 0.5], [0.2, 0.8]]
    vel = [[0.3, -0.2], [-0.5, 0.1], [0.2, 0.4], [0.0, -0.6], [0.4, 0.0]]
    pairs = [[0, 1], [1, 2], [2, 0], [2, 3], [3, 4]]
    kinds = [1, 1, 1, 2, 1]
    x0, v0, pr, kd, rest = _scene(pos, vel, pairs, kinds)
    rest[0, [0, 1, 2, 4]] = [0.25, 0.45, 0.3, 0.2]  # springs start stretched / compressed
    p = dataclasses.replace(P, box=NOWALL, n_frames=40, burn_in_frames=0)
    xs, vs = rollout(x0, v0, pr, kd, rest, params=p)
    e = _energy(xs[0], vs[0], pr[0], kd[0], rest[0], p.spring_k)
    assert e[0] > 1.0  # the springs really store energy
    assert np.abs(e - e[0]).max() / e[0] < 2e-3
    # momentum is conserved too (no walls, internal forces only)
    np.testing.assert_allclose(vs[0].sum(1), vs[0, 0].sum(0)[None].repeat(40, 0), atol=1e-6)


def test_energy_conserved_with_elastic_wall_bounces():
    # a rod and a spring pair thrown at the walls: many bounces in 4 time units
    pos = [[0.2, 0.1], [0.5, 0.2], [-0.4, -0.3], [-0.4, 0.0]]
    vel = [[1.5, 0.4], [1.2, -0.9], [-1.0, 1.3], [-1.4, -0.5]]
    x0, v0, pr, kd, rest = _scene(pos, vel, [[0, 1], [2, 3]], [2, 1])
    rest[0, 1] = 0.3
    p = dataclasses.replace(P, n_frames=41, burn_in_frames=0)
    xs, vs = rollout(x0, v0, pr, kd, rest, params=p)
    assert (np.abs(xs).max(axis=(0, 1, 3)) > 0.9).all()  # every ball reached a wall
    flips = (np.diff(np.sign(vs[0]), axis=0) != 0).sum()
    assert flips >= 8
    e = _energy(xs[0], vs[0], pr[0], kd[0], rest[0], p.spring_k)
    assert np.abs(e - e[0]).max() / e[0] < 0.03
    d = np.linalg.norm(xs[0, :, 0] - xs[0, :, 1], axis=-1)
    assert np.abs(d - rest[0, 0]).max() < 1e-3  # the rod survives the bounces


def test_damping_drains_energy():
    x0, v0, pr, kd, rest = _scene([[0, 0], [0.3, 0]], [[0, 0.5], [0, -0.5]], [[0, 1]], [1], [0.2])
    p = dataclasses.replace(P, box=NOWALL, n_frames=30, burn_in_frames=0, damping=0.5)
    xs, vs = rollout(x0, v0, pr, kd, rest, params=p)
    e = _energy(xs[0], vs[0], pr[0], kd[0], rest[0], p.spring_k)
    assert e[-1] < 0.4 * e[0] and (np.diff(e) < 1e-9).all()


def test_rigid_pair_keeps_its_distance():
    # spinning and translating rod
    x0, v0, pr, kd, rest = _scene([[0, 0], [0.3, 0.1]], [[0.2, 0.9], [-0.4, -0.7]], [[0, 1]], [2])
    p = dataclasses.replace(P, box=NOWALL, n_frames=50, burn_in_frames=0)
    xs, vs = rollout(x0, v0, pr, kd, rest, params=p)
    d = np.linalg.norm(xs[0, :, 0] - xs[0, :, 1], axis=-1)
    np.testing.assert_allclose(d, rest[0, 0], atol=1e-8)
    angle = np.unwrap(np.arctan2(*(xs[0, :, 1] - xs[0, :, 0]).T[::-1]))
    assert abs(angle[-1] - angle[0]) > np.pi  # it really rotates
    # no velocity along the rod
    u = (xs[0, :, 0] - xs[0, :, 1]) / d[:, None]
    np.testing.assert_allclose(((vs[0, :, 0] - vs[0, :, 1]) * u).sum(-1), 0, atol=1e-8)


def test_rods_in_generated_scenes_keep_their_length(data):
    pos = data["positions"].astype(np.float64)
    s, i, j = np.nonzero(np.triu(data["edge_type"] == 2))
    assert len(s) > 200
    length = np.linalg.norm(pos[s, :, i] - pos[s, :, j], axis=-1)  # (rods, T)
    err = np.abs(length - length[:, :1])
    assert np.percentile(err, 99) < 2e-3 and err.max() < 1e-2
    # springs, by contrast, do change length
    s, i, j = np.nonzero(np.triu(data["edge_type"] == 1))
    length = np.linalg.norm(pos[s, :, i] - pos[s, :, j], axis=-1)
    assert np.median(length.max(1) - length.min(1)) > 0.05


def test_spring_pair_oscillates_about_rest_length():
    # a head-on pair: length(t) = L + A cos(omega t) with omega = sqrt(2k/m), exactly harmonic
    L, A, k = 0.3, 0.12, P.spring_k
    x0, v0, pr, kd, rest = _scene([[0, 0], [L + A, 0]], [[0.1, 0.2], [0.1, 0.2]], [[0, 1]], [1], [L])
    p = dataclasses.replace(P, box=NOWALL, n_frames=16, burn_in_frames=0)
    xs, _ = rollout(x0, v0, pr, kd, rest, params=p)
    length = np.linalg.norm(xs[0, :, 1] - xs[0, :, 0], axis=-1)
    t = np.arange(16) * p.frame_dt
    np.testing.assert_allclose(length, L + A * np.cos(np.sqrt(2 * k) * t), atol=2e-3)
    crossings = (np.diff(np.sign(length - L)) != 0).sum()
    assert crossings >= 3  # visibly oscillates within the 16 frames
    # the centre of mass drifts at constant velocity
    np.testing.assert_allclose(xs[0].mean(1), np.array([[(L + A) / 2, 0]]) + t[:, None] * [0.1, 0.2], atol=1e-9)


def _fold(x, box):
    """Reflect an unconstrained coordinate into [-box, box] (a triangle wave): the path of a free ball."""
    period = 4 * box
    y = np.mod(x + box, period)
    return np.where(y <= 2 * box, y, period - y) - box


def test_free_balls_move_straight_between_bounces(data):
    free = ~data["edges"].any(-1)  # (S, N)
    s, b = np.nonzero(free)
    assert len(s) > 500
    pos = data["positions"][s, :, b].astype(np.float64)  # (F, T, 2)
    vel = data["velocities"][s, :, b].astype(np.float64)
    speed = np.linalg.norm(vel, axis=-1)
    np.testing.assert_allclose(speed, speed[:, :1].repeat(16, 1), rtol=1e-5)  # constant speed
    # the unfolded straight line from frame 0 (unfold the frame-0 velocity sign too) matches every frame
    t = np.arange(16) * P.frame_dt
    # a free ball at x with velocity v is the fold of a straight line through some point: recover it by unfolding
    # frame 0 (which is already in the box, so the straight line passes through x0 with velocity v0 at t = 0)
    expect = _fold(pos[:, None, 0] + t[None, :, None] * vel[:, None, 0], P.box)
    np.testing.assert_allclose(pos, expect, atol=1e-5)
    assert (np.abs(np.diff(np.sign(vel), axis=1)) > 0).any()  # some of them did bounce


def test_free_balls_bounce_elastically_in_a_scene_without_rods():
    # only springs: the plain mirror path; balls 2 and 3 are free and fast, so they bounce many times
    pos = [[0.0, 0.0], [0.3, 0.0], [0.5, -0.2], [-0.7, 0.9]]
    vel = [[0.1, 0.0], [0.0, 0.1], [3.1, -2.3], [-1.7, 4.2]]
    x0, v0, pr, kd, rest = _scene(pos, vel, [[0, 1]], [1], [0.25])
    p = dataclasses.replace(P, n_frames=30, burn_in_frames=0)
    xs, vs = rollout(x0, v0, pr, kd, rest, params=p)
    t = np.arange(30) * p.frame_dt
    expect = _fold(np.array(pos[2:])[None] + t[:, None, None] * np.array(vel[2:])[None], p.box)
    np.testing.assert_allclose(xs[0, :, 2:], expect, atol=1e-9)
    np.testing.assert_allclose(np.abs(vs[0, :, 2:]), np.abs(np.array(vel[2:]))[None].repeat(30, 0), atol=1e-12)


def test_positions_stay_in_the_box(data):
    assert np.abs(data["positions"]).max() <= P.box
    assert np.isfinite(data["positions"]).all() and np.isfinite(data["velocities"]).all()
    assert np.abs(data["positions"]).max() > 0.95  # and walls are actually used


# ------------------------------------------------------------------------------------------------------------ labels


def _bfs_components(adj: np.ndarray) -> int:
    n, seen, count = len(adj), set(), 0
    for start in range(n):
        if start in seen:
            continue
        count += 1
        queue = deque([start])
        seen.add(start)
        while queue:
            a = queue.popleft()
            for b in range(n):
                if adj[a, b] and b not in seen:
                    seen.add(b)
                    queue.append(b)
    return count


def test_labels_are_consistent(data):
    edges, etype, systems = data["edges"], data["edge_type"], data["systems"]
    assert edges.dtype == bool and etype.dtype == np.int8 and systems.dtype == np.int64
    assert edges.shape == (400, 10, 10) and data["positions"].shape == (400, 16, 10, 2)
    assert data["positions"].dtype == np.float32
    assert (edges == edges.transpose(0, 2, 1)).all()
    assert not edges[:, np.arange(10), np.arange(10)].any()
    assert ((etype > 0) == edges).all() and set(np.unique(etype)) == {0, 1, 2}
    assert [_bfs_components(a) for a in edges] == systems.tolist()


def test_number_of_systems_is_balanced():
    systems = simulate(SHORT, 3000, seed=1)["systems"]
    counts = np.bincount(systems, minlength=11)
    assert counts[0] == 0 and (counts[1:] > 0).all()
    assert counts.max() / len(systems) < 0.14  # uniform would be 0.10
    # and rods and springs both occur, with some cycles (more edges than a forest)
    d = simulate(SHORT, 300, seed=2)
    n_edges = d["edges"].sum((1, 2)) // 2
    assert (n_edges > 10 - d["systems"]).any()


def test_rigid_rest_length_is_starting_distance_and_rods_form_a_forest():
    rng = np.random.default_rng(3)
    init = sim.sample_scenes(rng, 200, P)
    rows = np.arange(200)[:, None]
    d = np.linalg.norm(init["pos0"][rows, init["pairs"][..., 0]] - init["pos0"][rows, init["pairs"][..., 1]], axis=-1)
    rod = init["kind"] == 2
    np.testing.assert_allclose(init["rest"][rod], d[rod])
    assert (d[init["kind"] > 0] >= P.min_link - 1e-9).all()
    for s in range(200):  # a forest has (balls - components) edges
        adj = np.zeros((10, 10), bool)
        for (i, j), k in zip(init["pairs"][s], init["kind"][s]):
            if k == 2:
                adj[i, j] = adj[j, i] = True
        assert adj.sum() // 2 == 10 - _bfs_components(adj)


# ------------------------------------------------------------------------------------------------------------ determinism


def test_deterministic_and_seed_dependent():
    a = simulate(SHORT, 40, seed=5)
    b = simulate(SHORT, 40, seed=5)
    c = simulate(SHORT, 40, seed=6)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["positions"], c["positions"])
    assert not np.array_equal(a["edges"], c["edges"])
    d = simulate(SHORT, 40, seed=(5, 1))
    assert not np.array_equal(a["positions"], d["positions"])


def test_prefix_does_not_depend_on_n(monkeypatch):
    monkeypatch.setattr(sim, "BLOCK_SIZE", 16)  # several blocks, cheaply
    long = simulate(SHORT, 40, seed=3)
    short = simulate(SHORT, 20, seed=3)
    for key in long:
        np.testing.assert_array_equal(long[key][:20], short[key])
    assert not np.array_equal(long["positions"][:16], long["positions"][16:32])  # blocks differ


def test_worker_processes_simulate_the_same_scenes(monkeypatch):
    monkeypatch.setattr(sim, "BLOCK_SIZE", 8)  # five blocks, cheaply; the workers get the block size with each job
    one = simulate(SHORT, 37, seed=(4, 1))
    many = simulate(SHORT, 37, seed=(4, 1), workers=3)
    for key in one:
        np.testing.assert_array_equal(one[key], many[key])
    with pytest.raises(ValueError, match="workers"):
        simulate(SHORT, 3, workers=0)


# ------------------------------------------------------------------------------------------------------------ objects


def test_objects_layout(data):
    o = objects(data)
    assert o.shape == (400, 10, 35) and o.dtype == np.float32
    s, k = 11, 4
    np.testing.assert_array_equal(o[s, k, :16], data["positions"][s, :, k, 0])
    np.testing.assert_array_equal(o[s, k, 16:32], data["positions"][s, :, k, 1])
    np.testing.assert_array_equal(o[:, :, 32:], np.broadcast_to(COLORS, (400, 10, 3)))
    assert np.abs(o[..., :32]).max() <= 1.0
    assert len({tuple(c) for c in COLORS}) == 10 and COLORS.min() >= 0 and COLORS.max() <= 1
    np.testing.assert_allclose(objects(data, box=2.0)[..., :32], o[..., :32] / 2)


# ------------------------------------------------------------------------------------------------------------ cache, CLI, plot


def test_load_or_generate_caches(tmp_path, monkeypatch):
    a = load_or_generate(SHORT, "train", 12, seed=0, root=tmp_path)
    folder = tmp_path / "physics" / f"v1-{SHORT.digest()}"
    assert (folder / "train-s0-n12.npz").is_file() and (folder / "params.json").is_file()
    assert not list(folder.glob("*.tmp"))

    def boom(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(sim, "simulate", boom)
    b = load_or_generate(SHORT, "train", 12, seed=0, root=tmp_path)
    c = load_or_generate(SHORT, "train", 5, seed=0, root=tmp_path)  # a prefix of the bigger file
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key][:5], c[key])
    monkeypatch.undo()
    v = load_or_generate(SHORT, "val", 12, seed=0, root=tmp_path)
    assert not np.array_equal(v["positions"], a["positions"])
    monkeypatch.setenv("RELNET_DATA", str(tmp_path / "env"))
    load_or_generate(SHORT, "test", 3, seed=0)
    assert (tmp_path / "env" / "physics" / f"v1-{SHORT.digest()}" / "test-s0-n3.npz").is_file()
    with pytest.raises(UserError, match="split"):
        load_or_generate(SHORT, "dev", 3, seed=0, root=tmp_path)
    assert SHORT.digest() != P.digest()


def test_cli_data_physics(tmp_path, capsys):
    assert main(["data", "physics", "--scenes", "6", "--seed", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "physics") in out and "systems:" in out and "time:" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("systems:"))
    counts = dict(item.split(":") for item in line.split()[1:])
    assert sorted(map(int, counts)) == list(range(1, 11)) and sum(map(int, counts.values())) == 6
    assert len(list((tmp_path / "physics").glob("v1-*/train-s2-n6.npz"))) == 1
    assert main(["data", "physics", "--scenes", "-3", "--out", str(tmp_path)]) == 2
    assert "--scenes" in capsys.readouterr().err
    assert main(["data", "physics", "--scenes", "3", "--seed", "-1", "--out", str(tmp_path)]) == 2
    assert main(["data", "physics", "--scenes", "3", "--split", "dev", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["data", "physics", "--scenes", "3", "--workers", "-1", "--out", str(tmp_path)]) == 2
    assert "--workers" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["data", "physics", "--scenes", "3", "--out", str(tmp_path / "file")]) == 2


def test_plot_scene(tmp_path, data):
    path = plot_scene(data, 3, data["edges"][3] ^ np.eye(10, dtype=bool)[::-1], path=tmp_path / "a" / "scene.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert plot_scene(data, 0, path=tmp_path / "b.png").is_file()
