"""Export a zoo model to ONNX or TorchScript with a dynamic batch size.

The exported network is the deploy-mode model (BatchNorm folded into convs). Unless --no-check,
the file is run at batch sizes 1 and 3 (onnxruntime for ONNX) and compared with PyTorch's
eval-mode output; a relative difference above 1e-4 is an error.
"""

from __future__ import annotations

import argparse

from ..export import EXPORTERS, FORMATS, export_model

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"pretrained": "--weights"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo name, e.g. resnest50")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="onnx", help="file format")
    parser.add_argument("--output", "-o", default=None, help="file to write (default: MODEL.onnx / MODEL.pt)")
    parser.add_argument("--weights", default=None,
                        help="pretrained weights: a path or URL, or 'published' for the published file")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the zoo's)")
    parser.add_argument("--img-size", type=int, default=None, help="trace resolution (default: the zoo's)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="ONNX exporter")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def run(args: argparse.Namespace) -> int:
    from ..factory import create_model

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = create_model(args.model, pretrained=args.weights or False, **kwargs).eval()
    _, height, width = model.pretrained_cfg["input_size"]
    if args.img_size is not None:
        if args.img_size < 32:
            raise ValueError(f"--img-size must be >= 32, got {args.img_size}")
        height = width = args.img_size
    output = args.output or f"{args.model}.{'onnx' if args.fmt == 'onnx' else 'pt'}"
    path, error = export_model(model, output, args.fmt, (model.in_chans, height, width),
                               check=not args.no_check, exporter=args.exporter)
    checked = "not checked" if error is None else f"max relative error vs PyTorch {error:.1e} at batch 1 and 3"
    print(f"wrote {args.fmt} {path} for {args.model} (input N x {model.in_chans} x {height} x {width}, "
          f"dynamic N; {checked})")
    return 0
