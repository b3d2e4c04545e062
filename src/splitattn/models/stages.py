"""The four stages of a ResNet: where each strides or dilates, how it regularises, its blocks and shortcut.

torchvision builds a stage in ``ResNet._make_layer``; here the same work is split in two, because
two of its decisions are about the whole network and the rest about one stage:

- :func:`plan_stages` decides, for all stages at once, what only the network as a whole knows: which
  stages dilate instead of striding to hold ``output_stride`` (a stage's first block then keeps the
  previous dilation), the stochastic-depth rate of every block (growing with the block's index over
  the whole network) and which stages drop blocks (DropBlock in stages 3 and 4, as ResNeSt does).
- :func:`make_stage` builds one stage from its :class:`StagePlan` and the :class:`StageLayout`
  every stage shares: the blocks, ResNeSt's average-downsampling policy and the projection
  shortcut of the first block.

Module names (``layerN.I.downsample.1`` ...) are what they were when this lived in ``ResNet``,
so checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn

from ..layers import DropBlock2d, ZeroPadAvgPool2d
from ..layers.attention_spec import ModuleFactory
from .blocks import BasicBlock, Bottleneck

STAGE_PLANES = (64, 128, 256, 512)
STEM_STRIDE = 4  # the stem conv and its max pool
DROP_BLOCK_SIZE = 3
DROP_BLOCK_FROM_STAGE = 2  # stages 3 and 4 (0-based 2 and 3), as the ResNeSt recipe places DropBlock


@dataclass(frozen=True)
class StagePlan:
    """What one stage does, decided by :func:`plan_stages` for the whole network.

    ``stride`` is the first block's stride: 1 where the stage dilates instead. ``dilation`` is the
    stage's 3 x 3 dilation; ``first_dilation`` the first block's, which is still the previous
    stage's (the first block is where the resolution would have halved). ``net_stride`` is the
    output stride after the stage; ``drop_paths`` the stochastic-depth rate of each of its blocks;
    ``drop_block_rate`` its DropBlock rate (0: no DropBlock).
    """

    index: int
    planes: int
    stride: int
    dilation: int
    first_dilation: int
    net_stride: int
    drop_paths: tuple[float, ...]
    drop_block_rate: float

    @property
    def name(self) -> str:
        """The stage's module name, as torchvision and timm call it (``layer1`` .. ``layer4``)."""
        return f"layer{self.index + 1}"


@dataclass(frozen=True)
class StageLayout:
    """How every stage of one network builds its blocks: the same for all four stages.

    ``block_kwargs`` go to every block unchanged (attention, grouping, norm, activation and the
    block type's layout switches). ``avd``/``avd_first`` are ResNeSt's average downsampling;
    ``avg_down``/``down_kernel_size`` the shortcut's layout; ``dilation_style`` which reference's
    dilated stages to reproduce (``"timm"`` or ``"official"``).
    """

    block: type[BasicBlock] | type[Bottleneck]
    block_kwargs: Mapping[str, Any]
    norm_layer: ModuleFactory
    avd: bool = False
    avd_first: bool = False
    avg_down: bool = False
    down_kernel_size: int = 1
    dilation_style: str = "timm"


def plan_stages(layers: Sequence[int], output_stride: int, drop_path_rate: float = 0.0,
                drop_block_rate: float = 0.0) -> tuple[StagePlan, ...]:
    """The four stages' strides, dilations and regularisers.

    Args:
        layers: blocks per stage, four positive counts.
        output_stride: the network's final stride (8, 16 or 32): once the stages reach it, each
            further stage dilates by 2 instead of striding.
        drop_path_rate: stochastic depth of the last block; the rate grows linearly with the
            block's index over the whole network, from 0 at the first block.
        drop_block_rate: DropBlock rate of the stages from ``DROP_BLOCK_FROM_STAGE`` on.
    """
    total_blocks, first_block = sum(layers), 0
    net_stride, dilation = STEM_STRIDE, 1
    plans = []
    for index, (planes, num_blocks) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
        stride = 1 if index == 0 else 2
        first_dilation = dilation
        if stride > 1 and net_stride >= output_stride:
            dilation, stride = dilation * stride, 1
        else:
            net_stride *= stride
        drop_paths = tuple(drop_path_rate * (first_block + i) / max(total_blocks - 1, 1) for i in range(num_blocks))
        first_block += num_blocks
        plans.append(StagePlan(
            index=index, planes=planes, stride=stride, dilation=dilation, first_dilation=first_dilation,
            net_stride=net_stride, drop_paths=drop_paths,
            drop_block_rate=drop_block_rate if index >= DROP_BLOCK_FROM_STAGE else 0.0,
        ))
    return tuple(plans)


