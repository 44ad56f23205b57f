"""Sort-of-CLEVR models, presets, the training task and the train/eval/reproduce commands."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from relnet.cli import main
from relnet.errors import UserError
from relnet.nn import colour_clusters
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.model import MODELS, PRESETS, build_model, count_parameters, objects_stage, preset
from relnet.tasks.sort_of_clevr.task import Examples, SortOfClevrTask, cnn_objects, evaluate, metrics

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "sort_of_clevr"
TINY = ["--data.train_images=40", "--data.test_images=5", "--model.cnn_channels=8,8,8,8", "--model.g_dims=16,16",
        "--model.f_dims=16,16", "--train.steps=4", "--train.batch_size=8", "--train.eval_every=2",
        "--train.log_every=2", "--train.checkpoint_every=2", "--train.threads=1"]


@pytest.fixture(scope="module")
def tiny_split():
    return soc.generate_split(soc.SortOfClevrParams(train_images=8, test_images=0), "train")


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("kind", MODELS)
def test_every_preset_builds_and_takes_a_step(name, kind, tiny_split):
    if name == "keypoints" and kind == "rn-state":
        with pytest.raises(UserError, match="--preset keypoints is for --model rn or mlp"):
            preset(name, kind)
        return
    cfg = preset(name, kind)
    stages = [c for c in (objects_stage(cfg), cfg) if c is not None]
    assert len(stages) == (2 if name == "keypoints" else 1)
    for stage in stages:
        model = build_model(stage.model).train()
        ex = Examples(tiny_split, state=kind == "rn-state")
        x, q, y = ex.batch(torch.arange(2))
        if getattr(getattr(model, "cnn", None), "anchored", None) is not None:  # colour anchors, as the task's prepare starts them
            model.cnn.set_anchors(colour_clusters(ex.images(torch.arange(len(tiny_split["images"]))), 6))
        loss = F.cross_entropy(model(x, q), y)
        loss.backward()
        assert torch.isfinite(loss)
        frozen = stage.model.freeze_objects  # the keypoints preset's final stage: the CNN is not trained
        assert all((p.grad is None) == (frozen and n.startswith("cnn.")) for n, p in model.named_parameters())


def test_keypoints_preset_stages():
    cfg = preset("keypoints", "rn")
    first = objects_stage(cfg)
    assert first.model.object_encoder == () and not first.model.freeze_objects and first.objects.steps == 0
    assert first.model.cnn_objects == cfg.model.cnn_objects == "keypoints" and first.train == cfg.objects
    assert dataclasses.replace(first.model, object_encoder=cfg.model.object_encoder, freeze_objects=True) == cfg.model
    assert objects_stage(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=2))).train.threads == 2
    with pytest.raises(UserError, match="needs --model rn or mlp with --model.cnn_objects=keypoints"):
        objects_stage(dataclasses.replace(preset("fast", "rn"), objects=cfg.objects))
    with pytest.raises(UserError, match="the main run starts from the objects stage"):
        objects_stage(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from="x")))
    # the CNN+RN's first stage restarts below 0.80 at step 3,000 (diagnosis section 15); the CNN+MLP's never does
    r = cfg.objects_restart
    assert (r.at_step, r.below, r.tries) == (3000, 0.80, 8) and r.at_step % cfg.objects.log_every == 0
    assert preset("keypoints", "mlp").objects_restart.at_step == 0
    for bad in ({"below": 1.5}, {"tries": 0}, {"at_step": -1}, {"at_step": 2950}):
        with pytest.raises(UserError, match="objects_restart"):
            objects_stage(dataclasses.replace(cfg, objects_restart=dataclasses.replace(r, **bad)))


@pytest.mark.parametrize("overrides", [{"reduce": "max"}, {"reduce": "sum+max"}, {"cnn_downsample": "patch"},
                                       {"reduce": "sum+max", "mask_background": True}, {"hidden_norm": "batch"},
                                       {"hidden_norm": "layer", "reduce": "max"}])
def test_model_options_build_and_take_a_step(overrides, tiny_split):
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_channels=(8, 8, 8, 8), g_dims=(16, 16), **overrides)
    model = build_model(cfg)
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(4))
    assert model.objects(x).shape == (4, 25, 10)
    loss = F.cross_entropy(model(x, q), y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("kind", ["rn", "mlp"])
def test_keypoint_objects_build_and_take_a_step(kind, tiny_split):
    cfg = dataclasses.replace(preset("fast", kind).model, cnn_objects="keypoints", cnn_channels=(8, 8),
                              cnn_strides=(2, 2), keypoints=5, g_dims=(16, 16))
    model = build_model(cfg)
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(4))
    assert model.objects(x).shape == (4, 5, 10)  # 5 keypoints: 8 features + (x, y)
    loss = F.cross_entropy(model(x, q), y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_prepare_starts_colour_anchors_once(tmp_path):
    """--model.keypoint_anchors: the task starts a fresh model's anchors at the colours of its training images (the
    generator's palette, found by k-means) and leaves anchors that already started (a resumed run) as they are."""
    cfg = preset("keypoints", "rn")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, train_images=30, test_images=0,
                                                            root=str(tmp_path)),
                              model=dataclasses.replace(cfg.model, keypoint_anchors=20.0, freeze_objects=False))
    task = SortOfClevrTask(cfg)
    model = build_model(cfg.model)
    assert not bool(model.cnn.anchored)
    task.prepare(model)
    palette = torch.from_numpy(soc.COLORS).float() / 255
    found = model.cnn.anchor_colours.detach()
    torch.testing.assert_close(found.sort(0).values, palette.sort(0).values, atol=1e-3, rtol=0)
    assert torch.cdist(found, palette).argmin(1).unique().numel() == 6  # one anchor per colour
    with torch.no_grad():
        model.cnn.anchor_colours.add_(0.1)  # as training moves them
    moved = model.cnn.anchor_colours.detach().clone()
    task.prepare(model)
    torch.testing.assert_close(model.cnn.anchor_colours.detach(), moved)


