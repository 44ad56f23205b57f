"""CLEVR models: presets, state encoding, padding/permutation invariance, baselines, Q-type prior, tiny overfit."""

import collections
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.clevr.loader import ATTR_VALUES, FAMILIES, load_split
from relnet.tasks.clevr.model import (
    ClevrModel,
    ModelConfig,
    QTypePrior,
    RunConfig,
    StateEncoder,
    build_model,
    preset,
    with_pair_distance,
)
from relnet.tasks.clevr.task import Examples, evaluate, resolve_epochs
from relnet.train.config import TrainConfig

V = 40
REPO = Path(__file__).resolve().parents[2]


def state_batch(B=5, rows=10, seed=0, min_obj=3):
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(min_obj, min(rows, 10) + 1, (B,), generator=g)
    mask = torch.arange(rows)[None] < n[:, None]
    lengths = torch.randint(3, 12, (B,), generator=g)
    tokens = torch.randint(2, V, (B, 11), generator=g) * (torch.arange(11)[None] < lengths[:, None])
    attrs = torch.stack([torch.randint(0, len(ATTR_VALUES[a]), (B, rows), generator=g)
                         for a in ("color", "shape", "material", "size")], -1)
    return {"tokens": tokens, "lengths": lengths, "mask": mask,
            "coords": torch.randn(B, rows, 3, generator=g) * mask[..., None],
            "attrs": attrs * mask[..., None], "rgb": torch.rand(B, rows, 3, generator=g) * mask[..., None],
            "answers": torch.randint(0, 28, (B,), generator=g)}


def small(input="state", kind="rn", **kw):
    base = dict(input=input, kind=kind, vocab_size=V, embed_dim=8, lstm_dim=16, g_dims=(32, 32), f_dims=(32,),
                f_dropout=(0.0,))
    base.update(kw)
    return ModelConfig(**base)


# -- presets --------------------------------------------------------------------------------------------------------


def test_paper_presets_follow_the_paper():
    s = preset("paper", "state")
    assert (s.model.lstm_dim, s.model.embed_dim, s.model.g_dims, s.model.f_dims) == (256, 32, (512,) * 4, (512, 1024))
    assert s.model.f_dropout == (0.0, 0.02) and s.model.reduce == "sum" and not s.model.reverse_question
    assert (s.train.lr, s.train.batch_size, s.train.optimizer) == (1e-4, 640, "adam")
    p = preset("paper", "pixels")
    assert (p.model.lstm_dim, p.model.cnn_channels, p.model.g_dims, p.model.f_dims, p.model.f_dropout) == (
        128, (24,) * 4, (256,) * 4, (256, 256), (0.0, 0.5))
    assert (p.train.lr, p.train.batch_size) == (2.5e-4, 640)
    r = preset("recipe", "pixels")
    assert r.model.reverse_question and r.model.g_dims == p.model.g_dims
    assert (r.train.schedule, r.train.lr, r.train.max_lr, r.train.step_gamma, r.train.clip_grad_norm,
            r.train.weight_decay, r.train.batch_size, r.lr_double_epochs) == ("step", 5e-6, 5e-4, 2.0, 50.0, 1e-4, 640, 20)
    for bad in (("nope", "state", "rn"), ("fast", "voxels", "rn"), ("fast", "state", "sa")):
        with pytest.raises(UserError):
            preset(*bad)


def test_epochs_become_steps():
    cfg = RunConfig(epochs=3, lr_double_epochs=20, warmup_epochs=0.5, train=TrainConfig(batch_size=640))
    resolve_epochs(cfg, 70_000)
    assert cfg.train.steps == 329  # ceil(3 * 70000 / 640)
    assert cfg.train.step_every == round(20 * 70_000 / 640)
    assert cfg.train.warmup_steps == round(0.5 * 70_000 / 640)


def test_recipe_lr_doubles_to_the_cap():
    from relnet.train.loop import lr_at

    cfg = preset("recipe", "state")
    resolve_epochs(cfg, 6400)  # 10 steps per epoch -> doubling every 200 steps
    lrs = [lr_at(cfg.train, s) for s in (0, 199, 200, 400, 10_000)]
    assert lrs == pytest.approx([5e-6, 5e-6, 1e-5, 2e-5, 5e-4])


