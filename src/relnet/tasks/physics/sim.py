"""Dynamic physical systems: a vectorised NumPy simulator of 10 balls joined by springs and rigid rods.

Paper (Santoro et al. 2017; docs/paper-spec.md section 6): 10 coloured balls move on a walled table top; random pairs are
joined by invisible springs or rigid constraints. MuJoCo is not used here: this module is a small 2D particle
simulator in the spirit of NRI's ``SpringSim`` (Kipf et al. 2018). **This is a documented deviation from the paper.**

World (all defaults live in :class:`PhysicsParams`):

* Table: the square ``[-box, box]^2`` with ``box = 1``. Balls are point masses of mass 1 (drawn with radius 0.05).
  Walls are elastic: a free ball that crosses a wall is mirrored back and that velocity component changes sign; a
  ball on a rod is mirrored too and its whole rigid system gets the elastic impulse that reverses the ball's normal
  velocity while keeping the kinetic energy (see :func:`collide_walls`). **No ball-ball collisions**: balls pass
  through each other, so a free ball moves in a straight line at constant speed between wall bounces.
* Springs: Hooke's law ``F_i = -k (|x_i - x_j| - L) (x_i - x_j) / |x_i - x_j|`` with ``k = 30`` and a rest length
  ``L ~ U(0.2, 0.5)`` drawn independently of the starting distance, so springs start stretched or compressed and
  oscillate (an isolated pair has period ``2 pi / sqrt(2k) = 0.81``, about 1.9 periods over the 16 frames).
* Rigid rods: holonomic distance constraints ``|x_i - x_j| = L`` with ``L`` = the starting distance, enforced with
  RATTLE (velocity Verlet; SHAKE position projection after each drift, velocity projection after each kick), each
  solved by 3 relaxed Jacobi iterations per step. Measured over 10,000 default scenes (16 frames): rod length error
  median 3e-6, 99th percentile 4e-4, max 2e-3 (box half-size 1, rods 0.2..0.45 long).
* Optional linear damping ``F = -damping * v`` (default 0, applied as an exact exponential decay in each half kick).
* Integrator: velocity Verlet (kick-drift-kick leapfrog), ``dt = frame_dt / substeps = 0.1 / 20 = 0.005``. Without
  damping, kinetic + spring energy over the 16 recorded frames drifts by a median 0.02%, 99th percentile ~1%, max ~8%
  (1,000 default scenes; the largest errors come from spring-held balls being mirrored at a wall).

Connections (sampled per scene, so that the number of systems is uniform over 1..10):

1. the number of systems ``c ~ U{1..10}``;
2. a random permutation of the balls is cut at ``c - 1`` random places into ``c`` groups;
3. each group is joined by a random recursive tree (each ball links to a uniformly chosen earlier ball of its group),
   which gives exactly ``10 - c`` tree edges;
4. up to ``max_extra_edges = 3`` extra edges, each present with probability 1/2, join two random balls of the same
   group (a cycle; skipped where it would repeat an edge), so components are not always trees;
5. every tree edge is a spring or a rigid rod with probability 1/2 each; the extra (cycle) edges are always
   springs, so the rods form a forest: a loop of rods is a rigid body whose constraints become singular when it
   is nearly flat, which no fixed number of projection iterations handles robustly.

The connected components of the ball graph are thus the sampled groups, so ``systems == c``.

Initial state: each group's first ball is placed uniformly in ``[-0.8, 0.8]^2``; every other ball at distance
``U(0.2, 0.45)`` in a uniform direction from its tree parent; each group is then slid as a whole into
``[-0.95, 0.95]^2`` (clipped in the rare case it is wider). Extra edges whose ends start closer than 0.15 are
dropped. Velocities have uniform directions and speeds ``U(0.2, 0.8)``; the relative velocity along each rod is then
projected out. The system runs for ``burn_in_frames = 5`` frames (0.5 time units), then 16 frames are recorded, 0.1 time units apart.

Randomness: scenes are generated in blocks of :data:`BLOCK_SIZE`; block ``b`` draws everything from
``numpy.random.default_rng([*seed, b])``. Scene ``i`` therefore depends only on ``(seed, i)``, and the first ``n``
scenes of a longer run are identical to a run of ``n`` scenes.

Schema of :func:`simulate` (S scenes, T = 16 frames, N = 10 balls):

* ``positions`` ``(S, T, N, 2)`` float32, in ``[-box, box]``;
* ``velocities`` ``(S, T, N, 2)`` float32;
* ``edges`` ``(S, N, N)`` bool, symmetric, zero diagonal (connection-inference target: 100 entries per scene);
* ``edge_type`` ``(S, N, N)`` int8, symmetric: 0 none, 1 spring, 2 rigid;
* ``systems`` ``(S,)`` int64 in 1..N: number of connected components, isolated balls included (counting target).

:func:`objects` turns that into the RN's object rows ``(S, N, 2T + 3)``: ``[x_0..x_15, y_0..y_15, r, g, b]`` with
positions divided by ``box`` (so in [-1, 1]) and ball ``k`` always carrying colour :data:`COLORS` ``[k]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from relnet.errors import UserError

VERSION = "v1"  # bump when the generator changes in a way that changes the data
BLOCK_SIZE = 1000  # scenes per independently seeded block; part of the data definition, do not tune per run
SPLITS = {"train": 0, "val": 1, "test": 2}
NONE, SPRING, RIGID = 0, 1, 2

# 10 fixed, distinct colours (matplotlib's tab10), RGB in [0, 1]; ball k always has colour k
COLORS = np.array(
    [
        [0.122, 0.467, 0.706],  # blue
        [1.000, 0.498, 0.055],  # orange
        [0.173, 0.627, 0.173],  # green
        [0.839, 0.153, 0.157],  # red
        [0.580, 0.404, 0.741],  # purple
        [0.549, 0.337, 0.294],  # brown
        [0.890, 0.467, 0.761],  # pink
        [0.498, 0.498, 0.498],  # grey
        [0.737, 0.741, 0.133],  # olive
        [0.090, 0.745, 0.812],  # cyan
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class PhysicsParams:
    """Everything that defines the data set (hashed into the cache folder name).

    Args:
        n_balls: balls per scene (the paper: 10; at most ``len(COLORS)``).
        n_frames: recorded frames (the paper: 16).
        frame_dt: time between recorded frames.
        substeps: integrator steps per frame (``dt = frame_dt / substeps``).
        burn_in_frames: frames simulated and discarded before recording.
        box: half-size of the table; ball centres stay in ``[-box, box]^2``.
        spring_k: spring constant (masses are all 1).
        spring_rest: range of the uniform spring rest length.
        link_length: range of the uniform starting distance between a ball and its tree parent.
        min_link: extra (cycle) edges whose ends start closer than this are dropped.
        speed: range of the uniform starting speed.
        damping: linear damping coefficient (0: energy is conserved).
        max_extra_edges: extra same-group (cycle-making) edge slots per scene.
        extra_edge_prob: probability that each extra slot is used.
        rigid_prob: probability that an edge is a rigid rod rather than a spring.
        constraint_iters: Jacobi iterations of each rod projection per step.
    """

    n_balls: int = 10
    n_frames: int = 16
    frame_dt: float = 0.1
    substeps: int = 20
    burn_in_frames: int = 5
    box: float = 1.0
    spring_k: float = 30.0
    spring_rest: tuple[float, float] = (0.2, 0.5)
    link_length: tuple[float, float] = (0.2, 0.45)
    min_link: float = 0.15
    speed: tuple[float, float] = (0.2, 0.8)
    damping: float = 0.0
    max_extra_edges: int = 3
    extra_edge_prob: float = 0.5
    rigid_prob: float = 0.5
    constraint_iters: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.n_balls <= len(COLORS):
            raise ValueError(f"n_balls must be in 1..{len(COLORS)}, got {self.n_balls}")
        if self.n_frames < 1 or self.substeps < 1 or self.burn_in_frames < 0 or self.constraint_iters < 1:
            raise ValueError(f"bad frame/step counts in {self}")
        if self.frame_dt <= 0 or self.box <= 0 or self.spring_k < 0 or self.damping < 0:
            raise ValueError(f"frame_dt and box must be > 0, spring_k and damping >= 0: {self}")

    @property
    def dt(self) -> float:
        return self.frame_dt / self.substeps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Short hash of the parameters (and the generator version) naming the cache folder."""
        text = json.dumps({"version": VERSION, "block": BLOCK_SIZE, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------------------------------------------
# force law, constraints, walls: pure functions on an edge list
#
# Edge lists: pairs (S, K, 2) int ball indices, kind (S, K) int8 (0 unused slot, 1 spring, 2 rigid), rest (S, K).
# They are turned into a signed incidence matrix inc (S, K, N): +1 at ball i, -1 at ball j of each used slot, so
# inc @ x gives x_i - x_j per edge (S, K, 2) and inc^T @ f scatters a per-edge force f (on i; -f on j) to the balls.
# ----------------------------------------------------------------------------------------------------------------


def _norm(d: np.ndarray) -> np.ndarray:
    """Length of 2-vectors ``(..., 2)`` -> ``(...)`` (explicit: a numpy reduction over an axis of 2 is slow)."""
    return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])


