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


def _weights(name: str, *, rsb: str, rsb_top1: float, torchvision: str, tv_top1: float) -> tuple[PublishedWeights, ...]:
    """timm's ResNet-strikes-back A1 run (the default) and torchvision's original weights."""
    return (
        PublishedWeights(tag="a1_in1k", sources=timm_file(f"v0.1-rsb-weights/{rsb}.pth", f"timm/{name}.a1_in1k"),
                         top1=rsb_top1, top1_by=_TIMM_TOP1, license="apache-2.0",
                         trained_by="timm (ResNet strikes back, A1)", **_RSB),
        PublishedWeights(tag="tv_in1k",
                         sources=(release(f"https://download.pytorch.org/models/{torchvision}.pth", "ours"),
                                  hub(f"timm/{name}.tv_in1k")),
                         top1=tv_top1, top1_by=_TIMM_TOP1, license="bsd-3-clause", trained_by="torchvision"),
    )


register(ModelEntry(name="resnet18", family="resnet", reference="timm", timm_name="resnet18",
                    architecture=dict(block=BasicBlock, layers=(2, 2, 2, 2)), base_cfg=PretrainedCfg(),
                    weights=_weights("resnet18", rsb="resnet18_a1_0-d63eafa0", rsb_top1=71.504,
                                     torchvision="resnet18-f37072fd", tv_top1=69.752)))
register(ModelEntry(name="resnet50", family="resnet", reference="timm", timm_name="resnet50",
                    architecture=dict(block=Bottleneck, layers=(3, 4, 6, 3)), base_cfg=PretrainedCfg(),
                    weights=_weights("resnet50", rsb="resnet50_a1_0-14fe96d1", rsb_top1=80.382,
                                     torchvision="resnet50-0676ba61", tv_top1=76.156)))
register(ModelEntry(
    name="resnet50d", family="resnet", reference="timm",
    architecture=dict(block=Bottleneck, layers=(3, 4, 6, 3), stem_width=32, deep_stem=True, avg_down=True),
    base_cfg=PretrainedCfg(interpolation="bicubic", first_conv="conv1.0"), timm_name="resnet50d",
    weights=(PublishedWeights(tag="ra2_in1k", sources=timm_file("v0.1-weights/resnet50d_ra2-464e36ba.pth",
                                                                "timm/resnet50d.ra2_in1k"),
                              top1=80.546, top1_by=_TIMM_TOP1, license="apache-2.0", trained_by="timm (RandAugment)"),),
))
