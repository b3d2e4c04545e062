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
from ..export import EXPORTERS, FORMAT_PRECISIONS, FORMATS, PRECISIONS, SUFFIXES, export_checked

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"pretrained": "--weights"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo name, e.g. resnest50")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="onnx", help="file format")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32; bf16 (openvino); int8 (onnx, openvino; needs --calibration)")
    parser.add_argument("--calibration", default=None,
                        help="image folder (class sub-folders or flat) for int8 calibration and its check; "
                             "also the check images of bf16")
    parser.add_argument("--calibration-count", type=int, default=DEFAULT_COUNT,
                        help="calibration images to read, spread over the class sub-folders")
    parser.add_argument("--output", "-o", default=None,
                        help="file to write (default: MODEL.onnx / MODEL.pt / MODEL.xml)")
    parser.add_argument("--weights", default=None,
                        help="pretrained weights: a path or URL, or 'published' for the published file")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the zoo's)")
    parser.add_argument("--img-size", type=int, default=None, help="trace resolution (default: the zoo's)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="ONNX exporter")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def _validate(args: argparse.Namespace) -> None:
    """The flag combinations that cannot work, refused before the model is built or any image read."""
    if args.precision not in FORMAT_PRECISIONS[args.fmt]:
        supported = "; ".join(f"{fmt}: {', '.join(p)}" for fmt, p in FORMAT_PRECISIONS.items())
        raise SplitattnError(f"--format {args.fmt} does not support --precision {args.precision} (supported: "
                             f"{supported})")
    if args.precision == "int8" and args.calibration is None:
        raise SplitattnError("--precision int8 needs --calibration FOLDER: images the quantization ranges are set on")
    if args.precision == "fp32" and args.calibration is not None:
        raise SplitattnError("--calibration is used by --precision int8 (and bf16's check); fp32 takes none")
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
    output = args.output or f"{args.model}{SUFFIXES[args.fmt]}"
    path, check = export_checked(model, output, args.fmt, (model.in_chans, height, width), check=not args.no_check,
                                 exporter=args.exporter, precision=args.precision, calibration=calibration)
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
