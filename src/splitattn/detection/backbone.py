"""A splitattn network with a feature pyramid on top: what torchvision's detectors take as a backbone.

Equivalent to torchvision's ``BackboneWithFPN``, but the body is our own feature backbone
(``ResNetFeatures``, with input checks and the stage layout of every family), not an
``IntermediateLayerGetter`` that would re-run its children in registration order. Parameter names
match torchvision's (``body.layer1...``, ``fpn.inner_blocks...``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool

from ..dense.backbone import build_backbone
from ..errors import SplitattnError
from ..models import ResNetFeatures


class FPNBackbone(nn.Module):
    """Feature maps of stages ``returned_layers`` through an FPN, as an OrderedDict of ``out_channels`` maps."""

    def __init__(self, body: ResNetFeatures, out_channels: int = 256,
                 extra_blocks: ExtraFPNBlock | None = None) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(
            in_channels_list=list(body.feature_channels),
            out_channels=out_channels,
            extra_blocks=LastLevelMaxPool() if extra_blocks is None else extra_blocks,
        )
        self.out_channels = out_channels  # read by torchvision's FasterRCNN / MaskRCNN

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.body(x)
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))


def fpn_backbone(
    name: str = "resnest50",
    pretrained: bool | str | os.PathLike | None = None,
    trainable_layers: int | None = None,
    frozen_bn: bool | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    out_channels: int = 256,
    extra_blocks: ExtraFPNBlock | None = None,
    **kwargs,
) -> FPNBackbone:
    """Our ``name`` network as an FPN backbone, like torchvision's ``resnet_fpn_backbone``.

    Args:
        name: zoo name of any family: ``resnest50``, ``seresnet50``, ``skresnet34`` ...
        pretrained: True (published ImageNet weights) or a path / URL of a classification
            checkpoint; loaded through ``create_model(name, pretrained=...)``.
        trainable_layers: stages that train, from layer4 down to the stem (0..5; default 3 with
            pretrained weights, else 5).
        frozen_bn: BatchNorm as ``FrozenBatchNorm2d`` (default: with pretrained weights).
        returned_layers: stages (1..4) feeding the pyramid.
        out_channels: channels of every pyramid level.
        extra_blocks: torchvision's extra FPN block (default: a max-pooled extra level, "pool").
        **kwargs: other ``create_model`` arguments.
    """
    if not returned_layers or any(i not in (1, 2, 3, 4) for i in returned_layers):
        raise SplitattnError(f"returned_layers must be a non-empty subset of (1, 2, 3, 4), got "
                             f"{tuple(returned_layers)}")
    body = build_backbone(name, pretrained, out_indices=returned_layers, trainable_layers=trainable_layers,
                          frozen_bn=frozen_bn, **kwargs)
    return FPNBackbone(body, out_channels, extra_blocks)
