"""Residual blocks with a per-block choice of featuremap attention.

One BasicBlock and one Bottleneck cover ResNet, ResNeXt, SE-, SK- and Split-Attention networks:
the attention kind decides what the block's 3 x 3 conv is (plain, selective kernel or split
attention) and whether a squeeze-and-excitation gate follows the last BN. The few switches that
remain (``stride_in_1x1``, ``mid_expansion``, ``se_after_act``) reproduce published layouts whose
weights people still use; each is documented where it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..layers import (
    DropBlock2d,
    DropPath,
    SelectiveKernelConv,
    SplitAttnConv2d,
    SqueezeExcite,
    make_divisible,
)

ATTENTION_KINDS = ("none", "se", "sk", "splat")


def se_channels(channels: int, attn_args: Mapping[str, Any]) -> int:
    """SE bottleneck width: ``channels / reduction``, rounded to ``se_divisor`` unless it is None.

    The original SENet release floors ``channels // 16``; timm rounds to a multiple of 8.
    """
    reduction = attn_args.get("se_reduction", 16)
    divisor = attn_args.get("se_divisor", 8)
    if divisor is None:
        return channels // reduction
    return make_divisible(channels / reduction, divisor, round_limit=0.0)


def spatial_conv(
    attn: str,
    in_channels: int,
    out_channels: int,
    stride: int,
    dilation: int,
    groups: int,
    drop_block: DropBlock2d | None,
    attn_args: Mapping[str, Any],
) -> nn.Module:
    """The block's 3 x 3 conv; for SK and split attention it includes its own BN and ReLU."""
    if attn == "sk":
        reduction = attn_args.get("sk_reduction", 16)
        divisor = attn_args.get("sk_divisor", 32)
        return SelectiveKernelConv(
            in_channels,
            out_channels,
            stride=stride,
            dilation=dilation,
            groups=groups,
            attn_channels=make_divisible(out_channels / reduction, divisor),
            split_input=attn_args.get("sk_split_input", False),
            drop_block=drop_block,
        )
    if attn == "splat":
        return SplitAttnConv2d(
            in_channels,
            out_channels,
            stride=stride,
            dilation=dilation,
            cardinality=groups,
            radix=attn_args.get("radix", 2),
            reduction_factor=attn_args.get("splat_reduction", 4),
            drop_block=drop_block,
        )
    return nn.Conv2d(
        in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups, bias=False
    )


def _maybe(module: nn.Module | None) -> nn.Module:
    return module if module is not None else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3 x 3 convs (ResNet-18/34). With SK attention the first conv is a selective kernel.

    ``se_after_act`` applies a ReLU to the second BN's output before the SE gate, as the original
    SENet-18/34 release did; every other layout gates the BN output itself.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attn: str = "none",
        attn_args: Mapping[str, Any] | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        se_after_act: bool = False,
        drop_block: DropBlock2d | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if cardinality != 1 or base_width != 64:
            raise ValueError(
                f"BasicBlock supports cardinality=1 and base_width=64 only, got {cardinality} and {base_width}"
            )
        if attn == "splat":
            raise ValueError("split attention needs a Bottleneck block; BasicBlock supports 'none', 'se', 'sk'")
        attn_args = attn_args or {}
        first_dilation = first_dilation or dilation
        self.attn_kind = attn
        self.conv1 = spatial_conv(
            "sk" if attn == "sk" else "none", in_channels, planes, stride, first_dilation, 1, drop_block, attn_args
        )
        if attn != "sk":
            self.bn1 = nn.BatchNorm2d(planes)
            self.drop_block1 = _maybe(drop_block)
            self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop_block2 = _maybe(drop_block)
        self.se_after_act = se_after_act
        self.se = SqueezeExcite(planes, se_channels(planes, attn_args)) if attn == "se" else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample
        self.act = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def conv2_input(self, x: torch.Tensor) -> torch.Tensor:
        """The branch up to the last conv; deploy mode fuses that conv with the residual add."""
        out = self.conv1(x)
        if self.attn_kind != "sk":
            out = self.act1(self.drop_block1(self.bn1(out)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_block2(self.bn2(self.conv2(self.conv2_input(x))))
        if self.se is not None:
            out = self.se(torch.relu(out) if self.se_after_act else out)
        out = self.drop_path(out)
        out += shortcut  # in place: saves allocating (and page-faulting) a fresh block output
        return self.act(out)


class Bottleneck(nn.Module):
    """1 x 1 reduce, 3 x 3 (grouped, attended) conv, 1 x 1 expand: ResNet-50 and up.

    - ``avd_pool``: ResNeSt's "average downsampling": the stride moves from the conv into a 3 x 3
      average pool, placed before the 3 x 3 conv (``avd_first``) or after it.
    - ``stride_in_1x1``: the Caffe layout of the original SE-ResNet release strides the first 1 x 1.
    - ``mid_expansion``: SENet-154 doubles the width inside its grouped conv.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attn: str = "none",
        attn_args: Mapping[str, Any] | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        avd_pool: bool = False,
        avd_first: bool = False,
        stride_in_1x1: bool = False,
        mid_expansion: int = 1,
        drop_block: DropBlock2d | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        attn_args = attn_args or {}
        first_dilation = first_dilation or dilation
        width = int(planes * (base_width / 64.0)) * cardinality
        mid_width = width * mid_expansion
        out_channels = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        avd = avd_pool and not stride_in_1x1
        if avd:
            stride_3x3 = 1

        self.attn_kind = attn
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.drop_block1 = _maybe(drop_block)
        self.act1 = nn.ReLU(inplace=True)
        self.avd_first = nn.AvgPool2d(3, stride, padding=1) if avd and avd_first else nn.Identity()
        self.conv2 = spatial_conv(
            attn, width, mid_width, stride_3x3, first_dilation, cardinality, drop_block, attn_args
        )
        if attn not in ("sk", "splat"):
            self.bn2 = nn.BatchNorm2d(mid_width)
            self.drop_block2 = _maybe(drop_block)
            self.act2 = nn.ReLU(inplace=True)
        self.avd_last = nn.AvgPool2d(3, stride, padding=1) if avd and not avd_first else nn.Identity()
        self.conv3 = nn.Conv2d(mid_width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.drop_block3 = _maybe(drop_block)
        self.se = SqueezeExcite(out_channels, se_channels(out_channels, attn_args)) if attn == "se" else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample
        self.act3 = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def conv3_input(self, x: torch.Tensor) -> torch.Tensor:
        """The branch up to the last conv; deploy mode fuses that conv with the residual add."""
        out = self.act1(self.drop_block1(self.bn1(self.conv1(x))))
        out = self.conv2(self.avd_first(out))
        if self.attn_kind not in ("sk", "splat"):
            out = self.act2(self.drop_block2(self.bn2(out)))
        return self.avd_last(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_block3(self.bn3(self.conv3(self.conv3_input(x))))
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out)
        out += shortcut  # in place: no autograd node here needs ``out`` itself, only its inputs
        return self.act3(out)
