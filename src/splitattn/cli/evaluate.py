"""Evaluate a model on an image folder: top-1 and top-5 with the model's own preprocessing.

The model is a checkpoint (``--checkpoint``: a training run's, a weights file, a repository) or
published weights (``--model resnest50 --pretrained published``, a tag, a file, a URL). Images are
resized to image_size / crop_pct and centre-cropped with the interpolation of the weights' tag
(or what the training run used); flags override. The folder's labels come from the names of its
class folders, whichever the model knows: its own class names, ImageNet synsets (val, Sketch, -A,
-R) or class indices (ImageNet-V2), any subset of the classes; or from --labels (a CSV of
file,class) for any other layout, and --real-labels for ImageNet-ReaL. The protocol is timm's
validate.py: --class-subset restricts the logits to ImageNet-A/-R's 200 classes before ranking,
and with --real-labels top-1/top-5 are ReaL's (images with no label left out).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.eval_set import EvalSet, KeyedImages, collate_keyed, scan_eval_set
from ..data.folder import DataError
from ..data.label_layouts import FOLDER_LAYOUTS
from ..deploy import FixedBatch
from ..models.imagenet import CLASS_SUBSETS, class_subset, imagenet_classes
from ..quantize import QuantizedModel
from ..training.eval_scores import per_class, real_accuracy, topk_accuracy, write_per_class
from ..training.evaluate import predict_topk
from ..training.inference import TrainedModel
from ..training.runtime import Runtime, select_device
from .weights_args import add_weights_arguments, load_from_args

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("--data", required=True,
                        help="image folder: DIR/<class>/<image>, or images anywhere below DIR with --labels or "
                             "--real-labels")
    parser.add_argument("--layout", default="auto", choices=("auto", *FOLDER_LAYOUTS),
                        help="how the class folders are named (default: the first that names every folder: the "
                             "model's class names, ImageNet synsets, class indices)")
    parser.add_argument("--labels", metavar="CSV",
                        help="labels from a CSV of file,class (file: path under --data, with or without extension; "
                             "class: synset, name or index; header optional) instead of the folders")
    parser.add_argument("--real-labels", metavar="JSON",
                        help="ImageNet-ReaL's real.json: top-1/top-5 against each image's label set")
    parser.add_argument("--class-subset", choices=tuple(CLASS_SUBSETS),
                        help="rank only these ImageNet classes (ImageNet-A and -R hold 200 of the 1,000)")
    parser.add_argument("--per-class", metavar="CSV",
                        help="write per class: images, top-1 and the class most often predicted instead")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="data loading processes")
    parser.add_argument("--image-size", type=int,
                        help="crop size (default: the training run's, else the weights' pretrained config)")
    parser.add_argument("--crop-pct", type=float,
                        help="crop / resize ratio (default: the training run's, else the weights' pretrained config)")
    parser.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest"),
                        help="resize filter (default: the training run's, else the weights' pretrained config)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def subset_indices(trained: TrainedModel, name: str | None) -> torch.Tensor | None:
    """The model's output indices of a named ImageNet class subset (None for none): the model must
    have the ImageNet-1k classes, in any order, for the subset to mean anything."""
    if name is None:
        return None
    imagenet = imagenet_classes()
    if trained.class_synsets is None or set(trained.class_synsets) != set(imagenet.synsets):
        raise ValueError(f"--class-subset {name} selects ImageNet-1k classes, but {trained.model_name}'s "
                         f"{len(trained.class_names)} classes are not ImageNet-1k's")
    classes = trained.classes
    return torch.tensor(sorted(classes.index_of(imagenet.synsets[i]) for i in class_subset(name)))


def check_in_subset(samples: EvalSet, subset: torch.Tensor | None, name: str | None, trained: TrainedModel) -> None:
    """Refuse labels outside the subset: restricted logits could never be right for them (a wrong folder)."""
    if subset is None or samples.labels is None:
        return
    outside = sorted(set(samples.labels) - set(subset.tolist()))
    if outside:
        shown = ", ".join(trained.classes.describe(i) for i in outside[:5])
        raise DataError(f"{len(outside)} class(es) of {samples.root} are not among the 200 of --class-subset {name}: "
                        f"{shown}{' ...' if len(outside) > 5 else ''}; is this the right folder or subset?")


def run(args: argparse.Namespace) -> int:
    trained = load_from_args(args, args.image_size, args.crop_pct, args.interpolation)
    subset = subset_indices(trained, args.class_subset)
    samples = scan_eval_set(args.data, trained.classes, args.layout, args.labels, args.real_labels)
    check_in_subset(samples, subset, args.class_subset, trained)
    if args.per_class and samples.labels is None:
        raise ValueError("--per-class needs one label per image: class folders or --labels")
    if samples.not_on_disk:
        print(f"note: {len(samples.not_on_disk)} file(s) of {args.labels} are not under {args.data}, e.g. "
              f"{', '.join(samples.not_on_disk[:3])}; scoring the {len(samples.files)} that are", file=sys.stderr)
    loader = DataLoader(KeyedImages(samples.root, samples.files, trained.transform), args.batch_size,
                        num_workers=args.workers, collate_fn=collate_keyed)
    runtime = Runtime(select_device(args.device))
    model = trained.model
    if isinstance(model, QuantizedModel) and model.compiled:  # one compiled shape, not a second for the last batch
        model = FixedBatch(model, args.batch_size)
    with tqdm(total=len(samples.files), unit="img", disable=None, file=sys.stderr, leave=False) as bar:
        positions, top, unreadable = predict_topk(model.to(runtime.device), loader, runtime, subset=subset,
                                                  progress=bar.update)
    result = score(samples, positions, top)
    result.update(skipped=unreadable + samples.empty_files, model=trained.model_name,
                  checkpoint=str(args.checkpoint or args.pretrained), image_size=trained.image_size,
                  crop_pct=trained.crop_pct, interpolation=trained.interpolation, layout=samples.layout,
                  class_subset=args.class_subset, not_on_disk=len(samples.not_on_disk))
    if args.per_class:
        labels = torch.tensor(samples.labels)[positions]
        write_per_class(per_class(top[:, 0], labels, trained.classes), args.per_class)
    if args.json:
        print(json.dumps(result))
    else:
        real = " (ImageNet-ReaL)" if args.real_labels else ""
        print(f"{trained.model_name} on {args.data}: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%{real}  "
              f"({result['images']} images, {result['skipped']} unreadable skipped)")
        if "original_top1" in result:
            print(f"  against the folder's labels: top-1 {result['original_top1']:.2f}%  "
                  f"top-5 {result['original_top5']:.2f}%")
        if args.per_class:
            print(f"  per class: {args.per_class}")
    return 0


def score(samples: EvalSet, positions: torch.Tensor, top: torch.Tensor) -> dict:
    """top-1/top-5 and the image count: ReaL's when the set has label sets (then the folder's as
    ``original_top1``/``original_top5``), else against the one label per image."""
    result: dict = {}
    if samples.labels is not None:
        result.update(topk_accuracy(top, torch.tensor(samples.labels)[positions]), images=len(positions))
    if samples.label_sets is not None:
        real = real_accuracy(top, [samples.label_sets[i] for i in positions.tolist()])
        if result:
            result = {"original_top1": result["top1"], "original_top5": result["top5"]}
        result.update(real)
    return result
