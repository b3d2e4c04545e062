"""Residual blocks whose attention, norm and activation are arguments, as in torchvision.

One BasicBlock and one Bottleneck cover ResNet, ResNeXt, SE-, SK- and Split-Attention networks:
the attention spec builds the block's strided 3 x 3 conv (plain, selective kernel, split attention)
and the gate after its last norm (squeeze-and-excitation, or none). Every block has the same
submodules whatever its attention: a slot a kind does not use holds ``nn.Identity`` (no
parameters, so checkpoints keep their names). The few layout switches that remain
(``stride_in_1x1``, ``mid_expansion``) reproduce published layouts whose weights people still use.

Each block also states, as data, what deploy needs: its conv -> norm -> activation chains, which
conv ends the residual branch and which activation follows the add (``deploy_chains``,
``residual_conv``, ``residual_between``, ``residual_act``).

The gate after the last norm is named ``se`` whatever the kind (squeeze-excitation, an ECA gate
or any other :class:`~splitattn.layers.Gate`): it is the name the published SE checkpoints (timm's
``layerN.I.se.fc1``, Cadene's renamed to it) store, so a neutral name would break every one of
them; other gates simply reuse the slot.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..errors import SplitattnError
from ..layers import NO_ATTENTION, AttentionSpec, Chain, DropPath, make_act
from ..layers.attention_spec import ModuleFactory


class ResidualBlock(nn.Module):
    """What every residual block shares: its name for the add in layer summaries."""

    def describe_step(self, op: str, shape: tuple[int, ...]) -> str:
        return "residual add" if op in ("add", "iadd") else ""


class BasicBlock(ResidualBlock):
    """Two 3 x 3 convs (ResNet-18/34); the attention may replace the first (SK) or gate the output (SE)."""

    expansion = 1
    deploy_chains: ClassVar[tuple[Chain, ...]] = (Chain("conv1", "bn1", "act1", between=("drop_block1",)),
                                                  Chain("conv2", "bn2", None, between=("drop_block2",)))
    residual_conv: ClassVar[str] = "conv2"
    residual_between: ClassVar[tuple[str, ...]] = ("bn2", "drop_block2")
    residual_act: ClassVar[str] = "act"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attn: AttentionSpec = NO_ATTENTION,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        drop_block: ModuleFactory = nn.Identity,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if cardinality != 1 or base_width != 64:
            raise SplitattnError(
                f"BasicBlock supports cardinality=1 and base_width=64 only, got {cardinality} and {base_width}"
            )
        if attn.bottleneck_only:
            raise SplitattnError(f"{type(attn).__name__} needs Bottleneck blocks (block=Bottleneck); BasicBlock has no "
                                 "grouped width to split")
        first_dilation = first_dilation or dilation
        self.conv1 = attn.spatial(in_channels, planes, stride=stride, dilation=first_dilation, groups=1,
                                  norm_layer=norm_layer, act_layer=act_layer, drop_block=drop_block)
        has_norm = attn.spatial_has_norm
        self.bn1 = nn.Identity() if has_norm else norm_layer(planes)
        self.drop_block1 = nn.Identity() if has_norm else drop_block()
        self.act1 = nn.Identity() if has_norm else make_act(act_layer)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.drop_block2 = drop_block()
        self.se = attn.gate(planes, act_layer=act_layer)  # "se" for any kind: the SE checkpoints' name
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.act = make_act(act_layer)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def last_conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The branch up to its last conv; deploy mode fuses that conv with the residual add."""
        return self.act1(self.drop_block1(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        out = self.se(self.drop_block2(self.bn2(self.conv2(self.last_conv_input(x)))))
        out = self.drop_path(out)
        out += shortcut  # in place: saves allocating (and page-faulting) a fresh block output
        return self.act(out)


class Bottleneck(ResidualBlock):
    """1 x 1 reduce, 3 x 3 (grouped, attended) conv, 1 x 1 expand: ResNet-50 and up.

    - ``avd_pool``: ResNeSt's "average downsampling": the stride moves from the conv into a 3 x 3
      average pool, placed before the 3 x 3 conv (``avd_first``) or after it.
    - ``stride_in_1x1``: the Caffe layout of the original SE-ResNet release strides the first 1 x 1.
    - ``mid_expansion``: SENet-154 doubles the width inside its grouped conv.
    """

    expansion = 4
    deploy_chains: ClassVar[tuple[Chain, ...]] = (Chain("conv1", "bn1", "act1", between=("drop_block1",)),
                                                  Chain("conv2", "bn2", "act2", between=("drop_block2",)),
                                                  Chain("conv3", "bn3", None, between=("drop_block3",)))
    residual_conv: ClassVar[str] = "conv3"
    residual_between: ClassVar[tuple[str, ...]] = ("bn3", "drop_block3")
    residual_act: ClassVar[str] = "act3"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attn: AttentionSpec = NO_ATTENTION,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        avd_pool: bool = False,
        avd_first: bool = False,
        stride_in_1x1: bool = False,
        mid_expansion: int = 1,
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        drop_block: ModuleFactory = nn.Identity,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        first_dilation = first_dilation or dilation
        width = int(planes * (base_width / 64.0)) * cardinality
        mid_width = width * mid_expansion
        out_channels = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        avd = avd_pool and not stride_in_1x1
        if avd:
            stride_3x3 = 1

        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride_1x1, bias=False)
        self.bn1 = norm_layer(width)
        self.drop_block1 = drop_block()
        self.act1 = make_act(act_layer)
        self.avd_first = nn.AvgPool2d(3, stride, padding=1) if avd and avd_first else nn.Identity()
        self.conv2 = attn.spatial(width, mid_width, stride=stride_3x3, dilation=first_dilation, groups=cardinality,
                                  norm_layer=norm_layer, act_layer=act_layer, drop_block=drop_block)
        has_norm = attn.spatial_has_norm
        self.bn2 = nn.Identity() if has_norm else norm_layer(mid_width)
        self.drop_block2 = nn.Identity() if has_norm else drop_block()
        self.act2 = nn.Identity() if has_norm else make_act(act_layer)
        self.avd_last = nn.AvgPool2d(3, stride, padding=1) if avd and not avd_first else nn.Identity()
        self.conv3 = nn.Conv2d(mid_width, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)
        self.drop_block3 = drop_block()
        self.se = attn.gate(out_channels, act_layer=act_layer)  # "se" for any kind: the SE checkpoints' name
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.act3 = make_act(act_layer)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def last_conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The branch up to its last conv; deploy mode fuses that conv with the residual add."""
        out = self.act1(self.drop_block1(self.bn1(self.conv1(x))))
        out = self.act2(self.drop_block2(self.bn2(self.conv2(self.avd_first(out)))))
        return self.avd_last(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        out = self.se(self.drop_block3(self.bn3(self.conv3(self.last_conv_input(x)))))
        out = self.drop_path(out)
        out += shortcut  # in place: no autograd node here needs ``out`` itself, only its inputs
        return self.act3(out)
