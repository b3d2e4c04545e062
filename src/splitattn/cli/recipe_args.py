"""The command-line options ``train-det`` and ``train-seg`` share, read from ``DenseRecipe``.

Defaults come from the task's config class, so the CLI and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..dense.recipe import DenseRecipe
from ..training.tensorboard import LOGS

RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(DenseRecipe))


def add_recipe_arguments(parser: argparse.ArgumentParser, config_class: type[DenseRecipe], output: str) -> None:
    """Backbone, optimisation and runtime options; ``output`` is the default run directory."""
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    parser.add_argument("--backbone", default=defaults["backbone"], help=f"zoo name (default {defaults['backbone']})")
    parser.add_argument("--pretrained-backbone", help="'published' (the backbone's published weights; "
                                                      "--backbone name.tag picks a set), or a classification "
                                                      "checkpoint: path, URL or hf-hub:org/repo")
    parser.add_argument("--steps", type=int, default=defaults["steps"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--optimizer", default=defaults["optimizer"], choices=("sgd", "adamw"))
    parser.add_argument("--lr", type=float, default=defaults["lr"])
    parser.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    parser.add_argument("--warmup-steps", type=int, default=defaults["warmup_steps"])
    parser.add_argument("--device", default=defaults["device"], help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--seed", type=int, default=defaults["seed"])
    parser.add_argument("--workers", type=int, default=defaults["workers"], help="data loading processes")
    parser.add_argument("--output", default=output, help="run directory")
    parser.add_argument("--log-every", type=int, default=defaults["log_every"])
    parser.add_argument("--log", choices=LOGS, default=defaults["log"],
                        help="'tensorboard' also writes TensorBoard event files into OUTPUT/tensorboard")


def recipe_arguments(args: argparse.Namespace) -> dict:
    """The parsed shared options, as keyword arguments for the task's config class."""
    return {name: getattr(args, name) for name in RECIPE_FIELDS}
