"""Helpers shared by the ``relnet reproduce <task>`` reports: machine description, tables, curves."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Sequence

import torch


def machine_description() -> str:
    """e.g. ``"Intel(R) Xeon(R) ..., 2 cores, torch 2.13.0+cpu (2 threads)"``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores{device}, torch {torch.__version__} ({threads} thread{'s' * (threads != 1)})"


def schedule_changes(history: Sequence[dict[str, Any]], *, warmup_steps: int = 0,
                     tolerance: float = 0.05) -> list[tuple[int, float, float]]:
    """Where a run's logged learning rate jumps: ``(step, lr before, lr after)`` for each pair of consecutive training
    rows after the warm-up whose rates differ by more than ``tolerance`` times the largest rate logged.

    A schedule followed from start to end changes far less than that between log rows (a cosine over S steps moves
    at most pi/2 * lr_max / S per step), so a jump means the run was resumed under another schedule length, e.g.
    a longer cosine (up) or a shorter one (down). ``history``: the run's logged rows (``metrics.jsonl``)."""
    rows = [r for r in history if r.get("kind") == "train" and "lr" in r]
    top = max((r["lr"] for r in rows), default=0.0)
    out = []
    for a, b in zip(rows, rows[1:]):
        if a["step"] > warmup_steps and abs(b["lr"] - a["lr"]) > tolerance * top:
            out.append((int(b["step"]), float(a["lr"]), float(b["lr"])))
    return out


def schedule_note(history: Sequence[dict[str, Any]], *, warmup_steps: int = 0) -> str:
    """One sentence for a report when :func:`schedule_changes` finds jumps, else ``""``."""
    jumps = schedule_changes(history, warmup_steps=warmup_steps)
    if not jumps:
        return ""
    where = ", ".join(f"step {s} ({a:.2e} -> {b:.2e})" for s, a, b in jumps)
    return (f" The logged learning rate jumps at {where}: the run was resumed there under a schedule of another "
            "length (and possibly more data), so it is not one schedule from scratch.")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


def plot_eval_curves(histories: dict[str, list[dict[str, Any]]], path: Path, *, keys: Sequence[str],
                     title: str = "", x: str = "elapsed") -> None:
    """One line per (run, metric) of the evaluation rows, against wall-clock minutes (or ``x="step"``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = ["-", "--", ":", "-."]
    for n, (name, history) in enumerate(histories.items()):
        rows = [r for r in history if r.get("kind") == "eval"]
        for k, key in enumerate(keys):
            pts = [((r[x] / 60 if x == "elapsed" else r[x]), r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), styles[k % len(styles)], marker=".", color=f"C{n}", label=f"{name}: {key}")
    ax.set_xlabel("training minutes" if x == "elapsed" else x)
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
