"""Plain ResNets, the baselines every attention paper compares against.

Weights: timm's own training runs (the default, as in timm) and torchvision's originals, whose
parameter names are ours already.
"""

from __future__ import annotations

from .blocks import BasicBlock, Bottleneck
from .published import PublishedWeights, hub, release, timm_file
from .registry import ModelEntry, PretrainedCfg, register

_TIMM_TOP1 = "timm results-imagenet.csv"
_RSB = dict(crop_pct=0.95, interpolation="bicubic")


def _weights(name: str, rsb: str, rsb_top1: float, torchvision: str, tv_top1: float) -> tuple[PublishedWeights, ...]:
    return (
        PublishedWeights("a1_in1k", timm_file(f"v0.1-rsb-weights/{rsb}.pth", f"timm/{name}.a1_in1k"),
                         rsb_top1, _TIMM_TOP1, "apache-2.0", "timm (ResNet strikes back, A1)", **_RSB),
        PublishedWeights("tv_in1k", (release(f"https://download.pytorch.org/models/{torchvision}.pth", "ours"),
                                     hub(f"timm/{name}.tv_in1k")), tv_top1, _TIMM_TOP1, "bsd-3-clause", "torchvision"),
    )


register(ModelEntry("resnet18", "resnet", "timm", dict(block=BasicBlock, layers=(2, 2, 2, 2)), PretrainedCfg(),
                    _weights("resnet18", "resnet18_a1_0-d63eafa0", 71.504, "resnet18-f37072fd", 69.752)))
register(ModelEntry("resnet50", "resnet", "timm", dict(block=Bottleneck, layers=(3, 4, 6, 3)), PretrainedCfg(),
                    _weights("resnet50", "resnet50_a1_0-14fe96d1", 80.382, "resnet50-0676ba61", 76.156)))
register(ModelEntry(
    "resnet50d", "resnet", "timm",
    dict(block=Bottleneck, layers=(3, 4, 6, 3), stem_width=32, deep_stem=True, avg_down=True),
    PretrainedCfg(interpolation="bicubic", first_conv="conv1.0"),
    (PublishedWeights("ra2_in1k", timm_file("v0.1-weights/resnet50d_ra2-464e36ba.pth", "timm/resnet50d.ra2_in1k"),
                      80.546, _TIMM_TOP1, "apache-2.0", "timm (RandAugment)"),),
))
