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
    return f"{cpu}, {os.cpu_count()} cores{device}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


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
