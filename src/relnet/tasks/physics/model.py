"""Physics models and presets: an RN over the 10 ball rows, and the MLP baseline over the flattened rows.

Objects are the simulator's rows (``relnet.tasks.physics.sim.objects``): ``[x_0..x_15, y_0..y_15, r, g, b]``, 35
floats per ball, positions in [-1, 1]. There is no question. Two tasks (paper-spec section 6):

* ``connections``: logits ``(B, N, N)``, one per ordered ball pair (sigmoid + binary cross-entropy);
* ``count``: logits ``(B, N)`` over "1 .. N systems" (softmax + cross-entropy; class k means k+1 systems).

Models (``--model``):

* ``rn``, readout ``f`` (the paper): ``f(sum_ij g(o_i, o_j))``; for connections f's last layer has N*N = 100 units
  that are reshaped to ``(N, N)``.
* ``rn``, readout ``pair`` (connections only; **a deviation**, used by the ``fast`` preset): the same g, read out
  per pair instead of summed: ``logit_ij = w . g(o_i, o_j) + b``. Each pair's logit comes from the one relation that
  it is about, so nothing has to be routed through a 100-way output layer; this is the natural RN design when the
  target is itself per pair.
* ``mlp``: ``MLP(flatten(objects))`` with hidden layers g_dims + f_dims (the RN's widths in one stack), so its
  parameter count is comparable to the RN's (it sees all 350 numbers at once but has no shared pairwise function).

``symmetric`` averages the logits of (i, j) and (j, i): connections are undirected, so the two entries of a pair are
always both right or both wrong, and the symmetric model is right by construction on that point.

Presets (``--preset``):

=======  ============================  ==================  ========================================================
preset   g                             f (+ linear out)    training
=======  ============================  ==================  ========================================================
paper    1000, 1000, 1000, 500         500, 100            Adam 1e-4, batch 50, constant; readout f, sum, no norm
fast     256, 256, 256 (2-3 rounds)    256, 256 (count)    Adam 2e-3, 200-step warm-up, cosine; batch 50; LayerNorm
                                                           on the summed relation (count); readout pair and
                                                           symmetric logits (connections); whitened positions;
                                                           pair features "dynamics", edge memory and two rounds
                                                           (count) or three (connections) (RN only)
=======  ============================  ==================  ========================================================

Two rounds (``rounds=2``, **a deviation**, RN only): a second g of the same size reads, for each pair, both balls'
rows extended by their pooled first-round relations ``c_i = LayerNorm(mean_k g(o_i, o_k, e_ik))``:
``g2([o_i; c_i], [o_j; c_j], e_ij)``; its output replaces g's (read out per pair, or summed and read by f). Why: in
a system of several springs each ball's acceleration is the sum of all its springs' pulls, so whether *this* pair is
a spring depends on the ball's other relations, which one g(o_i, o_j) cannot see. Short runs (200,000 training
scenes, 1 thread, cosine over 3,000 steps, validation): connections 77.3% of scenes with every connection right
(one round) vs 80.4% (two rounds); count 81.9% vs 86.3%. A step costs about twice as much.

More rounds (``rounds=k``) repeat the second round, each reading the pooled relations of the round before.
``edge_memory`` (**a deviation**) also gives each later round the pair's own relation from the round before, as
the edge update of a graph network does, so a later g refines a pair's verdict instead of recomputing it. Same short
runs (connections, 3,000 steps; `runs/probe5`): two rounds with edge memory 83.4% (two without: 80.4%), three rounds
81.2% without and 85.4% with edge memory. Training seconds for those 3,000 steps on a shared CPU (so only rough):
two rounds 359 (an earlier session), with edge memory 321, three rounds 402, three with edge memory 526.
Full runs (30,000 steps, the `fast` preset; reports/physics.md, 4,000 fresh test scenes): connections 88.1% ->
89.8% of scenes with every connection right, counting 96.9% -> 97.6%, from adding edge memory to two rounds.
Three rounds with edge memory (the preset for connections): 92.4% (seed 7: 93.1% vs 87.7% for the old model);
resumed to 60,000 steps over 600,000 scenes: 93.9% (seed 7: 94.2%); resumed again to 90,000 steps (the shipped
model until session 11, now ``checkpoints/physics/connections_stage1``; validation 94.45% -> 94.55%): 94.0% (seed
7: 94.4%); continued 20,000 steps with ``--data.augment`` (the shipped model, reports/physics_augment.md): 94.55%
(seed 7: 94.75%).

Gated rounds (``gated_rounds=k``, **a deviation**, for growing a trained model): the last k rounds add to the
relations before them through a scalar gate that starts at 0, so a model with k more rounds starts as exactly the
trained one (``--train.init_from`` with ``--train.init_partial``). Growing the shipped connections model by one or
two rounds and continuing 12,000 steps did not lift it (reports/physics_augment.md, GPU variants).
:func:`widened` grows a trained RN the other way, wider hidden layers of g with the same function
(``scripts/physics_widen.py``): the shipped model widened to 384 or 512 hidden units and continued 11,000 / 6,500
augmented steps reached 94.375% / 94.31% of 8,000 fresh scenes, against 94.65% (reports/physics_augment.md).

Test-time averaging over the task's 16 symmetries (the square table's rotations and reflections, and time
reversal, which leave every label unchanged) is available at evaluation (``relnet eval physics
--symmetries``, :func:`relnet.tasks.physics.task.symmetry_view`) and is not used in the headline figures: on the
shipped connections model it moves scenes with every connection right from 94.55% / 94.75% to 95.4% / 95.45%; on
the stage-1 model from 94.0% / 94.4% to 95.3% / 95.2% (60,000-step model: 93.9% / 94.2% to 94.6% / 95.1%); on
the earlier two-round model from 88.0% to 88.3-89.0%. ``relnet reproduce physics --symmetries`` reports both. The
same views can serve as training-time augmentation (``--data.augment=true``: each training scene in a random one
of its 16 views, drawn from the loop's seeded augmentation generator, so resume stays exact); off in every preset.
Two more training options, for continuing a trained connections model (off in every preset; measured in
reports/physics_augment.md): ``--data.teacher`` distils a checkpoint's view-averaged probabilities into soft targets
(:func:`relnet.tasks.physics.task.teacher_probabilities`), and ``--data.system_weights`` weighs the scenes of one,
two, ... systems more, where most connection errors are.

Pair features (``pair_features``, **a deviation**, RN only): g also reads, for each pair, the distance between the
two balls in each frame and their relative acceleration along the line between them (:func:`pair_features`). Both
are non-linear in the two rows, so g's linear first layer cannot form them; a spring shows as a radial acceleration
linear in the distance, a rod as a constant distance. Short runs (connections, 50,000 training scenes, 1 thread,
cosine over 3,000 steps): scenes with every connection right after 1,000 / 2,000 steps 47.9% / 58.6% without pair
features (the 20,000-step cosine of the earlier preset), 66.6% / 71.8% with distances, 70.3% / 74.9% with
"dynamics".

See the README / reports/physics.md for the short measurements behind ``fast``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from relnet.errors import UserError
from relnet.nn import MLP, ObjectMLP, RelationNetwork
from relnet.train.config import TrainConfig

TASKS = ("connections", "count")
MODELS = ("rn", "mlp")
PRESETS = ("paper", "fast")
READOUTS = ("f", "pair")
PAIR_FEATURES = ("", "distance", "dynamics")
N_BALLS = 10
OBJECT_DIM = 35  # 16 x + 16 y + RGB


@dataclass
class ModelConfig:
    kind: str = "rn"  # rn | mlp
    task: str = "connections"  # connections | count (decides the output size)
    num_objects: int = N_BALLS
    object_dim: int = OBJECT_DIM
    g_dims: tuple[int, ...] = (1000, 1000, 1000, 500)
    f_dims: tuple[int, ...] = (500, 100)
    readout: str = "f"  # f (the paper) | pair (connections only: a logit per pair from g)
    symmetric: bool = False  # connections: average the (i, j) and (j, i) logits
    reduce: str = "sum"
    aggregate_norm: str = ""  # "" or "layer"
    input_norm: str = ""  # "" or "whiten": a fixed whitening of each row's 32 positions, fitted on training data
    pair_features: str = ""  # "", "distance" (16 per-frame distances) or "dynamics" (+ 14 radial accelerations)
    rounds: int = 1  # 1: the RN's g; k > 1: k-1 more g's, each also reading each ball's pooled (mean) relations
    edge_memory: bool = False  # rounds > 1: each later g also reads the pair's relation from the round before
    gated_rounds: int = 0  # the last k rounds add to the round before through a gate that starts at 0 (growing)


@dataclass
class DataConfig:
    train_scenes: int = 100_000
    val_scenes: int = 2_000
    seed: int = 0  # the simulator's seed; train and val are different streams of it
    root: str = ""  # cache root; "" = $RELNET_DATA or ./data
    augment: bool = False  # train on each scene in a random one of its 16 symmetric views (task.symmetry_view)
    workers: int = 0  # processes that simulate scenes missing from the cache (0: one per CPU core); no effect on them
    # connections only: distillation from a teacher's test-time average (task.teacher_probabilities). "" = off.
    teacher: str = ""  # a connections checkpoint; its view-averaged probabilities become soft targets
    teacher_views: tuple[int, ...] = (0, 2, 4, 8)  # the teacher's symmetric views (task.symmetry_view), averaged
    teacher_weight: float = 0.5  # the target of each entry: w * teacher probability + (1 - w) * the true label
    # the training loss of a scene with 1, 2, ... systems is multiplied by these (the rest by 1): the scenes of one
    # or two large systems hold most of the connection errors. () = every scene weighs 1.
    system_weights: tuple[float, ...] = ()


@dataclass
class RunConfig:
    task: str = "connections"  # connections | count
    preset: str = "fast"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def preset(name: str, task: str = "connections", kind: str = "rn") -> RunConfig:
    """The run configuration of preset ``name`` for ``task`` and model ``kind``."""
    if name not in PRESETS:
        raise UserError(f"--preset {name}: expected one of {', '.join(PRESETS)}")
    if task not in TASKS:
        raise UserError(f"--task {task}: expected one of {', '.join(TASKS)}")
    if kind not in MODELS:
        raise UserError(f"--model {kind}: expected one of {', '.join(MODELS)}")
    if name == "paper":
        model = ModelConfig(kind=kind, task=task, g_dims=(1000, 1000, 1000, 500), f_dims=(500, 100), readout="f")
        train = TrainConfig(steps=100_000, batch_size=50, lr=1e-4, eval_every=2000, checkpoint_every=2000,
                            log_every=200)
        data = DataConfig()
    else:
        pair = task == "connections" and kind == "rn"
        width = 320 if task == "connections" and kind == "mlp" else 256  # the MLP keeps up with 3 RN rounds
        model = ModelConfig(kind=kind, task=task, g_dims=(width,) * 3, f_dims=(width,) * 2,
                            readout="pair" if pair else "f", symmetric=task == "connections",
                            aggregate_norm="" if pair else "layer", input_norm="whiten",
                            pair_features="dynamics" if kind == "rn" else "",
                            rounds=(3 if pair else 2) if kind == "rn" else 1, edge_memory=kind == "rn")
        # the shipped runs: 30,000 steps over 200,000 scenes; connections RN 90,000 over 600,000 (it still gained)
        steps, scenes = (90_000, 600_000) if pair else (30_000, 200_000)
        train = TrainConfig(steps=steps, batch_size=50, lr=2e-3, schedule="cosine", warmup_steps=200,
                            min_lr=2e-5, eval_every=1000, checkpoint_every=1000, log_every=100)
        data = DataConfig(train_scenes=scenes)
    return RunConfig(task=task, preset=name, model=model, data=data, train=train)


# -- models ---------------------------------------------------------------------------------------------------------


class PairReadoutRN(nn.Module):
    """The RN's g on every ordered pair, read out per pair (``readout="pair"``) or summed and read out by f.

    ``readout="pair"``: ``logit_ij = w . g(o_i, o_j, e_ij) + b`` (no sum over pairs, no f).
    ``readout="f"``: ``f(LayerNorm(sum_ij g(o_i, o_j, e_ij)))`` (the RN, with pair features).

    ``e_ij`` are optional pair features (``pair_dim > 0``): inputs that belong to the pair, not to either object,
    such as the distance between two balls in each frame. g's first layer is factorised as in
    :class:`relnet.nn.RelationNetwork`: ``W [o_i; o_j; e_ij] + b = W_a o_i + W_b o_j + W_e e_ij + b``, so each object
    is projected once.

    ``rounds=k > 1``: k-1 more g's of the same sizes; round r reads ``[o_i; c_i], [o_j; c_j], e_ij`` with
    ``c_i = LayerNorm_r(mean_k h_ik)`` over the previous round's relations ``h`` (and, with ``edge_memory``, also
    ``h_ij`` itself next to ``e_ij``); the last round's relations are read out. The last ``gated_rounds`` rounds
    add to the relations before them instead of replacing them, ``h <- h + a_r g_r(...)``, with a scalar gate ``a_r``
    that starts at 0 (as in ReZero): such a round leaves the model's function unchanged at initialisation, so it can
    be added to a trained model (``--train.init_from`` with ``--train.init_partial``) and trained from there.

    Shapes: objects ``(B, N, D)``, pair features ``(B, N, N, E)`` or None -> logits ``(B, N, N)`` (pair) or
    ``(B, out_dim)`` (f).
    """

    def __init__(self, *, object_dim: int, g_dims: tuple[int, ...], pair_dim: int = 0, readout: str = "pair",
                 f_dims: tuple[int, ...] = (), out_dim: int = 1, aggregate_norm: str = "", rounds: int = 1,
                 edge_memory: bool = False, gated_rounds: int = 0) -> None:
        super().__init__()
        if not g_dims:
            raise ValueError("g_dims must have at least one layer")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        if edge_memory and rounds < 2:
            raise ValueError("edge_memory needs rounds >= 2")
        if not 0 <= gated_rounds < rounds:
            raise ValueError(f"gated_rounds must be in 0..rounds-1 = 0..{rounds - 1}, got {gated_rounds}")
        self.object_dim, self.pair_dim, self.readout, self.rounds = object_dim, pair_dim, readout, rounds
        self.edge_memory = edge_memory
        G = g_dims[-1]
        self.g_in = nn.Linear(2 * object_dim + pair_dim, g_dims[0])
        self.g_rest = MLP(g_dims[0], list(g_dims[1:]))
        # Rounds 2.. (see the docstring): each reads [o_i; c_i], [o_j; c_j], e_ij (and, with edge_memory, the pair's
        # previous relation). Round 2 keeps its original attribute names so that older checkpoints still load.
        later_in = 2 * (object_dim + G) + pair_dim + (G if edge_memory else 0)
        if rounds >= 2:
            self.context_norm = nn.LayerNorm(G)
            self.g2_in = nn.Linear(later_in, g_dims[0])
            self.g2_rest = MLP(g_dims[0], list(g_dims[1:]))
        self.later = nn.ModuleList(
            nn.ModuleDict({"norm": nn.LayerNorm(G), "g_in": nn.Linear(later_in, g_dims[0]),
                           "g_rest": MLP(g_dims[0], list(g_dims[1:]))})
            for _ in range(rounds - 2)
        )
        if gated_rounds:  # one scalar per gated round, 0 at first: the round adds nothing until training opens it
            self.round_gates = nn.Parameter(torch.zeros(gated_rounds))
        self.gated_rounds = gated_rounds
        if readout == "pair":
            self.edge = nn.Linear(G, 1)
        else:
            self.norm = nn.LayerNorm(G) if aggregate_norm == "layer" else nn.Identity()
            self.f = MLP(G, list(f_dims), out_dim)

    def extra_repr(self) -> str:
        return (f"readout={self.readout}, pair_dim={self.pair_dim}, rounds={self.rounds}, "
                f"edge_memory={self.edge_memory}, gated_rounds={self.gated_rounds}")

    def relations(self, objects: Tensor, pair_features: Tensor | None = None) -> Tensor:
        """``g(o_i, o_j, e_ij)`` for every ordered pair: ``(B, N, D), (B, N, N, E) -> (B, N, N, G)``."""
        if objects.ndim != 3 or objects.shape[-1] != self.object_dim:
            raise ValueError(f"objects must have shape (B, N, {self.object_dim}), got {tuple(objects.shape)}")
        B, N, D = objects.shape
        if self.pair_dim and (pair_features is None or pair_features.shape != (B, N, N, self.pair_dim)):
            got = None if pair_features is None else tuple(pair_features.shape)
            raise ValueError(f"pair features must have shape ({B}, {N}, {N}, {self.pair_dim}), got {got}")
        rel = _pair_mlp(self.g_in, self.g_rest, objects, pair_features)  # (B, N, N, G)
        stages = [(self.context_norm, self.g2_in, self.g2_rest)] if self.rounds >= 2 else []
        stages += [(m["norm"], m["g_in"], m["g_rest"]) for m in self.later]
        first_gated = len(stages) - self.gated_rounds
        for r, (norm, g_in, g_rest) in enumerate(stages):
            context = norm(rel.mean(dim=2))  # (B, N, G): ball i's relations to every ball, pooled
            pairs = pair_features
            if self.edge_memory:
                pairs = rel if pairs is None else torch.cat([pairs, rel], dim=-1)  # (B, N, N, E+G)
            new = _pair_mlp(g_in, g_rest, torch.cat([objects, context], dim=-1), pairs)
            rel = new if r < first_gated else rel + self.round_gates[r - first_gated] * new
        return rel

    def forward(self, objects: Tensor, pair_features: Tensor | None = None) -> Tensor:
        rel = self.relations(objects, pair_features)  # (B, N, N, G)
        if self.readout == "pair":
            return self.edge(rel).squeeze(-1)  # (B, N, N)
        return self.f(self.norm(rel.sum(dim=(1, 2))))  # (B, out_dim)


def _pair_mlp(first: nn.Linear, rest: nn.Module, rows: Tensor, pair_features: Tensor | None) -> Tensor:
    """``rest(relu(first([r_i; r_j; e_ij])))`` for every ordered pair, with ``first`` factorised so that each row is
    projected once: ``(B, N, D), (B, N, N, E) or None -> (B, N, N, G)``."""
    B, N, D = rows.shape
    w = first.weight  # (H, 2D+E)
    left = rows @ w[:, :D].T  # (B, N, H)
    right = rows @ w[:, D : 2 * D].T + first.bias  # (B, N, H)
    h = left[:, :, None, :] + right[:, None, :, :]  # (B, N, N, H)
    if pair_features is not None and w.shape[1] > 2 * D:
        h = h + pair_features @ w[:, 2 * D :].T  # (B, N, N, H)
    return rest(torch.relu(h).reshape(B * N * N, -1)).view(B, N, N, -1)  # (B, N, N, G)


def pair_features(objects: Tensor, kind: str, frames: int = 16) -> Tensor:
    """Pair features for g: ``"distance"`` -> :func:`pair_distances` ``(B, N, N, T)``; ``"dynamics"`` -> those
    and the relative acceleration along the line between the balls at the inner frames ``(B, N, N, 2T - 2)``.

    Why the radial acceleration: a spring pulls the two balls along the line between them with a force linear in the
    distance, so for an isolated spring pair ``a_r(t) = -2k (d(t) - L)``; free balls have ``a_r`` near 0 (only the
    centripetal term) and a rod keeps ``d`` constant. Both are products of the two rows' differences, which g's
    first layer (linear in ``[o_i; o_j]``) cannot form. Scale is irrelevant: the model whitens the features.
    """
    if kind not in PAIR_FEATURES[1:]:
        raise ValueError(f"pair features must be one of {PAIR_FEATURES[1:]}, got {kind!r}")
    rel = _pair_offsets(objects, frames)  # (B, N, N, T, 2)
    d = _length(rel)  # (B, N, N, T)
    if kind == "distance":
        return d
    acc = rel[..., 2:, :] - 2 * rel[..., 1:-1, :] + rel[..., :-2, :]  # (B, N, N, T-2, 2) second differences
    unit = rel[..., 1:-1, :] / (d[..., 1:-1, None] + 1e-6)  # (B, N, N, T-2, 2); 0 on the diagonal
    return torch.cat([d, (acc * unit).sum(-1)], dim=-1)  # (B, N, N, 2T-2)


PAIR_DIMS = {"distance": lambda frames: frames, "dynamics": lambda frames: 2 * frames - 2}


def pair_distances(objects: Tensor, frames: int = 16) -> Tensor:
    """The distance between balls i and j in each frame: ``(B, N, D) -> (B, N, N, frames)``.

    Rows are ``[x_0..x_{T-1}, y_0..y_{T-1}, ...]`` (``relnet.tasks.physics.sim.objects``). A rigid pair keeps its
    distance, a spring pair's distance oscillates about the rest length; unconnected balls' distance follows their
    free paths. The distance is not a linear function of the two rows, so g's first layer cannot form it itself.
    """
    return _length(_pair_offsets(objects, frames))


def _pair_offsets(objects: Tensor, frames: int) -> Tensor:
    """``o_i - o_j`` in position, per frame: ``(B, N, D) -> (B, N, N, frames, 2)`` (x, y)."""
    xy = torch.stack([objects[..., :frames], objects[..., frames : 2 * frames]], dim=-1)  # (B, N, T, 2)
    return xy[:, :, None] - xy[:, None]


def _length(offsets: Tensor) -> Tensor:
    """Euclidean length over the last axis, smooth at 0 (the diagonal): ``(..., 2) -> (...)``."""
    return torch.sqrt((offsets * offsets).sum(-1) + 1e-12)


class PhysicsModel(nn.Module):
    """An RN or the MLP baseline for one of the two physics tasks.

    Shapes: objects ``(B, N, 35)`` -> logits ``(B, N, N)`` (connections) or ``(B, N)`` (count: class k = k+1 systems).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {cfg.task!r}")
        if cfg.kind not in MODELS:
            raise ValueError(f"kind must be one of {MODELS}, got {cfg.kind!r}")
        if cfg.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {cfg.readout!r}")
        if cfg.readout == "pair" and (cfg.task != "connections" or cfg.kind != "rn"):
            raise ValueError("readout 'pair' needs task 'connections' and model 'rn'")
        if cfg.pair_features not in PAIR_FEATURES:
            raise ValueError(f"pair_features must be one of {PAIR_FEATURES}, got {cfg.pair_features!r}")
        if cfg.pair_features and cfg.kind != "rn":
            raise ValueError("pair_features need model 'rn'")
        if cfg.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {cfg.rounds}")
        if cfg.rounds != 1 and cfg.kind != "rn":
            raise ValueError("rounds > 1 needs model 'rn'")
        if cfg.edge_memory and cfg.rounds < 2:
            raise ValueError("edge_memory needs rounds >= 2")
        if not 0 <= cfg.gated_rounds < cfg.rounds:
            raise ValueError(f"gated_rounds must be in 0..rounds-1 = 0..{cfg.rounds - 1}, got {cfg.gated_rounds}")
        self.cfg = cfg
        self.task, self.kind, self.readout, self.symmetric = cfg.task, cfg.kind, cfg.readout, cfg.symmetric
        self.pair_features = cfg.pair_features
        if cfg.input_norm not in ("", "whiten"):
            raise ValueError(f"input_norm must be '' or 'whiten', got {cfg.input_norm!r}")
        N, D = cfg.num_objects, cfg.object_dim
        self.num_objects = N
        self.input_norm = cfg.input_norm
        if cfg.input_norm:
            P = D - 3  # the position features; the colours pass through
            self.register_buffer("in_mean", torch.zeros(P))
            self.register_buffer("in_proj", torch.eye(P))
        out = N * N if cfg.task == "connections" else N
        frames = (D - 3) // 2
        pair_dim = PAIR_DIMS[cfg.pair_features](frames) if cfg.pair_features else 0
        if pair_dim:  # fixed whitening of the pair features, fitted with the positions'
            self.register_buffer("pair_mean", torch.zeros(pair_dim))
            self.register_buffer("pair_proj", torch.eye(pair_dim))
        self.frames = frames
        if cfg.kind == "mlp":
            self.net = ObjectMLP(num_objects=N, object_dim=D, hidden_dims=tuple(cfg.g_dims) + tuple(cfg.f_dims),
                                 out_dim=out)
        elif cfg.readout == "pair" or cfg.pair_features or cfg.rounds > 1:
            self.net = PairReadoutRN(object_dim=D, g_dims=tuple(cfg.g_dims), pair_dim=pair_dim,
                                     readout=cfg.readout, f_dims=tuple(cfg.f_dims), out_dim=out,
                                     aggregate_norm=cfg.aggregate_norm, rounds=cfg.rounds,
                                     edge_memory=cfg.edge_memory, gated_rounds=cfg.gated_rounds)
        else:
            self.net = RelationNetwork(object_dim=D, g_dims=cfg.g_dims, f_dims=cfg.f_dims, out_dim=out,
                                       reduce=cfg.reduce, aggregate_norm=cfg.aggregate_norm or None)

    def forward(self, objects: Tensor) -> Tensor:
        B, N, _ = objects.shape
        if N != self.num_objects:
            raise ValueError(f"objects must have shape (B, {self.num_objects}, D), got {tuple(objects.shape)}")
        pair = None
        if self.pair_features:
            pair = (pair_features(objects, self.pair_features, self.frames) - self.pair_mean) @ self.pair_proj
        if self.input_norm:
            P = self.in_mean.numel()
            pos = (objects[..., :P] - self.in_mean) @ self.in_proj  # (B, N, P): decorrelated, unit variance
            objects = torch.cat([pos, objects[..., P:]], dim=-1)  # (B, N, D)
        logits = self.net(objects) if pair is None else self.net(objects, pair)
        if self.task == "count":
            return logits  # (B, N)
        logits = logits.view(B, N, N)  # (B, N, N): entry (i, j) = pair (i, j), as sim's edges
        if self.symmetric:
            logits = 0.5 * (logits + logits.transpose(1, 2))
        return logits


    @torch.no_grad()
    def fit_input_norm(self, objects: Tensor, eps: float = 1e-6) -> None:
        """Set the whitening from training objects ``(S, N, D)``: ``W = C^{-1/2}`` of the position features.

        The 16 x's (and y's) of a row are strongly correlated (a smooth path); what tells connections apart is in
        the small-variance directions (accelerations), which whitening brings to the same scale as the rest. It is a
        fixed linear map of the same inputs (no new information), saved with the weights.
        """
        if self.input_norm:
            P = self.in_mean.numel()
            mean, proj = _whitening(objects[..., :P].reshape(-1, P), eps)
            self.in_mean.copy_(mean)
            self.in_proj.copy_(proj)
        if self.pair_features:
            E = self.pair_mean.numel()
            e = pair_features(objects[:2000], self.pair_features, self.frames)  # (S, N, N, E); diagonal included
            mean, proj = _whitening(e.reshape(-1, E), eps)
            self.pair_mean.copy_(mean)
            self.pair_proj.copy_(proj)


