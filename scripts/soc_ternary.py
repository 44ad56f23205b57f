"""Ternary Sort-of-CLEVR: the ternary RN, the pair RN and an MLP side by side on questions about three objects.

Trains each model on the state descriptions of the default Sort-of-CLEVR training scenes with ten ternary questions
per scene (``relnet.tasks.sort_of_clevr.ternary``), with the shared trainer and one configuration apart from the model,
then scores every model on the ternary questions of freshly generated scenes and writes a report with the accuracy
per subtype, the majority-answer baseline, wall time and machine:

    python scripts/soc_ternary.py --runs runs/soc-ternary --report reports/sort_of_clevr_ternary.md \
        [--models rn3,rn,mlp] [--images 1000] [--seed 2026] [--resume] [--train.steps=10000 ...]

Any ``--train.*`` / ``--model.*`` / ``--data.*`` override applies to every model (``--models`` picks them, so
``--model.kind`` is refused). With ``--resume`` a finished run is reused, not trained again. Ends with a
``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from relnet.report import machine_description, markdown_table, plot_eval_curves
from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr import ternary as t
from relnet.train.config import apply_overrides, to_dict
from relnet.train.loop import train


NAN = float("nan")


def pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"  # NaN: a subtype not asked


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
    """Refuse to reuse a run (``--resume``) trained with other model, data or step settings than ``cfg``: the report
    would describe the current settings, not the run's."""
    saved = run_dir / "config.json"
    if not saved.is_file():
        return
    old = json.loads(saved.read_text())
    old.get("data", {}).setdefault("subtypes", list(t.TERNARY_SUBTYPES))  # runs from before --data.subtypes
    new = json.loads(json.dumps(to_dict(cfg)))
    for key in ("model", "data"):
        if old.get(key) != new[key]:
            raise SystemExit(f"--resume: {run_dir} was trained with {key} {old.get(key)}, not {new[key]}; use the "
                             "same options or another --runs")
    if old.get("train", {}).get("steps") != cfg.train.steps:
        raise SystemExit(f"--resume: {run_dir} was trained for {old.get('train', {}).get('steps')} steps, not "
                         f"{cfg.train.steps}; use --train.steps={old.get('train', {}).get('steps')} or another --runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/soc-ternary")
    parser.add_argument("--report", default="reports/sort_of_clevr_ternary.md")
    parser.add_argument("--models", default="rn3,rn,mlp")
    parser.add_argument("--images", type=int, default=1000, help="fresh test scenes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=2026, help="stream of the fresh scenes (default: %(default)s)")
    parser.add_argument("--resume", action="store_true")
    args, overrides = parser.parse_known_args()
    models = [m for m in args.models.split(",") if m]
    if any(o.startswith("--model.kind=") for o in overrides):
        parser.error("--model.kind would override every model: pick them with --models")
    if args.images < 1 or not models or any(m not in t.MODELS for m in models):
        parser.error(f"need --images >= 1 and --models from {', '.join(t.MODELS)}")
    cfg = apply_overrides(t.RunConfig(), overrides)
    fresh_params = soc.SortOfClevrParams(train_images=1, test_images=args.images, seed=args.seed)
    fresh = t.TernaryExamples(*t.scenes(fresh_params, "test"), seed=args.seed, split="test",
                              per_image=cfg.data.questions_per_image, subtypes=cfg.data.subtypes)

    rows, results, histories, task = [], {}, {}, None
    for kind in models:
        run_cfg = apply_overrides(t.RunConfig(model=t.ModelConfig(kind=kind)), overrides)
        if args.resume:
            check_reuse(Path(args.runs) / kind, run_cfg)
        start = time.perf_counter()
        task = t.TernaryTask(run_cfg)
        run = train(task, run_cfg.train, Path(args.runs) / kind, run_config=to_dict(run_cfg), resume=args.resume)
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

    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    curve = report.with_name(report.stem + "_curve.png")
    plot_eval_curves(histories, curve, keys=("accuracy",), title="Ternary Sort-of-CLEVR: held-out accuracy")
    header = ["model", "parameters", *t.TERNARY_SUBTYPES, "all", "minutes (training + periodic evaluation)"]
    text = "\n".join([
        "# Sort-of-CLEVR, ternary questions: ternary RN vs pair RN vs MLP (state descriptions)",
        "",
        f"Generated by `python scripts/soc_ternary.py --runs {args.runs} --report {args.report} --models {args.models} "
        f"--images {args.images} --seed {args.seed}{' --resume' * args.resume}{' ' if overrides else ''}"
        f"{' '.join(overrides)}`" + (" (finished runs reused)." if args.resume else "."),
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
        f"Test: {len(fresh):,} questions over {args.images:,} freshly generated scenes (stream {args.seed}), never "
        "seen in training.",
        "",
        markdown_table(header, rows),
        "",
        "The most common answer is each subtype's most common answer in training. The curve shows accuracy on the "
        f"task's own {cfg.data.test_images} test scenes (stream {cfg.data.seed}) while training; the table, the "
        "fresh scenes.",
        "",
        f"![curve]({curve.name})",
        "",
    ])
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text(text)
    tmp.replace(report)
    out = {"models": results, "majority": base, "images": args.images, "seed": args.seed, "overrides": overrides}
    report.with_suffix(".json").write_text(json.dumps(out, indent=2, allow_nan=False))
    print(text)
    print("RESULT " + json.dumps({k: v["accuracy"] for k, v in results.items()}))


if __name__ == "__main__":
    main()
