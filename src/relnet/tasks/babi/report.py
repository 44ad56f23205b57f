"""``relnet reproduce babi``: train the joint model, evaluate it per task, write ``reports/babi.md``."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from relnet.checkpoint import atomic_dir
from relnet.report import machine_description, markdown_table, plot_eval_curves

TASK_NAMES = {
    1: "single supporting fact", 2: "two supporting facts", 3: "three supporting facts", 4: "two arg relations",
    5: "three arg relations", 6: "yes/no questions", 7: "counting", 8: "lists/sets", 9: "simple negation",
    10: "indefinite knowledge", 11: "basic coreference", 12: "conjunction", 13: "compound coreference",
    14: "time reasoning", 15: "basic deduction", 16: "basic induction", 17: "positional reasoning",
    18: "size reasoning", 19: "path finding", 20: "agents motivations",
}

# The paper gives no per-task table: only that tasks 2 and 3 failed (by 3.1 and 11.5 points) and that task 16 had
# 2.1% error (paper-spec.md section 5.4). Public reproductions: anchors.md section 5.
PAPER = {2: "91.9% (fail)", 3: "83.5% (fail)", 16: "97.9%"}
MOON1ITE = {2: 0.935, 3: 0.871, 16: 0.497}  # all other tasks >= 97.9%
COSSU = {2: 0.828, 3: 0.786, 4: 0.884, 16: 0.463, 17: 0.545, 19: 0.483}  # other tasks "95-99%"
PASS_COUNTS = [
    ("Santoro et al. 2017 (RN, joint, 10k)", "18/20", "paper section 5"),
    ("moon1ite/Relation-Network (TF)", "17/20", "README; fails 2, 3, 16"),
    ("AndreaCossu/Relation-Network-PyTorch", "14/20", "README; fails 2, 3, 4, 16, 17, 19"),
    ("DNC / Sparse DNC / EntNet / MemNN (quoted by the paper)", "18 / 19 / 16 / 14", "joint training, 10k"),
]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def reproduce(args: argparse.Namespace) -> int:
    from relnet.tasks.babi.cli import DEFAULT_CHECKPOINT, resolve_config, train_one
    from relnet.tasks.babi.data import find_task_files
    from relnet.tasks.babi.task import evaluate_checkpoint

    cfg = resolve_config(args.preset, args.data, args.overrides)
    run_dir = Path(args.runs) / args.preset
    t = time.perf_counter()
    trained = train_one(cfg, run_dir, resume=args.resume)
    wall = time.perf_counter() - t
    ckpt = run_dir / "checkpoint"
    results = {"valid": evaluate_checkpoint(ckpt, args.data, "valid")}
    if find_task_files(args.data, "test"):
        results["test"] = evaluate_checkpoint(ckpt, args.data, "test")
    if args.ship:
        with atomic_dir(Path(DEFAULT_CHECKPOINT)) as tmp:
            for name in ("model.safetensors", "config.json"):
                shutil.copy2(ckpt / name, tmp / name)
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    curve = report.with_name(report.stem + "_curve.png")
    plot_eval_curves({f"relnet {args.preset}": trained.history}, curve, keys=("accuracy",),
                     title="bAbI (joint, 20 tasks): validation accuracy while training")
    info = {"preset": args.preset, "overrides": list(args.overrides), "steps": trained.step,
            "train_seconds": trained.seconds, "wall_seconds": wall, "run_dir": str(run_dir),
            "batch_size": cfg.train.batch_size, "train_questions": _train_questions(trained.history, cfg),
            "time_to_best": time_to_best(trained.history), "train_questions_by_task": train_counts(cfg)}
    text = render_report(results, info, cfg, curve.name)
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text(text)
    tmp.replace(report)
    report.with_suffix(".json").write_text(json.dumps({**info, "results": results}, indent=2))
    print(task_table(results))
    print(f"\nreport: {report}")
    return 0


def _train_questions(history: list[dict[str, Any]], cfg) -> int | None:
    rows = [r for r in history if r.get("kind") == "train" and "epoch" in r]
    return None if not rows else round(rows[-1]["step"] * cfg.train.batch_size / rows[-1]["epoch"])


def time_to_best(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first evaluation with the most tasks passed (ties: higher accuracy), and when it happened."""
    evals = [r for r in history if r.get("kind") == "eval" and "passed" in r]
    if not evals:
        return None
    best = max(evals, key=lambda r: (r["passed"], r["accuracy"]))
    return {"step": best["step"], "minutes": best.get("elapsed", 0.0) / 60, "passed": best["passed"],
            "accuracy": best["accuracy"]}


def task_table(results: dict[str, dict[str, Any]]) -> str:
    splits = list(results)
    header = ["task", *[f"relnet {s} acc" for s in splits], *[f"relnet {s} error" for s in splits],
              "paper", "moon1ite", "AndreaCossu"]
    rows = []
    for t in range(1, 21):
        accs = [results[s]["by_task"].get(str(t)) for s in splits]
        rows.append([f"{t} {TASK_NAMES[t]}", *[pct(a) for a in accs],
                     *[pct(None if a is None else 1 - a) for a in accs],
                     PAPER.get(t, "pass"), pct(MOON1ITE[t]) if t in MOON1ITE else ">= 97.9%",
                     pct(COSSU[t]) if t in COSSU else "pass (95-99%)"])
    rows.append(["**tasks passed (> 95%)**", *[f"**{results[s]['passed']}/{len(results[s]['by_task'])}**"
                                               for s in splits], *[""] * len(splits), "18/20", "17/20", "14/20"])
    rows.append(["mean accuracy (all questions)", *[pct(results[s]["accuracy"]) for s in splits],
                 *[pct(1 - results[s]["accuracy"]) for s in splits], "-", "-", "-"])
    return markdown_table(header, rows)


