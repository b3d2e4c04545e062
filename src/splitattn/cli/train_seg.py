"""Fine-tune DeepLabV3 over a dilated splitattn backbone on image/mask folders or COCO-format data.

Training data: --images with either --masks (label PNGs of the same file names: pixel = class
index, 0 background, 255 ignore) or --annotations (COCO JSON, painted into label maps). With
validation data (--val-images and --val-masks / --val-annotations) the mIoU is reported at the end.
The run directory receives last.pth (weights + config) and metrics.json.
"""

from __future__ import annotations

import argparse

from ..segmentation.train import SegmentationConfig, train_segmenter
from .recipe_args import add_recipe_arguments, recipe_arguments

HELP = "fine-tune DeepLabV3 with a ResNeSt, SE or SK backbone on image/mask folders or COCO data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder of the training images")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--masks", help="folder of label masks, one per image, same file stem")
    data.add_argument("--annotations", help="COCO JSON of the training images")
    parser.add_argument("--val-images", help="folder of the validation images")
    parser.add_argument("--val-masks", help="folder of the validation masks")
    parser.add_argument("--val-annotations", help="COCO JSON of the validation images")
    parser.add_argument("--num-classes", type=int, help="including the background (default: counted)")
    parser.add_argument("--output-stride", type=int, default=8, choices=(8, 16))
    parser.add_argument("--aux-loss", action="store_true", help="auxiliary FCN head on stage 3")
    parser.add_argument("--image-size", type=int, default=512, help="images and masks are resized to this square")
    add_recipe_arguments(parser, SegmentationConfig, output="runs/segmentation")


def run(args: argparse.Namespace) -> int:
    if args.val_images and not (args.val_masks or args.val_annotations):
        raise ValueError("--val-images needs --val-masks or --val-annotations")
    config = SegmentationConfig(
        images=args.images, masks=args.masks, annotations=args.annotations, val_images=args.val_images,
        val_masks=args.val_masks, val_annotations=args.val_annotations, num_classes=args.num_classes,
        output_stride=args.output_stride, aux_loss=args.aux_loss, image_size=args.image_size,
        **recipe_arguments(args))
    train_segmenter(config)
    return 0
