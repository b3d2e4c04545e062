"""Train a model: the built-in digits set by default, or an ImageFolder with train/ and val/.

Options come from the defaults, then --preset, then --config (YAML), then the flags and trailing
key=value overrides; the resolved config is printed and saved as config.yaml in the run directory.
The optimiser is SGD with momentum (the paper's); optimizer=adamw switches to AdamW (give it a
lower lr too, e.g. lr=0.001).
Under torchrun (torchrun --nproc_per_node N -m splitattn train ...) every process trains a
shard of each batch with DistributedDataParallel and only rank 0 writes.
"""

from __future__ import annotations

import argparse
import os

from ..training import PRESETS, TrainConfig, TrainingDiverged, build_config, train
from ..training.loop import report_diverged
from ..training.trackers import log_help
from .config_args import add_config_arguments, command_line_options

# Python argument names in messages -> this command's flags (see splitattn.interface).
FLAGS_FOR = {"model_name": "--model"}
FLAGS = ("data", "model", "epochs", "batch_size", "lr", "output", "device", "workers", "image_size", "seed",
         "pretrained", "log")
SWITCHES = ("resume", "amp", "ema", "deterministic", "grad_checkpointing", "channels_last", "sync_bn")


# What each flag means; the default shown is the digits recipe's (TrainConfig), before any --preset.
FLAG_HELP = {
    "data": "'digits' (built in), a directory with train/<class>/ and val/<class>/ image folders, WebDataset "
            "shards (a directory with _info.json, 'shards/train-{000000..000127}.tar', pipe: commands; see "
            "`splitattn write-shards`) or hf:NAME, a Hugging Face dataset (hf:PATH of a save_to_disk folder); "
            "val_data=SOURCE, val_split=, image_column=, label_column=, hf_streaming=true, hf_options.KEY=VALUE",
    "model": "zoo name or name.tag",
    "epochs": "training epochs",
    "batch_size": "images per step and process",
    "lr": "peak learning rate",
    "output": "run directory",
    "device": "auto, cpu, cuda, cuda:1 ...",
    "workers": "data loading processes",
    "image_size": "training and evaluation crop in pixels (photos: 224 or the model's; see `splitattn zoo`)",
    "seed": "seed of every random generator",
    "pretrained": "weights to start from: 'published' (the model's published weights; --model name.tag picks a "
                  "set), a file, a URL or hf-hub:org/repo (default: none, random initialisation)",
    "log": log_help("RUN_DIR"),
}
SWITCH_HELP = {
    "resume": "continue the run in --output from its last.pth",
    "amp": "mixed precision (float16 on CUDA, bfloat16 on CPU)",
    "ema": "also keep and evaluate an exponential moving average of the weights",
    "deterministic": "deterministic algorithms, for bit-exact reruns",
    "grad_checkpointing": "recompute activations in the backward pass to save memory",
    "channels_last": "train in NHWC memory format (faster on recent CPUs and GPUs)",
    "sync_bn": "synchronise BatchNorm statistics across processes (GPUs only)",
}
FLAG_METAVARS = {"log": "NAME[,NAME]"}  # the others: argparse's (the flag's name)
FLAG_TYPES = {"epochs": int, "batch_size": int, "lr": float, "workers": int, "image_size": int, "seed": int}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    add_config_arguments(parser, "mixup=0.2 optimizer=adamw attn.radix=4",
                         "YAML file of options (e.g. a run's config.yaml), applied after --preset")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="'imagenet': the paper's recipe for --model (crop, schedule, augmentation)")
    for name in FLAGS:
        default = "0.1 x global batch / 256" if name == "lr" else getattr(defaults, name)
        kwargs = {"type": FLAG_TYPES[name]} if name in FLAG_TYPES else {}
        shown = f" (default: {default})" if default is not None else ""
        parser.add_argument(f"--{name.replace('_', '-')}", help=FLAG_HELP[name] + shown,
                            metavar=FLAG_METAVARS.get(name), **kwargs)
    for switch in SWITCHES:
        parser.add_argument(f"--{switch.replace('_', '-')}", action="store_true", default=None,
                            help=SWITCH_HELP[switch])
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar (logs only)")


def run(args: argparse.Namespace) -> int:
    config = build_config(args.preset, args.config, command_line_options(args, (*FLAGS, *SWITCHES, "progress")))
    try:
        result = train(config)
    except TrainingDiverged as error:
        return report_diverged("train", error)
    if result.get("stopped") or int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return 0
    print(f"finished: val top-1 {result.get('val_top1', float('nan')):.2f}% — run directory {config.output}")
    return 0
