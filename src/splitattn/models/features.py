"""The backbone for dense prediction: a ResNet's stem and stages, returning feature maps.

A model of its own rather than a mode of the classifier, so each has one return type: ``ResNet``
always returns logits, ``ResNetFeatures`` always a list of maps. It holds the classifier's stem and
stages under the same names, so a classification checkpoint loads into it unchanged (its classifier
ignored), and it owns no module it does not run, which DistributedDataParallel requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import SplitattnError
from .resnet import FeatureInfo, ResNet, Trunk

STEM_MODULES = ("conv1", "bn1", "act1", "maxpool")


class ResNetFeatures(Trunk):
    """The feature maps of ``model`` at ``out_indices`` (0 = stem, 1..4 = stages), shallowest first."""

    def __init__(self, model: ResNet, out_indices: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        indices = tuple(sorted({int(i) for i in out_indices}))
        if not indices or indices[0] < 0 or indices[-1] >= len(model.feature_info):
            raise SplitattnError(
                f"out_indices must be a non-empty subset of 0..{len(model.feature_info) - 1} "
                f"(0 = stem, 1-4 = stages), got {tuple(out_indices)}"
            )
        for name in STEM_MODULES:
            self.add_module(name, getattr(model, name))
        for index in range(1, indices[-1] + 1):  # later stages would never run
            self.add_module(f"layer{index}", getattr(model, f"layer{index}"))
        self.out_indices = indices
        self.feature_info: list[FeatureInfo] = model.feature_info[: indices[-1] + 1]
        self.in_chans = model.in_chans
        self.num_features = self.feature_info[-1].channels
        self.grad_checkpointing = model.grad_checkpointing
        for attribute in ("pretrained_cfg", "default_cfg", "model_args"):
            if hasattr(model, attribute):
                setattr(self, attribute, getattr(model, attribute))

    @property
    def feature_channels(self) -> list[int]:
        """Channels of each returned feature map."""
        return [self.feature_info[i].channels for i in self.out_indices]

    @property
    def feature_strides(self) -> list[int]:
        """Stride (input pixels per feature pixel) of each returned feature map."""
        return [self.feature_info[i].stride for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.check_input(x)
        x = self.forward_stem(x)
        maps = [x] if 0 in self.out_indices else []
        x = self.maxpool(x)
        for index, stage in enumerate(self.stages, start=1):
            x = self.run_stage(stage, x)
            if index in self.out_indices:
                maps.append(x)
        return maps
