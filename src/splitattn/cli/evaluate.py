"""Evaluate a checkpoint on an image folder: top-1 and top-5 with the model's preprocessing.

Images are resized to image_size / crop_pct and centre-cropped, with the model's interpolation
(or what the training run used, when the checkpoint records it).
"""

from __future__ import annotations

import argparse
import json

from torch.utils.data import DataLoader

from ..data import ImageFolderDataset, collate_skipping
from ..deploy import FixedBatch
from ..quantize import QuantizedModel
from ..training.evaluate import evaluate
from ..training.inference import load_trained
from ..training.runtime import Runtime, select_device

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model", "pretrained": "--checkpoint"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint of splitattn train, weights file (.pth/.safetensors), or a model "
                             "repository (hf-hub:org/repo, local-dir:PATH)")
    parser.add_argument("--model", help="zoo name of the architecture (default: what the checkpoint records; "
                                        "needed only for bare weight files)")
    parser.add_argument("--data", required=True, help="image folder: DIR/<class>/<image>")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="data loading processes")
    parser.add_argument("--image-size", type=int, help="crop size (default: the training run's, else the model's)")
    parser.add_argument("--crop-pct", type=float,
                        help="crop / resize ratio (default: the training run's, else the model's)")
    parser.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest"),
                        help="resize filter (default: the training run's, else the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    trained = load_trained(args.checkpoint, args.model, args.image_size, args.crop_pct, args.interpolation)
    transform = trained.transform
    dataset = ImageFolderDataset(args.data, transform, class_names=trained.class_names)
    loader = DataLoader(dataset, args.batch_size, num_workers=args.workers, collate_fn=collate_skipping)
    runtime = Runtime(select_device(args.device))
    model = trained.model
    if isinstance(model, QuantizedModel) and model.compiled:  # one compiled shape, not a second for the last batch
        model = FixedBatch(model, args.batch_size)
    result = evaluate(model.to(runtime.device), loader, runtime)
    result.update(model=trained.model_name, checkpoint=str(args.checkpoint), image_size=trained.image_size,
                  crop_pct=trained.crop_pct, interpolation=trained.interpolation)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{trained.model_name} on {args.data}: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  "
              f"({result['images']} images, {result['skipped']} unreadable skipped)")
    return 0
