"""Fine-tune Faster R-CNN or Mask R-CNN over a splitattn backbone on COCO-format data.

Images come from --images, annotations from --annotations (COCO JSON: boxes, and polygons or RLEs
for Mask R-CNN). With --val-annotations the COCO mAP (pycocotools) is reported at the end. Options
come from the defaults, then --config (YAML, e.g. a run's config.yaml), then trailing KEY=VALUE
overrides, then the flags. The run directory receives config.yaml (the resolved options),
last.pth (weights, config and training state, saved every --checkpoint-every steps, at the end
and on SIGTERM / Ctrl-C) and metrics.json; --resume continues a stopped run. Try it on a
generated sample (about two minutes on two CPU cores):

    python -m splitattn.dense.shapes runs/shapes
    splitattn train-det --annotations runs/shapes/annotations.json --images runs/shapes/images \\
        --backbone resnest14d --detector-size small --min-size 96 --max-size 96 --steps 300
"""

from __future__ import annotations

import argparse

import yaml

from ..detection.models import DETECTOR_SIZES
from ..detection.train import ARCHITECTURES, DetectionConfig, train_detector
from ..errors import SplitattnError
from .recipe_args import add_recipe_arguments, field_defaults, resolve_config, run_training, with_default

OUTPUT = "runs/detection"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = field_defaults(DetectionConfig)
    parser.add_argument("--annotations", required=True, help="COCO JSON of the training images (required)")
    parser.add_argument("--images", required=True, help="folder of the training images (required)")
    parser.add_argument("--val-annotations", help="COCO JSON to evaluate on (mAP) at the end (default: none, "
                                                  "no evaluation)")
    parser.add_argument("--val-images", help="folder of the validation images (default: --images)")
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES),
                        help=with_default("detector; maskrcnn also predicts masks (needs polygons or RLEs)",
                                          defaults["architecture"]))
    parser.add_argument("--trainable-layers", type=int,
                        help="backbone stages that train, 0..5 (default: 3 with --pretrained-backbone, else 5)")
    parser.add_argument("--min-size", type=int, help=with_default("shorter image side inside the model",
                                                                  defaults["min_size"]))
    parser.add_argument("--max-size", type=int, help=with_default("longest image side inside the model",
                                                                  defaults["max_size"]))
    parser.add_argument("--detector-size", choices=sorted(DETECTOR_SIZES),
                        help=with_default("standard: torchvision's heads and proposal counts, for ~800 px images; "
                                          "small: narrow heads, small anchors, few proposals, for ~100 px images "
                                          "and CPUs", defaults["detector_size"]))
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                        help="any other fasterrcnn/maskrcnn argument, value in YAML (repeatable; added to the "
                             "model_args of --config, and winning; default: none)")
    add_recipe_arguments(parser, DetectionConfig, output=OUTPUT)


def parse_model_args(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs, each value read as YAML (numbers, lists, booleans)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise SplitattnError(f"--model-arg expects KEY=VALUE with a Python argument name, got {pair!r}")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise SplitattnError(f"--model-arg {key}: cannot read {value!r} ({error})") from None
    return parsed


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args, DetectionConfig, OUTPUT)
    if args.model_arg:
        config.model_args = {**config.model_args, **parse_model_args(args.model_arg)}
    return run_training("train-det", lambda: train_detector(config))
