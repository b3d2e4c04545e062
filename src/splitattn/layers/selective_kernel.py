"""Selective Kernel convolution (Li et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..errors import SplitattnError
from .attention_spec import AttentionLayer, AttentionSpec, Chain, ModuleFactory, make_act
from .helpers import make_divisible
from .pooling import accumulation_dtype, spatial_mean
from .weighted_sum import split_weighted_sum

# One step each in torch.fx traces (see splitattn.inspect), not their internals.
torch.fx.wrap("spatial_mean")
torch.fx.wrap("split_weighted_sum")


class ConvBnAct(nn.Sequential):
    """conv -> norm -> (DropBlock) -> activation, one branch of a selective-kernel layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        dilation: int,
        groups: int,
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        drop_block: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups, bias=False
        )
        self.bn = norm_layer(out_channels)
        self.drop_block = drop_block if drop_block is not None else nn.Identity()
        self.act = make_act(act_layer)


class SelectiveKernelAttn(AttentionLayer):
    """Softmax attention across branches: fuse by sum, pool, reduce, one projection per branch."""

    deploy_chains: ClassVar[tuple[Chain, ...]] = (Chain("fc_reduce", "bn", "act"),)
    attention_mlp: ClassVar[tuple[str, ...]] = ("fc_reduce", "fc_select")

    def __init__(self, channels: int, num_paths: int, attn_channels: int, norm_layer: ModuleFactory = nn.BatchNorm2d,
                 act_layer: ModuleFactory = nn.ReLU) -> None:
        super().__init__()
        self.fc_reduce = nn.Conv2d(channels, attn_channels, 1, bias=False)
        self.bn = norm_layer(attn_channels)
        self.act = make_act(act_layer)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, 1, bias=False)

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        """``paths`` is ``(B, M, C, H, W)``; returns branch weights ``(B, M, C, 1, 1)``."""
        batch, num_paths, channels = paths.shape[:3]
        pooled = spatial_mean(paths).sum(1).view(batch, channels, 1, 1)
        logits = self.fc_select(self.act(self.bn(self.fc_reduce(pooled))))
        # At least float32, as split attention's r-softmax (reduced precision loses most in the exp-sum)
        weights = logits.view(batch, num_paths, channels, 1, 1).softmax(dim=1, dtype=accumulation_dtype(logits))
        return weights.to(logits.dtype)

    def step_notes(self) -> dict[str, str]:
        return {"spatial_mean": "global average pool", "sum": "fuse: sum of branches",
                "softmax": "softmax across branches", "to": "weights back to the layer's dtype"}

    def describe_child(self, name: str) -> str:
        return {"fc_reduce": "reduce", "fc_select": "one projection per branch"}.get(name, "")


class SelectiveKernelConv(AttentionLayer):
    """M parallel 3x3 branches with growing dilation, mixed per channel by softmax attention.

    The paper's 5x5 branch is a 3x3 with dilation 2, as in its own implementation. With
    ``split_input`` each branch sees only its share of the input channels, which keeps the
    parameter count of the non-grouped (ResNet-style) variants close to a plain conv.
    """

    kind: ClassVar[str] = "sk"
    attention_input: ClassVar[str | None] = None  # its SelectiveKernelAttn reads the stacked branches
    choice_label: ClassVar[str] = "branch"
    title: ClassVar[str] = "selective kernel: weight of each branch"

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
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        act_layer: ModuleFactory = nn.ReLU,
        drop_block: ModuleFactory = nn.Identity,
    ) -> None:
        super().__init__()
        if num_paths < 1:
            raise SplitattnError(f"num_paths must be >= 1, got {num_paths}")
        if split_input and in_channels % num_paths:
            raise SplitattnError(
                f"in_channels ({in_channels}) must be divisible by num_paths ({num_paths}) with split_input"
            )
        path_in = in_channels // num_paths if split_input else in_channels
        groups = min(groups, out_channels)
        if path_in % groups or out_channels % groups:
            raise SplitattnError(
                f"branch channels ({path_in} in, {out_channels} out) must be divisible by groups ({groups})"
            )
        self.split_input = split_input
        self.num_paths = num_paths
        self.paths = nn.ModuleList(
            ConvBnAct(path_in, out_channels, stride, dilation * (i + 1), groups, norm_layer, act_layer, drop_block())
            for i in range(num_paths)
        )
        self.attn = SelectiveKernelAttn(out_channels, num_paths, attn_channels, norm_layer, act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Indexed, not zipped: torch.fx can index the chunks of a traced tensor but not iterate them
        chunks = x.chunk(self.num_paths, dim=1) if self.split_input else None
        paths = torch.stack([path(chunks[i] if chunks is not None else x) for i, path in enumerate(self.paths)], dim=1)
        return split_weighted_sum(paths, self.attn(paths))

    def observe(self, record: Callable[[torch.Tensor], None]) -> list[torch.utils.hooks.RemovableHandle]:
        """The output of ``attn`` *is* the branch weights, ``(B, M, C, 1, 1)``: one group."""
        def hook(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
            record(out.view(out.shape[0], out.shape[1], 1, -1))
        return [self.attn.register_forward_hook(hook)]

    def step_notes(self) -> dict[str, str]:
        return {"getitem": "the branch's share of the input channels (split_input)", "stack": "stack branches",
                "split_weighted_sum": "select: weighted sum of branches"}

    def describe_child(self, name: str) -> str:
        if name.startswith("paths."):
            index = int(name.split(".")[1])
            return f"branch {index}: 3x3, dilation {index + 1}"
        return ""


@dataclass(frozen=True)
class SelectiveKernel(AttentionSpec):
    """Selective kernels: the block's 3 x 3 conv as ``num_paths`` dilated branches mixed by softmax
    attention ``out / reduction`` wide (a multiple of ``divisor``); ``split_input`` gives each
    branch its share of the input channels (the ResNet-style SK networks)."""

    kind: ClassVar[str] = "sk"
    spatial_has_norm: ClassVar[bool] = True

    reduction: int = 16
    divisor: int = 32
    split_input: bool = False
    num_paths: int = 2

    def spatial(self, in_channels: int, out_channels: int, *, stride: int, dilation: int, groups: int,
                norm_layer: ModuleFactory, act_layer: ModuleFactory, drop_block: ModuleFactory) -> nn.Module:
        return SelectiveKernelConv(
            in_channels, out_channels, stride=stride, dilation=dilation, groups=groups, num_paths=self.num_paths,
            attn_channels=make_divisible(out_channels / self.reduction, self.divisor), split_input=self.split_input,
            norm_layer=norm_layer, act_layer=act_layer, drop_block=drop_block,
        )
