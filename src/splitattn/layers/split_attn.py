"""Split-Attention convolution, the core of ResNeSt (Zhang et al., 2020)."""

from __future__ import annotations

import torch
from torch import nn

from .drop_block import DropBlock2d
from .pooling import spatial_mean
from .weighted_sum import split_weighted_sum

# One step each in torch.fx traces (see splitattn.inspect), not their internals.
torch.fx.wrap("spatial_mean")
torch.fx.wrap("split_weighted_sum")


def radix_softmax(logits: torch.Tensor, radix: int, cardinality: int) -> torch.Tensor:
    """r-Softmax: normalise the attention logits across the radix splits of each cardinal group.

    ``logits`` is ``(B, C * radix)`` laid out as ``(cardinality, radix, C / cardinality)`` because
    fc2 is a grouped conv with one group per cardinal group. The result is radix-major,
    ``(B, radix, C)``, matching how the grouped conv lays out its splits. With a single split
    there is nothing to choose between, so the gate becomes a sigmoid (an SE gate on that split).
    """
    batch = logits.shape[0]
    if radix == 1:
        return torch.sigmoid(logits).view(batch, 1, -1)
    attn = logits.view(batch, cardinality, radix, -1).transpose(1, 2).softmax(dim=1)
    return attn.reshape(batch, radix, -1)


class SplitAttnConv2d(nn.Module):
    """A k x k grouped conv whose ``radix`` splits are mixed by channel attention.

    The conv runs with ``cardinality * radix`` groups and produces ``out_channels * radix``
    channels, radix-major. The splits are summed and pooled into one descriptor per cardinal group;
    a two-layer bottleneck (fc1 -> BN -> ReLU -> fc2, both grouped by cardinality) turns it into
    per-split weights, and the output is the weighted sum of the splits. With ``radix == 1`` the
    layer is a grouped conv followed by squeeze-and-excitation.

    Submodule names (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``) follow the official release so
    its checkpoints load without renaming.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        cardinality: int = 1,
        radix: int = 2,
        reduction_factor: int = 4,
        min_attn_channels: int = 32,
        drop_block: DropBlock2d | None = None,
    ) -> None:
        super().__init__()
        if radix < 1:
            raise ValueError(f"radix must be >= 1, got {radix}")
        if cardinality < 1:
            raise ValueError(f"cardinality must be >= 1, got {cardinality}")
        groups = cardinality * radix
        if in_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by radix * cardinality "
                f"({radix} * {cardinality} = {groups})"
            )
        if out_channels % cardinality:
            raise ValueError(
                f"out_channels ({out_channels}) must be divisible by cardinality ({cardinality})"
            )
        attn_channels = max(in_channels * radix // reduction_factor, min_attn_channels)
        if attn_channels % cardinality:
            raise ValueError(
                f"attention width {attn_channels} (max(in_channels * radix // {reduction_factor}, "
                f"{min_attn_channels})) must be divisible by cardinality ({cardinality})"
            )
        self.radix = radix
        self.cardinality = cardinality
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels,
            out_channels * radix,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn0 = nn.BatchNorm2d(out_channels * radix)
        self.drop_block = drop_block if drop_block is not None else nn.Identity()
        self.act0 = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, attn_channels, 1, groups=cardinality)
        self.bn1 = nn.BatchNorm2d(attn_channels)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(attn_channels, out_channels * radix, 1, groups=cardinality)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Per-split weights ``(B, radix, C)`` for the activated conv output ``x``.

        Pooling before summing the splits gives the same descriptor as summing first, without
        materialising a ``(B, C, H, W)`` sum.
        """
        batch = x.shape[0]
        pooled = spatial_mean(x).view(batch, self.radix, self.out_channels).sum(1)
        hidden = self.act1(self.bn1(self.fc1(pooled.view(batch, self.out_channels, 1, 1))))
        return radix_softmax(self.fc2(hidden).flatten(1), self.radix, self.cardinality)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.drop_block(self.bn0(self.conv(x))))
        batch, _, height, width = x.shape
        attn = self.attention(x)
        if self.radix == 1:
            return x * attn.view(batch, self.out_channels, 1, 1)
        splits = x.view(batch, self.radix, self.out_channels, height, width)
        return split_weighted_sum(splits, attn.view(batch, self.radix, self.out_channels, 1, 1))
