"""Object builders: each turns raw input into a set of objects ``(B, N, D)`` and a mask ``(B, N)`` (or None).

* ``ConvObjects``: image -> CNN feature map; each of the d x d cells is an object tagged with its (x, y).
* ``KeypointObjects``: image -> CNN feature map -> K soft keypoints (attention-pooled features + expected (x, y)).
* ``SentenceObjects``: story sentences -> a shared LSTM per sentence, tagged with a one-hot position.
* ``StateObjects``: state descriptions -> categorical attributes embedded (or one-hot), continuous ones passed on.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relnet.nn.questions import QuestionLSTM


def grid_coordinates(d_rows: int, d_cols: int, *, device=None, dtype=torch.float32) -> Tensor:
    """``(d_rows * d_cols, 2)`` (x, y) in [-1, 1] of each cell, row-major (x grows to the right, y downwards)."""
    ys = torch.linspace(-1.0, 1.0, d_rows, device=device, dtype=dtype) if d_rows > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, d_cols, device=device, dtype=dtype) if d_cols > 1 else torch.zeros(1)
    yy, xx = torch.meshgrid(ys.to(device, dtype), xs.to(device, dtype), indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


COORDS = ("append", "input", "both")


class ConvObjects(nn.Module):
    """A stack of strided 3x3 convolutions whose output cells are the objects (paper: 4 x 24 channels).

    Each layer is Conv(3x3, stride 2, padding 1) -> BatchNorm -> ReLU (``order="bn-relu"``, mesnico's and
    aelnouby's order) or Conv -> ReLU -> BatchNorm (``order="relu-bn"``, kimhc6028's; the paper does not say). A 75x75
    image gives 5x5 = 25 cells, 128x128 gives 8x8 = 64. Each cell's features are concatenated with its (x, y)
    coordinate in [-1, 1].

    Args:
        in_channels: image channels.
        channels: output channels of each layer.
        kernel_size, stride: of every layer.
        order: ``"bn-relu"`` or ``"relu-bn"``. With ``relu-bn`` the objects are normalised features (zero mean, unit
            variance per channel) instead of sparse non-negative ones.
        downsample: ``"stride"`` (the paper: strided convolutions) or ``"maxpool"`` (stride-1 convolutions, each
            followed by a ``stride`` x ``stride`` max-pool with ceil mode: the same grid, ~4x the convolution
            arithmetic, and a cell keeps the strongest response of its area instead of a strided sample), or
            ``"patch"`` (not in the paper: the first layer is one ``s^L x s^L`` convolution with that stride, so each
            cell sees exactly its own block of pixels, as a ViT patch does; the other layers are 1x1. The same grid,
            the image padded to whole blocks. A strided 3x3 stack lets each cell see ~31 px, so an object shows in
            its neighbours' features too and a cell's appended (x, y) says less about where it is).
        coords: where the cells' positions come from. ``"append"`` (the paper): each cell's (x, y) is concatenated to
            its features. ``"input"`` (CoordConv, Liu et al. 2018): two channels holding every pixel's (x, y) are
            added to the image, so the CNN can tie position to content (an empty cell can say nothing at all, where
            an appended coordinate is always there); nothing is appended. ``"both"``: both.

    Shapes:
        image ``(B, in_channels, H, W)`` -> objects ``(B, d_h * d_w, object_dim)``, mask None; ``object_dim`` is
        ``channels[-1] + 2`` with appended coordinates, ``channels[-1]`` with ``coords="input"``.
    """

    def __init__(self, *, in_channels: int = 3, channels: Sequence[int] = (24, 24, 24, 24), kernel_size: int = 3,
                 stride: int = 2, order: str = "bn-relu", downsample: str = "stride", coords: str = "append") -> None:
        super().__init__()
        if order not in ("bn-relu", "relu-bn"):
            raise ValueError(f"order must be 'bn-relu' or 'relu-bn', got {order!r}")
        if downsample not in ("stride", "maxpool", "patch"):
            raise ValueError(f"downsample must be 'stride', 'maxpool' or 'patch', got {downsample!r}")
        if coords not in COORDS:
            raise ValueError(f"coords must be one of {COORDS}, got {coords!r}")
        self.coords_in, self.coords_out = coords in ("input", "both"), coords in ("append", "both")
        layers: list[nn.Module] = []
        prev = in_channels + 2 * self.coords_in
        pool = downsample == "maxpool" and stride > 1
        self.patch = stride ** len(channels) if downsample == "patch" else 0
        self.num_layers, self.stride, self.kernel_size = len(channels), stride, kernel_size
        for k, c in enumerate(channels):
            if self.patch:
                size, step, pad = (self.patch, self.patch, 0) if k == 0 else (1, 1, 0)
            else:
                size, step, pad = kernel_size, 1 if pool else stride, kernel_size // 2
            conv = nn.Conv2d(prev, c, size, stride=step, padding=pad, bias=order == "relu-bn")
            norm_act = [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            layers += [conv, *(norm_act if order == "bn-relu" else norm_act[::-1])]
            if pool:  # ceil_mode: the same grid as a padded strided convolution (75 -> 38 -> 19 -> 10 -> 5)
                layers.append(nn.MaxPool2d(stride, ceil_mode=True))
            prev = c
        self.conv = nn.Sequential(*layers)
        self.object_dim = prev + 2 * self.coords_out

    def feature_map(self, image: Tensor) -> Tensor:
        """``(B, in_channels, H, W) -> (B, C, d_h, d_w)``: the CNN's output grid, before coordinates are appended."""
        if image.ndim != 4:
            raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
        if self.coords_in:  # CoordConv: (x, y) of every pixel as two more input channels
            B, _, H, W = image.shape
            xy = grid_coordinates(H, W, device=image.device, dtype=image.dtype).T.reshape(1, 2, H, W)
            image = torch.cat([image, xy.expand(B, -1, -1, -1)], dim=1)  # (B, C_in + 2, H, W)
        if self.patch:  # pad to whole blocks on the same grid as the strided stack (75 -> 5 x 16 = 80)
            H, W = image.shape[-2:]
            ph = self.output_size(H, self.num_layers, self.stride, self.kernel_size) * self.patch - H
            pw = self.output_size(W, self.num_layers, self.stride, self.kernel_size) * self.patch - W
            image = F.pad(image, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return self.conv(image)  # (B, C, d_h, d_w)

    def forward(self, image: Tensor) -> tuple[Tensor, None]:
        fmap = self.feature_map(image)  # (B, C, d_h, d_w)
        B, C, dh, dw = fmap.shape
        cells = fmap.flatten(2).transpose(1, 2)  # (B, d_h*d_w, C)
        if not self.coords_out:
            return cells, None  # (B, N, C): positions only as far as the CNN carries them
        coords = grid_coordinates(dh, dw, device=image.device, dtype=cells.dtype)  # (d_h*d_w, 2)
        return torch.cat([cells, coords.expand(B, -1, -1)], dim=-1), None  # (B, N, C+2)

    @staticmethod
    def output_size(size: int, num_layers: int, stride: int = 2, kernel_size: int = 3) -> int:
        for _ in range(num_layers):
            size = (size + 2 * (kernel_size // 2) - kernel_size) // stride + 1
        return size


class KeypointObjects(nn.Module):
    """A small CNN whose objects are K learned soft keypoints instead of grid cells (not in the paper).

    Each keypoint ``k`` is a softmax over every position of the CNN's last feature map (a "spatial softmax", Levine
    et al. 2016): its attention ``a_k = softmax(w_k . f(p) + b_k)`` over positions ``p``; the object is the
    attention-weighted mean of the features, ``sum_p a_k(p) f(p)``, followed by the expected position
    ``sum_p a_k(p) (x_p, y_p)`` in [-1, 1]. Two things change against grid cells: the RN compares K^2 pairs instead
    of d^4 (8 keypoints: 64 pairs, a 5x5 grid: 625), and a keypoint's position is a weighted mean, as precise as the
    attention is sharp, where a cell's appended (x, y) locates its content only to the cell.

    Args:
        in_channels: image channels.
        channels, strides: output channels and stride of each 3x3 convolution (Conv -> BatchNorm -> ReLU).
        num_keypoints: K.
        sharpness: the initial value of a learned factor on each keypoint's attention logits. At 1 a fresh
            keypoint's attention is nearly uniform (its logits are a random 1x1 convolution of BatchNorm'd features,
            spread ~0.5), so its position starts at the image centre for every image and its features are the
            image's mean; at ~10 each keypoint starts on whatever its random filter prefers (a colour).
        sharpen, sharpen_between: a fixed schedule on top of the learned factor: the logits are multiplied by
            ``sharpen ** r``, where ``r`` rises linearly from 0 to 1 between the a-th and the b-th training forward
            pass, ``sharpen_between = (a, b)`` (counted in a buffer, so it is saved and resumed with the weights).
            Measured on Sort-of-CLEVR: keypoints that start soft spread over all the colours but stay blurred (their
            positions off by ~10 px) and the learned factor does not grow; keypoints that start sharp are precise
            but several lock onto the same colour or none. The schedule was meant to get both; training blurs the
            keypoints again (reports/sort_of_clevr_diagnosis.md, section 13).
        standardize: each keypoint's logits are standardised over the positions of each image (zero mean, unit
            variance) before the factors, and the factor is not learned: the attention's sharpness is then set by
            ``sharpness`` and the schedule alone. Measured: with raw logits the model keeps its attention soft
            (the learned factor and the filters shrink to undo a scheduled sharpening), and blurred keypoints
            misplace objects by ~10 px.
        position: ``"soft"``: each keypoint's position is the expectation under its whole attention map.
            ``"local"``: the expectation under its attention renormalised to the 3x3 positions around its peak
            (a local soft-argmax, as keypoint detectors use), so attention left on the background far away
            (measured: 20-40% of it, even after sharpening) does not pull the position toward the image centre.
            The features stay pooled from the whole map. The gradient reaches the logits of the window only.
            ``"both"``: the soft position, then the local one (each object ends with 4 coordinates; the last two,
            which ``RelationNetwork(pair_distance=True)`` reads, are the local ones). Measured: the local position
            alone is slow to learn from (the peak of a fresh, nearly flat attention map is noise), the soft one
            alone is blurred; both give the head a smooth signal early and a precise one once attention peaks.
        local_features: each object also carries the features pooled over that 3x3 window (``C`` more numbers,
            before the positions), not only over the whole map.
        compete: the keypoints compete for positions, as slots do in Slot Attention (Locatello et al. 2020): at
            each position a softmax over the K keypoints and one learned background logit shares the position out,
            and each keypoint's attention is its share renormalised over the positions. A keypoint then loses the
            positions another one claims more strongly, so two keypoints do not settle on one object as easily.
        anchors: ``w > 0`` gives each keypoint a colour anchor ``c_k``: its logits get ``- w ||m(p) - c_k||^2``, where
            ``m(p)`` is the input's mean colour around the pixel under position ``p``; ``c_k`` and ``w`` are learned
            (``w`` from this value). The anchors are off until ``set_anchors`` gives them their start, e.g. the
            colours that ``colour_clusters`` finds in the training images (label-free, as YOLOv2 starts its anchor
            boxes from a k-means of the training boxes). Then each keypoint starts on a different kind of object
            instead of wherever its random filter looks: where colour tells objects apart (Sort-of-CLEVR), learned
            keypoints otherwise often lock several onto one colour and none onto another
            (reports/sort_of_clevr_diagnosis.md, sections 15-16).

    Shapes:
        image ``(B, in_channels, H, W)`` -> objects ``(B, K, object_dim)``, mask None: ``object_dim`` is
        ``channels[-1]`` (``2 * channels[-1]`` with ``local_features``) plus 2 coordinates (4 with ``"both"``).
    """

    def __init__(self, *, in_channels: int = 3, channels: Sequence[int] = (24, 24, 24),
                 strides: Sequence[int] = (2, 2, 1), num_keypoints: int = 8, sharpness: float = 1.0,
                 sharpen: float = 1.0, sharpen_between: tuple[int, int] = (0, 0), standardize: bool = False,
                 position: str = "soft", local_features: bool = False, compete: bool = False,
                 anchors: float = 0.0) -> None:
        super().__init__()
        if len(channels) != len(strides) or not channels:
            raise ValueError(f"channels {tuple(channels)} and strides {tuple(strides)} must be non-empty and as long")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        if not sharpness > 0 or not sharpen > 0:
            raise ValueError(f"sharpness and sharpen must be > 0, got {sharpness} and {sharpen}")
        if anchors < 0:
            raise ValueError(f"anchors must be >= 0 (0: off), got {anchors}")
        if not 0 <= sharpen_between[0] <= sharpen_between[1]:
            raise ValueError(f"sharpen_between must be (a, b) with 0 <= a <= b, got {tuple(sharpen_between)}")
        layers: list[nn.Module] = []
        prev = in_channels
        for c, s in zip(channels, strides):
            layers += [nn.Conv2d(prev, c, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            prev = c
        self.conv = nn.Sequential(*layers)
        self.strides = tuple(int(v) for v in strides)
        self.attend = nn.Conv2d(prev, num_keypoints, 1)  # one attention logit per keypoint and position
        self.background = nn.Conv2d(prev, 1, 1) if compete else None  # compete: the logit of "no keypoint here"
        log_sharpness = torch.full((num_keypoints, 1, 1), float(sharpness)).log()
        if standardize:
            self.register_buffer("log_sharpness", log_sharpness)
        else:
            self.log_sharpness = nn.Parameter(log_sharpness)
        self.standardize = standardize
        if position not in ("soft", "local", "both"):
            raise ValueError(f"position must be 'soft', 'local' or 'both', got {position!r}")
        self.position = position
        self.local_features = local_features
        self.sharpen, self.sharpen_between = float(sharpen), (int(sharpen_between[0]), int(sharpen_between[1]))
        self.register_buffer("passes", torch.zeros((), dtype=torch.long))  # training forward passes so far
        self.num_keypoints = num_keypoints
        if anchors > 0:  # learned colours and weight; "anchored" says whether set_anchors has given them their start
            self.anchor_colours = nn.Parameter(torch.zeros(num_keypoints, in_channels))
            self.log_anchor_weight = nn.Parameter(torch.tensor(float(anchors)).log())
            self.register_buffer("anchored", torch.zeros((), dtype=torch.bool))
        else:
            self.anchor_colours = self.log_anchor_weight = self.anchored = None
        self.object_dim = prev * (2 if local_features else 1) + (4 if position == "both" else 2)

    def attention(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, H', W')`` attention of each keypoint (sums to 1 over positions) and the feature map."""
        if image.ndim != 4:
            raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
        fmap = self.conv(image)  # (B, C, H', W')
        logits = self.attend(fmap)  # (B, K, H', W')
        if self.standardize:
            mean, std = logits.mean(dim=(2, 3), keepdim=True), logits.std(dim=(2, 3), keepdim=True)
            logits = (logits - mean) / (std + 1e-5)
        logits = logits * (self.log_sharpness.exp() * self.scheduled_sharpening())
        if self.anchored is not None and bool(self.anchored):
            logits = logits - self.log_anchor_weight.exp() * self._anchor_distances(image, logits.shape[-2:])
        if self.training and torch.is_grad_enabled():
            self.passes += 1
        if self.background is not None:  # shares of each position, then each keypoint's share over positions
            share = torch.cat([logits, self.background(fmap)], dim=1).softmax(dim=1)[:, :-1]  # (B, K, h, w)
            return share / share.sum(dim=(2, 3), keepdim=True), fmap
        return logits.flatten(2).softmax(dim=-1).view_as(logits), fmap

    @torch.no_grad()
    def set_anchors(self, colours: Tensor) -> None:
        """Start the colour anchors at ``colours`` ``(K, in_channels)`` (input units) and switch them on."""
        if self.anchor_colours is None:
            raise ValueError("this KeypointObjects has no anchors (anchors=0)")
        if tuple(colours.shape) != tuple(self.anchor_colours.shape):
            raise ValueError(f"colours must have shape {tuple(self.anchor_colours.shape)}, got {tuple(colours.shape)}")
        self.anchor_colours.copy_(colours)
        self.anchored.fill_(True)

    def _anchor_distances(self, image: Tensor, size: tuple[int, int]) -> Tensor:
        """``(B, K, h, w)`` squared distance of each anchor to the mean colour of the ``s+1`` x ``s+1`` pixels
        centred on each map position's input pixel ``p * s`` (``s``: the total stride)."""
        s = math.prod(self.strides)
        mean = F.avg_pool2d(image, 2 * (s // 2) + 1, stride=s, padding=s // 2, count_include_pad=False)
        mean = mean[..., :size[0], :size[1]]  # (B, C, h, w)
        return (mean[:, None] - self.anchor_colours[None, :, :, None, None]).square().sum(2)

    def pixel_positions(self, objects: Tensor, image_size: tuple[int, int]) -> Tensor:
        """The keypoints' (x, y) of ``forward``'s objects in input pixels (column, row): ``(B, K, 2)``.

        Feature-map position ``p`` of a stack of padded 3x3 convolutions with total stride ``s`` is centred on input
        pixel ``p * s``; the objects carry ``p`` scaled to [-1, 1] over the map's ``n`` positions."""
        size = list(image_size)
        for s in self.strides:
            size = [(n - 1) // s + 1 for n in size]
        total = math.prod(self.strides)
        xy = objects[..., -2:]
        scale = xy.new_tensor([(size[1] - 1) * total / 2, (size[0] - 1) * total / 2])
        return (xy + 1) * scale

    def scheduled_sharpening(self) -> float:
        """``sharpen ** r`` after ``passes`` training forward passes (1.0 before the ramp)."""
        a, b = self.sharpen_between
        t = int(self.passes)
        r = 1.0 if t >= b else 0.0 if t <= a else (t - a) / (b - a)
        return self.sharpen ** r

    def forward(self, image: Tensor) -> tuple[Tensor, None]:
        att, fmap = self.attention(image)
        B, C, h, w = fmap.shape
        flat = att.flatten(2)  # (B, K, h*w)
        feats = flat @ fmap.flatten(2).transpose(1, 2)  # (B, K, C)
        coords = grid_coordinates(h, w, device=image.device, dtype=fmap.dtype)  # (h*w, 2)
        parts = [feats]  # (B, K, C)
        if self.local_features or self.position != "soft":
            weight, index = self._local_window(att)  # (B, K, 9) each
        if self.local_features:
            cells = fmap.flatten(2).transpose(1, 2)  # (B, h*w, C)
            local = cells.gather(1, index.flatten(1)[..., None].expand(-1, -1, C)).view(B, -1, 9, C)  # (B, K, 9, C)
            parts.append((weight[..., None] * local).sum(-2))  # (B, K, C)
        if self.position in ("soft", "both"):
            parts.append(flat @ coords)  # (B, K, 2)
        if self.position in ("local", "both"):
            parts.append((weight[..., None] * coords[index]).sum(-2))  # (B, K, 2)
        return torch.cat(parts, dim=-1), None  # (B, K, object_dim)

    @staticmethod
    def _local_window(att: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, h, w)`` attention -> the 3x3 positions around each peak: their attention renormalised and their
        flat indices, ``(B, K, 9)`` each (positions outside the map weigh 0)."""
        B, K, h, w = att.shape
        peak = att.flatten(2).argmax(dim=-1)  # (B, K)
        rows, cols = peak // w, peak % w
        d = torch.arange(-1, 2, device=att.device)
        r = rows[..., None, None] + d[:, None]  # (B, K, 3, 1)
        c = cols[..., None, None] + d[None, :]  # (B, K, 1, 3)
        inside = ((r >= 0) & (r < h) & (c >= 0) & (c < w)).flatten(-2)  # (B, K, 9)
        index = (r.clamp(0, h - 1) * w + c.clamp(0, w - 1)).flatten(-2)  # (B, K, 9)
        weight = att.flatten(2).gather(-1, index) * inside  # (B, K, 9), outside the map: 0
        return weight / weight.sum(-1, keepdim=True), index


@torch.no_grad()
def colour_clusters(images: Tensor, k: int, *, iterations: int = 50, restarts: int = 4, seed: int = 0,
                    max_pixels: int = 500_000) -> Tensor:
    """``k`` colours of the images' foreground pixels by k-means (k-means++ starts, the best of ``restarts``).

    ``images`` ``(N, C, H, W)`` float; at most ``max_pixels`` of their pixels, drawn at random, are read. The
    background is their most frequent colour; pixels within 0.05 of it (Euclidean, in input units) are left out.
    Deterministic from ``seed``. Returns ``(k, C)``, most populous first.
    """
    gen = torch.Generator().manual_seed(seed)
    pixels = images.permute(0, 2, 3, 1).reshape(-1, images.shape[1]).float()
    if len(pixels) > max_pixels:
        pixels = pixels[torch.randperm(len(pixels), generator=gen)[:max_pixels]]
    values, counts = pixels.round(decimals=3).unique(dim=0, return_counts=True)
    background = values[counts.argmax()]
    fg = pixels[(pixels - background).norm(dim=1) > 0.05]
    if len(fg) < k:
        raise ValueError(f"colour_clusters: {len(fg)} foreground pixels for {k} clusters")
    best, best_cost = None, float("inf")
    for _ in range(restarts):
        centres = fg[torch.randint(len(fg), (1,), generator=gen)]
        while len(centres) < k:  # k-means++: the next start with probability ~ squared distance to the nearest
            d2 = torch.cdist(fg, centres).min(1).values.square() + 1e-12  # all 0 (fewer colours than k): uniform
            centres = torch.cat([centres, fg[torch.multinomial(d2, 1, generator=gen)]])
        for _ in range(iterations):
            assign = torch.cdist(fg, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, assign, fg)
            n = torch.bincount(assign, minlength=k).float()[:, None]
            centres = torch.where(n > 0, sums / n.clamp(min=1), centres)  # an empty cluster keeps its centre
        dist, assign = torch.cdist(fg, centres).min(1)
        cost = float(dist.square().sum())
        if cost < best_cost:
            n = torch.bincount(assign, minlength=k)
            best, best_cost = centres[n.argsort(descending=True, stable=True)], cost
    return best


class StateObjects(nn.Module):
    """State descriptions as objects: continuous features passed through, categorical ones embedded.

    Args:
        continuous_dim: number of continuous features per object (e.g. 3 for CLEVR's 3-D coordinates).
        categorical: ``{name: num_classes}`` in the order of the last axis of ``categorical`` input.
        embed_dim: embedding size per categorical attribute; ``None`` uses a one-hot encoding instead.

    Shapes:
        continuous ``(B, N, continuous_dim)``, categorical ``(B, N, len(categorical))`` long, mask ``(B, N)``
        -> objects ``(B, N, continuous_dim + sum of attribute sizes)``, the same mask.
    """

    def __init__(self, *, continuous_dim: int, categorical: Mapping[str, int], embed_dim: int | None = None) -> None:
        super().__init__()
        self.continuous_dim = continuous_dim
        self.names = list(categorical)
        self.num_classes = [int(categorical[n]) for n in self.names]
        self.embed_dim = embed_dim
        if embed_dim is None:
            self.embeddings = None
            self.object_dim = continuous_dim + sum(self.num_classes)
        else:
            self.embeddings = nn.ModuleList(nn.Embedding(k, embed_dim) for k in self.num_classes)
            self.object_dim = continuous_dim + embed_dim * len(self.num_classes)

    def forward(self, continuous: Tensor, categorical: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if categorical.shape[-1] != len(self.names):
            raise ValueError(f"categorical must have {len(self.names)} attributes {self.names}, got {categorical.shape[-1]}")
        parts = [continuous]
        for k, n in enumerate(self.num_classes):
            idx = categorical[..., k]
            if self.embeddings is None:
                parts.append(F.one_hot(idx.clamp(0, n - 1), n).to(continuous.dtype))
            else:
                parts.append(self.embeddings[k](idx.clamp(0, n - 1)))
        return torch.cat(parts, dim=-1), mask


class SentenceObjects(nn.Module):
    """Sentences as objects: a shared word-level LSTM encodes each sentence; a one-hot slot tag is appended.

    Only real sentences (length > 0) go through the LSTM; empty slots are zeros and masked out.

    Args:
        vocab_size, embed_dim, hidden_dim: of the sentence LSTM (paper, bAbI: 32 units).
        max_sentences: S, number of sentence slots; the tag is a one-hot of the slot index (S features).
        embedding: share an existing ``nn.Embedding`` (e.g. the question encoder's) instead of a new one.

    Shapes:
        tokens ``(B, S, T)`` long, lengths ``(B, S)`` long (0 = no sentence)
        -> objects ``(B, S, hidden_dim + S)``, mask ``(B, S)``.
    """

    def __init__(self, *, vocab_size: int, embed_dim: int = 32, hidden_dim: int = 32, max_sentences: int = 20,
                 embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.encoder = QuestionLSTM(vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
                                    embedding=embedding)
        self.max_sentences = max_sentences
        self.object_dim = hidden_dim + max_sentences

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        B, S, T = tokens.shape
        if S != self.max_sentences:
            raise ValueError(f"expected {self.max_sentences} sentence slots, got {S}")
        mask = lengths > 0  # (B, S)
        flat_tokens = tokens[mask]  # (M, T) real sentences only
        encoded = self.encoder(flat_tokens, lengths[mask])  # (M, hidden)
        states = encoded.new_zeros(B, S, encoded.shape[-1]).masked_scatter(mask[..., None], encoded)  # (B, S, hidden)
        tags = torch.eye(S, device=tokens.device, dtype=states.dtype).expand(B, S, S)  # (B, S, S)
        return torch.cat([states, tags], dim=-1), mask
