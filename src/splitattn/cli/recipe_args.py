"""The command-line options ``train-det`` and ``train-seg`` share, read from ``DenseRecipe``.

Options are resolved as ``splitattn train`` resolves its own (``training.config.build_config``):
the task's config class's defaults (and the command's run directory), then ``--config FILE``
(YAML, e.g. a run's config.yaml), then trailing ``KEY=VALUE`` pairs, then the flags given. Flags
therefore default to None ("not given", so they never override the file); every help text states
the real default, read from the config class, so the CLI and the Python API cannot drift apart.
``resolve_config`` builds the config, ``run_training`` runs a task the same way for both commands.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..dense.loop import MAX_DEFAULT_WARMUP
from ..dense.recipe import DenseRecipe
from ..training.config import build_config
from ..training.loop import TrainingDiverged, report_diverged
from ..training.optim import OPTIMIZERS
from ..training.trackers import log_help
from .config_args import add_config_arguments, command_line_options

RecipeT = TypeVar("RecipeT", bound=DenseRecipe)


def with_default(text: str, default: object) -> str:
    """``text (default: DEFAULT)``, the way every option of these commands states its default."""
    return f"{text} (default: {default})"


def field_defaults(config_class: type) -> dict[str, Any]:
    """The defaults of ``config_class``'s fields (``dataclasses.MISSING`` for required ones)."""
    return {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(config_class)}


def add_recipe_arguments(parser: argparse.ArgumentParser, config_class: type[DenseRecipe], output: str) -> None:
    """``--config``, ``KEY=VALUE``, and the backbone, optimisation and runtime options; ``output``
    is the command's default run directory."""
    if not issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter  # the example commands keep their lines
    defaults = field_defaults(config_class)
    add_config_arguments(parser, "lr=0.01 optimizer=adamw",
                         "YAML file of options (e.g. a run's config.yaml); KEY=VALUE pairs and flags win over it")

    def option(name: str, text: str, **kwargs) -> None:
        parser.add_argument(f"--{name.replace('_', '-')}", default=None, help=with_default(text, defaults[name]),
                            **kwargs)

    def switch(name: str, text: str, default_text: str = "off") -> None:
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", default=None,
                            help=f"{text} (default: {default_text})")

    option("backbone", "zoo name; name.tag picks a set of published weights for --pretrained-backbone")
    parser.add_argument("--pretrained-backbone", help="'published' (the backbone's published weights; "
                                                      "--backbone name.tag picks a set), or a classification "
                                                      "checkpoint: path, URL or hf-hub:org/repo "
                                                      "(default: none, random initialisation)")
    option("steps", "optimiser steps (batches) to train for", type=int)
    option("batch_size", "images per step", type=int)
    option("optimizer", "sgd (momentum 0.9) or adamw", choices=OPTIMIZERS)
    option("lr", "peak learning rate, reached after the warm-up", type=float)
    option("weight_decay", "weight decay of the conv and linear weights (norms and biases get none)", type=float)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help=f"steps of linear warm-up before the cosine decay to 0 at the last step; must be "
                             f"fewer than --steps (default: a tenth of --steps, at most {MAX_DEFAULT_WARMUP})")
    option("device", "auto, cpu, cuda, cuda:1 ... (auto: the GPU when there is one)")
    switch("amp", "mixed precision: float16 on CUDA, bfloat16 on CPU")
    option("seed", "seed of the model's initialisation, the data order and the augmentation", type=int)
    switch("deterministic", "deterministic GPU algorithms, for bit-exact reruns")
    option("workers", "data loading processes", type=int)
    parser.add_argument("--output", default=None, help=with_default("run directory: config.yaml, last.pth, "
                                                                     "metrics.json", output))
    option("log_every", "print the mean loss (and its parts) of the last N steps every N steps, and after the "
                        "first; 0: never", type=int, metavar="N")
    option("log", log_help("OUTPUT"), metavar="NAME[,NAME]")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar on stderr (default: a bar with the loss, learning rate and ETA)")
    option("checkpoint_every", "save OUTPUT/last.pth every N steps, so that a killed run loses at most N; it is also "
                               "saved at the end and on SIGTERM / Ctrl-C; 0: only then", type=int, metavar="N")
    switch("resume", "continue the run in --output from its last.pth, with the same settings; a finished run is not "
                     "trained again", "start a new run")


def resolve_config(args: argparse.Namespace, config_class: type[RecipeT], output: str,
                   flags: Mapping[str, Any] | None = None) -> RecipeT:
    """The task's config: its defaults with ``output`` as the run directory, then ``--config``, then
    ``KEY=VALUE``, then the flags given (any of the config's fields; ``flags`` adds values that
    come from flags of other names, and wins)."""
    names = [f.name for f in dataclasses.fields(config_class)]
    options = {**command_line_options(args, names), **(flags or {})}
    return build_config(config_file=args.config, overrides=options, config_class=config_class,
                        defaults={"output": output})


def run_training(command: str, train: Callable[[], object]) -> int:
    """Run ``train()``: 0 when it finished, was stopped by a signal (and saved) or had finished
    before; ``training.loop.EXIT_DIVERGED`` with the message on stderr (``report_diverged``, as
    ``splitattn train``) when the loss became NaN or infinite."""
    try:
        train()
    except TrainingDiverged as error:
        return report_diverged(command, error)
    return 0
