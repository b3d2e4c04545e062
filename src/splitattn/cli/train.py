"""Train a model: the built-in digits set by default, or an ImageFolder with train/ and val/.

Options come from the defaults, then --preset, then --config (YAML), then the flags and trailing
key=value overrides; the resolved config is printed and saved as config.yaml in the run directory.
Under torchrun (``torchrun --nproc_per_node N -m splitattn train ...``) every process trains a
shard of each batch with DistributedDataParallel and only rank 0 writes.
"""

from __future__ import annotations

import argparse

from ..training import PRESETS, TrainingDiverged, build_config, train
from ..training.tensorboard import LOGS

HELP = "train on the built-in digits set or an image folder (torchrun for several processes)"
FLAGS = ("data", "model", "epochs", "batch_size", "lr", "output", "device", "workers", "image_size", "seed",
         "pretrained", "log")
SWITCHES = ("resume", "amp", "ema", "deterministic", "grad_checkpointing", "channels_last", "sync_bn")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any config option, e.g. mixup=0.2")
    parser.add_argument("--config", help="YAML file of options")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="'imagenet' is the paper's recipe for --model")
    parser.add_argument("--data", help="'digits' (built in, default) or a directory with train/ and val/")
    parser.add_argument("--model", help="zoo name or name.tag (default resnest14d)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="per process")
    parser.add_argument("--lr", type=float, help="default: 0.1 x global batch / 256")
    parser.add_argument("--output", help="run directory (default runs/train)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--workers", type=int, help="data loading processes")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--pretrained", help="weights to start from: 'published' (the model's published weights; "
                                             "--model name.tag picks a set), a file, a URL or hf-hub:org/repo")
    parser.add_argument("--log", choices=LOGS, help="'tensorboard' also writes TensorBoard event files into "
                                                    "RUN_DIR/tensorboard (metrics.jsonl is always written)")
    for switch in SWITCHES:
        parser.add_argument(f"--{switch.replace('_', '-')}", action="store_true", default=None)
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar (logs only)")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.overrides)
    for name in (*FLAGS, *SWITCHES, "progress"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    config = build_config(args.preset, args.config, overrides)
    try:
        result = train(config)
    except TrainingDiverged as error:
        print(f"splitattn train: {error}")
        return 3
    if result.get("stopped"):
        return 0
    print(f"finished: val top-1 {result.get('val_top1', float('nan')):.2f}% — run directory {config.output}")
    return 0