def incidence(pairs: np.ndarray, used: np.ndarray, n_balls: int) -> np.ndarray:
    """Signed incidence ``(S, K, N)`` float64: +1 at ``pairs[..., 0]``, -1 at ``pairs[..., 1]``, 0 where unused."""
    eye = np.eye(n_balls)
    inc = eye[pairs[..., 0]] - eye[pairs[..., 1]]  # (S, K, N)
    return inc * used[..., None]


def spring_accel(x: np.ndarray, inc: np.ndarray, inc_t: np.ndarray, rest: np.ndarray, k: float) -> np.ndarray:
    """Hooke acceleration of every ball (mass 1). ``inc`` must be zero on non-spring slots.

    Shapes: x ``(S, N, 2)``, inc ``(S, K, N)``, inc_t ``(S, N, K)``, rest ``(S, K)`` -> ``(S, N, 2)``.
    """
    d = inc @ x  # (S, K, 2) x_i - x_j
    length = _norm(d)  # (S, K)
    scale = -k * (length - rest) / np.maximum(length, 1e-12)  # (S, K)
    return inc_t @ (scale[..., None] * d)  # (S, N, 2)


def spring_energy(x: np.ndarray, inc: np.ndarray, rest: np.ndarray, k: float) -> np.ndarray:
    """Potential energy ``sum_e k/2 (|x_i - x_j| - L_e)^2`` over spring slots of ``inc``: ``(S, N, 2)`` -> ``(S,)``."""
    d = inc @ x
    used = np.abs(inc).sum(-1) > 0  # (S, K)
    length = _norm(d)
    return 0.5 * k * (((length - rest) ** 2) * used).sum(-1)


