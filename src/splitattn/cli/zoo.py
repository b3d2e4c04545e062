"""List every zoo model with its parameters, GMACs at its default resolution, default input size,
crop fraction, its default published weights (tag and the top-1 they reach) and the paper's top-1.

With --weights, one row per published weight set instead (``name.tag``, usable anywhere a model
name is: ``splitattn train --model seresnet50.ra2_in1k --pretrained published``): top-1, input
settings, licence and the hosts it is fetched from, in order. Models are built and counted on the
meta device (torch.utils.flop_counter), so the table needs no weights: about a second per model on two cores.
"""

from __future__ import annotations

import argparse

from ..errors import SplitattnError
from ..inspect import FORMATS, format_rows, weights_rows, zoo_rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*",
                        help="shell-style name filter, e.g. 'resnest50*' (default: all)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (Markdown), csv or json (default: table)")
    parser.add_argument("--weights", action="store_true",
                        help="one row per published weight set (name.tag) with its licence and sources")


def run(args: argparse.Namespace) -> int:
    rows = weights_rows(args.pattern) if args.weights else zoo_rows(args.pattern)
    if not rows:
        raise SplitattnError(f"no model matching {args.pattern!r} has published weights")
    print(format_rows(rows, args.format))
    return 0
