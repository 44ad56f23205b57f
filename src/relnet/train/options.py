"""Command-line options shared by every ``relnet train <task>`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from relnet.errors import UserError
from relnet.nn.mlp import NORMS


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse names the option in its error)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def add_run_options(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """``--resume``, ``--show-config``, ``--quiet``, and ``--section.key=value`` overrides handled by ``func``."""
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint exactly")
    parser.add_argument("--show-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=func, accepts_overrides=True)


def show_config(args: argparse.Namespace, config) -> bool:
    """Print the resolved config as JSON when ``--show-config`` was given; returns whether it did."""
    if not getattr(args, "show_config", False):
        return False
    from relnet.train.config import to_dict

    print(json.dumps(to_dict(config), indent=2))
    return True


def print_summary(result) -> None:
    """The one JSON line every ``relnet train`` prints at the end: run folder, checkpoint, steps, time, last eval."""
    print(json.dumps({"run": str(result.run_dir), "checkpoint": str(Path(result.run_dir) / "checkpoint"),
                      "steps": result.step, "seconds": round(result.seconds, 1), "eval": result.final_eval}))


def check_hidden_norm(value: str) -> None:
    """``--model.hidden_norm``: "" (the paper: none) or one of :data:`relnet.nn.mlp.NORMS`, else a one-line error."""
    if value not in ("", *NORMS):
        raise UserError(f"--model.hidden_norm={value}: expected '', {' or '.join(NORMS)}")


def overrides_for(model: str, overrides: list[str], models: list[str]) -> list[str]:
    """The overrides of one model of a ``relnet reproduce`` run: ``--section.key=value`` applies to every model,
    ``--MODEL:section.key=value`` to MODEL only (after the shared ones, so it wins). A prefix naming a model that is
    not being reproduced is a one-line error rather than silently ignored."""
    out = []
    for item in overrides:
        head = item[2:].split("=", 1)[0] if item.startswith("--") else ""
        if ":" not in head:
            out.append(item)
            continue
        name = head.split(":", 1)[0]
        if name not in models:
            raise UserError(f"{item}: {name!r} is not one of the models reproduced here ({', '.join(models)})")
    for item in overrides:
        if item.startswith(f"--{model}:"):
            out.append("--" + item[len(model) + 3:])
    return out
