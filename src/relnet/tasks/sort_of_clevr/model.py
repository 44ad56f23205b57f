"""Sort-of-CLEVR models and presets: CNN+RN, CNN+MLP (the paper's baseline) and a state-description RN.

Presets (``--preset``), all with the 11-bit question vector fed straight into g (no LSTM, as in the paper):

=========  =========================  ==========  ======================  =========================================
preset     CNN (3x3, BN, ReLU)        g           f (+ linear to 10)      optimiser
=========  =========================  ==========  ======================  =========================================
paper      32, 64, 128, 256 stride 2  4 x 2000    2000, 1000, 500, 100    Adam 1e-4, batch 64
compact    24, 24, 24, 24 stride 2    4 x 256     256, 256 (dropout 0.5)  Adam 1e-4, batch 64 (kimhc6028's model)
fast       24, 24, 24, 24; each       3 x 128,    256, 256, BatchNorm     Adam 6e-4, batch 256, 500 warm-up steps,
           stride-1 conv then a 2x2   BatchNorm   in each hidden layer;   cosine over 5,000 steps (state RN: 2e-3,
           max-pool                   in each     LayerNorm on the        batch 64, 12,000 steps; its g also
                                      layer       summed relation         reads each pair's distance)
keypoints  24, 24, 24 stride 2, 2, 1  3 x 128 as   256, 256 as fast        two stages, Adam 1e-3, batch 64: 8,000
           and 6 soft keypoints with  fast, pair                          steps learn the keypoints under a plain
           colour anchors;            distances                           RN head; 24,000 train the per-object MLP
           then frozen, a per-object                                      and a fresh head on them (CNN+MLP: the
           MLP 2 x 64 (CNN+RN only)                                       same stages with its own head); CNN+RN:
                                                                          stage 1 restarts (next seed) if its
                                                                          training accuracy at step 3,000 < 0.80
=========  =========================  ==========  ======================  =========================================

``paper`` follows the paper's Sort-of-CLEVR section (far too slow for a CPU: ~50x the compact model's arithmetic
per question; it builds and runs). ``compact`` is the CLEVR-sized model that kimhc6028's public reproduction trains,
so its throughput can be compared with theirs. ``fast`` was chosen by measurement (reports/sort_of_clevr_diagnosis.md):

* every pixel RN with the strided CNN (``compact``, the paper's CNN, ``fast`` before session 8, and a dozen head
  variants) sat on a plateau for 28,000+ steps of 64: shape ~65%, left/top at chance, relational ~75%;
* three changes together leave it (section 6, measured side by side on a GPU; none of them alone did): a CNN whose
  5x5 cells max-pool full-resolution feature maps (``cnn_downsample="maxpool"``), BatchNorm between g's and f's
  hidden layers and their ReLUs (``hidden_norm="batch"``, not in the paper) and a batch of 256 at 6e-4;
* g is narrow (its first layer factorised, 2 dense 128x128 layers per pair) and the sum over pairs is LayerNorm'd
  (not in the paper): the sum learned far better than the mean (state RN, 1,500 steps at lr 1e-3: left/top 98% with
  the sum, 45-47% with the mean). The state RN is stable at 2e-3. Without pair distances it needs 24,000 steps: at
  12,000, seeds 0-2 stop at 88.1 / 97.4 / 87.7% relational ('closest' unlearned), at 24,000 they reach 98.2 / 98.0 /
  98.4% on 1,000 fresh images (diagnosis section 11). With each pair's distance as one more input of g
  (``pair_distance``, not in the paper; diagnosis section 13) seeds 0-2 reach 99.1 / 98.6 / 98.4% at 12,000 steps
  (~2 min on 1 thread): "closest" becomes a threshold on an input instead of a function g must build from four
  coordinates. The pixel presets do not use it (with cells' coordinates it is not measured; with keypoints it did
  not help, section 13).

The CNN+MLP baseline has the same CNN, norms and training recipe as the CNN+RN; only the head differs: an MLP reads
the flattened 5x5 feature map with coordinates plus the question through as many layers of the same widths as g and
f together (BatchNorm in each), so it has at least as many parameters. Before session 9 it used the strided CNN and
the old recipe (3e-4, batch 64, 9,000 steps): 43.0% relational, 58.4% non-relational.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.errors import UserError
from relnet.nn import MLP, ConvObjects, KeypointObjects, ObjectMLP, RelationNetwork
from relnet.tasks.sort_of_clevr import data as soc
from relnet.train.config import TrainConfig
from relnet.train.options import check_hidden_norm

MODELS = ("rn", "mlp", "rn-state")
PRESETS = ("paper", "compact", "fast", "keypoints")


@dataclass
class ModelConfig:
    kind: str = "rn"  # rn | mlp | rn-state
    cnn_channels: tuple[int, ...] = (24, 24, 24, 24)
    cnn_order: str = "bn-relu"  # or "relu-bn" (kimhc6028's order)
    cnn_downsample: str = "stride"  # or "maxpool" (stride-1 convolutions + 2x2 max-pools: the same 5x5 grid)
    cnn_coords: str = "append"  # or "input" (CoordConv: x, y as input channels) or "both"
    cnn_objects: str = "grid"  # or "keypoints": K soft keypoints of a small CNN (relnet.nn.KeypointObjects)
    cnn_strides: tuple[int, ...] = (2, 2, 1)  # keypoints: the stride of each of cnn_channels' convolutions
    keypoints: int = 8  # keypoints: K
    keypoint_sharpness: float = 1.0  # keypoints: initial factor on the attention logits (KeypointObjects)
    keypoint_sharpen: float = 1.0  # keypoints: scheduled extra factor, reached at the end of keypoint_sharpen_steps
    keypoint_sharpen_steps: tuple[int, ...] = (0, 0)  # keypoints: (start, end) of that ramp, in training batches
    keypoint_standardize: bool = False  # keypoints: standardised attention logits, sharpness not learned
    keypoint_position: str = "soft"  # keypoints: or "local" (soft-argmax in the 3x3 window around the peak), "both"
    keypoint_local_features: bool = False  # keypoints: also the features pooled in the 3x3 window at the peak
    keypoint_compete: bool = False  # keypoints: they share each position out (softmax over keypoints + background)
    keypoint_anchors: float = 0.0  # keypoints: > 0: colour anchors from a k-means of the training pixels, this weight
    object_encoder: tuple[int, ...] = ()  # rn: a per-object MLP on each object's features (its position passed on)
    freeze_objects: bool = False  # rn/mlp: the CNN is not trained (BatchNorm statistics frozen too): a head probe
    pair_distance: bool = False  # rn, rn-state: g also reads each pair's distance (relnet.RelationNetwork)
    g_dims: tuple[int, ...] = (256, 256, 256, 256)
    f_dims: tuple[int, ...] = (256, 256)
    f_dropout: tuple[float, ...] = (0.0, 0.5)
    reduce: str = "sum"
    aggregate_norm: str = ""  # "" or "layer"
    hidden_norm: str = ""  # "" (paper) | layer | batch: a norm before each hidden ReLU (of g and f, or of the MLP)
    mask_background: bool = False  # rn: leave out the grid cells whose 15x15 pixels are all background (white)
    reconstruct: float = 0.0  # rn/mlp: weight of an auxiliary loss: each cell redraws its own pixel block (0 = off)


@dataclass
class DataConfig:
    train_images: int = 9800
    test_images: int = 200
    seed: int = 1
    root: str = ""  # cache root; "" = $RELNET_DATA or ./data
    # a folder of train.npz + test.npz to train on instead of generated images (e.g. kimhc6028's pickle converted by
    # `relnet data sort-of-clevr --from-kimhc`); train_images, test_images and seed are then unused
    folder: str = ""


@dataclass
class RestartConfig:
    """The first stage starts over, from the next seed, when its training accuracy (over the ``log_every`` steps that
    end at ``at_step``) is below ``below``; at most ``tries`` starts in all, the last one kept whatever it reaches."""

    at_step: int = 0  # 0, or not before the stage's last step: never
    below: float = 0.0
    tries: int = 3


@dataclass
class RunConfig:
    task: str = "sort-of-clevr"
    preset: str = "fast"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # A first stage (the `keypoints` preset): the CNN's objects are learned under a plain RN head (no object encoder,
    # nothing frozen) for objects.steps steps into <run>/objects; the main run then starts from that CNN alone
    # (--train.init_only=cnn.). steps 0: no such stage. threads 0: as --train.threads.
    objects: TrainConfig = field(default_factory=lambda: TrainConfig(steps=0))
    objects_restart: RestartConfig = field(default_factory=RestartConfig)


def preset(name: str, kind: str = "rn") -> RunConfig:
    """The run configuration of a named preset for model ``kind``."""
    if name not in PRESETS:
        raise UserError(f"--preset {name}: expected one of {', '.join(PRESETS)}")
    if kind not in MODELS:
        raise UserError(f"--model {kind}: expected one of {', '.join(MODELS)}")
    if name == "paper":
        model = ModelConfig(kind=kind, cnn_channels=(32, 64, 128, 256), g_dims=(2000,) * 4,
                            f_dims=(2000, 1000, 500, 100), f_dropout=(0.0,) * 4)
        train = TrainConfig(steps=30_000, batch_size=64, lr=1e-4, eval_every=1000, checkpoint_every=1000)
    elif name == "compact":
        model = ModelConfig(kind=kind)
        train = TrainConfig(steps=61_250, batch_size=64, lr=1e-4, eval_every=1000, checkpoint_every=1000)
    else:
        model = ModelConfig(kind=kind, g_dims=(128, 128, 128), f_dims=(256, 256), f_dropout=(0.0, 0.0),
                            aggregate_norm="layer")
        train = TrainConfig(steps=9_000, batch_size=64, lr=3e-4, schedule="cosine", warmup_steps=500,
                            min_lr=1e-5, eval_every=1000, checkpoint_every=1000, log_every=100)
        if kind in ("rn", "mlp"):  # the plateau exit (reports/sort_of_clevr_diagnosis.md, sections 6-7); the
            # CNN+MLP gets the same CNN and recipe, so the two differ only in the head (section 9)
            model = dataclasses.replace(model, cnn_downsample="maxpool", hidden_norm="batch")
            train = dataclasses.replace(train, steps=5_000, batch_size=256, lr=6e-4, eval_every=250,
                                        checkpoint_every=100, log_every=50)
        if kind == "rn-state":  # 36 pairs instead of 625: ~10x cheaper per step, and stable at a higher rate
            model = dataclasses.replace(model, pair_distance=True)
            train = dataclasses.replace(train, steps=12_000, lr=2e-3, warmup_steps=200, min_lr=4e-5)
    if kind == "mlp":
        train = dataclasses.replace(train, steps=min(train.steps, 9000))
    if name == "keypoints":
        return keypoint_preset(kind)
    return RunConfig(preset=name, model=model, train=train)


def keypoint_preset(kind: str) -> RunConfig:
    """``--preset keypoints`` (CNN+RN and CNN+MLP): 6 learned keypoints as objects, trained in two stages.

    1. ``objects`` (8,000 steps of 64 at 1e-3): a 3-layer CNN (19x19 map) and 6 soft keypoints under the fast RN head
       with pair distances, end to end from the answers. Each keypoint comes to follow one colour; its object is the
       attention-pooled features and its soft and local positions (``relnet.nn.KeypointObjects``).
    2. the final model (24,000 steps of 64 at 1e-3): that CNN frozen, its objects computed once for every training
       image, a per-object MLP (2 x 64) on each object's features, then a fresh RN head. g's first layer is linear in
       each object, so the shape that the CNN's channels hold non-linearly needs that MLP before g can gate it by a
       pair's distance (reports/sort_of_clevr_diagnosis.md, section 13).

    Without help, stage 1 formed all its keypoints from 3 of 11 seeds measured; the others stayed on a plateau or
    formed only some, visible by step 3,000 (training accuracy 0.64-0.78 against 0.83-0.87), and which seeds formed
    them differed between two CPUs (sections 14-15). So the keypoints have colour anchors (``keypoint_anchors``
    20: each keypoint starts on one of the colours that a k-means of the training pixels finds, label-free; section
    16): every seed measured then forms all six (0.88-0.89 at step 3,000). The restart rule stays as a guard: stage 1
    starts over from the next seed when its training accuracy at step 3,000 is below 0.80, up to 8 tries
    (``objects_restart``).

    The CNN+MLP baseline gets the same two stages and anchored keypoints with its own head in both (its keypoints are
    learned under the MLP in stage 1), no per-object MLP (its first layer sees every object's features anyway) and
    no restart rule.
    """
    if kind not in ("rn", "mlp"):
        raise UserError(f"--preset keypoints is for --model rn or mlp, not {kind}")
    model = ModelConfig(kind=kind, cnn_objects="keypoints", cnn_channels=(24, 24, 24), keypoints=6,
                        keypoint_sharpness=3.0, keypoint_position="both", keypoint_anchors=20.0,
                        freeze_objects=True, g_dims=(128, 128, 128), f_dims=(256, 256), f_dropout=(0.0, 0.0),
                        hidden_norm="batch")
    if kind == "rn":
        model = dataclasses.replace(model, object_encoder=(64, 64), pair_distance=True, aggregate_norm="layer")
    objects = TrainConfig(steps=8_000, batch_size=64, lr=1e-3, schedule="cosine", warmup_steps=500, min_lr=1e-5,
                          eval_every=1000, checkpoint_every=500, log_every=100)
    train = dataclasses.replace(objects, steps=24_000, warmup_steps=200, eval_every=2000, checkpoint_every=2000)
    restart = RestartConfig(at_step=3000, below=0.80, tries=8) if kind == "rn" else RestartConfig()
    return RunConfig(preset="keypoints", model=model, train=train, objects=objects, objects_restart=restart)


def objects_stage(cfg: RunConfig) -> RunConfig | None:
    """The first stage's run configuration (see ``RunConfig.objects``), or None for a single-stage run."""
    if cfg.objects.steps == 0:
        return None
    if cfg.model.kind not in ("rn", "mlp") or cfg.model.cnn_objects != "keypoints" or not cfg.model.freeze_objects:
        raise UserError("--objects.steps > 0 (a first stage that learns the objects) needs --model rn or mlp with "
                        "--model.cnn_objects=keypoints and --model.freeze_objects=true")
    if cfg.train.init_from:
        raise UserError("--train.init_from: the main run starts from the objects stage; set --objects.steps=0 to "
                        "start from another checkpoint instead")
    r = cfg.objects_restart
    if r.at_step < 0 or r.tries < 1 or not 0 <= r.below <= 1:
        raise UserError(f"--objects_restart.at_step={r.at_step} .below={r.below} .tries={r.tries}: need at_step >= 0, "
                        "below in [0, 1] and tries >= 1")
    if 0 < r.at_step < cfg.objects.steps and r.at_step % cfg.objects.log_every:
        raise UserError(f"--objects_restart.at_step={r.at_step}: the check reads the training accuracy logged there, "
                        f"so it must be a multiple of --objects.log_every ({cfg.objects.log_every})")
    model = dataclasses.replace(cfg.model, object_encoder=(), freeze_objects=False)
    train = dataclasses.replace(cfg.objects, threads=cfg.objects.threads or cfg.train.threads)
    return dataclasses.replace(cfg, model=model, train=train, objects=TrainConfig(steps=0))


class PixelModel(nn.Module):
    """CNN objects from a 75x75 image, then an RN (``kind="rn"``) or an MLP over all cells (``kind="mlp"``).

    Shapes: image ``(B, 3, 75, 75)`` float in [0, 1], question ``(B, 11)`` -> logits ``(B, 10)``.
    """

    def __init__(self, cfg: ModelConfig, image_size: int = 75) -> None:
        super().__init__()
        if cfg.cnn_objects == "keypoints":
            self.cnn = KeypointObjects(channels=cfg.cnn_channels, strides=cfg.cnn_strides, num_keypoints=cfg.keypoints,
                                       sharpness=cfg.keypoint_sharpness, sharpen=cfg.keypoint_sharpen,
                                       sharpen_between=tuple(cfg.keypoint_sharpen_steps),
                                       standardize=cfg.keypoint_standardize, position=cfg.keypoint_position,
                                       local_features=cfg.keypoint_local_features,
                                       compete=cfg.keypoint_compete, anchors=cfg.keypoint_anchors)
            num_objects = cfg.keypoints
        else:
            self.cnn = ConvObjects(channels=cfg.cnn_channels, order=cfg.cnn_order, downsample=cfg.cnn_downsample,
                                   coords=cfg.cnn_coords)
            d = ConvObjects.output_size(image_size, len(cfg.cnn_channels))
            self.grid, num_objects = d, d * d
        self.mask_background = cfg.mask_background
        self.freeze_objects = cfg.freeze_objects
        if self.freeze_objects:
            self.cnn.eval()  # and kept so by train()
        self.reconstruct = float(cfg.reconstruct)
        if self.reconstruct:  # a per-cell decoder from the CNN's features (not the coordinates) to its RGB block
            self.block = -(-image_size // d)  # pixels per cell side: 75 / 5 = 15
            self.cnn_channels = cfg.cnn_channels[-1]
            self.decoder = nn.Sequential(nn.Linear(self.cnn_channels, 256), nn.ReLU(inplace=True),
                                         nn.Linear(256, 3 * self.block ** 2))
        self.encoder = ObjectEncoder(self.cnn.object_dim, cfg.object_encoder) if cfg.object_encoder else None
        object_dim = self.encoder.object_dim if self.encoder is not None else self.cnn.object_dim
        if cfg.kind == "rn":
            self.head = RelationNetwork(object_dim=object_dim, question_dim=soc.QUESTION_DIM,
                                        g_dims=cfg.g_dims, f_dims=cfg.f_dims, out_dim=soc.NUM_ANSWERS,
                                        f_dropout=cfg.f_dropout, reduce=cfg.reduce,
                                        aggregate_norm=cfg.aggregate_norm or None, hidden_norm=cfg.hidden_norm or None,
                                        pair_distance=cfg.pair_distance)
        else:
            dims = tuple(cfg.g_dims) + tuple(cfg.f_dims)
            dropout = (0.0,) * len(cfg.g_dims) + tuple(cfg.f_dropout)
            self.head = ObjectMLP(num_objects=num_objects, object_dim=self.cnn.object_dim,
                                  question_dim=soc.QUESTION_DIM, hidden_dims=dims, out_dim=soc.NUM_ANSWERS,
                                  dropout=dropout, hidden_norm=cfg.hidden_norm or None)

    def train(self, mode: bool = True) -> PixelModel:
        """As ``nn.Module.train``, except that frozen objects keep the CNN in eval mode (BatchNorm statistics)."""
        super().train(mode)
        if self.freeze_objects:
            self.cnn.eval()
        return self

    @property
    def aux_weights(self) -> dict[str, float]:
        """The weight of each auxiliary loss that ``forward(..., aux=True)`` returns (the ones switched on)."""
        return {"reconstruction": self.reconstruct} if self.reconstruct else {}

    def objects(self, image: Tensor) -> Tensor:
        return self.encode(self.cnn_output(image))

    def cnn_output(self, image: Tensor) -> Tensor:
        """The CNN's objects before any per-object MLP: ``(B, 25, C+2)`` cells or ``(B, K, object_dim)`` keypoints."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_objects):  # frozen: a head probe
            return self.cnn(image)[0]

    def encode(self, cnn_objects: Tensor) -> Tensor:
        """The CNN's objects as the head reads them: through the per-object MLP where there is one."""
        return cnn_objects if self.encoder is None else self.encoder(cnn_objects)

    def object_mask(self, image: Tensor) -> Tensor | None:
        """``mask_background``: True for the grid cells whose pixel block holds any non-white pixel: ``(B, 25)``.

        A fixed background detector, not learned: Sort-of-CLEVR's background is pure white. Cells with no object
        then take part in no pair (the RN packs the valid pairs), as the state description has no empty rows.
        """
        if not self.mask_background:
            return None
        ink = (image < 0.98).any(dim=1, keepdim=True).float()  # (B, 1, H, W)
        return F.adaptive_max_pool2d(ink, self.grid).flatten(1) > 0  # (B, d*d)

    def forward(self, image: Tensor | None, question: Tensor, *, aux: bool = False,
                cnn_objects: Tensor | None = None) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Logits; with ``aux=True`` also each auxiliary loss of ``aux_weights``, unweighted, summed over the batch.

        ``cnn_objects``: what the (frozen) CNN made of the images, computed beforehand, instead of ``image``.
        """
        if cnn_objects is not None:
            if image is not None or aux or self.mask_background:
                raise ValueError("cnn_objects replaces the image: no image, aux or mask_background with it")
            return self.head(self.encode(cnn_objects), question)
        raw = self.cnn_output(image)
        logits = self.head(self.encode(raw), question, self.object_mask(image))
        if not aux:
            return logits
        losses = {}
        if self.reconstruct:
            losses["reconstruction"] = self.reconstruction_error(raw, image)
        return logits, losses

    def reconstruction_error(self, objects: Tensor, image: Tensor) -> Tensor:
        """Sum over the batch of each image's mean squared error when every cell redraws its own pixel block.

        Self-supervised: the target is the input image itself (no scene description, no labels), cut into the
        grid's ``block x block`` squares (padded with white). It asks the CNN's cells to keep what is drawn where
        from the first step, instead of waiting for the answers' gradient to reach them through g.
        """
        B, _, H, W = image.shape
        d, b = self.grid, self.block
        target = F.pad(image, (0, d * b - W, 0, d * b - H), value=1.0)  # (B, 3, d*b, d*b)
        target = target.reshape(B, 3, d, b, d, b).permute(0, 2, 4, 1, 3, 5).reshape(B, d * d, 3 * b * b)
        pred = self.decoder(objects[..., : self.cnn_channels])  # features only, not the appended (x, y)
        return (pred - target).pow(2).mean(dim=(1, 2)).sum()


class ObjectEncoder(nn.Module):
    """A per-object MLP on each object's features; its position (the last two numbers) is passed on unchanged.

    g's first layer is factorised, so it is linear in each object: a property that is not linear in an object's
    features (a shape read off CNN channels) cannot be gated there by the pair's distance. Encoding each object first
    makes it so (reports/sort_of_clevr_diagnosis.md, section 13).

    Shapes: objects ``(B, N, object_dim)`` -> ``(B, N, widths[-1] + 2)``.
    """

    def __init__(self, object_dim: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = MLP(object_dim - 2, list(widths))
        self.object_dim = self.mlp.out_dim + 2

    def forward(self, objects: Tensor) -> Tensor:
        return torch.cat([self.mlp(objects[..., :-2]), objects[..., -2:]], dim=-1)


class StateModel(nn.Module):
    """RN over the 6 state-description vectors (colour one-hot, shape one-hot, x, y).

    Shapes: objects ``(B, 6, 10)``, question ``(B, 11)`` -> logits ``(B, 10)``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.head = RelationNetwork(object_dim=10, question_dim=soc.QUESTION_DIM, g_dims=cfg.g_dims, f_dims=cfg.f_dims,
                                    out_dim=soc.NUM_ANSWERS, f_dropout=cfg.f_dropout, reduce=cfg.reduce,
                                    aggregate_norm=cfg.aggregate_norm or None, hidden_norm=cfg.hidden_norm or None,
                                    pair_distance=cfg.pair_distance)

    def objects(self, state: Tensor) -> Tensor:
        return state

    def forward(self, state: Tensor, question: Tensor) -> Tensor:
        return self.head(state, question)


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.mask_background and cfg.kind != "rn":
        raise UserError(f"--model.mask_background needs --model rn, not {cfg.kind}")
    check_hidden_norm(cfg.hidden_norm)
    if cfg.reconstruct < 0:
        raise UserError(f"--model.reconstruct {cfg.reconstruct}: must be >= 0")
    if cfg.object_encoder and (cfg.kind != "rn" or min(cfg.object_encoder) < 1):
        raise UserError(f"--model.object_encoder {cfg.object_encoder}: positive widths, with --model rn")
    if cfg.cnn_objects not in ("grid", "keypoints"):
        raise UserError(f"--model.cnn_objects {cfg.cnn_objects!r}: expected grid or keypoints")
    if cfg.cnn_objects == "keypoints":
        if cfg.mask_background or cfg.reconstruct:
            raise UserError("--model.mask_background and --model.reconstruct need grid cells, not keypoints")
        if len(cfg.cnn_strides) != len(cfg.cnn_channels):
            raise UserError(f"--model.cnn_strides {cfg.cnn_strides}: needs one stride per channel count "
                            f"of --model.cnn_channels {cfg.cnn_channels}")
        if cfg.keypoints < 1:
            raise UserError(f"--model.keypoints {cfg.keypoints}: must be >= 1")
        if cfg.keypoint_anchors < 0:
            raise UserError(f"--model.keypoint_anchors {cfg.keypoint_anchors}: must be >= 0 (0: no colour anchors)")
        if cfg.keypoint_position not in ("soft", "local", "both"):
            raise UserError(f"--model.keypoint_position {cfg.keypoint_position!r}: expected soft, local or both")
        a_b = tuple(cfg.keypoint_sharpen_steps)
        if len(a_b) != 2 or not 0 <= a_b[0] <= a_b[1] or not cfg.keypoint_sharpen > 0 or not cfg.keypoint_sharpness > 0:
            raise UserError(f"--model.keypoint_sharpen_steps {a_b}, --model.keypoint_sharpen {cfg.keypoint_sharpen}, "
                            f"--model.keypoint_sharpness {cfg.keypoint_sharpness}: need two steps 0 <= start <= end "
                            "and positive factors")
    if cfg.reconstruct and cfg.kind == "rn-state":
        raise UserError("--model.reconstruct needs pixels (--model rn or mlp), not rn-state")
    if cfg.kind == "rn-state":
        return StateModel(cfg)
    if cfg.kind in ("rn", "mlp"):
        return PixelModel(cfg)
    raise UserError(f"model kind {cfg.kind!r}: expected one of {', '.join(MODELS)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
