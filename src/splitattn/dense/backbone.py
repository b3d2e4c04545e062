"""Our classification networks as dense-prediction backbones: weights, frozen BN, trainable stages.

torchvision builds its detection backbones with ``norm_layer=FrozenBatchNorm2d`` and freezes all
but the last ``trainable_layers`` stages, because detection batches (two images per GPU) are far
too small for batch statistics and the early stages of an ImageNet network need no retraining. We
do the same: ``norm_layer`` is an argument of our ResNet, and a ``FrozenBatchNorm2d`` has the same
parameter names as a ``BatchNorm2d``, so the ImageNet weights load into it unchanged.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence

from torchvision.ops import FrozenBatchNorm2d

from ..errors import SplitattnError
from ..factory import create_model
from ..models import ResNetFeatures, list_models

# Shallowest stage last, as torchvision's resnet_fpn_backbone lists them.
STAGES_BY_DEPTH = ("layer4", "layer3", "layer2", "layer1", "conv1")
MAX_TRAINABLE_LAYERS = len(STAGES_BY_DEPTH)

Pretrained = bool | str | os.PathLike | None


def check_backbone_name(name: str) -> None:
    """Unknown names fail here, listing close matches, rather than deep inside the registry."""
    names = list_models()
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SplitattnError(f"unknown backbone {name!r}{hint}; expected a splitattn zoo name such as "
                             "resnest50, seresnet50 or skresnet18 (see splitattn.list_models())")


def set_trainable_layers(backbone: ResNetFeatures, trainable_layers: int) -> ResNetFeatures:
    """Train only the last ``trainable_layers`` of layer4, layer3, layer2, layer1, the stem (0..5).

    Same rule as torchvision's ``resnet_fpn_backbone``: with 5 the stem BN ``bn1`` trains too.
    """
    if not 0 <= trainable_layers <= MAX_TRAINABLE_LAYERS:
        raise SplitattnError(f"trainable_layers must be in 0..{MAX_TRAINABLE_LAYERS}, got {trainable_layers}")
    prefixes = list(STAGES_BY_DEPTH[:trainable_layers])
    if trainable_layers == MAX_TRAINABLE_LAYERS:
        prefixes.append("bn1")
    for name, parameter in backbone.named_parameters():
        if not any(name == p or name.startswith(p + ".") for p in prefixes):
            parameter.requires_grad_(False)
    return backbone


def resolve_training_defaults(pretrained: Pretrained, trainable_layers: int | None,
                              frozen_bn: bool | None) -> tuple[int, bool]:
    """torchvision's defaults: a pretrained backbone trains 3 stages with frozen BN; a fresh one trains all.

    A fresh backbone with frozen BN could never learn its statistics, so that case is refused.
    """
    is_trained = bool(pretrained)
    if frozen_bn is None:
        frozen_bn = is_trained
    if trainable_layers is None:
        trainable_layers = 3 if is_trained else MAX_TRAINABLE_LAYERS
    if frozen_bn and not is_trained:
        raise SplitattnError("frozen_bn=True needs pretrained_backbone: a randomly initialised backbone with frozen "
                             "BatchNorm statistics cannot learn them; pass pretrained_backbone=True or a weights file")
    return trainable_layers, frozen_bn


def build_backbone(
    name: str,
    pretrained: Pretrained = None,
    out_indices: Sequence[int] = (1, 2, 3, 4),
    output_stride: int = 32,
    trainable_layers: int | None = None,
    frozen_bn: bool | None = None,
    **kwargs,
) -> ResNetFeatures:
    """A features-only zoo model, with ImageNet weights loaded through ``create_model(pretrained=...)``.

    Args:
        name: zoo name (``resnest50``, ``seresnet50``, ``skresnet18`` ...).
        pretrained: True for the published weights, or a path / URL of a classification checkpoint
            in any layout ``create_model`` reads; its classifier is dropped.
        out_indices: feature maps to return (1..4 = stages).
        output_stride: 32, or 16 / 8 to dilate the last stages.
        trainable_layers: stages that train, counted from layer4 (default 3 if pretrained, else 5).
        frozen_bn: ``FrozenBatchNorm2d`` instead of BN, holding the loaded statistics (default: when pretrained).
        **kwargs: other ``create_model`` arguments (``drop_path_rate`` ...).
    """
    check_backbone_name(name)
    trainable_layers, frozen_bn = resolve_training_defaults(pretrained, trainable_layers, frozen_bn)
    if frozen_bn:
        kwargs["norm_layer"] = FrozenBatchNorm2d
    model = create_model(name, pretrained=pretrained or False, output_stride=output_stride,
                         features_only=True, out_indices=out_indices, **kwargs)
    return set_trainable_layers(model, trainable_layers)
