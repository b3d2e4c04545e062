"""Squeeze-and-Excitation channel attention (Hu et al., 2017)."""

from __future__ import annotations

import torch
from torch import nn

from .pooling import spatial_mean

torch.fx.wrap("spatial_mean")  # one step in torch.fx traces (see splitattn.inspect), not its internals


class SqueezeExcite(nn.Module):
    """Rescale each channel by a gate computed from the globally pooled feature map.

    The bottleneck width is passed in explicitly because the published weight sets disagree on
    how to derive it (the original SENet uses ``channels // 16``, timm rounds to a multiple of 8);
    the model builder decides, this layer just obeys.
    """

    def __init__(self, channels: int, reduced_channels: int) -> None:
        super().__init__()
        if reduced_channels < 1:
            raise ValueError(f"SE reduced_channels must be >= 1, got {reduced_channels}")
        self.fc1 = nn.Conv2d(channels, reduced_channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced_channels, channels, 1)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate ``(B, C, 1, 1)``, in (0, 1)."""
        return torch.sigmoid(self.fc2(self.act(self.fc1(spatial_mean(x, keepdim=True)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)
