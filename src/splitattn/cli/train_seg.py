"""Fine-tune DeepLabV3 over a dilated splitattn backbone on image/mask folders or COCO-format data.

Training data: --images with either --masks (label PNGs of the same file names: pixel = class
index, 0 background, 255 ignore) or --annotations (COCO JSON, painted into label maps). With
validation data (--val-images and --val-masks / --val-annotations) the mIoU is reported at the end.
Options come from the defaults, then --config (YAML, e.g. a run's config.yaml), then trailing
KEY=VALUE overrides, then the flags. The run directory receives config.yaml (the resolved
options), last.pth (weights, config and training state, saved every --checkpoint-every steps, at
the end and on SIGTERM / Ctrl-C) and metrics.json; --resume continues a stopped run. Try it on a
generated sample:

    python -m splitattn.dense.shapes runs/shapes
    splitattn train-seg --images runs/shapes/images --masks runs/shapes/masks --backbone resnest14d \\
        --image-size 96 --steps 300
"""

from __future__ import annotations

import argparse

from ..errors import SplitattnError
from ..segmentation.train import SegmentationConfig, train_segmenter
from .recipe_args import add_recipe_arguments, field_defaults, resolve_config, run_training, with_default

OUTPUT = "runs/segmentation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = field_defaults(SegmentationConfig)
    parser.add_argument("--images", required=True, help="folder of the training images (required)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--masks", help="folder of label masks, one per image, same file stem (this or --annotations)")
    data.add_argument("--annotations", help="COCO JSON of the training images (this or --masks)")
    parser.add_argument("--val-images", help="folder of the validation images (default: none, no evaluation)")
    parser.add_argument("--val-masks", help="folder of the validation masks (default: none)")
    parser.add_argument("--val-annotations", help="COCO JSON of the validation images (default: none)")
    parser.add_argument("--num-classes", type=int, help="including the background (default: counted from the masks "
                                                        "or categories)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16),
                        help=with_default("backbone output stride: 8 is finer and slower", defaults["output_stride"]))
    parser.add_argument("--aux-loss", action="store_true", default=None,
                        help="auxiliary FCN head on stage 3 (default: off)")
    parser.add_argument("--image-size", type=int,
                        help=with_default("images and masks are resized to this square", defaults["image_size"]))
    add_recipe_arguments(parser, SegmentationConfig, output=OUTPUT)


def run(args: argparse.Namespace) -> int:
    # The training labels are --masks or --annotations: the one given replaces either from --config.
    labels = {"masks": args.masks, "annotations": args.annotations}
    config = resolve_config(args, SegmentationConfig, OUTPUT, flags=labels)
    if config.val_images and not (config.val_masks or config.val_annotations):
        raise SplitattnError("--val-images needs --val-masks or --val-annotations")
    return run_training("train-seg", lambda: train_segmenter(config))
