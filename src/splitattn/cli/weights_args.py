"""The flags that say which model a command runs: ``--checkpoint`` or ``--pretrained``, and ``--model``.

``eval`` and ``predict`` take the same three, so the two commands read them alike: a training
run's checkpoint (or any weights file, repository, int8 archive) with ``--checkpoint``, or
published weights as ``create_model(pretrained=...)`` takes them with ``--pretrained``.
"""

from __future__ import annotations

import argparse

from ..training.inference import TrainedModel, load_published, load_trained, weights_spec


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` or ``--pretrained`` (exactly one), and ``--model``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint",
                        help="checkpoint of splitattn train, weights file (.pth/.safetensors), int8 model or compiled "
                             "package (.pt2: a package runs its compiled code, load only your own), OpenVINO model of "
                             "deploy or quantize --engine openvino (.xml), onnxruntime model of deploy (.onnx) or "
                             "model repository (hf-hub:org/repo, local-dir:PATH)")
    source.add_argument("--pretrained", metavar="WEIGHTS",
                        help="weights as create_model(pretrained=...) takes them: 'published' (the --model's "
                             "published weights, fetched once into the cache), a name.tag (resnest50.in1k), a file, "
                             "a URL or hf-hub:org/repo; preprocessing from the tag's pretrained config")
    parser.add_argument("--model", help="zoo name (or name.tag) of the architecture: needed with --pretrained and "
                                        "for bare weight files; default: what the checkpoint records")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="run an int8 archive (.pt2 of splitattn quantize) as its graph stands, without "
                             "compiling it first: no C++ compiler and no compile wait, slower per "
                             "image; other models are not compiled anyway")


def load_from_args(args: argparse.Namespace, image_size: int | None = None, crop_pct: float | None = None,
                   interpolation: str | None = None) -> TrainedModel:
    """The model the flags of :func:`add_weights_arguments` name; explicit preprocessing wins.

    Args:
        args: the parsed flags (``checkpoint``, ``pretrained``, ``model``, ``compile``).
        image_size, crop_pct, interpolation: override the preprocessing the weights record.
    """
    if args.pretrained is not None:
        model_name, pretrained = weights_spec(args.model, args.pretrained)
        return load_published(model_name, pretrained, image_size, crop_pct, interpolation)
    return load_trained(args.checkpoint, args.model, image_size, crop_pct, interpolation, compile=args.compile)
