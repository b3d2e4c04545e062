"""Split-Attention convolution, the core of ResNeSt (Zhang et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..errors import SplitattnError
from .attention_spec import AttentionLayer, AttentionSpec, Chain, ModuleFactory, make_act
from .pooling import accumulation_dtype, spatial_mean
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
    The softmax runs in at least float32 (its exponentials and their sum are where reduced
    precision loses most; float64 stays float64, see :func:`accumulation_dtype`), and its weights
    return in the logits' dtype.
    """
    batch = logits.shape[0]
    if radix == 1:
        return torch.sigmoid(logits).view(batch, 1, -1)
    attn = logits.view(batch, cardinality, radix, -1).transpose(1, 2).softmax(dim=1, dtype=accumulation_dtype(logits))
    return attn.to(logits.dtype).reshape(batch, radix, -1)


class SplitAttnConv2d(AttentionLayer):
    """A k x k grouped conv whose ``radix`` splits are mixed by channel attention.

    The conv runs with ``cardinality * radix`` groups and produces ``out_channels * radix``
    channels, radix-major. The splits are summed and pooled into one descriptor per cardinal group;
    a two-layer bottleneck (fc1 -> BN -> ReLU -> fc2, both grouped by cardinality) turns it into
    per-split weights, and the output is the weighted sum of the splits. With ``radix == 1`` the
    layer is a grouped conv followed by squeeze-and-excitation.

    Submodule names (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``) follow the official release so
    its checkpoints load without renaming.
    """

    deploy_chains: ClassVar[tuple[Chain, ...]] = (Chain("conv", "bn0", "act0", between=("drop_block",)),
                                                  Chain("fc1", "bn1", "act1"))
    kind: ClassVar[str] = "splat"
    attention_mlp: ClassVar[tuple[str, ...]] = ("fc1", "fc2")
    attention_input: ClassVar[str | None] = "act0"
    choice_label: ClassVar[str] = "split"
    title: ClassVar[str] = "split attention: weight of each split"

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
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        drop_block: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if radix < 1:
            raise SplitattnError(f"radix must be >= 1, got {radix}")
        if cardinality < 1:
            raise SplitattnError(f"cardinality must be >= 1, got {cardinality}")
        groups = cardinality * radix
        if in_channels % groups:
            raise SplitattnError(
                f"in_channels ({in_channels}) must be divisible by radix * cardinality "
                f"({radix} * {cardinality} = {groups})"
            )
        if out_channels % cardinality:
            raise SplitattnError(
                f"out_channels ({out_channels}) must be divisible by cardinality ({cardinality})"
            )
        attn_channels = max(in_channels * radix // reduction_factor, min_attn_channels)
        if attn_channels % cardinality:
            raise SplitattnError(
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
        self.bn0 = norm_layer(out_channels * radix)
        self.drop_block = drop_block if drop_block is not None else nn.Identity()
        self.act0 = make_act(act_layer)
        self.fc1 = nn.Conv2d(out_channels, attn_channels, 1, groups=cardinality)
        self.bn1 = norm_layer(attn_channels)
        self.act1 = make_act(act_layer)
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

    def observe(self, record: Callable[[torch.Tensor], None]) -> list[torch.utils.hooks.RemovableHandle]:
        """The weights come from the activated conv output, which is ``act0``'s output."""
        def hook(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
            attn = self.attention(out)  # (B, radix, C), C grouped by cardinal group
            record(attn.view(attn.shape[0], self.radix, self.cardinality, -1))
        return [self.act0.register_forward_hook(hook)]

    def step_notes(self) -> dict[str, str]:
        """The calls of ``forward``, ``attention`` and :func:`radix_softmax`."""
        return {
            "spatial_mean": "global average pool",
            "softmax": f"r-softmax across {self.radix} splits in each of {self.cardinality} cardinal group(s)",
            "to": "weights back to the layer's dtype",
            "sigmoid": "sigmoid gate (radix 1)",
            "mul": "gate channels",  # radix 1; more splits go through split_weighted_sum
            "split_weighted_sum": "weighted sum of the splits",
        }

    def describe_step(self, op: str, shape: tuple[int, ...]) -> str:
        """Two calls are told apart by their shape: the view that splits the map, the sum that pools."""
        radix, channels = self.radix, self.out_channels
        is_map = len(shape) == 4 and shape[2:] != (1, 1)  # not the (radix, C, 1, 1) weights
        if op in ("view", "reshape") and is_map and shape[:2] == (radix, channels) and radix > 1:
            return f"split: {radix} splits of {channels} channels"
        if op == "sum" and math.prod(shape) == channels and (len(shape) == 1 or shape[1:] == (1, 1)):
            return f"pooled sum of the {radix} splits" if radix > 1 else "pooled descriptor"
        return super().describe_step(op, shape)

    def describe_child(self, name: str) -> str:
        groups = self.radix * self.cardinality
        return {
            "conv": f"grouped conv: {groups} groups (radix {self.radix} x cardinality {self.cardinality})",
            "fc1": "reduce (attention bottleneck)",
            "fc2": "expand to radix x channels",
        }.get(name, "")


@dataclass(frozen=True)
class SplitAttention(AttentionSpec):
    """Split attention (ResNeSt): the block's 3 x 3 conv in ``radix`` splits per cardinal group,
    mixed by an r-softmax over a ``reduction``-times narrower bottleneck (at least ``min_channels``)."""

    kind: ClassVar[str] = "splat"
    spatial_has_norm: ClassVar[bool] = True
    bottleneck_only: ClassVar[bool] = True

    radix: int = 2
    reduction: int = 4
    min_channels: int = 32

    def spatial(self, in_channels: int, out_channels: int, *, stride: int, dilation: int, groups: int,
                norm_layer: ModuleFactory, act_layer: ModuleFactory, drop_block: ModuleFactory) -> nn.Module:
        return SplitAttnConv2d(in_channels, out_channels, stride=stride, dilation=dilation, cardinality=groups,
                               radix=self.radix, reduction_factor=self.reduction, min_attn_channels=self.min_channels,
                               norm_layer=norm_layer, act_layer=act_layer, drop_block=drop_block())