def test_object_encoder_keeps_positions_and_trains(tiny_split):
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_objects="keypoints", cnn_channels=(8, 8),
                              cnn_strides=(2, 2), keypoints=5, g_dims=(16, 16), object_encoder=(12, 7),
                              pair_distance=True)
    model = build_model(cfg)
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(4))
    objects = model.objects(x)
    assert objects.shape == (4, 5, 7 + 2)
    torch.testing.assert_close(objects[..., -2:], model.cnn(x)[0][..., -2:])  # the positions pass through
    F.cross_entropy(model(x, q), y).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    with pytest.raises(UserError, match="object_encoder"):
        build_model(dataclasses.replace(preset("fast", "mlp").model, object_encoder=(8,)))


def test_frozen_objects_train_only_the_head(tiny_split):
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_channels=(8, 8, 8, 8), g_dims=(16, 16),
                              freeze_objects=True)
    model = build_model(cfg).train()
    stats = model.cnn.conv[1].running_mean.clone()
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(4))
    F.cross_entropy(model(x, q), y).backward()
    assert all(p.grad is None for p in model.cnn.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    torch.testing.assert_close(model.cnn.conv[1].running_mean, stats)  # BatchNorm statistics frozen too


@pytest.mark.parametrize("objects", ["grid", "keypoints"])
def test_frozen_objects_computed_once_give_the_same_logits(objects, tiny_split):
    """The task computes a frozen CNN's objects once (``prepare``); the model then answers from them exactly as it
    does from the images, in training mode too (the frozen CNN's BatchNorm stays in eval mode)."""
    channels = (8, 8, 8) if objects == "keypoints" else (8, 8, 8, 8)
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_objects=objects, cnn_channels=channels, g_dims=(16, 16),
                              object_encoder=(8,), freeze_objects=True)
    model = build_model(cfg).train()
    examples = Examples(tiny_split, state=False)
    cached = cnn_objects(model, examples)
    assert cached.shape[0] == len(tiny_split["images"]) and not model.cnn.training
    idx = torch.arange(0, 40, 3)  # questions of several images
    x, q, _ = examples.batch(idx)
    torch.testing.assert_close(model(None, q, cnn_objects=cached[idx // examples.questions_per_image]), model(x, q))
    with pytest.raises(ValueError, match="replaces the image"):
        model(x, q, cnn_objects=cached[:1])


def test_two_stages_a_trained_cnn_under_a_new_head(tmp_path, capsys, monkeypatch):
    """Stage 2 takes only the CNN of stage 1 (``--train.init_only=cnn.``), frozen, with a new encoder and head: it
    trains on objects computed once, the CNN's weights end as stage 1 left them, and the checkpoint evaluates from
    pixels like any other."""
    from relnet.tasks.sort_of_clevr import task

    computed = []
    monkeypatch.setattr(task, "cnn_objects", lambda model, ex: computed.append(len(ex)) or cnn_objects(model, ex))
    data = f"--data.root={tmp_path / 'data'}"
    kp = ["--model.cnn_objects=keypoints", "--model.cnn_channels=8,8,8", "--model.keypoints=3"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "sort-of-clevr", "--out", str(one), "--quiet", *TINY, *kp, data]) == 0
    assert main(["train", "sort-of-clevr", "--out", str(two), "--quiet", *TINY, *kp, data,
                 "--model.freeze_objects=true", "--model.object_encoder=8", "--model.f_dims=8,8",
                 f"--train.init_from={one / 'checkpoint'}", "--train.init_only=cnn."]) == 0
    assert computed == [40 * 20]  # stage 2 only, once, over the 40 training images' questions
    a = load_file(str(one / "checkpoint" / "model.safetensors"))
    b = load_file(str(two / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("cnn."))
    assert "encoder.mlp.0.weight" in b and b["head.f.0.weight"].shape != a["head.f.0.weight"].shape
    capsys.readouterr()
    assert main(["eval", "sort-of-clevr", "--checkpoint", str(two / "checkpoint"), "--images", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 40


def test_keypoints_preset_trains_its_objects_first(tmp_path, capsys, monkeypatch):
    """One command, two runs: <out>/objects learns the keypoints, <out> trains the encoder and head on them frozen;
    --train.threads reaches both; reproduce counts both stages' minutes and says so."""
    monkeypatch.chdir(tmp_path)
    small = ["--preset", "keypoints", "--data.train_images=40", "--data.test_images=5", f"--data.root={tmp_path / 'd'}",
             "--model.cnn_channels=8,8,8", "--model.g_dims=16,16", "--model.f_dims=16,16", "--model.object_encoder=8",
             "--objects.steps=3", "--objects.eval_every=3", "--train.steps=4", "--train.eval_every=2",
             "--train.threads=1"]
    assert main(["train", "sort-of-clevr", "--out", "run", "--quiet", *small]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 4
    first = json.loads((tmp_path / "run" / "objects" / "config.json").read_text())
    final = json.loads((tmp_path / "run" / "config.json").read_text())
    assert first["model"]["object_encoder"] == [] and not first["model"]["freeze_objects"]
    assert first["train"]["threads"] == 1 and first["train"]["steps"] == 3
    assert final["train"]["init_from"] == str(Path("run") / "objects" / "checkpoint")  # relative to --out
    assert final["train"]["init_only"] == ["cnn."] and final["model"]["freeze_objects"]
    a = load_file(str(tmp_path / "run" / "objects" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("cnn."))
    assert main(["reproduce", "sort-of-clevr", "--models", "rn", "--eval-images", "2", "--runs", "r", *small[2:],
                 "--preset", "keypoints"]) == 0
    result = json.loads((tmp_path / "reports" / "sort_of_clevr.json").read_text())["rn"]
    last = [json.loads((tmp_path / "r" / "rn-keypoints" / sub / "metrics.jsonl").read_text().splitlines()[-1])
            for sub in ("objects", ".")]
    assert result["train_seconds"] >= last[0]["elapsed"] + last[1]["elapsed"]
    report = (tmp_path / "reports" / "sort_of_clevr.md").read_text()
    assert "a first stage of 3 steps (`r/rn-keypoints/objects`) learned the objects" in report
    assert "6 keypoints" in report and "frozen" in report and "colour anchors from a k-means" in report
    # --resume takes the finished stages as they are: the same minutes, and the report says how it was made
    assert main(["reproduce", "sort-of-clevr", "--models", "rn", "--eval-images", "2", "--runs", "r", *small[2:],
                 "--preset", "keypoints", "--resume"]) == 0
    again = json.loads((tmp_path / "reports" / "sort_of_clevr.json").read_text())["rn"]
    # both stages still count, and nothing trained again (not equality: the first run's seconds also time the
    # writing of each stage's last checkpoint, after its last logged row, and a finished run resumed reads its
    # seconds from that row)
    assert last[0]["elapsed"] + last[1]["elapsed"] <= again["train_seconds"] <= result["train_seconds"] + 0.05, \
        (again, result)
    assert " --resume` (runs already finished" in (tmp_path / "reports" / "sort_of_clevr.md").read_text()


@pytest.mark.parametrize("overrides,match", [({"cnn_objects": "slots"}, "cnn_objects"),
                                             ({"cnn_strides": (2,)}, "cnn_strides"), ({"keypoints": 0}, "keypoints"),
                                             ({"keypoint_anchors": -1.0}, "keypoint_anchors"),
                                             ({"mask_background": True}, "grid cells")])
def test_keypoint_options_are_checked(overrides, match):
    cfg = dataclasses.replace(preset("fast", "rn").model, **{"cnn_objects": "keypoints", "cnn_channels": (8, 8, 8),
                                                             **overrides})
    with pytest.raises(UserError, match=match):
        build_model(cfg)


@pytest.mark.parametrize("norm,layer", [("batch", torch.nn.BatchNorm1d), ("layer", torch.nn.LayerNorm)])
def test_mlp_baseline_takes_the_hidden_norm(norm, layer, tiny_split):
    cfg = dataclasses.replace(preset("fast", "mlp").model, cnn_channels=(8, 8, 8, 8), g_dims=(16, 16),
                              cnn_downsample="maxpool", hidden_norm=norm)
    model = build_model(cfg)
    assert sum(isinstance(m, layer) for m in model.head.modules()) == len(cfg.g_dims) + len(cfg.f_dims)
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(4))
    loss = F.cross_entropy(model(x, q), y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_paper_preset_has_the_papers_sizes():
    m = preset("paper", "rn").model
    assert m.cnn_channels == (32, 64, 128, 256) and m.g_dims == (2000,) * 4 and m.f_dims == (2000, 1000, 500, 100)
    c = preset("compact", "rn").model
    assert c.cnn_channels == (24,) * 4 and c.g_dims == (256,) * 4 and c.f_dims == (256, 256)


def test_mlp_baseline_is_at_least_as_big_as_the_rn():
    for name in ("compact", "fast"):
        rn = count_parameters(build_model(preset(name, "rn").model))
        mlp = count_parameters(build_model(preset(name, "mlp").model))
        assert mlp >= rn, (name, rn, mlp)


def test_objects_are_25_cells_with_coordinates(tiny_split):
    model = build_model(preset("compact", "rn").model)
    x, _, _ = Examples(tiny_split, state=False).batch(torch.arange(3))
    assert model.objects(x).shape == (3, 25, 26)


def test_state_rn_overfits_a_tiny_set(tiny_split):
    torch.manual_seed(0)
    ex = Examples(tiny_split, state=True)
    cfg = preset("fast", "rn-state").model
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    idx = torch.arange(32)
    x, q, y = ex.batch(idx)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(model(x, q), y).backward()
        opt.step()
    model.eval()
    assert (model(x, q).argmax(-1) == y).float().mean() >= 0.95


def test_metrics_are_exact_counts():
    correct = torch.tensor([True, False, True, True, False, True])
    subtypes = torch.tensor([0, 1, 3, 4, 5, 5])
    m = metrics(correct, subtypes)
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(4 / 6)
    assert m["non_relational"] == pytest.approx(1 / 2) and m["relational"] == pytest.approx(3 / 4)
    assert m["by_subtype"]["count"] == pytest.approx(1 / 2) and m["by_subtype"]["shape"] == 1.0


@pytest.mark.parametrize("mask", [False, True])
def test_evaluate_matches_per_question_forward(tiny_split, mask):
    """The image-batched evaluation (objects computed once per image) gives every question the logits of a plain
    forward pass. Logits, not accuracy: an untrained model answers everything alike, so accuracy could not tell. With
    the mask they also differ from the unmasked model's, so an evaluation that dropped the mask would fail."""
    torch.manual_seed(0)
    cfg = preset("fast", "rn").model
    cfg.mask_background = mask
    model = build_model(cfg).eval()
    ex = Examples(tiny_split, state=False)
    seen = []
    head_forward = model.head.forward

    def recording(*args, **kwargs):
        seen.append(head_forward(*args, **kwargs))
        return seen[-1]

    model.head.forward = recording
    result = evaluate(model, ex, batch_images=3)
    del model.head.forward
    with torch.no_grad():
        x, q, y = ex.batch(torch.arange(len(ex)))
        logits = model(x, q)
        unmasked = model.head(model.objects(x), q)
    torch.testing.assert_close(torch.cat(seen), logits, rtol=1e-5, atol=1e-5)
    assert result["accuracy"] == pytest.approx(float((logits.argmax(-1) == y).float().mean()))
    assert ((unmasked - logits).abs().max() > 1e-3) == mask


def test_cli_train_eval_in_process(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "sort-of-clevr", "--out", str(run), "--quiet", f"--data.root={tmp_path / 'data'}",
                 *TINY]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4
    assert (run / "checkpoint" / "model.safetensors").is_file() and (run / "curve.png").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [2, 4]
    assert main(["eval", "sort-of-clevr", "--checkpoint", str(run / "checkpoint"), "--images", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "sort-of-clevr" and result["n"] == 60
    assert set(result["by_subtype"]) == set(soc.SUBTYPE_NAMES)
    for key in ("accuracy", "relational", "non_relational"):
        assert 0.0 <= result[key] <= 1.0
    assert main(["eval", "sort-of-clevr", "--checkpoint", str(run / "checkpoint"), "--images", "3"]) == 0
    table = capsys.readouterr().out.splitlines()  # the human-readable form names what it evaluated
    assert table[0] == f"{run / 'checkpoint'} (rn): 60 questions on 3 fresh images (seed 2026)"
    assert [line.split()[0] for line in table[2:]] == list(soc.SUBTYPE_NAMES)


def test_cli_reproduce_writes_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "sort-of-clevr", "--preset", "fast", "--models", "rn,mlp", "--eval-images", "2", *TINY,
                 f"--data.root={tmp_path / 'data'}"]) == 0
    report = (tmp_path / "reports" / "sort_of_clevr.md").read_text()
    assert "relnet CNN+RN" in report and "relnet CNN+MLP" in report and "kimhc6028" in report
    assert "`relnet reproduce sort-of-clevr --preset=fast --models=rn,mlp --data.train_images=40" in report
    assert (tmp_path / "runs" / "sort_of_clevr" / "mlp-fast" / "checkpoint").is_dir()
    assert "## What the relational score is made of" in report and "| position-free reader (best possible) |" in report
    split = json.loads((tmp_path / "reports" / "sort_of_clevr.json").read_text())["mlp"]["majority_split"]
    assert set(split) == {"closest_majority", "closest_minority", "furthest_majority", "furthest_minority"}
    assert (tmp_path / "reports" / "sort_of_clevr_curve.png").is_file()


def test_cli_reproduce_per_model_overrides_and_init_checkpoint(tmp_path, capsys, monkeypatch):
    """--rn:key=value reaches the RN only; a run that starts from another checkpoint's weights says so, twice (its
    minutes do not include the source's)."""
    monkeypatch.chdir(tmp_path)
    data = f"--data.root={tmp_path / 'data'}"
    assert main(["train", "sort-of-clevr", "--model", "rn", "--out", "src", "--quiet", *TINY, data]) == 0
    assert main(["reproduce", "sort-of-clevr", "--preset", "fast", "--models", "rn,mlp", "--eval-images", "2",
                 "--report", "r.md", *TINY, data, "--rn:train.init_from=src/checkpoint", "--rn:train.steps=2",
                 "--mlp:train.lr=1e-3"]) == 0
    report = (tmp_path / "r.md").read_text()
    assert "--rn:train.init_from=src/checkpoint --rn:train.steps=2 --mlp:train.lr=1e-3" in report.splitlines()[2]
    assert report.splitlines()[2].startswith("Generated by `relnet reproduce sort-of-clevr --preset=fast "
                                             "--models=rn,mlp --report=r.md --data.")  # rerunning it writes here
    assert "starting from the weights of `src/checkpoint`" in report
    rn, mlp = [line for line in report.splitlines() if line.startswith("- relnet CNN+") and "(`--model" in line]
    assert "initialised from `src/checkpoint`" in rn and "over 2 steps" in rn and "lr 0.0006 " in rn
    assert "initialised from" not in mlp and "over 4 steps" in mlp and "lr 0.001 " in mlp


def test_reproduce_trains_each_model_with_its_shipped_recipe_unless_told():
    from relnet.tasks.sort_of_clevr.report import preset_for

    assert [preset_for(m, None) for m in ("rn", "mlp", "rn-state")] == ["keypoints", "keypoints", "fast"]
    assert [preset_for(m, "compact") for m in ("rn", "mlp", "rn-state")] == ["compact"] * 3
    for model in ("rn", "mlp", "rn-state"):  # what the shipped checkpoints say they were trained with
        config = json.loads((SHIPPED / model.replace("-", "_") / "config.json").read_text())
        assert config["preset"] == preset_for(model, None)


def test_cli_reproduce_override_for_a_model_not_reproduced_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "sort-of-clevr", "--models", "mlp", *TINY, "--rn:train.steps=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'rn' is not one of the models reproduced here (mlp)" in err[0]


@pytest.mark.parametrize("args,match", [
    (["--checkpoint", "/nonexistent/ckpt"], "does not exist"),
    (["--checkpoint", ".", "--images", "1"], "config.json is missing"),
])
def test_eval_bad_input_is_one_line(args, match, capsys):
    assert main(["eval", "sort-of-clevr", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_background_mask_keeps_object_cells_and_drops_empty_ones(tiny_split):
    """Checked against the scene description: the 15x15 cell holding each object's centre is kept, and a cell whose
    block lies more than 5 px (an object's half-size) from every centre is dropped."""
    cfg = preset("fast", "rn").model
    cfg.mask_background = True
    model = build_model(cfg)
    images = Examples(tiny_split, state=False).images(torch.arange(len(tiny_split["images"])))
    mask = model.object_mask(images).view(-1, 5, 5)  # (N, row, col)
    for n, centres in enumerate(tiny_split["centres"]):
        for x, y in centres:
            assert mask[n, y // 15, x // 15]
        for r in range(5):
            for c in range(5):
                near = [max(max(15 * c - x, x - (15 * c + 14), 0), max(15 * r - y, y - (15 * r + 14), 0)) <= 5
                        for x, y in centres]
                if not any(near):
                    assert not mask[n, r, c], (n, r, c)
    for kind in ("mlp", "rn-state"):
        with pytest.raises(UserError, match="mask_background"):
            build_model(dataclasses.replace(cfg, kind=kind))


def test_reconstruction_target_is_each_cells_own_block(tiny_split):
    """A decoder that outputs exactly the pixels of its cell's 15x15 block (cut here with explicit loops, in the
    grid's row-major cell order) has zero error; any other output has a positive one."""
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_channels=(8, 8, 8, 8), g_dims=(16, 16), reconstruct=2.0)
    model = build_model(cfg)
    x, q, y = Examples(tiny_split, state=False).batch(torch.arange(3))
    blocks = torch.stack([torch.stack([x[n, :, 15 * r:15 * r + 15, 15 * c:15 * c + 15].reshape(-1)
                                       for r in range(5) for c in range(5)]) for n in range(3)])  # (3, 25, 675)
    del model.decoder  # replaced by a plain function
    model.decoder = lambda features: blocks
    assert float(model.reconstruction_error(model.objects(x), x)) == 0.0
    model.decoder = lambda features: blocks + 0.1
    assert float(model.reconstruction_error(model.objects(x), x)) == pytest.approx(3 * 0.01)


def test_reconstruction_loss_trains_the_cnn_and_decoder(tiny_split):
    from relnet.tasks.sort_of_clevr.task import SortOfClevrTask
    cfg = dataclasses.replace(preset("fast", "rn").model, cnn_channels=(8, 8, 8, 8), g_dims=(16, 16), reconstruct=1.0)
    model = build_model(cfg)
    batch = Examples(tiny_split, state=False).batch(torch.arange(8))
    task = SortOfClevrTask.__new__(SortOfClevrTask)  # loss() needs no data set
    loss, stats = task.loss(model, batch)
    plain = F.cross_entropy(model(batch[0], batch[1]), batch[2], reduction="sum")
    assert float(loss.detach()) == pytest.approx(float(plain.detach()) + 8 * stats["reconstruction"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt = torch.optim.Adam(model.decoder.parameters(), lr=1e-2)
    first = stats["reconstruction"]
    for _ in range(30):
        opt.zero_grad()
        loss, stats = task.loss(model, batch)
        loss.backward()
        opt.step()
    assert stats["reconstruction"] < first / 2
    with pytest.raises(UserError, match="reconstruct"):
        build_model(dataclasses.replace(cfg, kind="rn-state"))


def test_first_stage_starts_over_when_its_training_accuracy_is_low(tmp_path, capsys, monkeypatch):
    """--objects_restart: a first stage below the bar at its check step is set aside (kept, stopped there) and the
    next seed trains; the last try runs to the end; a fresh run clears old failed tries; --resume keeps them; the
    minutes of the failed tries count and the report says what happened."""
    monkeypatch.chdir(tmp_path)
    small = ["--preset", "keypoints", "--data.train_images=40", "--data.test_images=5", f"--data.root={tmp_path / 'd'}",
             "--model.cnn_channels=8,8,8", "--model.g_dims=16,16", "--model.f_dims=16,16", "--model.object_encoder=8",
             "--objects.steps=4", "--objects.eval_every=4", "--objects.log_every=2", "--objects.seed=5",
             "--train.steps=2", "--train.eval_every=2", "--train.threads=1", "--objects_restart.at_step=2",
             "--objects_restart.tries=3"]
    # a bar nobody clears: two tries set aside, the third kept
    assert main(["train", "sort-of-clevr", "--out", "run", "--quiet", *small, "--objects_restart.below=1"]) == 0
    out = capsys.readouterr().out
    assert "seed 5: training accuracy" in out and "starting over with seed 7" in out
    for n, seed in ((1, 5), (2, 6)):
        failed = tmp_path / "run" / f"objects-failed-{n}"
        assert json.loads((failed / "config.json").read_text())["train"]["seed"] == seed
        assert json.loads((failed / "checkpoint" / "trainer.json").read_text())["step"] == 2  # stopped at the check
    kept = tmp_path / "run" / "objects"
    assert json.loads((kept / "config.json").read_text())["train"]["seed"] == 7
    assert json.loads((kept / "checkpoint" / "trainer.json").read_text())["step"] == 4
    # --resume counts the failed tries and goes on with the kept one (finished here: nothing retrains)
    before = (kept / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    assert main(["train", "sort-of-clevr", "--out", "run", "--quiet", *small, "--objects_restart.below=1",
                 "--resume"]) == 0
    assert "starting over" not in capsys.readouterr().out
    assert (kept / "checkpoint" / "model.safetensors").stat().st_mtime_ns == before
    assert len(list((tmp_path / "run").glob("objects-failed-*"))) == 2
    # a bar everyone clears: a fresh run (no --resume) clears the old failed tries and keeps its first
    assert main(["train", "sort-of-clevr", "--out", "run", "--quiet", *small, "--objects_restart.below=0"]) == 0
    assert not list((tmp_path / "run").glob("objects-failed-*"))
    assert json.loads((kept / "config.json").read_text())["train"]["seed"] == 5
    # reproduce counts and reports the failed try (with 2 tries the second is the last: it runs to the end)
    bar = ["--objects_restart.below=1", "--objects_restart.tries=2"]
    assert main(["reproduce", "sort-of-clevr", "--models", "rn", "--eval-images", "2", "--runs", "r", *small[2:],
                 "--preset", "keypoints", *bar]) == 0
    report = (tmp_path / "reports" / "sort_of_clevr.md").read_text()
    assert "a first stage with seed 5 was stopped at step 2 (training accuracy" in report
    assert "started over from the next seed if its training accuracy at step 2 is below 1.0 (at most 2 tries; " \
           "1 needed)" in report
    result = json.loads((tmp_path / "reports" / "sort_of_clevr.json").read_text())["rn"]
    failed_seconds = json.loads((tmp_path / "r" / "rn-keypoints" / "objects-failed-1" / "metrics.jsonl")
                                .read_text().splitlines()[-1])["elapsed"]
    kept_seconds = json.loads((tmp_path / "r" / "rn-keypoints" / "objects" / "metrics.jsonl")
                              .read_text().splitlines()[-1])["elapsed"]
    assert result["train_seconds"] >= failed_seconds + kept_seconds
    # --resume takes the failed try and the finished stages as they are
    assert main(["reproduce", "sort-of-clevr", "--models", "rn", "--eval-images", "2", "--runs", "r", *small[2:],
                 "--preset", "keypoints", "--resume", *bar]) == 0
    again = json.loads((tmp_path / "reports" / "sort_of_clevr.json").read_text())["rn"]
    # the failed try and both stages still count, and nothing trained again (not equality: the first run's seconds
    # also time the writing of each stage's last checkpoint, after its last logged row, which can take a few tenths
    # of a second on a loaded machine, and a finished run resumed reads its seconds from that row)
    assert failed_seconds + kept_seconds <= again["train_seconds"] <= result["train_seconds"] + 0.05, (again, result)
    assert "a first stage with seed 5 was stopped" in (tmp_path / "reports" / "sort_of_clevr.md").read_text()
