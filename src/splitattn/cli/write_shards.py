"""Write an image folder as WebDataset shards with their _info.json, ready for --data.

ROOT holds one folder per split (train/<class>/<image>, val/<class>/<image>: the built-in digits'
layout, ~/.cache/splitattn/digits once `splitattn train` has run, or `digits` for it). Each split
becomes SPLIT-000000.tar ... of --per-shard samples in a shuffled order, and OUT/_info.json records
every shard's sample count and the class names, which training needs to share an epoch out evenly
over processes. Then:

    splitattn write-shards digits shards/ --per-shard 256
    splitattn train --data 'shards/train-{000000..000005}.tar'    # or --data shards/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import prepare_digits, write_shards
from ..data.shard_info import INFO_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("root", metavar="ROOT", help="image folder with train/ and val/, or 'digits' (built in)")
    parser.add_argument("out", metavar="OUT", help="shard directory (created)")
    parser.add_argument("--per-shard", type=int, default=1000, help="samples per shard (default: 1000)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], metavar="SPLIT",
                        help="split folders to write (default: train val)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample order in the shards")


def run(args: argparse.Namespace) -> int:
    root = prepare_digits() if args.root == "digits" else args.root
    for split in write_shards(root, args.out, args.per_shard, tuple(args.splits), args.seed):
        pattern = (f"{split.name}-{{000000..{len(split.files) - 1:06d}}}.tar" if len(split.files) > 1
                   else split.files[0])
        shards = f"{len(split.files)} shard{'s' if len(split.files) > 1 else ''}"
        print(f"{split.name}: {sum(split.lengths)} samples in {shards}: {Path(args.out) / pattern}")
    print(f"info: {Path(args.out) / INFO_FILE}")
    return 0
