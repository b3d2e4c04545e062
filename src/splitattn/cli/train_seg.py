"""Fine-tune DeepLabV3 over a dilated splitattn backbone on image/mask folders or COCO-format data.

Training data: --images with either --masks (label PNGs of the same file names: pixel = class
index, 0 background, 255 ignore) or --annotations (COCO JSON, painted into label maps). With
validation data (--val-images and --val-masks / --val-annotations) the mIoU is reported at the end.
The run directory receives last.pth (weights + config) and metrics.json.
"""

from __future__ import annotations

import argparse

from ..segmentation.train import SegmentationConfig, train_segmenter

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
    parser.add_argument("--backbone", default="resnest50", help="zoo name (default resnest50)")
    parser.add_argument("--pretrained-backbone", help="'published' or a classification checkpoint path / URL")
    parser.add_argument("--output-stride", type=int, default=8, choices=(8, 16))
    parser.add_argument("--aux-loss", action="store_true", help="auxiliary FCN head on stage 3")
    parser.add_argument("--image-size", type=int, default=512, help="images and masks are resized to this square")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adamw"))
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="data loading processes")
    parser.add_argument("--output", default="runs/segmentation", help="run directory")
    parser.add_argument("--log-every", type=int, default=20)


def run(args: argparse.Namespace) -> int:
    if args.val_images and not (args.val_masks or args.val_annotations):
        raise ValueError("--val-images needs --val-masks or --val-annotations")
    config = SegmentationConfig(
        images=args.images, masks=args.masks, annotations=args.annotations, val_images=args.val_images,
        val_masks=args.val_masks, val_annotations=args.val_annotations, num_classes=args.num_classes,
        backbone=args.backbone, pretrained_backbone=args.pretrained_backbone, output_stride=args.output_stride,
        aux_loss=args.aux_loss, image_size=args.image_size, steps=args.steps, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        device=args.device, amp=args.amp, seed=args.seed, workers=args.workers, output=args.output,
        log_every=args.log_every)
    train_segmenter(config)
    return 0
