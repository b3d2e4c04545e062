"""The settings every detection and segmentation run shares, and the run steps they drive.

Both task configs extend ``DenseRecipe``, so a field means the same thing (and has one help text
in the CLI) whichever task reads it. The fields are keyword-only: each task puts its data
arguments first, and the task configs override a default or two (batch size, learning rate)
without changing argument order. The functions below are the parts of a run that depend only on
these settings: the data loader, the optimisation loop and the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..training.checkpoint import save_checkpoint
from ..training.tensorboard import TensorBoardLog, check_log
from .loop import FitResult, LossFn, StepHook, build_optimizer, build_scheduler, fit


@dataclass(kw_only=True)
class DenseRecipe:
    """Backbone, optimiser and runtime settings; saved in each checkpoint with the task's own."""

    backbone: str = "resnest50"
    pretrained_backbone: str | None = None  # "published", or a path / URL
    steps: int = 1000
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float = 0.02
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    workers: int = 2
    output: str | None = None
    log_every: int = 20
    log: str = "jsonl"  # "tensorboard": TensorBoard event files too, in OUTPUT/tensorboard


def recipe_loader(recipe: DenseRecipe, dataset: Dataset, *, drop_last: bool,
                  collate_fn: Callable | None = None) -> DataLoader:
    """The shuffled training loader, seeded by the recipe so a run repeats."""
    return DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True, drop_last=drop_last,
                      num_workers=recipe.workers, collate_fn=collate_fn,
                      generator=torch.Generator().manual_seed(recipe.seed), persistent_workers=recipe.workers > 0)


def open_board(recipe: DenseRecipe) -> TensorBoardLog | None:
    """The run's TensorBoard log when ``recipe.log`` asks for one (checked before any work)."""
    if not check_log(recipe.log):
        return None
    if not recipe.output:
        raise ValueError("log='tensorboard' needs an output directory to write the event files into")
    return TensorBoardLog(recipe.output)


def board_hook(board: TensorBoardLog | None) -> StepHook | None:
    """Per-step loss, loss parts and learning rate into ``board``."""
    if board is None:
        return None

    def on_step(step: int, loss: float, parts: dict[str, float], lr: float) -> None:
        board.scalars({"train/loss": loss, "train/lr": lr, **{f"train/{k}": v for k, v in parts.items()}}, step)

    return on_step


def fit_recipe(model: nn.Module, loader: DataLoader, loss_fn: LossFn, recipe: DenseRecipe, device: torch.device,
               log: Callable[[str], None], on_step: StepHook | None = None) -> FitResult:
    """The recipe's optimiser and warm-up/cosine schedule, then ``recipe.steps`` steps of the loop."""
    optimizer = build_optimizer(model, recipe.optimizer, recipe.lr, recipe.weight_decay)
    scheduler = build_scheduler(optimizer, recipe.steps, recipe.warmup_steps)
    return fit(model, loader, loss_fn, steps=recipe.steps, optimizer=optimizer, scheduler=scheduler,
               device=device, amp=recipe.amp, log_every=recipe.log_every, log=log, on_step=on_step)


def save_run(recipe: DenseRecipe, model: nn.Module, result: FitResult, metrics: dict, extra: dict[str, Any],
             log: Callable[[str], None]) -> Path | None:
    """``last.pth`` (weights, config and ``extra``, written atomically) and ``metrics.json``; None without output."""
    if not recipe.output:
        return None
    out = Path(recipe.output)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = save_checkpoint({"model": model.state_dict(), "config": asdict(recipe), **extra}, out / "last.pth")
    (out / "metrics.json").write_text(json.dumps({"final_loss": result.losses[-1], "metrics": metrics}, indent=2))
    log(f"saved {checkpoint}")
    return checkpoint