def make_stage(layout: StageLayout, plan: StagePlan, in_channels: int) -> nn.Sequential:
    """One stage's blocks; the first one strides (or starts the dilation) and owns the shortcut.

    Args:
        layout: what every stage of the network shares (block type and arguments, avd, shortcut).
        plan: this stage's stride, dilations and regularisers (from :func:`plan_stages`).
        in_channels: the channels coming in from the previous stage (or the stem).
    """
    out_channels = plan.planes * layout.block.expansion
    rate = plan.drop_block_rate
    drop_block: ModuleFactory = partial(DropBlock2d, rate, DROP_BLOCK_SIZE) if rate > 0 else nn.Identity
    blocks = []
    for i, drop_path in enumerate(plan.drop_paths):
        first = i == 0
        stride = plan.stride if first else 1
        kwargs: dict[str, Any] = dict(
            dilation=plan.dilation,
            first_dilation=plan.first_dilation if first else plan.dilation,
            drop_block=drop_block,
            drop_path=drop_path,
            **layout.block_kwargs,
        )
        kwargs.update(_avd_policy(layout, plan, first, stride))
        downsample = _shortcut(layout, plan, in_channels, out_channels) if first else None
        blocks.append(layout.block(in_channels, plan.planes, stride, downsample, **kwargs))
        in_channels = out_channels
    return nn.Sequential(*blocks)


def _avd_policy(layout: StageLayout, plan: StagePlan, first: bool, stride: int) -> dict[str, bool]:
    """Which Bottlenecks pool: those that stride, and (official release only) the first block of a
    dilated stage, which keeps a stride-1 pool that timm drops. BasicBlocks have no avd."""
    if not issubclass(layout.block, Bottleneck):
        return {}
    official_first = layout.dilation_style == "official" and plan.index > 0 and first
    return {"avd_pool": layout.avd and (stride > 1 or official_first), "avd_first": layout.avd_first}


def _shortcut(layout: StageLayout, plan: StagePlan, in_channels: int, out_channels: int) -> nn.Module | None:
    """The first block's projection, where its output differs from its input in stride or width."""
    if plan.stride == 1 and in_channels == out_channels:
        return None
    return downsample(in_channels, out_channels, plan.stride, plan.dilation, avg_down=layout.avg_down,
                      kernel_size=layout.down_kernel_size, dilation_style=layout.dilation_style,
                      norm_layer=layout.norm_layer)


def downsample(
    in_channels: int,
    out_channels: int,
    stride: int,
    dilation: int,
    *,
    avg_down: bool,
    kernel_size: int,
    dilation_style: str,
    norm_layer: ModuleFactory,
) -> nn.Sequential:
    """Projection shortcut: strided 1 x 1 conv, or (ResNet-D) average pool then 1 x 1 conv.

    With ``avg_down`` the sequence is always (pool, conv, bn) so parameter names do not depend on
    the stride. In a dilated stage the official release pools nothing; timm pools 2 x 2 with zero
    padding; ``dilation_style`` picks which so both weight sets reproduce their own outputs.

    Args:
        in_channels, out_channels: the block's input and output widths.
        stride: the block's stride (1 in a dilated stage).
        dilation: the stage's dilation (>1 in a dilated stage).
        avg_down: pool, then a 1 x 1 conv (ResNet-D), instead of a strided conv.
        kernel_size: the strided conv's kernel (3 in SENet-154), when not ``avg_down``.
        dilation_style: ``"timm"`` or ``"official"``, see above.
        norm_layer: the norm after the conv.
    """
    if avg_down:
        if stride > 1:
            pool: nn.Module = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        elif dilation > 1 and dilation_style == "timm":
            pool = ZeroPadAvgPool2d()
        else:
            pool = nn.Identity()
        conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        return nn.Sequential(pool, conv, norm_layer(out_channels))
    kernel_size = kernel_size if stride > 1 else 1
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
    return nn.Sequential(conv, norm_layer(out_channels))
