"""Classify images with a checkpoint: the top-k classes with their names and probabilities."""

from __future__ import annotations

import argparse
import json

import torch

from ..data import load_rgb
from ..deploy import deploy
from ..training.inference import load_trained
from ..training.runtime import select_device

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model", "pretrained": "--checkpoint"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint of splitattn train, weights file (.pth/.safetensors), or a model "
                             "repository (hf-hub:org/repo, local-dir:PATH)")
    parser.add_argument("--model", help="zoo name of the architecture (default: what the checkpoint records; "
                                        "needed only for bare weight files)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to list per image")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    trained = load_trained(args.checkpoint, args.model)
    device = select_device(args.device)
    model = None
    transform = trained.transform
    k = min(args.top_k, len(trained.class_names))
    for path in args.images:
        try:
            image = load_rgb(path)
        except (OSError, ValueError, SyntaxError) as error:
            raise ValueError(f"cannot read image {path!r}: {error}") from None
        x = transform(image).unsqueeze(0).to(device)
        if model is None:
            # Deploy mode (BNs folded; on CPU, convs packed for this input size): 1.4x faster per
            # image, and it checks itself against the eval-mode model on this first image.
            model = deploy(trained.model.to(device).eval(), example_input=x, inplace=True)
        with torch.no_grad():
            probabilities = model(x).softmax(dim=1)[0]
        top = probabilities.topk(k)
        predictions = [{"class": trained.class_names[i], "index": int(i), "probability": float(p)}
                       for p, i in zip(top.values, top.indices, strict=True)]
        if args.json:
            print(json.dumps({"image": path, "predictions": predictions}))
        else:
            print(path)
            for rank, prediction in enumerate(predictions, start=1):
                print(f"  {rank}. {prediction['class']:<20} {100 * prediction['probability']:6.2f}%")
    return 0
