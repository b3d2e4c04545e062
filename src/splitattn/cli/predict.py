"""Classify images with a checkpoint: the top-k classes with their names and probabilities.

Give image files or folders (walked recursively, sorted). The images go through the model in
batches, in deploy mode checked against eval mode on the first batch. Without ``--out`` the
classes are printed (text, or JSON lines with ``--json``); with ``--out predictions.csv`` or
``.jsonl`` they are written to that file, with a progress bar. An unreadable image does not stop
the run: it is listed with the reason, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys

from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import ImageFiles, collate_keyed, find_images
from ..errors import FAILURE, OK, SplitattnError
from ..training.prediction import predict_images
from ..training.prediction_files import (
    OUTPUT_FORMATS,
    JsonlWriter,
    PredictionSummary,
    TextWriter,
    output_format,
    write_all,
    write_predictions,
)
from ..training.runtime import select_device
from .weights_args import add_weights_arguments, load_from_args

UNREADABLE_SHOWN = 10  # unreadable images named on stderr; the output lists them all

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                        help="image files, or folders walked recursively for image files (sorted)")
    add_weights_arguments(parser)  # --checkpoint or --pretrained, and --model
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to list per image")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--json", action="store_true", help="one JSON object per image (on stdout)")
    parser.add_argument("--out", metavar="FILE",
                        help=f"write the predictions to FILE instead, in the format its suffix names: "
                             f"{', '.join(OUTPUT_FORMATS)} (written atomically)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="image decoding processes (0: in this one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on stderr with --out)")


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise SplitattnError(f"--top-k must be >= 1, got {args.top_k}")
    if args.batch_size < 1:
        raise SplitattnError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.workers < 0:
        raise SplitattnError(f"--workers must be >= 0, got {args.workers}")
    if args.out is not None:
        if args.json:
            raise SplitattnError("--json prints to stdout; with --out the file's suffix sets the format "
                                 "(.jsonl for JSON lines)")
        output_format(args.out)  # an unknown suffix is refused before the model is loaded
    files = find_images(args.images)
    trained = load_from_args(args)
    device = select_device(args.device)
    k = min(args.top_k, len(trained.class_names))
    loader = DataLoader(ImageFiles(files, trained.transform), args.batch_size, num_workers=args.workers,
                        collate_fn=collate_keyed)
    predictions = predict_images(trained.model, loader, trained.class_names, k, device)
    if args.out is None:
        summary = write_all((JsonlWriter if args.json else TextWriter)(sys.stdout, k), predictions)
    else:
        with tqdm(predictions, total=len(files), unit="image", file=sys.stderr, disable=args.no_progress,
                  dynamic_ncols=True) as bar:
            summary = write_predictions(args.out, bar, k)
        print(f"wrote {summary.images} prediction(s) to {args.out}")
    _report_unreadable(summary)
    return FAILURE.code if summary.unreadable else OK.code  # the table splitattn --help lists


def _report_unreadable(summary: PredictionSummary) -> None:
    if not summary.unreadable:
        return
    print(f"{len(summary.unreadable)} of {summary.images} image(s) could not be read:", file=sys.stderr)
    for prediction in summary.unreadable[:UNREADABLE_SHOWN]:
        print(f"  {prediction.image}: {prediction.error}", file=sys.stderr)
    if len(summary.unreadable) > UNREADABLE_SHOWN:
        print(f"  ... and {len(summary.unreadable) - UNREADABLE_SHOWN} more, all listed in the output",
              file=sys.stderr)
