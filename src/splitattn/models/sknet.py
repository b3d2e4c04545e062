"""Selective Kernel networks (Li et al., 2019), under timm's names.

``skresnext50_32x4d`` is the paper's SKNet-50. The ResNet-style variants split the input channels
between the two branches, which keeps their parameter count near a plain ResNet's.
"""

from __future__ import annotations

from ..layers import SelectiveKernel
from .blocks import BasicBlock, Bottleneck
from .published import PublishedWeights, timm_file
from .registry import ModelEntry, PretrainedCfg, register

PAPER = "Selective Kernel Networks (arXiv:1903.06586)"


def _ra(name: str, path: str, top1: float) -> tuple[PublishedWeights, ...]:
    """timm's own SK training runs (RandAugment recipe); top-1 from timm's results-imagenet.csv."""
    sources = timm_file(f"v0.1-weights/{path}.pth", f"timm/{name}.ra_in1k")
    return (PublishedWeights(tag="ra_in1k", sources=sources, top1=top1, top1_by="timm results-imagenet.csv",
                             license="apache-2.0", trained_by="timm (RandAugment)"),)


def _sk(layers, block, attn: SelectiveKernel, **kwargs) -> dict:
    return dict(block=block, layers=layers, attn=attn, zero_init_last=False, **kwargs)


_BASIC_SK = SelectiveKernel(reduction=8, divisor=16, split_input=True)
SK_KEYS = {"timm": "timm_sk"}  # timm wraps each conv and its BN in one module
_CFG = PretrainedCfg(interpolation="bicubic")

register(ModelEntry(name="skresnet18", family="sknet", reference="timm", timm_name="skresnet18",
                    architecture=_sk((2, 2, 2, 2), BasicBlock, _BASIC_SK), base_cfg=_CFG,
                    weights=_ra("skresnet18", "skresnet18_ra-4eec2804", 73.020), key_layouts=SK_KEYS))
register(ModelEntry(name="skresnet34", family="sknet", reference="timm", timm_name="skresnet34",
                    architecture=_sk((3, 4, 6, 3), BasicBlock, _BASIC_SK), base_cfg=_CFG,
                    weights=_ra("skresnet34", "skresnet34_ra-bdc0ccde", 76.956), key_layouts=SK_KEYS))
register(ModelEntry(name="skresnet50", family="sknet", reference="timm",
                    architecture=_sk((3, 4, 6, 3), Bottleneck,
                                     SelectiveKernel(reduction=16, divisor=8, split_input=True)),
                    base_cfg=_CFG, weights=(), key_layouts=SK_KEYS, timm_name="skresnet50"))
register(ModelEntry(
    name="skresnext50_32x4d", family="sknet", reference="timm",
    architecture=_sk((3, 4, 6, 3), Bottleneck, SelectiveKernel(reduction=16, divisor=32), cardinality=32,
                     base_width=4),
    base_cfg=PretrainedCfg(interpolation="bicubic", paper_top1=79.21, paper=PAPER),
    weights=_ra("skresnext50_32x4d", "skresnext50_ra-f40e40bf", 80.168), key_layouts=SK_KEYS,
    timm_name="skresnext50_32x4d",
))
