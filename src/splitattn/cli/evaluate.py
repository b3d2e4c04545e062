"""Evaluate a model on a folder, shards or a dataset: top-1 and top-5 with the model's own preprocessing.

The model is a checkpoint (``--checkpoint``: a training run's, a weights file, a repository) or
published weights (``--model resnest50 --pretrained published``, a tag, a file, a URL). Images are
resized to image_size / crop_pct and centre-cropped with the interpolation of the weights' tag
(or what the training run used); flags override. The folder's labels come from the names of its
class folders, whichever the model knows: its own class names, ImageNet synsets (val, Sketch, -A,
-R) or class indices (ImageNet-V2), any subset of the classes; or from --labels (a CSV of
file,class) for any other layout, and --real-labels for ImageNet-ReaL. WebDataset shards and
Hugging Face datasets (``--data 'val-{000000..000009}.tar'``, ``hf:NAME``) are labelled the same
way, from the class names their info file or ``ClassLabel`` gives (or bare indices). The
protocol is timm's validate.py: --class-subset restricts the logits to ImageNet-A/-R's 200
classes before ranking, and with --real-labels top-1/top-5 are ReaL's (images with no label left
out). Unreadable images are skipped, counted and named (the first few on stderr, all in --json).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import DataError, EvalSource, SourceOptions, open_eval_source
from ..data.label_layouts import FOLDER_LAYOUTS
from ..data.skips import describe_skips
from ..deploy import FixedBatch
from ..errors import SplitattnError
from ..models.imagenet import CLASS_SUBSETS, class_subset, imagenet_classes
from ..quantize import QuantizedModel
from ..training.eval_scores import per_class, real_accuracy, topk_accuracy, write_per_class
from ..training.evaluate import Ranked, predict_topk
from ..training.inference import TrainedModel
from ..training.runtime import Runtime, select_device
from .weights_args import add_weights_arguments, load_from_args

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model", "labels_csv": "--labels", "real_labels": "--real-labels",
             "val_split": "--split"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("--data", required=True,
                        help="image folder: DIR/<class>/<image>, or images anywhere below DIR with --labels or "
                             "--real-labels; WebDataset shards ('val-{000000..000009}.tar', a DIR with "
                             "_info.json); a Hugging Face dataset (hf:NAME, or a save_to_disk folder)")
    parser.add_argument("--layout", default="auto", choices=("auto", *FOLDER_LAYOUTS),
                        help="how the class folders (or the classes of shards or a dataset) are named (default: "
                             "the first that names every one: the model's class names, ImageNet synsets, class "
                             "indices)")
    parser.add_argument("--split", help="the split of shards (their _info.json) or a dataset to read (default: "
                                        "validation, or val); of a folder: DIR/SPLIT")
    parser.add_argument("--image-column", help="a Hugging Face dataset's image column (default: its Image feature)")
    parser.add_argument("--label-column",
                        help="a Hugging Face dataset's label column (default: its ClassLabel feature)")
    parser.add_argument("--shard-info", metavar="JSON",
                        help="the shards' info file, when it is not _info.json beside them")
    parser.add_argument("--streaming", action="store_true", help="stream the Hugging Face dataset")
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
        raise SplitattnError(f"--class-subset {name} selects ImageNet-1k classes, but {trained.model_name}'s "
                             f"{len(trained.class_names)} classes are not ImageNet-1k's")
    classes = trained.classes
    return torch.tensor(sorted(classes.index_of(imagenet.synsets[i]) for i in class_subset(name)))


def check_in_subset(source: EvalSource, subset: torch.Tensor | None, name: str | None,
                    trained: TrainedModel) -> None:
    """Refuse labels outside the subset: restricted logits could never be right for them (a wrong folder)."""
    if subset is None or source.classes_held is None:
        return
    outside = sorted(source.classes_held - set(subset.tolist()))
    if outside:
        shown = ", ".join(trained.classes.describe(i) for i in outside[:5])
        raise DataError(f"{len(outside)} class(es) of {source.source.where} are not among the 200 of --class-subset "
                        f"{name}: {shown}{' ...' if len(outside) > 5 else ''}; is this the right folder or subset?")


def run(args: argparse.Namespace) -> int:
    trained = load_from_args(args, args.image_size, args.crop_pct, args.interpolation)
    subset = subset_indices(trained, args.class_subset)
    options = SourceOptions(split=args.split, image_column=args.image_column, label_column=args.label_column,
                            streaming=args.streaming, shard_info=args.shard_info)
    source = open_eval_source(args.data, trained.classes, options, args.layout, args.labels, args.real_labels)
    check_in_subset(source, subset, args.class_subset, trained)
    if args.per_class and source.classes_held is None:
        raise SplitattnError("--per-class needs one label per image: class folders or --labels")
    if source.not_on_disk:
        print(f"note: {len(source.not_on_disk)} file(s) of {args.labels} are not under {args.data}, e.g. "
              f"{', '.join(source.not_on_disk[:3])}; scoring the {source.num_samples} that are", file=sys.stderr)
    loader = DataLoader(source.dataset(trained.transform, args.workers), args.batch_size,
                        num_workers=args.workers, collate_fn=source.collate)
    runtime = Runtime(select_device(args.device))
    model = trained.model
    if isinstance(model, QuantizedModel) and model.compiled:  # one compiled shape, not a second for the last batch
        model = FixedBatch(model, args.batch_size)
    with tqdm(total=source.num_samples, unit="img", disable=None, file=sys.stderr, leave=False) as bar:
        ranked = predict_topk(model.to(runtime.device), loader, runtime, subset=subset, progress=bar.update)
    unreadable = [*source.source.skipped_files, *ranked.skipped]
    result = score(source, ranked)
    result.update(skipped=len(unreadable), model=trained.model_name,
                  checkpoint=str(args.checkpoint or args.pretrained), image_size=trained.image_size,
                  crop_pct=trained.crop_pct, interpolation=trained.interpolation, layout=source.layout,
                  class_subset=args.class_subset, not_on_disk=len(source.not_on_disk),
                  unreadable=[{"image": record.key, "reason": record.reason} for record in unreadable])
    if args.per_class:
        write_per_class(per_class(ranked.top[:, 0], ranked.labels, trained.classes), args.per_class)
    if unreadable:
        print(f"skipped {len(unreadable)} unreadable image(s): {describe_skips(unreadable)}", file=sys.stderr)
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


def score(source: EvalSource, ranked: Ranked) -> dict:
    """top-1/top-5 and the image count: ReaL's when the source has label sets (then the folder's as
    ``original_top1``/``original_top5``), else against the one label per image."""
    result: dict = {}
    if source.classes_held is not None:
        result.update(topk_accuracy(ranked.top, ranked.labels), images=len(ranked.keys))
    if source.label_sets is not None:
        real = real_accuracy(ranked.top, [source.label_sets[key] for key in ranked.keys])
        if result:
            result = {"original_top1": result["top1"], "original_top5": result["top5"]}
        result.update(real)
    return result