# -- objects --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("color,dim", [("rgb", 13), ("onehot", 18)])
def test_state_encoding(color, dim):
    b = state_batch()
    enc = StateEncoder(color)
    objects, mask = enc(b["coords"], b["attrs"], b["rgb"], b["mask"])
    assert objects.shape == (5, 10, dim) and enc.object_dim == dim
    assert torch.equal(mask, b["mask"])
    assert (objects[~mask] == 0).all()  # padding rows are exact zeros
    k, o = torch.nonzero(mask)[0]
    x = objects[k, o]
    assert torch.allclose(x[:3], b["coords"][k, o] / torch.tensor([3.0, 3.0, 1.0]))
    onehots = x[6:] if color == "rgb" else x[3:]
    if color == "rgb":
        assert torch.allclose(x[3:6], b["rgb"][k, o])
    sizes = ([] if color == "rgb" else [8]) + [3, 2, 2]
    cols = b["attrs"][k, o].tolist()[(1 if color == "rgb" else 0):]
    start = 0
    for n, c in zip(sizes, cols):  # exactly one 1 per attribute, at the attribute's index
        assert onehots[start:start + n].tolist() == [1.0 if i == c else 0.0 for i in range(n)]
        start += n


def test_pair_distance_reads_the_floor_position():
    """--model.pair_distance: the encoder moves (x, y) to the end of each row, where the RN reads them, so g sees the
    distance on the floor plane (not the radius z); the rows keep every other feature, in order."""
    b = state_batch()
    plain, _ = StateEncoder("onehot")(b["coords"], b["attrs"], b["rgb"], b["mask"])
    last, mask = StateEncoder("onehot", position_last=True)(b["coords"], b["attrs"], b["rgb"], b["mask"])
    assert torch.equal(last[..., -2:], plain[..., :2]) and torch.equal(last[..., :-2], plain[..., 2:])
    assert (last[~mask] == 0).all()
    torch.manual_seed(0)
    model = build_model(small(pair_distance=True))
    assert model.head.g_dist is not None and model.scene.position_last
    out = model(b)
    assert out.shape == (5, 28)
    far = dict(b, coords=b["coords"].clone())
    far["coords"][:, 0, :2] += 2.0  # object 0 of every scene moves on the floor
    assert not torch.allclose(model(far), out)
    with pytest.raises(UserError, match="pair_distance needs --model rn"):
        build_model(small(kind="mlp", pair_distance=True))


def test_with_pair_distance_grows_a_trained_rn_into_the_same_function():
    """with_pair_distance: the grown model (rows reordered, distance weights 0) answers exactly as the model it came
    from; once its distance weights move, the distances reach g. A model that already has them is refused."""
    torch.manual_seed(0)
    model = build_model(small(reduce="sum", aggregate_norm="layer")).eval()
    with torch.no_grad():  # a "trained" model: no weight at its initial value, the first layer's columns all distinct
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    b = state_batch()
    grown = with_pair_distance(model)
    assert grown.cfg.pair_distance and grown.scene.position_last and not grown.training
    assert torch.allclose(grown(b), model(b), atol=1e-5)
    with torch.no_grad():
        grown.head.g_dist.fill_(1.0)
    assert not torch.allclose(grown(b), model(b), atol=1e-3)
    with pytest.raises(UserError, match="without pair distances"):
        with_pair_distance(grown)


@pytest.mark.parametrize("hidden_norm", ["", "layer", "batch"])
def test_state_rn_ignores_padding_and_object_order(hidden_norm):
    torch.manual_seed(0)
    model = build_model(small(hidden_norm=hidden_norm))
    # BatchNorm in training mode: its statistics must cover the real pairs only, whatever the padding holds
    model.train(hidden_norm == "batch")
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == (3 if hidden_norm == "batch" else 0)
    b = state_batch(B=6)
    out = model(b)
    assert out.shape == (6, 28)
    padded = dict(b)  # four extra rows of junk, masked out
    for k in ("coords", "rgb"):
        padded[k] = torch.cat([b[k], torch.randn(6, 4, 3)], 1)
    padded["attrs"] = torch.cat([b["attrs"], torch.ones(6, 4, 4, dtype=torch.long)], 1)
    padded["mask"] = torch.cat([b["mask"], torch.zeros(6, 4, dtype=torch.bool)], 1)
    assert torch.allclose(model(padded), out, atol=1e-5)
    perm = torch.randperm(10)
    shuffled = {k: (v[:, perm] if k in ("coords", "rgb", "attrs", "mask") else v) for k, v in b.items()}
    assert torch.allclose(model(shuffled), out, atol=1e-5)


