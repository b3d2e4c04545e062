"""Quantize a trained model to int8 with calibration images, and show what it costs in accuracy.

The model is read like ``splitattn eval`` reads it (a checkpoint of ``splitattn train``, a weights
file with --model, or a model repository), with its preprocessing. The calibration images (a
folder, class sub-folders or flat; a few hundred from the training set) set the activation ranges.
Before quantizing, the worst layers by int8 rounding noise are listed (--sensitivity); with --val
(a labelled folder) the float32, bfloat16 and int8 models are evaluated on it: top-1 and top-1
agreement with float32. The int8 model is written as a .pt2 archive that ``splitattn eval`` and
``predict`` take as --checkpoint, and ``splitattn.quantize.load_quantized`` loads without
recalibrating. int8 runs on x86 CPUs (oneDNN; fastest with AVX-512 VNNI or AMX).

With --aot the .pt2 is an ahead-of-time compiled package instead (AOTInductor, at --batch-size
images of the model's input size; other batch sizes are padded or split): compiled here once,
checked against the float model's top-1 on the calibration images, and loaded by ``eval`` and
``predict`` without compiling. A flag, not a file name, because both are ``.pt2`` (PT2 archives)
and the metadata inside tells them apart on load; not the default, because a package runs only
with this torch on a CPU with this one's instruction sets, and loading it runs the compiled
code it holds (load only packages you made), while the archive is portable and holds no code.

With --engine openvino the model is quantized by NNCF and run by OpenVINO's CPU plugin instead
(``pip install 'splitattn[openvino]'``; the faster engine on the CPUs measured, docs/benchmarks.md),
written as an OpenVINO IR (NAME.int8.xml and NAME.int8.bin) that holds no code, checked against the
float model's top-1 on the calibration images like a package, and compiled by OpenVINO in a second
or two when ``eval`` or ``predict`` load it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from torch.utils.data import DataLoader

from ..data import ImageFolderDataset, collate_skipping
from ..data.calibration import calibration_batches
from ..errors import SplitattnError
from ..quantize import (
    ATTENTION_INPUT_CHOICES,
    DEFAULT_MIN_AGREEMENT,
    KEEP_FLOAT_CHOICES,
    QUANTIZE_ENGINES,
    format_sensitivity,
    quantize,
    save_quantized,
    sensitivity,
)
from ..quantize.engines import engines_that
from ..training.agreement import compare_precisions, precision_variants
from ..training.inference import load_trained

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model", "pretrained": "--checkpoint"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint of splitattn train, weights file (.pth/.safetensors), or a model repository")
    parser.add_argument("--model", help="zoo name of the architecture (default: what the checkpoint records; "
                                        "needed only for bare weight files)")
    parser.add_argument("--calibration", required=True,
                        help="folder of calibration images (class sub-folders or flat), e.g. the training set")
    parser.add_argument("--num-images", type=int, default=256,
                        help="calibration images to use, spread over the classes (default: 256)")
    parser.add_argument("--val", help="labelled folder DIR/<class>/<image>: compare float32, bfloat16 and int8 "
                                      "top-1 on it (default: no comparison)")
    parser.add_argument("--output", help="the int8 model to write (default: beside the checkpoint, NAME.int8.pt2; "
                                           "NAME.int8.xml with --engine openvino)")
    parser.add_argument("--keep-float", default="attention", choices=KEEP_FLOAT_CHOICES,
                        help="'attention' leaves the attention MLPs in float, 'none' quantizes them too "
                             "(default: attention)")
    parser.add_argument("--attention-inputs", default="int8", choices=ATTENTION_INPUT_CHOICES,
                        help="(--engine inductor) 'int8': the convs feeding each attention write int8, read by "
                             "its pooling and weighting at a quarter of the bytes; 'float' keeps those maps in "
                             "float32 (default: int8; --sensitivity lists their rounding noise)")
    parser.add_argument("--sensitivity", type=int, default=10, metavar="N",
                        help="list the N layers that lose most in int8, before quantizing; 0: none (default: 10)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="compare with the int8 graph run as is (reference arithmetic, no inductor "
                             "compile; default: compiled, as it ships)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    parser.add_argument("--aot", action="store_true",
                        help="write an ahead-of-time compiled package (AOTInductor, compiled for --batch-size): "
                             "eval and predict load it without compiling; it runs only with this torch on a CPU "
                             "like this one, and loading it runs its compiled code (load only packages you made). "
                             "Default: the portable archive, compiled when loaded")
    parser.add_argument("--min-agreement", type=float, metavar="FRACTION",
                        help="(--aot, --engine openvino) the lowest top-1 agreement with float32 on the "
                             "calibration images at which the model is written, 0 to 1 (default: "
                             f"{DEFAULT_MIN_AGREEMENT}); the plain archive is not checked on save")
    parser.add_argument("--engine", default="inductor", choices=tuple(QUANTIZE_ENGINES),
                        help="who makes and runs the int8 model: 'inductor' (PyTorch's PT2E flow and oneDNN, "
                             "a .pt2) or 'openvino' (NNCF and OpenVINO's CPU plugin, an .xml IR compiled for "
                             "--batch-size; pip install 'splitattn[openvino]'). Default: inductor")


def _default_output(checkpoint: str, suffix: str) -> Path:
    path = Path(checkpoint)
    if path.suffix in (".pth", ".pt", ".safetensors"):
        return path.with_name(f"{path.stem}.int8{suffix}")
    return Path(f"{path.name.replace(':', '-').replace('/', '-')}.int8{suffix}")


def _check_engine_flags(args: argparse.Namespace) -> None:
    """Refuse the flags the chosen engine does not take, before anything is loaded."""
    engine = QUANTIZE_ENGINES[args.engine]
    others = engines_that("aot")
    if args.aot and not engine.aot:
        raise SplitattnError(f"--aot writes an AOTInductor package (--engine {' or '.join(others)}); "
                             f"--engine {args.engine} writes an {engine.label}")
    if not args.compile and not engine.reference_graph:
        raise SplitattnError(f"--no-compile runs an uncompiled reference graph, which --engine {args.engine} does not "
                             "have (it always runs compiled)")
    if args.attention_inputs == "float" and not engine.float_attention_inputs:
        raise SplitattnError(f"--attention-inputs float is for --engine "
                             f"{' or '.join(engines_that('float_attention_inputs'))}; "
                             f"--engine {args.engine} places its quantizers by its own rules")
    if args.min_agreement is not None:
        if not 0 <= args.min_agreement <= 1:
            raise SplitattnError(f"--min-agreement is a fraction of images, 0 to 1, got {args.min_agreement}")
        if not (args.aot or engine.checked_on_save):
            raise SplitattnError(f"--min-agreement sets the check made when a model is saved compiled (--aot, or "
                                 f"--engine {' or '.join(engines_that('checked_on_save'))}); the plain archive is not "
                                 "checked (compare it with --val)")
    if args.output and Path(args.output).suffix != engine.suffix:
        raise SplitattnError(f"--engine {args.engine} writes a {engine.suffix} file, got --output {args.output}")


def run(args: argparse.Namespace) -> int:
    if args.num_images < 1:
        raise SplitattnError(f"--num-images must be >= 1, got {args.num_images}")
    _check_engine_flags(args)
    engine = QUANTIZE_ENGINES[args.engine]
    trained = load_trained(args.checkpoint, args.model)
    model = trained.model.float().cpu().eval()
    calibration = calibration_batches(args.calibration, model, count=args.num_images, batch_size=args.batch_size)
    if args.sensitivity:
        print(f"int8 rounding noise per layer ({args.sensitivity} worst; SQNR in dB, higher is better):")
        print(format_sensitivity(sensitivity(model, calibration), limit=args.sensitivity))
    started = time.perf_counter()
    batch = {"batch_size": args.batch_size} if engine.compiles_at_batch else {}
    quantized = quantize(model, calibration, keep_float=args.keep_float, compile=args.compile, engine=args.engine,
                         attention_inputs=args.attention_inputs, **batch)
    quantized.info["pretrained_cfg"]["label_names"] = list(trained.class_names)
    output = Path(args.output) if args.output else _default_output(args.checkpoint, engine.suffix)
    checked = args.aot or engine.checked_on_save
    save_quantized(quantized, output, example=calibration[0], aot=args.aot, float_model=model,
                   check_batches=calibration if checked else (),
                   min_agreement=DEFAULT_MIN_AGREEMENT if args.min_agreement is None else args.min_agreement)
    kind = "compiled package" if args.aot else engine.label
    if checked:
        kind += ", checked against float32 on the calibration images"
    print(f"wrote {output} ({kind}): {quantized.int8_layers} convs/linears in int8, {len(quantized.float_layers)} "
          f"left in float ({args.keep_float}), calibrated on {quantized.info['calibration_images']} images "
          f"in {time.perf_counter() - started:.0f} s")
    if args.val:
        dataset = ImageFolderDataset(args.val, trained.transform, class_names=trained.class_names)
        loader = DataLoader(dataset, args.batch_size, collate_fn=collate_skipping)
        models = {**precision_variants(model, calibration, keep_float=()), "int8": quantized}
        results = compare_precisions(models, loader)
        print(f"on {args.val} ({results[0].images} images):")
        for result in results:
            print("  " + result.line(reference=results[0].label))
    return 0