def train_counts(cfg) -> dict[str, int]:
    """Training questions per task after the validation carve (what the model actually learned from)."""
    from relnet.tasks.babi.task import load_splits

    _, train, _ = load_splits(cfg)
    tasks, counts = train.task.unique(return_counts=True)
    return {str(int(t)): int(c) for t, c in zip(tasks, counts)}


def data_note(counts: dict[str, int]) -> str:
    """One line on how many training questions each task had; small tasks (task 3 here) are called out."""
    if not counts:
        return ""
    usual = max(set(counts.values()), key=list(counts.values()).count)
    small = {t: c for t, c in counts.items() if c < 0.5 * usual}
    text = f"Training questions per task after the carve: {usual:,} for most tasks"
    if small:
        text += "; " + ", ".join(f"task {t}: only {c:,}" for t, c in small.items()) + (
            " (the data folder holds fewer questions for it; ../shared/data/SOURCES.md documents task 3's, and "
            "after removing repeated stories 1,925 distinct questions remain, of which 90% train)")
    return text + "."


def render_report(results: dict, info: dict, cfg, curve_name: str) -> str:
    m = cfg.model
    best = info["time_to_best"]
    epochs = None if not info["train_questions"] else info["steps"] * info["batch_size"] / info["train_questions"]
    lines = [
        "# bAbI: joint training on the 20 tasks",
        "",
        f"Generated by `relnet reproduce babi --data DIR --preset {info['preset']}"
        + (" " + " ".join(info["overrides"]) if info["overrides"] else "") + "`.",
        f"Machine: {machine_description()}. Training seed {cfg.train.seed}.",
        f"Training: {info['steps']} steps of batch {info['batch_size']}"
        + (f" ({epochs:.1f} epochs of {info['train_questions']} questions)" if epochs else "")
        + f" in {info['train_seconds'] / 3600:.2f} h of training (this invocation: {info['wall_seconds'] / 60:.1f} min"
        " wall, including evaluation).",
        "Validation: the last 10% of each task's stories (never trained on); "
        + ("test: the official `qaN_*_test.txt` files." if "test" in results else
           "no official test files were found in the data folder."),
        data_note(info.get("train_questions_by_task", {})),
        "",
        "## Per-task accuracy",
        "",
        task_table(results),
        "",
        "The paper gives no per-task table: it reports 18/20 passed, with tasks 2 and 3 failed by 3.1 and 11.5 "
        "points and task 16 at 2.1% error; 'pass' marks the tasks it passed. moon1ite reports only its failures "
        "(all other tasks >= 97.9%); AndreaCossu reports 95-99% on the tasks it passed.",
        "",
    ]
    if best is not None:
        lines += [f"Best evaluation: {best['passed']} tasks passed, accuracy {pct(best['accuracy'])}, at step "
                  f"{best['step']} after {best['minutes']:.1f} min of training.", ""]
    lines += [
        "## Tasks passed, published",
        "",
        markdown_table(["model", "tasks passed", "source"], [list(r) for r in PASS_COUNTS]),
        "",
        f"![validation accuracy]({curve_name})",
        "",
        "## Configuration",
        "",
        f"- preset `{info['preset']}`: embeddings {m.embed_dim} ({'shared' if m.share_embedding else 'separate'}), "
        f"sentence LSTM {m.sentence_dim}, question LSTM {m.question_dim}, last {m.max_sentences} sentences with "
        f"one-hot position tags; g {list(m.g_dims)}, f {list(m.f_dims)} + linear (dropout {list(m.f_dropout)}), "
        f"{m.pairs} pairs, reduce {m.reduce}, {m.rounds} round(s) of g, hidden norm {m.hidden_norm or 'none'}; "
        f"{cfg.train.optimizer} lr {cfg.train.lr} ({cfg.train.schedule}, warm-up {cfg.train.warmup_steps}), batch "
        f"{cfg.train.batch_size}, {cfg.train.steps} steps"
        + (f", initialised from `{cfg.train.init_from}`" if cfg.train.init_from else "")
        + (f"; words renamed in the training questions of tasks {', '.join(map(str, cfg.data.augment))} "
           "(`--data.augment`)" if cfg.data.augment else "")
        + ("; each task's training questions repeated to about the largest task's count (`--data.balance`)"
           if cfg.data.balance else "")
        + (f"; the training questions of tasks {', '.join(map(str, cfg.data.repeat))} repeated "
           f"{cfg.data.repeat_times} times (`--data.repeat`)" if cfg.data.repeat else "")
        + f"; run in `{info['run_dir']}`.",
        "- Masked (empty) sentence slots are not computed: only the pairs of real sentences go through g.",
    ]
    return "\n".join(lines) + "\n"
