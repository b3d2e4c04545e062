"""Explain one image: for each stage, a picture of how the attention layers weigh their splits
(branches, gates), per cardinal group; and a Grad-CAM heat map of the top class over the image.

Without --checkpoint or --pretrained the network is randomly initialised, which is only useful
to try the command: the pictures of a trained network are the interesting ones.
"""

from __future__ import annotations

import argparse
import sys

from ..factory import create_model
from ..inspect.explain import explain_image
from ..inspect.images import open_image

HELP = "pictures of what the attention selects, and a Grad-CAM heat map, for one image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file (PNG, JPEG ...)")
    parser.add_argument("--model", required=True, help="zoo name, e.g. resnest50")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", default=None, help="weights file (.pth, .pt, .safetensors) to load")
    weights.add_argument("--pretrained", action="store_true", help="use the published ImageNet weights")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classifier size of the checkpoint (default: 1000, or the checkpoint's own)")
    parser.add_argument("--out", default="explain", help="directory for the PNG files (default: ./explain)")


def run(args: argparse.Namespace) -> int:
    open_image(args.image)  # a bad path fails here, before a model is built
    pretrained = args.checkpoint or args.pretrained
    kwargs = {"num_classes": args.num_classes} if args.num_classes is not None else {}
    model = create_model(args.model, pretrained=pretrained, **kwargs)
    if not pretrained:
        print("note: no --checkpoint or --pretrained, so the network is untrained and so are its pictures",
              file=sys.stderr)
    result = explain_image(model, args.image, args.out)
    for path in result.files:
        print(f"wrote {path}")
    print("top classes: " + ", ".join(f"{index} ({prob:.1%})" for index, prob in result.top5))
    return 0
