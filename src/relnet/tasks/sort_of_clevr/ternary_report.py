"""``relnet reproduce sort-of-clevr-ternary``: the ternary RN, the pair RN and an MLP side by side on ternary questions.

Trains each model on the state descriptions of the default Sort-of-CLEVR training scenes with ten ternary questions
per scene (``relnet.tasks.sort_of_clevr.ternary``), with the shared trainer and one configuration apart from the model,
then scores every model on the ternary questions of freshly generated scenes (``ternary.fresh_examples``, the scenes
``relnet eval sort-of-clevr-ternary`` uses) and writes a report with the accuracy per subtype, the majority-answer
baseline, wall time and machine, a JSON file beside it, and the held-out curve. Ends with a ``RESULT {json}`` line.

Any ``--train.*`` / ``--model.*`` / ``--data.*`` override applies to every model (``--models`` picks them, so
``--model.kind`` is refused). With ``resume`` a finished run is reused, not trained again, and a run trained with
other settings is refused (``check_reuse``). ``ship`` copies each model's final checkpoint to
``checkpoints/sort_of_clevr/ternary_<model>/``. ``scripts/soc_ternary.py`` calls ``reproduce`` with its older
command line.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence

import torch

from relnet.checkpoint import atomic_dir, write_text_atomic
from relnet.errors import UserError
from relnet.report import machine_description, markdown_table, plot_eval_curves
from relnet.tasks.sort_of_clevr import ternary as t
from relnet.train.config import apply_overrides, to_dict
from relnet.train.loop import train

DEFAULT_MODELS = ",".join(t.MODELS)
DEFAULT_RUNS, DEFAULT_REPORT = "runs/sort_of_clevr_ternary", "reports/sort_of_clevr_ternary.md"  # runs: as `relnet train`
SHIP_ROOT = Path("checkpoints/sort_of_clevr")  # --ship: <root>/ternary_<model>/{model.safetensors,config.json}
NAN = float("nan")
# training settings that do not change what a run learns: a finished run trained with other values may be reused
REUSE_IGNORES = ("threads", "eval_every", "log_every", "checkpoint_every")
SHIPPED_FILES = ("model.safetensors", "config.json")


def pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"  # NaN: a subtype not asked


def parse_models(text: str) -> list[str]:
    """``"rn3,rn"`` -> ``["rn3", "rn"]``; a one-line UserError for an empty list, an unknown or a repeated model."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in t.MODELS]
    if not models or unknown or len(set(models)) != len(models):
        raise UserError(f"--models {text}: expected a comma-separated list of distinct models from "
                        f"{', '.join(t.MODELS)}")
    return models


def majority(train_set: t.TernaryExamples, test_set: t.TernaryExamples) -> dict[str, float]:
    """Accuracy on ``test_set`` of always giving each subtype's most common training answer (the baseline to beat)."""
    right = torch.zeros(len(test_set), dtype=torch.bool)
    for k in range(len(t.TERNARY_SUBTYPES)):
        sel, seen = test_set.subtypes == k, train_set.answers[train_set.subtypes == k]
        if sel.any() and len(seen):
            right[sel] = test_set.answers[sel] == torch.bincount(seen).argmax()
    out = {name: float(right[test_set.subtypes == k].float().mean()) for k, name in enumerate(t.TERNARY_SUBTYPES)
           if (test_set.subtypes == k).any()}  # subtypes not asked are left out
    return {**out, "all": float(right.float().mean())}


def check_reuse(run_dir: Path, cfg: t.RunConfig) -> None:
    """Refuse to reuse a run (``--resume``) trained with other model, data or training settings than ``cfg`` (all of
    ``train`` but ``REUSE_IGNORES``): the report would describe the current settings, not the run's."""
    saved = run_dir / "config.json"
    if not saved.is_file():
        return
    try:
        old = json.loads(saved.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"--resume: {saved} is unreadable ({e}); use another --runs") from None
    if not isinstance(old, dict):
        raise UserError(f"--resume: {saved} is not a run configuration; use another --runs")
    if isinstance(old.get("data"), dict):
        old["data"].setdefault("subtypes", list(t.TERNARY_SUBTYPES))  # runs from before --data.subtypes
    new = json.loads(json.dumps(to_dict(cfg)))
    for key in ("model", "data"):
        if old.get(key) != new[key]:
            raise UserError(f"--resume: {run_dir} was trained with {key} {old.get(key)}, not {new[key]}; use the "
                            "same options or another --runs")
    old_train = old.get("train") if isinstance(old.get("train"), dict) else {}
    for key, value in new["train"].items():
        if key not in REUSE_IGNORES and old_train.get(key) != value:
            raise UserError(f"--resume: {run_dir} was trained with train.{key}={old_train.get(key)!r}, not "
                            f"{value!r}; use --train.{key}={old_train.get(key)} or another --runs")


