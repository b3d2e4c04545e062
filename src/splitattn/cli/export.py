"""Export a zoo model to ONNX, TorchScript or OpenVINO IR with a dynamic batch size.

The exported network is the deploy-mode model (BatchNorm folded into convs). Unless --no-check,
the file is run at batch sizes 1 and 3 (onnxruntime for ONNX, OpenVINO's CPU plugin for OpenVINO)
and compared with PyTorch's eval-mode output; a relative difference above the precision's
tolerance is an error, and the report also gives how often the top-1 class agrees with PyTorch.

Precisions (--precision):
  fp32  every format; tolerance 1e-4
  bf16  OpenVINO only: the same f32 IR (MODEL.xml + MODEL.bin), meant to be compiled with
        INFERENCE_PRECISION_HINT=bf16, a compile-time setting in OpenVINO (the IR records it in
        rt_info for the reader). Tolerance 5e-2. On a CPU without bf16 instructions OpenVINO runs
        f32, and the report says so
  int8  ONNX (onnxruntime static quantization, QDQ, per-channel int8 weights, int8 activations)
        and OpenVINO (NNCF post-training quantization), calibrated on --calibration images read
        with the model's eval preprocessing, and checked on them. Tolerance 0.35: a few per cent
        is normal for int8, so read the top-1 agreement

Examples:
  splitattn export resnest50 --format openvino --precision bf16
  splitattn export resnest50 --format onnx --precision int8 --calibration imagenet/val
"""

from __future__ import annotations

import argparse

from ..data.calibration import DEFAULT_BATCH_SIZE, DEFAULT_COUNT
from ..errors import SplitattnError
from ..export import EXPORTERS, FORMATS, PRECISIONS, check_request, export_checked

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"pretrained": "--weights", "fmt": "--format"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo name, e.g. resnest50")
    parser.add_argument("--format", dest="fmt", choices=tuple(FORMATS), default="onnx",
                        help="file format (default: onnx)")
    by_precision = {p: [f.name for f in FORMATS.values() if p in f.precisions] for p in PRECISIONS}
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="; ".join(f"{p} ({', '.join(names)})" for p, names in by_precision.items())
                        + "".join(f"; {p.name} needs --calibration" for p in PRECISIONS.values() if p.needs_calibration)
                        + " (default: fp32)")
    parser.add_argument("--calibration", default=None,
                        help="image folder (class sub-folders or flat) for int8 calibration and its check; "
                             "also the check images of bf16")
    parser.add_argument("--calibration-count", type=int, default=DEFAULT_COUNT,
                        help="calibration images to read, spread over the class sub-folders")
    parser.add_argument("--output", "-o", default=None,
                        help=f"file to write (default: {' / '.join('MODEL' + f.suffix for f in FORMATS.values())})")
    parser.add_argument("--weights", default=None,
                        help="pretrained weights: a path or URL, or 'published' for the published file")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the zoo's)")
    parser.add_argument("--img-size", type=int, default=None, help="trace resolution (default: the zoo's)")
    parser.add_argument("--exporter", default=None,
                        help=f"ONNX exporter: {' or '.join(EXPORTERS)} (default: {EXPORTERS[0]})")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def _options(args: argparse.Namespace) -> dict[str, str]:
    """The format's own options the user gave (the library refuses those the format does not take)."""
    return {} if args.exporter is None else {"exporter": args.exporter}


def _validate(args: argparse.Namespace) -> None:
    """The flag combinations that cannot work, refused before the model is built or any image read."""
    check_request(args.fmt, args.precision, args.calibration is not None, _options(args))
    if args.img_size is not None and args.img_size < 32:
        raise SplitattnError(f"--img-size must be >= 32, got {args.img_size}")


def run(args: argparse.Namespace) -> int:
    _validate(args)
    from ..factory import create_model

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = create_model(args.model, pretrained=args.weights or False, **kwargs).eval()
    _, height, width = model.pretrained_cfg["input_size"]
    if args.img_size is not None:
        height = width = args.img_size
    calibration = None
    if args.calibration is not None:
        from ..data.calibration import calibration_batches  # reads images: only when asked for

        calibration = calibration_batches(args.calibration, model, count=args.calibration_count,
                                          batch_size=DEFAULT_BATCH_SIZE, img_size=args.img_size)
    output = args.output or f"{args.model}{FORMATS[args.fmt].suffix}"
    path, check = export_checked(model, output, args.fmt, (model.in_chans, height, width), check=not args.no_check,
                                 precision=args.precision, calibration=calibration, **_options(args))
    if check is None:
        checked = "not checked"
    else:
        # OpenVINO runs bf16 as f32 on CPUs without bf16 instructions: say so, the numbers are f32's.
        ran = "" if check.ran_at == args.precision else f", ran at {check.ran_at}: this CPU has no {args.precision}"
        inputs = "random inputs" if calibration is None else "calibration images"
        tolerance = f"{check.tolerance:.0e}" if check.tolerance < 1e-3 else f"{check.tolerance:g}"  # 1e-04, 0.35
        checked = (f"max relative error vs PyTorch {check.error:.1e} (tolerance {tolerance}), "
                   f"top-1 agreement {check.top1_agreement:.1%} on {check.images} {inputs} at batch "
                   f"{', '.join(map(str, sorted(set(check.batch_sizes))))}{ran}")
    print(f"wrote {args.fmt} {args.precision} {path} for {args.model} (input N x {model.in_chans} x {height} x "
          f"{width}, dynamic N; {checked})")
    return 0
