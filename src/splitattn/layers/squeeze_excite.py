"""Squeeze-and-Excitation channel attention (Hu et al., 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..errors import SplitattnError
from .attention_spec import AttentionSpec, Gate, ModuleFactory, make_act
from .helpers import make_divisible
from .pooling import spatial_mean

torch.fx.wrap("spatial_mean")  # one step in torch.fx traces (see splitattn.inspect), not its internals


class SqueezeExcite(Gate):
    """Rescale each channel by a gate computed from the globally pooled feature map.

    The bottleneck width is passed in explicitly because the published weight sets disagree on
    how to derive it (the original SENet uses ``channels // 16``, timm rounds to a multiple of 8);
    the spec decides, this layer just obeys. ``input_act`` is a ReLU applied before gating in the
    original SENet-18/34 release, an identity everywhere else.
    """

    kind: ClassVar[str] = "se"
    choice_label: ClassVar[str] = "gate"
    title: ClassVar[str] = "squeeze-excitation: channel gates"
    attention_mlp: ClassVar[tuple[str, ...]] = ("fc1", "fc2")

    def __init__(self, channels: int, reduced_channels: int, act_layer: ModuleFactory = nn.ReLU,
                 act_before: bool = False) -> None:
        super().__init__()
        if reduced_channels < 1:
            raise SplitattnError(f"SE reduced_channels must be >= 1, got {reduced_channels}")
        self.input_act = make_act(act_layer) if act_before else nn.Identity()
        self.fc1 = nn.Conv2d(channels, reduced_channels, 1)
        self.act = make_act(act_layer)
        self.fc2 = nn.Conv2d(reduced_channels, channels, 1)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate ``(B, C, 1, 1)``, in (0, 1)."""
        return torch.sigmoid(self.fc2(self.act(self.fc1(spatial_mean(x, keepdim=True)))))

    def step_notes(self) -> dict[str, str]:
        """The calls of ``attention`` and of :class:`Gate`'s forward, which this gate runs."""
        return {"spatial_mean": "squeeze: global average pool", "sigmoid": "excitation gate", "mul": "scale channels"}

    def describe_child(self, name: str) -> str:
        return {"fc1": "excitation: reduce", "fc2": "excitation: expand"}.get(name, "")


@dataclass(frozen=True)
class SqueezeExcitation(AttentionSpec):
    """An SE gate after the block's last norm, ``channels / reduction`` wide.

    The width is rounded to a multiple of ``divisor`` (timm's rule), or floored when ``divisor`` is
    None (the original SENet release); ``act_before`` applies a ReLU before gating (SENet-18/34).
    """

    kind: ClassVar[str] = "se"

    reduction: int = 16
    divisor: int | None = 8
    act_before: bool = False

    def width(self, channels: int) -> int:
        if self.divisor is None:
            return channels // self.reduction
        return make_divisible(channels / self.reduction, self.divisor, round_limit=0.0)

    def gate(self, channels: int, *, act_layer: ModuleFactory) -> nn.Module:
        return SqueezeExcite(channels, self.width(channels), act_layer, self.act_before)
