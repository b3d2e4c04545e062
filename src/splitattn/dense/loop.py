"""What detection and segmentation add to the shared training loop: steps, not epochs, and their warm-up.

Dense-prediction fine-tuning is usually counted in iterations (the Detectron / torchvision
recipes), so a dense run is ``training.loop.fit`` for a fixed number of optimiser steps, cycling
the loader (no ``per_pass``), with a :class:`LossTask` wrapping the task's loss function.
Everything else is the shared loop's and classification's: the step, AMP, divergence, exact
resume, signals, checkpoints (``training.loop``), the optimiser and the linear warm-up into a
cosine decay (``training.optim.warmup_cosine``, counted in steps). Only the default warm-up is
this module's rule (``resolve_warmup``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import SplitattnError
from ..interface import option
from ..training.loop import Task

MAX_DEFAULT_WARMUP = 100  # default warm-up: a tenth of the run, at most this many steps

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]


def default_warmup(steps: int) -> int:
    """The warm-up when none is given: a tenth of the run, at most ``MAX_DEFAULT_WARMUP`` steps."""
    return min(MAX_DEFAULT_WARMUP, steps // 10)


def resolve_warmup(steps: int, warmup_steps: int | None) -> int:
    """``warmup_steps``, or the default for a run of ``steps``; refused unless the run outlasts it,
    so that every run reaches the end of its cosine decay (learning rate 0) with its last step."""
    if warmup_steps is None:
        return default_warmup(steps)
    if not 0 <= warmup_steps < steps:
        raise SplitattnError(f"{option('warmup_steps', str(warmup_steps))} must be at least 0 and shorter than the run "
                             f"({option('steps', str(steps))}), so that the learning rate decays to 0 by the end; give "
                             f"fewer warm-up steps, or none for the default (a tenth of the run, at most "
                             f"{MAX_DEFAULT_WARMUP}: {default_warmup(steps)} here)")
    return warmup_steps




class LossTask(Task):
    """A dense task for the shared loop: its model and ``loss_fn(model, batch)`` (loss, parts)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        self.model, self.loss_fn = model, loss_fn

    def loss(self, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss_fn(self.model, batch)
