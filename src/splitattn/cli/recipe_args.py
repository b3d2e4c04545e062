"""The command-line options ``train-det`` and ``train-seg`` share, read from ``DenseRecipe``.

Defaults come from the task's config class, so the CLI and the Python API cannot drift apart; every
help text states its default. ``run_training`` runs a task the same way for both commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from ..dense.loop import MAX_DEFAULT_WARMUP, OPTIMIZERS
from ..dense.recipe import DenseRecipe
from ..training.tensorboard import LOGS
from ..training.trainer import TrainingDiverged

RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(DenseRecipe))
DIVERGED_EXIT = 3  # as `splitattn train`


def with_default(text: str, default: object) -> str:
    """``text (default: DEFAULT)``, the way every option of these commands states its default."""
    return f"{text} (default: {default})"


def add_recipe_arguments(parser: argparse.ArgumentParser, config_class: type[DenseRecipe], output: str) -> None:
    """Backbone, optimisation and runtime options; ``output`` is the default run directory."""
    if not issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter  # the example commands keep their lines
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}

    def option(name: str, text: str, **kwargs) -> None:
        parser.add_argument(f"--{name.replace('_', '-')}", default=defaults[name],
                            help=with_default(text, defaults[name]), **kwargs)

    option("backbone", "zoo name; name.tag picks a set of published weights for --pretrained-backbone")
    parser.add_argument("--pretrained-backbone", help="'published' (the backbone's published weights; "
                                                      "--backbone name.tag picks a set), or a classification "
                                                      "checkpoint: path, URL or hf-hub:org/repo "
                                                      "(default: none, random initialisation)")
    option("steps", "optimiser steps (batches) to train for", type=int)
    option("batch_size", "images per step", type=int)
    option("optimizer", "optimiser", choices=OPTIMIZERS)
    option("lr", "peak learning rate, reached after the warm-up", type=float)
    option("weight_decay", "weight decay of the conv and linear weights (norms and biases get none)", type=float)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help=f"steps of linear warm-up before the cosine decay to 0 at the last step; must be "
                             f"fewer than --steps (default: a tenth of --steps, at most {MAX_DEFAULT_WARMUP})")
    option("device", "auto, cpu, cuda, cuda:1 ... (auto: the GPU when there is one)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: float16 on CUDA, bfloat16 on CPU (default: off)")
    option("seed", "seed of the model's initialisation, the data order and the augmentation", type=int)
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic GPU algorithms, for bit-exact reruns (default: off)")
    option("workers", "data loading processes", type=int)
    parser.add_argument("--output", default=output, help=with_default("run directory: last.pth, metrics.json", output))
    option("log_every", "print the mean loss (and its parts) of the last N steps every N steps, and after the "
                        "first; 0: never", type=int, metavar="N")
    option("log", "'tensorboard' also writes TensorBoard event files into OUTPUT/tensorboard", choices=LOGS)
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar on stderr (default: a bar with the loss, learning rate and ETA)")
    option("checkpoint_every", "save OUTPUT/last.pth every N steps, so that a killed run loses at most N; it is also "
                               "saved at the end and on SIGTERM / Ctrl-C; 0: only then", type=int, metavar="N")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output from its last.pth, with the same settings; a finished "
                             "run is not trained again (default: start a new run)")


def recipe_arguments(args: argparse.Namespace) -> dict:
    """The parsed shared options, as keyword arguments for the task's config class."""
    return {name: getattr(args, name) for name in RECIPE_FIELDS}


def run_training(command: str, train: Callable[[], object]) -> int:
    """Run ``train()``: 0 when it finished, was stopped by a signal (and saved) or had finished
    before; ``DIVERGED_EXIT`` with the message when the loss became NaN or infinite."""
    try:
        train()
    except TrainingDiverged as error:
        print(f"splitattn {command}: error: {error}", file=sys.stderr)
        return DIVERGED_EXIT
    return 0