def _whitening(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Mean and symmetric inverse square root of the covariance of the rows of ``x`` ``(M, P)``."""
    x = x.double()
    mean = x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T))  # (P,), (P, P)
    proj = evecs @ torch.diag(evals.clamp(min=eps).rsqrt()) @ evecs.T
    return mean.float(), proj.float()


def widened(model: PhysicsModel, g_dims: tuple[int, ...], *, seed: int = 0) -> PhysicsModel:
    """A trained RN -> one with wider hidden layers in g that computes exactly the same function (for
    ``--train.init_from``).

    ``g_dims`` must have the old model's length and last width (the relation width, which LayerNorms and the readout
    read) and no narrower entry. Every old weight keeps its place; each new hidden unit gets a seeded fresh input row
    (PyTorch's default initialisation) and outgoing weights of 0 into the old units, so it adds nothing until
    training moves those weights, and they get gradient at once because the new units are active. This is the
    zero-output variant of Net2WiderNet (Chen et al. 2016): the new units start different from each other and from
    the old ones, so no noise is needed to break symmetry.
    """
    if not isinstance(model.net, PairReadoutRN):
        raise UserError("widened: only the RN with pair features or rounds (PairReadoutRN) can be widened")
    dims, old_dims = tuple(int(d) for d in g_dims), tuple(model.cfg.g_dims)
    if len(dims) != len(old_dims) or dims[-1] != old_dims[-1] or any(n < o for n, o in zip(dims, old_dims)):
        raise UserError(f"widened: g {','.join(map(str, old_dims))} can grow to wider hidden layers with the same "
                        f"depth and last width, not to {','.join(map(str, dims))}")
    cfg = dataclasses.replace(model.cfg, g_dims=dims)
    with torch.random.fork_rng():  # seed the new tensors without touching the caller's random state
        torch.manual_seed(seed)
        new = PhysicsModel(cfg)
    state = new.state_dict()
    for key, v in model.state_dict().items():
        w = state[key].clone()
        w[tuple(slice(0, n) for n in v.shape)] = v  # the old tensor keeps its place (new units come last)
        if w.ndim == 2 and w.shape[1] > v.shape[1]:
            w[: v.shape[0], v.shape[1]:] = 0  # old units ignore the new ones
        state[key] = w
    new.load_state_dict(state, strict=True)
    return new.train(model.training)


def build_model(cfg: ModelConfig) -> PhysicsModel:
    return PhysicsModel(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ModelConfig", "DataConfig", "RunConfig", "preset", "PhysicsModel", "PairReadoutRN", "pair_distances",
           "pair_features", "widened", "build_model", "count_parameters", "TASKS", "MODELS", "PRESETS"]
