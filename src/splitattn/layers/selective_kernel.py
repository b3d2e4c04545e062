"""Selective Kernel convolution (Li et al., 2019)."""

from __future__ import annotations

import torch
from torch import nn

from .drop_block import DropBlock2d
from .pooling import spatial_mean
from .weighted_sum import split_weighted_sum

# One step each in torch.fx traces (see splitattn.inspect), not their internals.
torch.fx.wrap("spatial_mean")
torch.fx.wrap("split_weighted_sum")


class ConvBnAct(nn.Sequential):
    """conv -> BN -> ReLU, one branch of a selective-kernel layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        dilation: int,
        groups: int,
        drop_block: DropBlock2d | None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        if drop_block is not None:
            self.drop_block = drop_block
        self.act = nn.ReLU(inplace=True)


class SelectiveKernelAttn(nn.Module):
    """Softmax attention across branches: fuse by sum, pool, reduce, one projection per branch."""

    def __init__(self, channels: int, num_paths: int, attn_channels: int) -> None:
        super().__init__()
        self.fc_reduce = nn.Conv2d(channels, attn_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(attn_channels)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, 1, bias=False)

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        """``paths`` is ``(B, M, C, H, W)``; returns branch weights ``(B, M, C, 1, 1)``."""
        batch, num_paths, channels = paths.shape[:3]
        pooled = spatial_mean(paths).sum(1).view(batch, channels, 1, 1)
        logits = self.fc_select(self.act(self.bn(self.fc_reduce(pooled))))
        return logits.view(batch, num_paths, channels, 1, 1).softmax(dim=1)


class SelectiveKernelConv(nn.Module):
    """M parallel 3x3 branches with growing dilation, mixed per channel by softmax attention.

    The paper's 5x5 branch is a 3x3 with dilation 2, as in its own implementation. With
    ``split_input`` each branch sees only its share of the input channels, which keeps the
    parameter count of the non-grouped (ResNet-style) variants close to a plain conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        num_paths: int = 2,
        attn_channels: int = 32,
        split_input: bool = False,
        drop_block: DropBlock2d | None = None,
    ) -> None:
        super().__init__()
        if num_paths < 1:
            raise ValueError(f"num_paths must be >= 1, got {num_paths}")
        if split_input and in_channels % num_paths:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by num_paths ({num_paths}) with split_input"
            )
        path_in = in_channels // num_paths if split_input else in_channels
        groups = min(groups, out_channels)
        if path_in % groups or out_channels % groups:
            raise ValueError(
                f"branch channels ({path_in} in, {out_channels} out) must be divisible by groups ({groups})"
            )
        self.split_input = split_input
        self.num_paths = num_paths
        self.paths = nn.ModuleList(
            ConvBnAct(path_in, out_channels, stride, dilation * (i + 1), groups, drop_block)
            for i in range(num_paths)
        )
        self.attn = SelectiveKernelAttn(out_channels, num_paths, attn_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.chunk(self.num_paths, dim=1) if self.split_input else [x] * self.num_paths
        paths = torch.stack([path(xi) for path, xi in zip(self.paths, inputs, strict=True)], dim=1)
        return split_weighted_sum(paths, self.attn(paths))