def project_positions(x: np.ndarray, x_old: np.ndarray, inc: np.ndarray, inc_t: np.ndarray, rest: np.ndarray,
                      relax: np.ndarray, iters: int) -> np.ndarray:
    """SHAKE: move the drifted balls ``x`` so that each rod slot of ``inc`` has length ``rest`` again.

    Each correction is along the rod direction *before* the drift (``x_old``) and both ends (equal masses) move by
    the same amount, as in SHAKE/RATTLE; that keeps the scheme symplectic and kinetic energy conserved. (Projecting
    along the new direction, as position-based dynamics does, slowly drains energy; averaging corrections per ball
    acts like unequal masses and does not conserve it either.) The rods' linearised multipliers are found by
    relaxed Jacobi iterations; ``relax`` scales each rod's step only, so a converged result is exact SHAKE.

    Shapes: x, x_old ``(S, N, 2)``, rest and relax ``(S, K)`` -> ``(S, N, 2)``.
    """
    d_old = inc @ x_old  # (S, K, 2) rod vectors before the drift (zero on other slots)
    for _ in range(iters):
        d = inc @ x  # (S, K, 2)
        dot = d[..., 0] * d_old[..., 0] + d[..., 1] * d_old[..., 1]  # (S, K)
        dot = np.where(np.abs(dot) > 1e-12, dot, 1e-12)
        g = relax * (d[..., 0] ** 2 + d[..., 1] ** 2 - rest * rest) / (2 * dot)  # (S, K): d -> d - g d_old
        x = x - inc_t @ (0.5 * g[..., None] * d_old)
    return x


def project_velocities(x: np.ndarray, v: np.ndarray, inc: np.ndarray, inc_t: np.ndarray, relax: np.ndarray,
                       iters: int) -> np.ndarray:
    """RATTLE's second half: remove the relative velocity along each rod slot of ``inc`` (equal and opposite
    impulses on the two ends, relaxed Jacobi iterations).

    Shapes: x, v ``(S, N, 2)``, relax ``(S, K)`` -> v ``(S, N, 2)``.
    """
    d = inc @ x
    u = d / np.maximum(_norm(d), 1e-12)[..., None]  # (S, K, 2) unit rod direction
    for _ in range(iters):
        dv = inc @ v  # (S, K, 2)
        w = relax * (dv[..., 0] * u[..., 0] + dv[..., 1] * u[..., 1])  # (S, K) closing speed along the rod
        v = v - inc_t @ (0.5 * w[..., None] * u)
    return v


def rod_relaxation(inc: np.ndarray) -> np.ndarray:
    """Jacobi step size per rod, ``2 / (rods at end i + rods at end j)`` (1 for a lone rod): ``(S, K)``."""
    count = np.abs(inc).sum(1)  # (S, N) rods per ball
    ends = np.abs(inc) @ count[..., None]  # (S, K, 1) rods at i + rods at j
    return 2.0 / np.maximum(ends[..., 0], 2.0)


def reflect_walls(x: np.ndarray, v: np.ndarray, box: float) -> tuple[np.ndarray, np.ndarray]:
    """Elastic walls at ``+-box`` for free balls: mirror a centre that crossed a wall and flip that velocity
    component. Shapes: x, v ``(S, N, 2)`` -> the same."""
    hi, lo = x > box, x < -box
    x = np.where(hi, 2 * box - x, np.where(lo, -2 * box - x, x))
    v = np.where(hi | lo, -v, v)
    return x, v


