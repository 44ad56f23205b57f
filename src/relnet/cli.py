"""The ``relnet`` command: ``relnet <verb> <task> [options]``.

Verbs: ``data`` (generate or prepare a data set), ``train``, ``eval``, ``reproduce`` (train + write a report), and
``showcase`` (the web page). Each task lives in ``relnet.tasks.<task>`` and registers its own subcommands in its
``cli.py`` through ``add_commands(verbs)``; this module only wires them together and turns ``UserError`` into a
one-line message with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from relnet.errors import UserError

# task name on the command line -> module that registers its subcommands
TASK_MODULES = {
    "sort-of-clevr": "relnet.tasks.sort_of_clevr.cli",
    "sort-of-clevr-ternary": "relnet.tasks.sort_of_clevr.ternary_cli",
    "clevr": "relnet.tasks.clevr.cli",
    "babi": "relnet.tasks.babi.cli",
    "physics": "relnet.tasks.physics.cli",
    "showcase": "relnet.tasks.showcase.cli",
}
VERBS = {
    "data": "generate or prepare a data set",
    "train": "train a model",
    "eval": "evaluate a checkpoint and print JSON metrics",
    "reproduce": "train the paper's comparison and write reports/<task>.md",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relnet", description="Relation Networks (Santoro et al. 2017): data, training, evaluation, showcase."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="<command>", required=True)
    verbs = {}
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        verbs[verb] = p.add_subparsers(dest="task", metavar="<task>", required=True)
    verbs["top"] = sub
    for name, module in TASK_MODULES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is not None and module.startswith(e.name):
                continue  # the task has not landed yet
            raise
        mod.add_commands(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = list(extra)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"relnet: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `relnet ... | head`: the reader went away; nothing left to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
