"""One small training loop for detection and segmentation: steps, not epochs; SGD or AdamW.

Dense-prediction fine-tuning is usually counted in iterations (the Detectron / torchvision
recipes), so the loop runs a fixed number of optimiser steps, cycling the loader, with the same
linear warm-up into a cosine decay as classification training. Device, mixed precision and
seeding come from ``training.runtime``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..training.optim import build_scheduler as build_epoch_scheduler
from ..training.optim import param_groups
from ..training.runtime import autocast, grad_scaler

OPTIMIZERS = ("sgd", "adamw")

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
StepHook = Callable[[int, float, dict[str, float], float], None]  # step, loss, its parts, learning rate


@dataclass
class FitResult:
    """Loss per step (total and by part), and the wall time."""

    losses: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the parameters that train; no decay on norms and biases."""
    groups = param_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, steps: int,
                    warmup_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The classification recipe's warm-up and cosine decay, counted in steps rather than epochs."""
    return build_epoch_scheduler(optimizer, epochs=1, steps_per_epoch=steps,
                                 warmup_epochs=warmup_steps / max(steps, 1))


def _cycle(loader: Iterable) -> Iterator:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training data loader yields no batches (is the data set smaller than a batch?)")


def fit(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    device: torch.device,
    amp: bool = False,
    clip_grad: float | None = 10.0,
    log_every: int = 0,
    log: Callable[[str], None] = print,
    on_step: StepHook | None = None,
) -> FitResult:
    """Run ``steps`` optimiser steps; ``loss_fn(model, batch)`` returns the loss and its parts.

    ``on_step`` is called after each step with its loss, the parts and the learning rate it used.

    A non-finite loss stops the run with an error naming the step, instead of training on NaNs.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    model.train()
    scaler = grad_scaler(device, amp)
    result, start = FitResult(), time.perf_counter()
    batches = _cycle(loader)
    for step in range(1, steps + 1):
        batch = next(batches)
        with autocast(device, amp):
            loss, parts = loss_fn(model, batch)
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"loss became {loss.item()} at step {step} ({parts}); lower the learning rate")
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip_grad:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip_grad)
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        result.losses.append(loss.item())
        result.parts.append(parts)
        if on_step is not None:
            on_step(step, result.losses[-1], parts, lr)
        if log_every and (step % log_every == 0 or step == steps):
            recent = result.losses[-log_every:]
            log(f"step {step}/{steps} loss {sum(recent) / len(recent):.4f} "
                f"lr {lr:.2e} "
                + " ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    result.seconds = time.perf_counter() - start
    return result
