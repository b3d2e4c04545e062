"""DeepLabV3 (torchvision's head and wrapper) over a dilated splitattn backbone.

torchvision's ``DeepLabV3`` takes a backbone returning ``{"out": last stage, "aux": stage 3}`` and
upsamples the head's logits to the input size. Our backbone dilates its last stages instead of
striding (``output_stride`` 8 or 16), as the ResNeSt paper's DeepLabV3 does; the ASPP rates follow
the stride (12, 24, 36 at 8; 6, 12, 18 at 16), as in the DeepLabV3 paper.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead

from ..dense.backbone import build_backbone
from ..errors import SplitattnError
from ..models import ResNetFeatures

ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18)}


class DilatedBackbone(nn.Module):
    """Stage 4 as ``"out"`` and, for the auxiliary loss, stage 3 as ``"aux"``."""

    def __init__(self, body: ResNetFeatures) -> None:
        super().__init__()
        self.body = body
        self.aux = len(body.feature_channels) == 2

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.body(x)
        result = OrderedDict(out=maps[-1])
        if self.aux:
            result["aux"] = maps[0]
        return result


def deeplabv3(
    backbone: str = "resnest50",
    num_classes: int = 21,
    output_stride: int = 8,
    pretrained_backbone: bool | str | os.PathLike | None = None,
    aux_loss: bool = False,
    trainable_layers: int = 5,
    frozen_bn: bool = False,
) -> DeepLabV3:
    """torchvision's DeepLabV3 over the dilated splitattn network ``backbone``.

    Args:
        backbone: zoo name (``resnest50``, ``seresnet50``, ``skresnet18`` ...).
        num_classes: classes including the background (Pascal VOC: 21, ADE20K: 150).
        output_stride: 8 (the paper's setting, slower) or 16.
        pretrained_backbone: True for the published ImageNet weights, or a path / URL of a
            classification checkpoint.
        aux_loss: add torchvision's FCN auxiliary head on stage 3 (output ``"aux"``).
        trainable_layers: backbone stages that train, from layer4 down to the stem (0..5).
        frozen_bn: BatchNorm frozen to its loaded statistics (torchvision's DeepLabV3 trains BN).

    ``model(x)`` returns ``{"out": (N, num_classes, H, W)}`` logits (and ``"aux"``). Feed images
    normalised with the backbone's ``pretrained_cfg`` mean and std.
    """
    if output_stride not in ATROUS_RATES:
        raise SplitattnError(f"output_stride must be 8 or 16 for DeepLabV3, got {output_stride}")
    if num_classes < 1:
        raise SplitattnError(f"num_classes must be >= 1, got {num_classes}")
    body = build_backbone(backbone, pretrained_backbone, out_indices=(3, 4) if aux_loss else (4,),
                          output_stride=output_stride, trainable_layers=trainable_layers, frozen_bn=frozen_bn)
    channels = body.feature_channels
    head = DeepLabHead(channels[-1], num_classes, atrous_rates=ATROUS_RATES[output_stride])
    aux = FCNHead(channels[0], num_classes) if aux_loss else None
    return DeepLabV3(DilatedBackbone(body), head, aux)
