"""Plain ResNets, the baselines every attention paper compares against."""

from __future__ import annotations

from .blocks import BasicBlock, Bottleneck
from .registry import ModelEntry, PretrainedCfg, register

register(ModelEntry("resnet18", "resnet", "timm", dict(block=BasicBlock, layers=(2, 2, 2, 2)), PretrainedCfg()))
register(ModelEntry("resnet50", "resnet", "timm", dict(block=Bottleneck, layers=(3, 4, 6, 3)), PretrainedCfg()))
register(ModelEntry(
    "resnet50d", "resnet", "timm",
    dict(block=Bottleneck, layers=(3, 4, 6, 3), stem_width=32, deep_stem=True, avg_down=True),
    PretrainedCfg(interpolation="bicubic", first_conv="conv1.0"),
))