def collide_walls(x: np.ndarray, v: np.ndarray, r_inc: np.ndarray, r_inc_t: np.ndarray, rest: np.ndarray,
                  relax: np.ndarray, box: float, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Elastic walls for balls that may carry rods.

    A free ball is mirrored as in :func:`reflect_walls`. A ball on a rod is mirrored too, its rods are restored by
    a position-only projection, and its rigid system then gets the elastic wall impulse ``J P e``: ``e`` is the
    wall normal at that ball, ``P`` the (linear, symmetric) projection onto rod-consistent velocities, and
    ``J = -2 v.e / (e.P e)`` reverses the ball's normal velocity while keeping the kinetic energy
    (``|v + J P e|^2 = |v|^2`` when ``P v = v``). Several hits in one scene and step are applied one after another.

    Shapes: x, v ``(S, N, 2)``; r_inc ``(S, K, N)`` (rod slots only), r_inc_t ``(S, N, K)``; rest, relax
    ``(S, K)`` -> x, v.
    """
    hi, lo = x > box, x < -box
    hit = hi | lo  # (S, N, 2)
    if not hit.any():
        return x, v
    x = np.where(hi, 2 * box - x, np.where(lo, -2 * box - x, x))
    on_rod = (np.abs(r_inc).sum(1) > 0)[..., None]  # (S, N, 1)
    v = np.where(hit & ~on_rod, -v, v)  # free balls
    rod_hit = hit & on_rod
    if not rod_hit.any():
        return x, v
    sc = np.nonzero(rod_hit.any((1, 2)))[0]  # the few scenes concerned
    xs, vs, inc, inc_t, rel = x[sc], v[sc], r_inc[sc], r_inc_t[sc], relax[sc]
    xs = np.clip(project_positions(xs, xs, inc, inc_t, rest[sc], rel, 2 * iters), -box, box)
    todo = rod_hit[sc].reshape(len(sc), -1)  # (H, N*2)
    rows = np.arange(len(sc))
    while todo.any():
        has = todo.any(1)
        idx = todo.argmax(1)  # first pending (ball, axis) per scene
        e = np.zeros_like(todo, dtype=np.float64)
        e[rows, idx] = has
        pe = project_velocities(xs, e.reshape(xs.shape), inc, inc_t, rel, 8 * iters)  # (H, N, 2)
        pe_n = pe.reshape(len(sc), -1)[rows, idx]
        v_n = vs.reshape(len(sc), -1)[rows, idx]
        # only a ball still moving outwards is bounced (it may already have been turned by an earlier impulse)
        outward = np.where(xs.reshape(len(sc), -1)[rows, idx] > 0, v_n > 0, v_n < 0)
        J = np.where(has & outward & (pe_n > 1e-9), -2 * v_n / np.maximum(pe_n, 1e-9), 0.0)
        vs = vs + J[:, None, None] * pe
        todo[rows, idx] = False
    x[sc], v[sc] = xs, vs
    return x, v


def rollout(pos0: np.ndarray, vel0: np.ndarray, pairs: np.ndarray, kind: np.ndarray, rest: np.ndarray, *,
            params: PhysicsParams, record_velocities: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Integrate scenes from an initial state; return the recorded frames (after ``params.burn_in_frames``).

    Velocity Verlet with RATTLE rods and elastic walls, vectorised over scenes and edges. Works for any number of
    balls (tests use 2-ball scenes). Frame ``f`` is the state at time ``(burn_in_frames + f) * frame_dt``. Rods
    should form a forest and start at their rest length (as :func:`sample_scenes` guarantees); a loop of rods is
    not guaranteed to converge in ``params.constraint_iters`` iterations.

    Shapes:
        pos0, vel0 ``(S, N, 2)``; pairs ``(S, K, 2)`` int; kind ``(S, K)`` in {0, 1, 2}; rest ``(S, K)``
        -> positions, velocities ``(S, n_frames, N, 2)`` float64 (velocities None unless ``record_velocities``).
    """
    x = np.array(pos0, dtype=np.float64)
    v = np.array(vel0, dtype=np.float64)
    S, N, _ = x.shape
    rest = np.asarray(rest, dtype=np.float64)
    s_rest = np.where(kind == SPRING, rest, 0.0)  # (S, K) each force law sees only its own slots
    r_rest = np.where(kind == RIGID, rest, 0.0)
    s_inc = incidence(pairs, kind == SPRING, N)  # (S, K, N)
    r_inc = incidence(pairs, kind == RIGID, N)
    s_inc_t = np.ascontiguousarray(s_inc.transpose(0, 2, 1))  # (S, N, K)
    r_inc_t = np.ascontiguousarray(r_inc.transpose(0, 2, 1))
    relax = rod_relaxation(r_inc)  # (S, K)
    has_rods = bool((kind == RIGID).any())
    has_springs = bool((kind == SPRING).any()) and params.spring_k > 0
    dt, iters, box = params.dt, params.constraint_iters, params.box
    decay = np.exp(-params.damping * dt / 2)

    def accel(x: np.ndarray) -> np.ndarray:
        return spring_accel(x, s_inc, s_inc_t, s_rest, params.spring_k) if has_springs else np.zeros_like(x)

    if has_rods:  # make the starting velocities consistent with the rods
        v = project_velocities(x, v, r_inc, r_inc_t, relax, 8 * iters)
    a = accel(x)
    T = params.n_frames
    out_x = np.empty((S, T, N, 2))
    out_v = np.empty((S, T, N, 2)) if record_velocities else None
    total = params.burn_in_frames + T
    for frame in range(total):
        f = frame - params.burn_in_frames
        if f >= 0:
            out_x[:, f] = x
            if out_v is not None:
                out_v[:, f] = v
        if frame == total - 1:
            break
        for _ in range(params.substeps):
            v = v * decay + (0.5 * dt) * a  # half kick
            x_new = x + dt * v  # drift
            if has_rods:
                x_proj = project_positions(x_new, x, r_inc, r_inc_t, r_rest, relax, iters)
                v = v + (x_proj - x_new) / dt  # the constraint impulse
                x_new = x_proj
            if has_rods:
                x, v = collide_walls(x_new, v, r_inc, r_inc_t, r_rest, relax, box, iters)
            else:
                x, v = reflect_walls(x_new, v, box)
            a = accel(x)
            v = (v + (0.5 * dt) * a) * decay  # half kick
            if has_rods:
                v = project_velocities(x, v, r_inc, r_inc_t, relax, iters)
    return out_x, out_v


# ----------------------------------------------------------------------------------------------------------------
# scene sampling
# ----------------------------------------------------------------------------------------------------------------


def sample_scenes(rng: np.random.Generator, n_scenes: int, params: PhysicsParams) -> dict[str, np.ndarray]:
    """Draw connection graphs and initial states for ``n_scenes`` scenes (see the module docstring).

    The number and order of random draws depend only on ``n_scenes`` (never on the sampled values).

    Shapes/schema (S scenes, N balls, K = N - 1 + max_extra_edges slots):
        ``pos0, vel0 (S, N, 2)`` float64; ``pairs (S, K, 2)`` int64; ``kind (S, K)`` int8; ``rest (S, K)``
        float64; ``systems (S,)`` int64.
    """
    p = params
    S, N, E = n_scenes, p.n_balls, p.max_extra_edges
    rows = np.arange(S)[:, None]
    systems = rng.integers(1, N + 1, size=S)  # (S,)
    perm = np.argsort(rng.random((S, N)), axis=1)  # (S, N) ball at each position
    # cut c - 1 of the N - 1 gaps: gap g (between positions g and g + 1) is cut iff its random rank < c - 1
    gap_rank = np.argsort(np.argsort(rng.random((S, N - 1)), axis=1), axis=1)  # (S, N-1)
    is_start = np.concatenate([np.ones((S, 1), bool), gap_rank < (systems - 1)[:, None]], axis=1)  # (S, N)
    pos_idx = np.broadcast_to(np.arange(N), (S, N))
    start = np.maximum.accumulate(np.where(is_start, pos_idx, 0), axis=1)  # (S, N) first position of my group
    # last position of each group: reverse running minimum of the next start - 1
    nxt = np.where(is_start, pos_idx, N)  # start positions, N elsewhere
    next_start = np.minimum.accumulate(np.concatenate([nxt[:, 1:], np.full((S, 1), N)], 1)[:, ::-1], axis=1)[:, ::-1]
    end = next_start - 1  # (S, N) last position of my group
    # random recursive tree: position q > start links to a uniform earlier position of its group
    u_parent = rng.random((S, N))
    parent_pos = start + np.floor(u_parent * (pos_idx - start)).astype(np.int64)  # (S, N); = q at group starts
    tree_used = ~is_start[:, 1:]  # (S, N-1) slot q-1 for positions q = 1..N-1
    tree_pairs = np.stack([perm[:, 1:], perm[rows, parent_pos[:, 1:]]], axis=-1)  # (S, N-1, 2)

    # extra same-group edges (cycles)
    adj = np.zeros((S, N, N), bool)
    ti, tj = tree_pairs[..., 0], tree_pairs[..., 1]
    adj[np.broadcast_to(rows, ti.shape)[tree_used], ti[tree_used], tj[tree_used]] = True
    adj |= adj.transpose(0, 2, 1)
    u_extra = rng.random((S, E, 3))
    extra_pairs = np.zeros((S, E, 2), np.int64)
    extra_used = np.zeros((S, E), bool)
    for e in range(E):  # a loop over the (3) extra slots, vectorised over scenes
        q1 = np.floor(u_extra[:, e, 0] * N).astype(np.int64)  # (S,) a position
        s1, e1 = start[np.arange(S), q1], end[np.arange(S), q1]
        size = e1 - s1 + 1
        # a different position of the same group: offset 1..size-1 after q1, wrapping inside the group
        off = 1 + np.floor(u_extra[:, e, 1] * np.maximum(size - 1, 1)).astype(np.int64)
        q2 = s1 + (q1 - s1 + off) % size
        b1, b2 = perm[np.arange(S), q1], perm[np.arange(S), q2]
        ok = (u_extra[:, e, 2] < p.extra_edge_prob) & (size >= 3) & ~adj[np.arange(S), b1, b2]
        extra_pairs[:, e] = np.stack([b1, b2], -1)
        extra_used[:, e] = ok
        adj[np.arange(S)[ok], b1[ok], b2[ok]] = True
        adj[np.arange(S)[ok], b2[ok], b1[ok]] = True

    pairs = np.concatenate([tree_pairs, extra_pairs], axis=1)  # (S, K, 2)
    used = np.concatenate([tree_used, extra_used], axis=1)  # (S, K)
    kind = np.where(rng.random(used.shape) < p.rigid_prob, RIGID, SPRING).astype(np.int8)
    kind[:, N - 1:] = SPRING  # cycle edges are springs: rods form a forest (a loop of rods can lock up or go singular)

    # positions: group starts uniform, the others at link_length from their tree parent (in position order)
    pos_by_q = rng.uniform(-0.8 * p.box, 0.8 * p.box, size=(S, N, 2))  # (S, N, 2) indexed by position
    r = rng.uniform(*p.link_length, size=(S, N)) * p.box
    theta = rng.uniform(0, 2 * np.pi, size=(S, N))
    step = r[..., None] * np.stack([np.cos(theta), np.sin(theta)], -1)  # (S, N, 2)
    for q in range(1, N):  # parents come earlier in the order; a loop over positions, vectorised over scenes
        child = ~is_start[:, q]
        pos_by_q[child, q] = pos_by_q[rows[child, 0], parent_pos[child, q]] + step[child, q]
    # slide each group into [-0.95, 0.95]^2 as a whole (keeps its link lengths); clip the rare group that is too wide
    group = np.cumsum(is_start, axis=1) - 1  # (S, N) group id of each position
    member = group[:, None, :] == np.arange(N)[None, :, None]  # (S, G=N, N) position q is in group g
    lim = 0.95 * p.box
    gmin = np.where(member[..., None], pos_by_q[:, None], np.inf).min(2)  # (S, G, 2)
    gmax = np.where(member[..., None], pos_by_q[:, None], -np.inf).max(2)
    shift = np.maximum(-lim - gmin, 0) + np.minimum(lim - gmax, 0)  # (S, G, 2); inf - inf never: empty groups
    shift = np.where(np.isfinite(shift), shift, 0)
    pos_by_q = np.clip(pos_by_q + shift[rows, group], -lim, lim)
    pos0 = np.empty_like(pos_by_q)
    pos0[rows, perm] = pos_by_q

    speed = rng.uniform(*p.speed, size=(S, N)) * p.box
    phi = rng.uniform(0, 2 * np.pi, size=(S, N))
    vel0 = speed[..., None] * np.stack([np.cos(phi), np.sin(phi)], -1)

    d = pos0[rows, pairs[..., 0]] - pos0[rows, pairs[..., 1]]  # (S, K, 2)
    dist = _norm(d)
    # drop extra (cycle) edges whose ends start closer than min_link: very short rods would spin too fast to
    # integrate well; dropping a cycle edge never changes the components
    extra_slot = np.arange(used.shape[1]) >= N - 1
    used = used & ~(extra_slot & (dist < p.min_link * p.box))
    kind = kind * used
    spring_rest = rng.uniform(*p.spring_rest, size=used.shape) * p.box
    rest = np.where(kind == RIGID, dist, spring_rest) * used  # rods keep their starting length
    return {"pos0": pos0, "vel0": vel0, "pairs": pairs, "kind": kind, "rest": rest, "systems": systems.astype(np.int64)}


def edge_matrices(pairs: np.ndarray, kind: np.ndarray, n_balls: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge lists -> ``edges (S, N, N)`` bool and ``edge_type (S, N, N)`` int8, both symmetric with zero diagonal."""
    S = pairs.shape[0]
    edge_type = np.zeros((S, n_balls, n_balls), np.int8)
    s, k = np.nonzero(kind)
    i, j = pairs[s, k, 0], pairs[s, k, 1]
    edge_type[s, i, j] = kind[s, k]
    edge_type[s, j, i] = kind[s, k]
    return edge_type > 0, edge_type


def _seed_tuple(seed: int | Sequence[int]) -> tuple[int, ...]:
    seeds = (seed,) if isinstance(seed, (int, np.integer)) else tuple(seed)
    if not seeds or any(int(s) < 0 for s in seeds):
        raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}")
    return tuple(int(s) for s in seeds)


def simulate(params: PhysicsParams, n_scenes: int, seed: int | Sequence[int] = 0, *,
             progress: bool = False, workers: int = 1) -> dict[str, np.ndarray]:
    """Generate ``n_scenes`` scenes. Deterministic in ``(params, seed)``; a prefix of a longer run with the same seed.

    Args:
        params: the world and sampling parameters.
        n_scenes: number of scenes (>= 0).
        seed: an int or a tuple of ints (e.g. ``(seed, split_id)``); block ``b`` uses
            ``numpy.random.default_rng([*seed, b])``.
        progress: show a tqdm bar over blocks on stderr.
        workers: simulate blocks in this many processes (blocks are seeded independently, so the scenes are the
            same for any number of workers).

    Shapes/schema: see the module docstring (``positions (S, 16, 10, 2)`` float32, ``velocities`` float32,
    ``edges (S, 10, 10)`` bool, ``edge_type (S, 10, 10)`` int8, ``systems (S,)`` int64).
    """
    if n_scenes < 0:
        raise ValueError(f"n_scenes must be >= 0, got {n_scenes}")
    seeds = _seed_tuple(seed)
    N, T = params.n_balls, params.n_frames
    out = {
        "positions": np.empty((n_scenes, T, N, 2), np.float32),
        "velocities": np.empty((n_scenes, T, N, 2), np.float32),
        "edges": np.empty((n_scenes, N, N), bool),
        "edge_type": np.empty((n_scenes, N, N), np.int8),
        "systems": np.empty((n_scenes,), np.int64),
    }
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    spans = [(b * BLOCK_SIZE, min((b + 1) * BLOCK_SIZE, n_scenes)) for b in range(-(-n_scenes // BLOCK_SIZE))]
    jobs = [(params, seeds, b, hi - lo, BLOCK_SIZE) for b, (lo, hi) in enumerate(spans)]
    pool = None
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent may hold torch's thread pools, which a forked child must not inherit
        pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
        blocks = pool.map(_simulate_block, jobs)
    else:
        blocks = map(_simulate_block, jobs)
    if progress:
        from tqdm import tqdm

        blocks = tqdm(blocks, total=len(jobs), desc="physics", unit="block", leave=False)
    try:
        for (lo, hi), block in zip(spans, blocks):
            for k, v in block.items():
                out[k][lo:hi] = v
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def sample_block(params: PhysicsParams, seeds: Sequence[int], b: int, n: int,
                 block_size: int = BLOCK_SIZE) -> dict[str, np.ndarray]:
    """The graphs and starting states (:func:`sample_scenes`) of the first ``n`` scenes of block ``b`` of a
    :func:`simulate` run with ``seed = seeds``: what :func:`rollout` integrates into that block's scenes."""
    rng = np.random.default_rng([*seeds, b])
    init = sample_scenes(rng, block_size, params)  # always a full block, so draws do not depend on n_scenes
    return {k: v[:n] for k, v in init.items()}


def _simulate_block(job: tuple[PhysicsParams, tuple[int, ...], int, int, int]) -> dict[str, np.ndarray]:
    """Block ``b`` (of ``block_size`` scenes) of a :func:`simulate` run: its first ``n`` scenes (a module-level
    function, so that worker processes can run it)."""
    params, seeds, b, n, block_size = job
    init = sample_block(params, seeds, b, n, block_size)
    xs, vs = rollout(init["pos0"], init["vel0"], init["pairs"], init["kind"], init["rest"], params=params)
    edges, edge_type = edge_matrices(init["pairs"], init["kind"], params.n_balls)
    return {"positions": xs, "velocities": vs, "edges": edges, "edge_type": edge_type, "systems": init["systems"]}


def objects(data: Mapping[str, np.ndarray], *, box: float = 1.0) -> np.ndarray:
    """State-description objects for the RN: one row per ball.

    Row layout (T = 16): ``[x_0 .. x_{T-1}, y_0 .. y_{T-1}, r, g, b]`` with positions divided by ``box`` (so within
    [-1, 1]) and ball ``k``'s fixed colour ``COLORS[k]`` (RGB in [0, 1]).

    Shapes: ``data["positions"] (S, T, N, 2)`` -> ``(S, N, 2T + 3)`` float32 (``(S, 10, 35)`` by default).
    """
    pos = np.asarray(data["positions"], dtype=np.float32) / np.float32(box)  # (S, T, N, 2)
    S, T, N, _ = pos.shape
    if N > len(COLORS):
        raise ValueError(f"at most {len(COLORS)} balls have colours, got {N}")
    xy = pos.transpose(0, 2, 3, 1).reshape(S, N, 2 * T)  # (S, N, 2T): x_0..x_{T-1}, y_0..y_{T-1}
    rgb = np.broadcast_to(COLORS[:N], (S, N, 3))
    return np.concatenate([xy, rgb], axis=-1).astype(np.float32)


def system_counts(systems: np.ndarray, n_balls: int = 10) -> dict[int, int]:
    """``{number of systems: scenes}`` for 1..n_balls."""
    counts = np.bincount(np.asarray(systems), minlength=n_balls + 1)
    return {c: int(counts[c]) for c in range(1, n_balls + 1)}


# ----------------------------------------------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------------------------------------------

ARRAY_KEYS = ("positions", "velocities", "edges", "edge_type", "systems")


def default_root() -> Path:
    """``$RELNET_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("RELNET_DATA", "data"))


def cache_dir(params: PhysicsParams, root: str | os.PathLike | None = None) -> Path:
    """``<root>/physics/v1-<hash of params>/``."""
    return Path(root if root is not None else default_root()) / "physics" / f"{VERSION}-{params.digest()}"


def load_or_generate(params: PhysicsParams, split: str, n: int, seed: int = 0,
                     root: str | os.PathLike | None = None, *, progress: bool = False,
                     workers: int = 1) -> dict[str, np.ndarray]:
    """Load ``n`` scenes of ``split`` from the cache, generating and saving them first if needed.

    Files: ``<root>/physics/v1-<hash>/<split>-s<seed>-n<n>.npz`` (written atomically) plus ``params.json``. The
    split's scenes come from ``simulate(params, n, (seed, SPLITS[split]))``, so splits never share scenes. A cached
    file of the same split and seed with more scenes is reused (its first ``n`` scenes are the same scenes).
    ``workers``: processes that simulate (see :func:`simulate`; the scenes do not depend on it).

    Raises:
        UserError: unknown split, negative ``n`` or ``seed``, or a root that cannot be written.
    """
    if split not in SPLITS:
        raise UserError(f"physics: split must be one of {sorted(SPLITS)}, got {split!r}")
    if n < 0 or seed < 0:
        raise UserError(f"physics: scenes and seed must be >= 0, got n={n}, seed={seed}")
    folder = cache_dir(params, root)
    candidates = []
    if folder.is_dir():
        for f in folder.glob(f"{split}-s{seed}-n*.npz"):
            try:
                m = int(f.stem.rsplit("-n", 1)[1])
            except ValueError:
                continue
            if m >= n:
                candidates.append((m, f))
    if candidates:
        _, path = min(candidates)
        with np.load(path) as z:
            return {k: z[k][:n] for k in ARRAY_KEYS}
    data = simulate(params, n, (seed, SPLITS[split]), progress=progress, workers=workers)
    from relnet.checkpoint import write_atomic  # here: simulation workers need not import torch

    try:
        folder.mkdir(parents=True, exist_ok=True)
        params_file = folder / "params.json"
        if not params_file.exists():
            text = json.dumps({"version": VERSION, "block_size": BLOCK_SIZE, **params.to_dict()}, indent=2)
            write_atomic(params_file, lambda f: f.write(text.encode()))
        write_atomic(folder / f"{split}-s{seed}-n{n}.npz", lambda f: np.savez(f, **data))
    except OSError as e:
        raise UserError(f"physics: cannot write the cache under {folder}: {e.strerror or e}") from e
    return data


# ----------------------------------------------------------------------------------------------------------------
# plotting
# ----------------------------------------------------------------------------------------------------------------


def plot_scene(data: Mapping[str, np.ndarray], k: int, predicted_edges: np.ndarray | None = None, *,
               path: str | os.PathLike, box: float = 1.0) -> Path:
    """Draw scene ``k`` into a PNG at ``path``: each ball's 16-frame trajectory (fading in), true connections at the
    last frame (grey: springs thin, rods thick) and, if given, predicted connections dashed (black where right, red
    where wrong); the title counts the predicted edges that are right, wrong and missed.

    Shapes: ``predicted_edges`` ``(N, N)`` bool or probabilities (> 0.5 counts as an edge; either direction).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pos = np.asarray(data["positions"][k], dtype=np.float64)  # (T, N, 2)
    etype = np.asarray(data["edge_type"][k])
    T, N, _ = pos.shape
    title = f"scene {k}: {int(data['systems'][k])} systems" if "systems" in data else f"scene {k}"
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        ax.set_xlim(-box, box)
        ax.set_ylim(-box, box)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        last = pos[-1]
        right = wrong = missed = 0
        for i in range(N):
            for j in range(i + 1, N):
                if etype[i, j]:
                    lw = 3.5 if etype[i, j] == RIGID else 1.2
                    ax.plot(*last[[i, j]].T, color="0.6", lw=lw, zorder=1)
                if predicted_edges is not None:
                    pred = bool(predicted_edges[i, j] > 0.5 or predicted_edges[j, i] > 0.5)
                    if pred:
                        ok = bool(etype[i, j])
                        right, wrong = right + ok, wrong + (not ok)
                        ax.plot(*last[[i, j]].T, color="black" if ok else "red", lw=1.2, ls="--", zorder=2)
                    elif etype[i, j]:
                        missed += 1
        if predicted_edges is not None:
            title += f"; predicted {right} right, {wrong} wrong, {missed} missed"
        alphas = np.linspace(0.15, 1.0, T)
        for i in range(N):
            ax.plot(pos[:, i, 0], pos[:, i, 1], color=COLORS[i], lw=0.8, alpha=0.6, zorder=3)
            ax.scatter(pos[:, i, 0], pos[:, i, 1], color=COLORS[i], s=12, alpha=alphas, zorder=4)
            ax.add_patch(plt.Circle(last[i], 0.05 * box, color=COLORS[i], zorder=5))
        ax.set_title(title, fontsize=9)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