def test_question_is_read_and_reversal_matters():
    torch.manual_seed(0)
    fwd = build_model(small(reverse_question=False)).eval()
    rev = build_model(small(reverse_question=True)).eval()
    rev.load_state_dict(fwd.state_dict())
    b = state_batch()
    assert not torch.allclose(fwd(b), rev(b))
    other = dict(b, tokens=b["tokens"].flip(0), lengths=b["lengths"].flip(0))
    assert not torch.allclose(fwd(b), fwd(other))


@pytest.mark.parametrize("kind", ["rn", "mlp", "lstm"])
def test_pixel_models(kind):
    torch.manual_seed(0)
    model = build_model(small("pixels", kind, cnn_channels=(4, 4, 4, 4)))
    b = {"tokens": torch.randint(1, V, (2, 7)), "lengths": torch.tensor([7, 3]), "image": torch.rand(2, 3, 128, 128)}
    out = model(b)
    assert out.shape == (2, 28)
    out.sum().backward()
    if kind != "lstm":  # gradients reach the CNN: the model reads the image
        assert model.scene.conv[0].weight.grad.abs().sum() > 0
        objects, mask = model.objects(b)
        assert objects.shape == (2, 64, 6) and mask is None


def test_state_mlp_baseline_sees_zeros_for_padding():
    torch.manual_seed(0)
    model = build_model(small(kind="mlp")).eval()
    b = state_batch()
    junk = dict(b, coords=torch.where(b["mask"][..., None], b["coords"], torch.full_like(b["coords"], 7.0)))
    assert torch.allclose(model(b), model(junk))


def test_qtype_prior_matches_an_independent_count():
    g = torch.Generator().manual_seed(3)
    qfi = torch.randint(0, 12, (500,), generator=g)
    answers = (qfi * 3 + torch.randint(0, 3, (500,), generator=g) * (torch.rand(500, generator=g) < 0.3)) % 28
    prior = QTypePrior().fit(qfi, answers)
    counts = collections.defaultdict(collections.Counter)
    for f, a in zip(qfi.tolist(), answers.tolist()):
        counts[f][a] += 1
    test_qfi = torch.tensor([0, 5, 11, 40, -1])
    pred = prior({"qfi": test_qfi}).argmax(-1).tolist()
    overall = collections.Counter(answers.tolist()).most_common(1)[0][0]
    for f, p in zip(test_qfi.tolist(), pred):
        expected = counts[f] if f in counts else None
        if expected is None:
            assert p == overall  # unseen family: the overall prior
        else:
            assert expected[p] == max(expected.values())
    assert list(prior.parameters()) == []  # nothing is trained by gradient


def test_unknown_hidden_norm_is_a_user_error():
    with pytest.raises(UserError, match="hidden_norm=group"):
        build_model(small(hidden_norm="group"))


def test_vocab_size_is_required():
    with pytest.raises(UserError, match="vocab_size"):
        ClevrModel(ModelConfig())


def test_benchmark_naive_rn_is_the_same_function():
    spec = importlib.util.spec_from_file_location("clevr_throughput", REPO / "benchmarks" / "clevr_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    for reduce in ("sum", "mean"):
        model = build_model(small(reduce=reduce)).eval()
        b = state_batch()
        assert torch.allclose(bench.naive_forward(model, b), model(b), atol=1e-4)
        assert torch.allclose(model(bench.repad(b, 16)), model(b), atol=1e-5)


# -- learning ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_state(tmp_path_factory):
    root = tmp_path_factory.mktemp("clevr_tiny")
    assert main(["data", "clevr", "--scenes", "6", "--no-images", "--out", str(root), "--seed", "3",
                 "--questions-per-scene", "8"]) == 0
    return root


def test_tiny_overfit(tiny_state):
    """A small state RN memorises 24 questions about 3 scenes: the whole pipeline can learn."""
    torch.manual_seed(0)
    sp = load_split(tiny_state, "train")
    ex = Examples(sp, input="state", limit=24)
    model = build_model(small(vocab_size=len(sp.vocab), lstm_dim=32, g_dims=(64, 64), f_dims=(64,)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = ex.batch(torch.arange(len(ex)))
    for _ in range(120):
        opt.zero_grad()
        F.cross_entropy(model(batch), batch["answers"]).backward()
        opt.step()
    result = evaluate(model, ex)
    assert result["n"] == len(ex) and result["accuracy"] >= 0.95, result
    assert set(result["by_family"]) == set(FAMILIES)
