"""The paper's optimiser and learning-rate schedule, from torch's own classes."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

WARMUP_START_FACTOR = 1e-3


def param_groups(model: nn.Module, weight_decay: float, no_decay_bn_bias: bool = True) -> list[dict]:
    """Weight decay on conv and linear weights only: BN affine parameters and biases are exempt.

    Decaying BN's gamma/beta and biases only fights the normalisation; the ResNeSt recipe exempts
    them. Every 0- or 1-dimensional parameter is one of those.
    """
    if not no_decay_bn_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
                    no_decay_bn_bias: bool = True) -> torch.optim.SGD:
    return torch.optim.SGD(param_groups(model, weight_decay, no_decay_bn_bias), lr=lr, momentum=momentum,
                           nesterov=False)


def build_scheduler(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float, min_lr: float = 0.0) -> LRScheduler:
    """Linear warm-up then cosine decay, stepped once per iteration (so the curve is smooth)."""
    total = max(epochs * steps_per_epoch, 1)
    warmup = min(round(warmup_epochs * steps_per_epoch), total - 1)
    cosine = CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1), eta_min=min_lr)
    if warmup <= 0:
        return cosine
    linear = LinearLR(optimizer, start_factor=WARMUP_START_FACTOR, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
