"""Fine-tune Faster R-CNN or Mask R-CNN over a splitattn backbone on COCO-format data.

Images come from --images, annotations from --annotations (COCO JSON: boxes, and polygons or RLEs
for Mask R-CNN). With --val-annotations the COCO mAP (pycocotools) is reported at the end. The
run directory receives last.pth (weights + config) and metrics.json. Try it on a generated sample:

    python -m splitattn.dense.shapes runs/shapes
    splitattn train-det --annotations runs/shapes/annotations.json --images runs/shapes/images \\
        --backbone resnest14d --min-size 96 --max-size 96 --model-arg anchor_sizes="[[8],[16],[32],[64],[128]]"
"""

from __future__ import annotations

import argparse

import yaml

from ..detection.train import ARCHITECTURES, DetectionConfig, train_detector
from .recipe_args import add_recipe_arguments, recipe_arguments

HELP = "fine-tune Faster/Mask R-CNN with a ResNeSt, SE or SK backbone on COCO-format data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="COCO JSON of the training images")
    parser.add_argument("--images", required=True, help="folder of the training images")
    parser.add_argument("--val-annotations", help="COCO JSON to evaluate on (mAP)")
    parser.add_argument("--val-images", help="folder of the validation images (default: --images)")
    parser.add_argument("--architecture", default="fasterrcnn", choices=sorted(ARCHITECTURES))
    parser.add_argument("--trainable-layers", type=int, help="backbone stages that train, 0..5")
    parser.add_argument("--min-size", type=int, default=800, help="shorter image side inside the model")
    parser.add_argument("--max-size", type=int, default=1333, help="longest image side inside the model")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="any other fasterrcnn/maskrcnn argument, value in YAML (repeatable)")
    add_recipe_arguments(parser, DetectionConfig, output="runs/detection")


def parse_model_args(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs, each value read as YAML (numbers, lists, booleans)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg expects KEY=VALUE with a Python argument name, got {pair!r}")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"--model-arg {key}: cannot read {value!r} ({error})") from None
    return parsed


def run(args: argparse.Namespace) -> int:
    config = DetectionConfig(
        annotations=args.annotations, images=args.images, val_annotations=args.val_annotations,
        val_images=args.val_images, architecture=args.architecture, trainable_layers=args.trainable_layers,
        min_size=args.min_size, max_size=args.max_size, model_args=parse_model_args(args.model_arg),
        **recipe_arguments(args))
    train_detector(config)
    return 0
