"""`relnet train|eval|reproduce physics` in-process on tiny simulated data sets (cached under tmp_path)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from relnet.cli import main
from relnet.tasks.physics import sim
from relnet.tasks.physics.task import load_model, symmetry_view

TINY = ["--model.g_dims=16,16", "--model.f_dims=16", "--data.train_scenes=60", "--data.val_scenes=20",
        "--train.batch_size=10", "--train.log_every=1", "--train.threads=1", "--train.warmup_steps=0"]


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    def strict(name):  # NaN / Infinity are not JSON: undefined metrics must be null
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=strict)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny connections RN and one tiny count MLP, trained for 3 steps each."""
    root = tmp_path_factory.mktemp("physics_cli")
    runs = {}
    for task, model in (("connections", "rn"), ("count", "mlp")):
        out = root / f"{task}-{model}"
        assert main(["train", "physics", "--task", task, "--model", model, "--out", str(out), "--quiet",
                     f"--data.root={root / 'data'}", *TINY, "--train.steps=3", "--train.eval_every=3"]) == 0
        runs[task] = out / "checkpoint"
    return root, runs


def test_train_writes_checkpoint_and_caches_data(trained):
    root, runs = trained
    cfg = json.loads((runs["connections"] / "config.json").read_text())
    assert cfg["task"] == "physics-connections" and cfg["model"]["kind"] == "rn"
    assert cfg["model"]["readout"] == "pair" and cfg["sim"]["n_balls"] == 10
    assert json.loads((runs["count"] / "config.json").read_text())["task"] == "physics-count"
    cached = sorted(p.name for p in (root / "data" / "physics").glob("*/*.npz"))
    assert cached == ["train-s0-n60.npz", "val-s0-n20.npz"]
    rows = [json.loads(line) for line in (runs["connections"].parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]
    assert {"scene_accuracy", "precision", "recall"} <= set(next(r for r in rows if r["kind"] == "eval"))


def test_eval_connections_matches_an_independent_recount(trained, capsys):
    _, runs = trained
    ev = run_json(capsys, ["eval", "physics", "--task", "connections", "--checkpoint", str(runs["connections"]),
                           "--seed", "5", "--scenes", "30", "--json"])
    assert ev["task"] == "physics-connections" and ev["n"] == 30 and "accuracy" not in ev
    # recount with the reloaded model on scenes simulated here, metrics written independently
    model, _ = load_model(runs["connections"])
    data = sim.simulate(sim.PhysicsParams(), 30, (5, sim.SPLITS["test"]))
    with torch.no_grad():
        pred = (model(torch.from_numpy(sim.objects(data))) > 0).numpy()
    truth = data["edges"]
    all_right = [(pred[k] == truth[k]).all() for k in range(30)]
    assert ev["scene_accuracy"] == pytest.approx(np.mean(all_right))
    off = ~np.eye(10, dtype=bool)
    tp = (pred & truth & off).sum()
    if pred[:, off].sum():
        assert ev["precision"] == pytest.approx(tp / pred[:, off].sum())
    else:
        assert ev["precision"] is None
    assert ev["recall"] == pytest.approx(tp / truth[:, off].sum())


def test_eval_count_json_and_seed(trained, capsys):
    _, runs = trained
    a = run_json(capsys, ["eval", "physics", "--task", "count", "--checkpoint", str(runs["count"]), "--seed", "1",
                          "--scenes", "40", "--json"])
    assert a["task"] == "physics-count" and a["n"] == 40 and 0 <= a["accuracy"] <= 1
    model, _ = load_model(runs["count"], "count")
    data = sim.simulate(sim.PhysicsParams(), 40, (1, sim.SPLITS["test"]))
    with torch.no_grad():
        pred = model(torch.from_numpy(sim.objects(data))).argmax(-1).numpy() + 1
    assert a["accuracy"] == pytest.approx(float((pred == data["systems"]).mean()))
    assert set(a["by_systems"]) == {str(c) for c in range(1, 11)}
    assert a["symmetries"] == 1
    b = run_json(capsys, ["eval", "physics", "--task", "count", "--checkpoint", str(runs["count"]), "--seed", "1",
                          "--scenes", "40", "--json", "--symmetries"])
    objects = torch.from_numpy(sim.objects(data))
    with torch.no_grad():
        mean = torch.stack([model(symmetry_view(objects, k)) for k in range(16)]).mean(0)
    assert b["symmetries"] == 16
    assert b["accuracy"] == pytest.approx(float(((mean.argmax(-1).numpy() + 1) == data["systems"]).mean()))


def test_eval_refuses_the_wrong_task_and_bad_options(trained, capsys):
    _, runs = trained
    assert main(["eval", "physics", "--task", "count", "--checkpoint", str(runs["connections"])]) == 2
    assert "physics-connections" in capsys.readouterr().err
    assert main(["eval", "physics", "--task", "count", "--checkpoint", str(runs["count"]), "--scenes", "0"]) == 2
    assert "--scenes" in capsys.readouterr().err
    assert main(["train", "physics", "--task", "count", "--model.nope=1", "--show-config"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_round_grown_onto_a_trained_model_needs_init_partial(trained, tmp_path, capsys):
    root, runs = trained  # the tiny connections RN has the fast preset's 3 rounds
    grow = ["train", "physics", "--task", "connections", "--quiet", f"--data.root={root / 'data'}", *TINY,
            "--train.steps=2", "--train.eval_every=2", f"--train.init_from={runs['connections']}",
            "--model.rounds=4", "--model.gated_rounds=1", "--out"]
    capsys.readouterr()
    assert main([*grow, str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert "does not fit the model" in err and "net.later.1" in err and "Traceback" not in err
    assert main([*grow, str(tmp_path / "grown"), "--train.init_partial=true"]) == 0
    start = load_model(runs["connections"])[0].state_dict()
    grown = load_model(tmp_path / "grown" / "checkpoint")[0]
    assert grown.net.rounds == 4 and grown.net.round_gates.abs().item() > 0  # trained from 0
    assert not torch.equal(grown.state_dict()["net.g_in.weight"], start["net.g_in.weight"])  # trained on
    # unexpected tensors stay an error with init_partial: a 4-round checkpoint cannot start a 3-round model
    assert main(["train", "physics", "--task", "connections", "--quiet", f"--data.root={root / 'data'}", *TINY,
                 "--train.steps=1", f"--train.init_from={tmp_path / 'grown' / 'checkpoint'}",
                 "--train.init_partial=true", "--out", str(tmp_path / "shrunk")]) == 2
    assert "unexpected" in capsys.readouterr().err


def test_distillation_targets_are_the_teachers_view_average_and_are_cached(trained, tmp_path, capsys):
    from relnet.tasks.physics.model import preset
    from relnet.tasks.physics.task import PhysicsTask, task_loss

    root, runs = trained
    cfg = preset("fast", "connections", "rn")
    cfg.data.root, cfg.data.train_scenes, cfg.data.val_scenes = str(root / "data"), 60, 0
    cfg.data.teacher, cfg.data.teacher_views, cfg.data.teacher_weight = str(runs["connections"]), (0, 5), 0.25
    task = PhysicsTask(cfg, progress=False)
    teacher = load_model(runs["connections"])[0]
    x = task.train_set.objects
    with torch.no_grad():
        probs = ((teacher(x) + teacher(symmetry_view(x, 5))) / 2).sigmoid()
    expected = 0.25 * probs + 0.75 * task.train_set.edges.float()
    torch.testing.assert_close(task.soft, expected)
    files = list((root / "data" / "physics").glob("*/teacher-train-s0-*.npy"))
    assert len(files) == 1
    np.save(files[0], np.zeros((60, 10, 10), np.float32))  # the cache is read back, not recomputed
    assert torch.equal(PhysicsTask(cfg, progress=False).soft, 0.75 * task.train_set.edges.float())
    # the batch carries each scene's targets (unchanged by its view), the loss reads them
    idx = torch.tensor([3, 7])
    xb, edges, systems, soft = task.batch(idx, train=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(soft, expected[idx])
    logits = torch.randn(2, 10, 10)
    loss, stats = task_loss("connections", logits, edges, systems, soft)
    bce = -(soft * F.logsigmoid(logits) + (1 - soft) * F.logsigmoid(-logits)).mean(dim=(1, 2)).sum()
    torch.testing.assert_close(loss, bce)
    assert stats["correct"] == float(((logits > 0) == edges).flatten(1).all(1).sum())  # against the labels
    # bad settings are one-line errors
    base = ["train", "physics", "--task", "connections", "--quiet", f"--data.root={root / 'data'}", *TINY,
            "--train.steps=1", "--out", str(tmp_path / "bad"), f"--data.teacher={runs['connections']}"]
    assert main([*base[:-2], str(tmp_path / "distilled"), *base[-1:], "--data.teacher_views=0,5"]) == 0
    for extra, message in (("--data.teacher_views=0,16", "teacher_views"), ("--data.teacher_weight=2", "[0, 1]")):
        capsys.readouterr()
        assert main([*base, extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["train", "physics", "--task", "count", "--quiet", f"--data.root={root / 'data'}", *TINY,
                 "--train.steps=1", "--out", str(tmp_path / "bad"), f"--data.teacher={runs['connections']}"]) == 2
    assert "--task connections" in capsys.readouterr().err


def test_reproduce_writes_report_picture_and_ships(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "physics", "--tasks", "connections,count", "--models", "rn,mlp", "--quiet", "--ship",
                 "--gif", "--symmetries", "--eval-scenes", "20", f"--data.root={tmp_path / 'data'}", *TINY, "--train.steps=2",
                 "--train.eval_every=2"]) == 0
    text = (tmp_path / "reports" / "physics.md").read_text()
    assert "93%" in text and "95%" in text and "RN" in text and "MLP" in text
    for name in ("physics_scene.png", "physics_curve.png", "physics_scene.gif"):
        assert (tmp_path / "reports" / name).stat().st_size > 1000, name
    summary = json.loads((tmp_path / "reports" / "physics.json").read_text())
    assert set(summary) == {"connections/rn", "connections/mlp", "count/rn", "count/mlp"}
    assert "relnet RN, 16 views" in text and "--symmetries" in text
    for task in ("connections", "count"):  # the RNs only, on the same 20 scenes
        sym = summary[f"{task}/rn"]["symmetric_metrics"]
        assert sym["symmetries"] == 16 and sym["n"] == 20 and sym["seed"] == summary[f"{task}/rn"]["metrics"]["seed"]
        assert "symmetric_metrics" not in summary[f"{task}/mlp"]
    for task in ("connections", "count"):
        cfg = json.loads((tmp_path / "checkpoints" / "physics" / task / "config.json").read_text())
        assert cfg["task"] == f"physics-{task}" and cfg["model"]["kind"] == "rn"
    assert main(["reproduce", "physics", "--tasks", "nope"]) == 2


def test_system_weights_scale_each_scenes_loss(trained, tmp_path, capsys):
    from relnet.tasks.physics.model import preset
    from relnet.tasks.physics.task import PhysicsTask, task_loss

    root, _ = trained
    cfg = preset("fast", "connections", "rn")
    cfg.data.root, cfg.data.train_scenes, cfg.data.val_scenes = str(root / "data"), 60, 0
    cfg.data.system_weights = (4.0, 2.0)
    task = PhysicsTask(cfg, progress=False)
    model = load_model(trained[1]["connections"])[0]
    batch = task.batch(torch.arange(60), train=True, generator=None)
    x, edges, systems, _ = batch
    with torch.no_grad():
        loss, _ = task.loss(model, batch)
        per_scene = [task_loss("connections", model(x[s : s + 1]), edges[s : s + 1], systems[s : s + 1])[0]
                     for s in range(60)]
    expected = sum((4.0 if c == 1 else 2.0 if c == 2 else 1.0) * l for c, l in zip(systems.tolist(), per_scene))
    assert {1, 2, 3} <= set(systems.tolist())
    torch.testing.assert_close(loss, expected)
    capsys.readouterr()
    assert main(["train", "physics", "--task", "connections", "--quiet", f"--data.root={root / 'data'}", *TINY,
                 "--train.steps=1", "--out", str(tmp_path / "bad"), "--data.system_weights=1,-1"]) == 2
    assert "system_weights" in capsys.readouterr().err
