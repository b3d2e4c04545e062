"""Explain one image: for each stage, a picture of how the attention layers weigh their splits
(branches, gates), per cardinal group; and a Grad-CAM heat map of the top class over the image.

With --checkpoint (a checkpoint of splitattn train, a weights file or a model repository) the
model, its classes and names and the preprocessing the run used all come from it, so the image is
seen exactly as `splitattn predict` and `eval` see it. --model NAME --pretrained explains the
published ImageNet weights; --model NAME alone an untrained network, only useful to try the command.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import SplitattnError
from ..factory import create_model
from ..inspect.explain import explain_image
from ..inspect.images import open_image
from ..training.inference import load_trained

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model", "pretrained": "--checkpoint"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file (PNG, JPEG ...)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", help="checkpoint of splitattn train, weights file (.pth, .safetensors) or "
                                              "model repository (hf-hub:org/repo, local-dir:PATH)")
    weights.add_argument("--pretrained", action="store_true", help="the published ImageNet weights of --model")
    parser.add_argument("--model", help="zoo name or name.tag (default: what the checkpoint records; needed with "
                                        "--pretrained and for bare weight files)")
    parser.add_argument("--out", default="explain", help="directory for the PNG files")


def run(args: argparse.Namespace) -> int:
    open_image(args.image)  # a bad path fails here, before a model is built
    if args.checkpoint:
        model = load_trained(args.checkpoint, args.model).model
    elif args.model:
        model = create_model(args.model, pretrained=args.pretrained).eval()
        if not args.pretrained:
            print("note: no --checkpoint or --pretrained, so the network is untrained and so are its pictures",
                  file=sys.stderr)
    else:
        raise SplitattnError("name the model to explain: --checkpoint FILE (a trained model), or --model NAME with "
                             "--pretrained for its published weights")
    result = explain_image(model, args.image, args.out)
    for path in result.files:
        print(f"wrote {path}")
    print("top classes: " + ", ".join(f"{name} ({prob:.1%})" for name, prob in result.top5))
    return 0
