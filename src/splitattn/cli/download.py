"""Fetch published weights into the cache now, e.g. to carry them to a machine without internet.

Each NAME is a zoo name (its default weights) or name.tag (``splitattn zoo --weights`` lists them);
the sources are tried in order and the file is checked against its published hash. Release files
land in the weights cache ($SPLITATTN_CACHE, else torch hub's checkpoints directory), Hub files in
the Hugging Face cache ($HF_HUB_CACHE). For an offline machine:

    SPLITATTN_CACHE=/media/usb/weights HF_HUB_CACHE=/media/usb/weights/hub splitattn download resnest50
    # on the offline machine:
    export SPLITATTN_CACHE=/media/usb/weights HF_HUB_CACHE=/media/usb/weights/hub HF_HUB_OFFLINE=1
"""

from __future__ import annotations

import argparse

from ..errors import SplitattnError
from ..models.registry import resolve_name
from ..weights import fetch_published


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("names", nargs="+", metavar="NAME", help="zoo name or name.tag, e.g. resnest50 or "
                        "seresnet50.ra2_in1k")
    parser.add_argument("--all-tags", action="store_true", help="every published weight set of each name")


def run(args: argparse.Namespace) -> int:
    for name in args.names:
        entry, weights = resolve_name(name)
        if weights is None:
            raise SplitattnError(f"{entry.name!r} has no published weights; `splitattn zoo --weights` lists "
                                 "those that do")
        for tagged in entry.weights if args.all_tags else (weights,):
            fetched = fetch_published(entry.name, tagged)
            print(f"{entry.name}.{tagged.tag}: {fetched.path} (from {fetched.source.url})")
    return 0