def ship(run_dir: Path, target: Path) -> Path:
    """Copy the final checkpoint's ``model.safetensors`` and ``config.json`` of ``run_dir`` to ``target``, atomically
    (``relnet.checkpoint.atomic_dir``: a folder beside it, then a rename), as the other tasks' ``--ship`` does. A
    missing file or a failed copy is a one-line UserError, and ``target`` is left as it was."""
    try:
        with atomic_dir(target) as tmp:
            for name in SHIPPED_FILES:
                shutil.copy2(run_dir / "checkpoint" / name, tmp / name)
    except OSError as e:
        raise UserError(f"--ship: cannot copy {run_dir / 'checkpoint'} to {target} ({e})") from None
    return target


def reproduce(*, models: Sequence[str], runs: str | Path, report: str | Path, images: int, seed: int,
              overrides: Sequence[str], command: str, resume: bool = False, ship_to: str | Path | None = None,
              progress: bool = True) -> dict:
    """Train ``models`` into ``<runs>/<model>``, score them on ``images`` fresh scenes of stream ``seed`` and write
    ``report`` (markdown), ``report`` with ``.json``, and ``<report stem>_curve.png``; print the report and a
    ``RESULT`` line. ``command`` is the command line quoted in the report's "Generated by" line. ``ship_to``: also
    copy each model's final checkpoint to ``<ship_to>/ternary_<model>/`` (before the report files are written).

    Every option is checked before anything is trained (a one-line UserError). Returns the JSON written.
    """
    models = list(models)
    overrides = list(overrides)
    if not models:
        raise UserError(f"--models: expected some of {', '.join(t.MODELS)}")
    if any(o.split("=", 1)[0] == "--model.kind" for o in overrides):
        raise UserError("--model.kind would override every model: pick them with --models")
    cfg = apply_overrides(t.RunConfig(), overrides)
    if cfg.data.questions_per_image < 1:
        raise UserError(f"--data.questions_per_image={cfg.data.questions_per_image}: at least 1 question per scene")
    configs = {kind: apply_overrides(t.RunConfig(model=t.ModelConfig(kind=kind)), overrides) for kind in models}
    if resume:
        for kind, run_cfg in configs.items():
            check_reuse(Path(runs) / kind, run_cfg)
    fresh = t.fresh_examples(images=images, seed=seed, per_image=cfg.data.questions_per_image,
                             subtypes=cfg.data.subtypes)

    rows, results, histories, task = [], {}, {}, None
    for kind, run_cfg in configs.items():
        start = time.perf_counter()
        task = t.TernaryTask(run_cfg)
        run = train(task, run_cfg.train, Path(runs) / kind, run_config=to_dict(run_cfg), resume=resume,
                    progress=progress)
        wall = time.perf_counter() - start
        model = run.model
        res = t.evaluate(model, fresh)
        params = sum(p.numel() for p in model.parameters())
        results[kind] = {**res, "train_seconds": run.seconds, "wall_seconds": wall, "parameters": params,
                         "steps": run.step}
        histories[kind] = run.history
        rows.append([f"`{kind}`", f"{params:,}", *(pct(res["by_subtype"].get(n, NAN)) for n in t.TERNARY_SUBTYPES),
                     f"**{pct(res['accuracy'])}**", f"{run.seconds / 60:.1f}"])
    base = majority(task.train_set, fresh)
    rows.append(["most common answer", "-", *(pct(base.get(n, NAN)) for n in t.TERNARY_SUBTYPES), pct(base["all"]),
                 "-"])

    report = Path(report)
    report.parent.mkdir(parents=True, exist_ok=True)
    curve = report.with_name(report.stem + "_curve.png")
    plot_eval_curves(histories, curve, keys=("accuracy",), title="Ternary Sort-of-CLEVR: held-out accuracy")
    text = render_report(cfg, rows, command=command, resume=resume, images=images, seed=seed, questions=len(fresh),
                         curve_name=curve.name)
    out = {"models": results, "majority": base, "images": images, "seed": seed, "overrides": overrides,
           "command": command}
    if ship_to is not None:  # every source is checked before anything is copied, and shipping before the report
        missing = [str(Path(runs) / kind / "checkpoint" / name) for kind in models for name in SHIPPED_FILES
                   if not (Path(runs) / kind / "checkpoint" / name).is_file()]
        if missing:
            raise UserError(f"--ship: no final checkpoint file {', '.join(missing)}")
        out["shipped"] = {kind: str(ship(Path(runs) / kind, Path(ship_to) / f"ternary_{kind}")) for kind in models}
    write_text_atomic(report.with_suffix(".json"), json.dumps(out, indent=2, allow_nan=False))
    write_text_atomic(report, text)
    print(text)
    for kind, where in out.get("shipped", {}).items():
        print(f"shipped {kind}: {where}")
    print("RESULT " + json.dumps({k: v["accuracy"] for k, v in results.items()}))
    return out


