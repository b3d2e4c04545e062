"""List every zoo model with its parameters, GMACs at its default resolution, default input size,
crop fraction and the paper's top-1 where the paper reports one.

Models are built and counted on the meta device (torch.utils.flop_counter), so the full table
takes seconds and needs no weights.
"""

from __future__ import annotations

import argparse

from ..inspect import FORMATS, format_rows, zoo_rows

HELP = "table of every zoo model: parameters, GMACs, input size, paper top-1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*",
                        help="shell-style name filter, e.g. 'resnest50*' (default: all)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (Markdown), csv or json (default: table)")


def run(args: argparse.Namespace) -> int:
    print(format_rows(zoo_rows(args.pattern), args.format))
    return 0
