"""Stochastic depth (Huang et al., 2016) for residual branches."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SplitattnError


class DropPath(nn.Module):
    """Drop a sample's whole residual branch with probability ``drop_prob`` during training.

    Applied to the residual branch only, never the shortcut, so a dropped block is the identity.
    Survivors are scaled by ``1 / (1 - drop_prob)`` to keep the expected output unchanged.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise SplitattnError(f"drop path probability must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep_prob = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
        return x * mask.div_(keep_prob)