def render_report(cfg: t.RunConfig, rows: list[list[str]], *, command: str, resume: bool, images: int, seed: int,
                  questions: int, curve_name: str) -> str:
    """The markdown report: ``cfg`` is the configuration shared by every model (all but ``model.kind``), ``rows``
    the table's rows (one per model, then the most common answer)."""
    header = ["model", "parameters", *t.TERNARY_SUBTYPES, "all", "minutes (training + periodic evaluation)"]
    return "\n".join([
        "# Sort-of-CLEVR, ternary questions: ternary RN vs pair RN vs MLP (state descriptions)",
        "",
        f"Generated by `{command}`" + (" (finished runs reused)." if resume else "."),
        f"Machine: {machine_description()}. Training seed {cfg.train.seed}.",
        "",
        "Questions (`relnet.tasks.sort_of_clevr.ternary`): about two objects A and B and the four others. *between*: "
        "how many lie in the box spanned by A and B (0-4); *line*: is one within "
        f"{t.LINE_WIDTH} px of the line through A and B (yes/no); *obtuse*: for how many C has the triangle ABC an "
        "angle of at least 90 degrees (0-4); with `--data.subtypes=...,left` also one binary question, *left*: is A "
        f"left of B (yes/no). Asked here: {', '.join(cfg.data.subtypes)}.",
        f"Training: {cfg.data.train_images:,} scenes x {cfg.data.questions_per_image} questions, "
        f"{cfg.train.steps:,} steps of {cfg.train.batch_size}, {cfg.train.optimizer} {cfg.train.lr:g} "
        f"({cfg.train.schedule}, "
        f"warm-up {cfg.train.warmup_steps}). Models: g {list(cfg.model.g_dims)}, f {list(cfg.model.f_dims)} "
        f"(dropout {list(cfg.model.f_dropout)}); `rn3` sums g over the 216 ordered triples of the six objects, `rn` "
        "over the 36 ordered pairs, `mlp` reads the six objects and the question flattened through the same layers."
        + (" Each object also carries 'is A' and 'is B' (`--model.tag_objects`)." if cfg.model.tag_objects else "")
        + (" g also reads the distances within its triple or pair (`--model.pair_distance`; not in the paper)."
           if cfg.model.pair_distance else ""),
        f"Test: {questions:,} questions over {images:,} freshly generated scenes (stream {seed}), never "
        "seen in training.",
        "",
        markdown_table(header, rows),
        "",
        "The most common answer is each subtype's most common answer in training. The curve shows accuracy on the "
        f"task's own {cfg.data.test_images} test scenes (stream {cfg.data.seed}) while training; the table, the "
        "fresh scenes.",
        "",
        f"![curve]({curve_name})",
        "",
    ])
