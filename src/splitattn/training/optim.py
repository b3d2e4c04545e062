"""The optimiser and learning-rate schedule of every training run, from torch's own classes.

Classification (``training.trainer``) and detection / segmentation (``dense.loop``) build both
here: the same parameter groups (no weight decay on norms and biases), SGD with momentum or AdamW,
and one linear warm-up into a cosine decay counted in optimiser steps. How long the warm-up is
stays each caller's rule: classification converts ``warmup_epochs`` (``build_scheduler``), the
dense tasks take ``warmup_steps`` or a tenth of the run (``dense.loop.resolve_warmup``).
"""

from __future__ import annotations

import difflib

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from ..errors import SplitattnError

OPTIMIZERS = ("sgd", "adamw")
WARMUP_START_FACTOR = 1e-3


def param_groups(model: nn.Module, weight_decay: float, no_decay_bn_bias: bool = True) -> list[dict]:
    """Weight decay on conv and linear weights only: BN affine parameters and biases are exempt.

    Decaying BN's gamma/beta and biases only fights the normalisation; the ResNeSt recipe exempts
    them. Every 0- or 1-dimensional parameter is one of those. Frozen parameters are left out.
    """
    if not no_decay_bn_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_optimizer(name: str) -> str:
    """``name`` when it is one of ``OPTIMIZERS``; else a ValueError listing them."""
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), OPTIMIZERS, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SplitattnError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}{hint}")
    return name


def build_optimizer(model: nn.Module, name: str = "sgd", *, lr: float, weight_decay: float, momentum: float = 0.9,
                    no_decay_bn_bias: bool = True) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's, no Nesterov) or AdamW over ``param_groups(model, ...)``.

    ``momentum`` is SGD's; AdamW keeps torch's betas. The weight decay is set per group, so the
    optimiser's own default never applies. An unknown ``name`` is refused, listing ``OPTIMIZERS``.
    """
    groups = param_groups(model, weight_decay, no_decay_bn_bias)
    if check_optimizer(name) == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=False)
    return torch.optim.AdamW(groups, lr=lr)


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_steps: int,
                  min_lr: float = 0.0) -> LRScheduler:
    """Linear warm-up then cosine decay, stepped once per optimiser step (so the curve is smooth).

    The rate rises linearly from ``WARMUP_START_FACTOR`` x the peak over ``warmup_steps`` steps
    (at most ``steps - 1``; 0 or less: none), then follows a cosine that reaches ``min_lr`` as the
    last of the ``steps`` steps ends (the last step itself uses a small fraction of the peak).
    """
    total = max(steps, 1)
    warmup = min(warmup_steps, total - 1)
    cosine = CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1), eta_min=min_lr)
    if warmup <= 0:
        return cosine
    linear = LinearLR(optimizer, start_factor=WARMUP_START_FACTOR, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def build_scheduler(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float, min_lr: float = 0.0) -> LRScheduler:
    """Classification's schedule: ``warmup_cosine`` over ``epochs x steps_per_epoch`` steps, of
    which ``warmup_epochs x steps_per_epoch`` (rounded) warm up."""
    return warmup_cosine(optimizer, epochs * steps_per_epoch, round(warmup_epochs * steps_per_epoch), min_lr)
