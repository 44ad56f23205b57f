"""Command-line options shared by every ``relnet train <task>`` command."""

from __future__ import annotations

import argparse
from typing import Callable


def add_run_options(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """``--resume``, ``--show-config``, ``--quiet``, and ``--section.key=value`` overrides handled by ``func``."""
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint exactly")
    parser.add_argument("--show-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=func, accepts_overrides=True)
