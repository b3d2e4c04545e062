"""``create_model``: a zoo name to a ready model, the one entry point most users need."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .models import ResNet, get_model_entry
from .weights import load_pretrained


def create_model(
    name: str,
    pretrained: bool | str | os.PathLike = False,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    drop_block_rate: float = 0.0,
    output_stride: int = 32,
    features_only: bool = False,
    out_indices: Sequence[int] = (1, 2, 3, 4),
    **kwargs: Any,
) -> ResNet:
    """Build a zoo model by name.

    Args:
        name: a name from :func:`splitattn.list_models`, e.g. ``"resnest50"`` or ``"seresnet50"``.
        pretrained: True or "published" for the published ImageNet weights (downloaded once into the cache and
            checked against their hash), or a path / URL (``file://`` too) of a ``.pth``, ``.pt`` or
            ``.safetensors`` file in our, the official or timm's layout. The first conv is adapted
            to ``in_chans``; a classifier of another size is dropped with a warning.
        num_classes: classifier outputs (0 for none).
        in_chans: input channels (1 for grayscale, 4 for RGB-D ...).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth at the last block (linear in depth).
        drop_block_rate: DropBlock rate in the last two stages.
        output_stride: 32 for classification; 16 or 8 dilate the last stages for dense prediction.
        features_only: return a backbone whose forward gives the feature maps at ``out_indices``
            (0 = stem, 1..4 = stages); see ``model.feature_channels`` and ``model.feature_strides``.
        kwargs: any other :class:`splitattn.models.ResNet` argument, overriding the zoo entry.
    """
    entry = get_model_entry(name)
    model = entry.build(
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        drop_block_rate=drop_block_rate,
        output_stride=output_stride,
        **kwargs,
    )
    if pretrained:
        load_pretrained(model, name, pretrained)
    if features_only:
        model.to_feature_extractor(out_indices)
    return model
