"""Print a layer-by-layer table of a zoo model: module path, type, output shape, parameters, MACs.

The model is built on the meta device, so nothing is computed and no weights are allocated; the
counts come from torch.utils.flop_counter. With --depth 4 the table goes inside the attention
layers and shows each step of a split-attention conv (grouped conv, split, pooled sum, fc1, fc2,
r-softmax, weighted sum) with its shape.
"""

from __future__ import annotations

import argparse

from ..inspect import parse_input_size, summarize_model


def _depth(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--depth must be a positive integer or 'all', got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo name, e.g. resnest50 (see `splitattn zoo`)")
    parser.add_argument("--input", default=None,
                        help="input size CxHxW (default: the model's pretrained_cfg input size, e.g. 3x224x224)")
    parser.add_argument("--depth", type=_depth, default=3,
                        help="deepest row to show: 1 = stages, 2 = blocks, 3 = layers in a block, "
                             "4 = steps inside attention layers, 'all' (default: 3)")
    parser.add_argument("--only", default=None, metavar="PATH",
                        help="show one module and what is inside it, e.g. layer1.0.conv2 (with --depth all)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default: 1000)")


def run(args: argparse.Namespace) -> int:
    size = parse_input_size(args.input) if args.input is not None else None
    summary = summarize_model(args.model, size, num_classes=args.num_classes)
    table = summary.format(args.depth, args.only)
    print(f"{args.model}, input {'x'.join(str(s) for s in summary.input_size)}")
    print(table)
    return 0
