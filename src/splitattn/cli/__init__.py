"""The ``splitattn`` command: one sub-command per module in this package.

Only the module of the command being run is imported: the commands differ a lot in what they
need (``zoo`` counts on the meta device, ``train`` pulls in torchvision's data pipeline), and a
command's start-up should cost what it uses. ``--help`` on its own needs none of them.

Results go to stdout, errors to stderr. The package's own errors (a :class:`~splitattn.errors.SplitattnError`,
or any error whose class names an ``exit_status``, such as a diverged training run) end the command
with their one-line message and the exit status of ``splitattn.errors.EXIT_STATUSES``, which
``splitattn --help`` lists. Anything else (a ``RuntimeError`` from PyTorch, a bug) propagates with
its traceback: turning it into one line would hide where it came from.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import re
import sys
import textwrap
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from ..errors import EXIT_STATUSES, exit_status_of
from ..interface import command_line
from .help_format import HelpFormatter

# command -> (module in this package, one-line help)
COMMANDS = {
    "convert": ("convert", "convert weights between official/timm/our layouts and .pth/.safetensors"),
    "train": ("train", "train on the built-in digits set or an image folder (torchrun for several processes)"),
    "summary": ("summary", "layer-by-layer table of a model: shapes, parameters and MACs"),
    "zoo": ("zoo", "table of every zoo model: parameters, GMACs, input size, published weights, top-1"),
    "explain": ("explain", "pictures of what the attention selects, and a Grad-CAM heat map, for one image"),
    "eval": ("evaluate", "top-1/top-5 of a checkpoint or published weights on a folder, shards or a dataset "
                         "(ImageNet, -V2, -A, -R, -Sketch, ReaL)"),
    "predict": ("predict", "top-k classes of images or folders of them: text, JSON, or a CSV/JSONL file"),
    "bench": ("bench", "throughput, latency, peak memory and roof fraction against timm"),
    "export": ("export", "export a model to ONNX, TorchScript or OpenVINO (fp32, bf16, int8), checked against PyTorch"),
    "quantize": ("quantize", "int8 model from calibration images, with per-layer sensitivity and accuracy vs float32"),
    "train-det": ("train_det", "fine-tune Faster/Mask R-CNN with a ResNeSt, SE or SK backbone on COCO-format data"),
    "train-seg": ("train_seg", "fine-tune DeepLabV3 with a ResNeSt, SE or SK backbone on mask folders or COCO data"),
    "download": ("download", "fetch published weights into the cache (for offline machines)"),
    "write-shards": ("write_shards", "write an image folder (or the built-in digits) as WebDataset shards"),
    "push-to-hub": ("push_to_hub", "upload a trained model (run directory) to the Hugging Face Hub with a model card"),
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f".{COMMANDS[name][0]}", __name__)


def exit_statuses_help() -> str:
    """The exit-status table as ``splitattn --help`` ends with it."""
    rows = (textwrap.fill(status.meaning, width=78, initial_indent=f"  {status.code}  ", subsequent_indent="     ")
            for status in EXIT_STATUSES)
    return "exit status:\n" + "\n".join(rows)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, the other commands' options are left out (their modules unimported)."""
    parser = argparse.ArgumentParser(prog="splitattn", description="SENet, SKNet and ResNeSt networks.",
                                     epilog=exit_statuses_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=text)
            continue
        module = command_module(name)
        module.add_arguments(sub.add_parser(name, help=text, description=module.__doc__,
                                            formatter_class=HelpFormatter))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``splitattn`` command and return its exit status (see :func:`exit_statuses_help`).

    Args:
        argv: the arguments after ``splitattn`` (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else "")
    args, extra = parser.parse_known_args(argv)
    # argparse gathers a positional list once: KEY=VALUE pairs written on both sides of a flag
    # (`train hf_options.x=1 --epochs 1 mixup=0`) would leave the second group "unrecognized".
    if extra and hasattr(args, "overrides") and all(re.match(r"[A-Za-z_][\w.-]*=", a) for a in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    module = command_module(args.command)
    try:
        with command_line(getattr(module, "FLAGS_FOR", None)):
            return module.run(args) or 0
    except Exception as error:
        status = exit_status_of(error)
        if status is None:
            raise  # not the package's own: its traceback is what tells where it came from
        print(f"splitattn {args.command}: error: {error}", file=sys.stderr)
        return status.code


def run_and_exit() -> NoReturn:
    """The ``splitattn`` executable (and ``python -m splitattn``): :func:`main`, then exit with its status.

    Before exiting, everything alive is moved out of the garbage collector's sight (``gc.freeze``):
    the interpreter's last collection would otherwise walk every object torch, dynamo and
    torchvision made at import (millions), about a second of each command on a 2-core machine, to
    free memory the process is about to give back anyway. Nothing is skipped that a command relies
    on: ``atexit`` handlers still run, and files, trackers and process groups are closed by the
    commands themselves before they return.
    """
    try:
        status = main()
    finally:
        gc.freeze()
    sys.exit(status)
