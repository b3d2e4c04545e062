"""Pooling variants that published weight sets were trained with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadAvgPool2d(nn.Module):
    """2 x 2 stride-1 mean over the input with one zero row and column appended (bottom, right).

    This is what timm's average-pool shortcut does in dilated stages ("SAME" padding of a 2 x 2
    window). It keeps the spatial size but blurs the shortcut, and dims the last row and column;
    the models that mimic timm keep it so their dilated outputs match timm's exactly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), kernel_size=2, stride=1)
