"""The ``splitattn`` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..interface import command_line
from . import (
    bench,
    convert,
    download,
    evaluate,
    explain,
    export,
    predict,
    push_to_hub,
    summary,
    train,
    train_det,
    train_seg,
    zoo,
)
from .help_format import HelpFormatter

COMMANDS = {
    "convert": convert,
    "train": train,
    "summary": summary,
    "zoo": zoo,
    "explain": explain,
    "eval": evaluate,
    "predict": predict,
    "bench": bench,
    "export": export,
    "train-det": train_det,
    "train-seg": train_seg,
    "download": download,
    "push-to-hub": push_to_hub,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splitattn", description="SENet, SKNet and ResNeSt networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                            formatter_class=HelpFormatter))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = COMMANDS[args.command]
    try:
        with command_line(getattr(module, "FLAGS_FOR", None)):
            return module.run(args) or 0
    except (ValueError, RuntimeError, OSError) as error:
        print(f"splitattn {args.command}: error: {error}", file=sys.stderr)
        return 2
