"""Squeeze-and-Excitation networks (Hu et al., 2017).

``seresnet*`` / ``seresnext*`` are timm's layout (stride in the 3 x 3 conv, SE width rounded to a
multiple of 8). ``legacy_*`` reproduce the original SENet release: stride in the first 1 x 1
conv of SE-ResNets, a ceil-mode stem pool, SE width ``channels // 16``, and SENet-154 with its deep
stem, doubled grouped conv and 3 x 3 shortcut convs.
"""

from __future__ import annotations

from ..layers import SqueezeExcitation
from .blocks import BasicBlock, Bottleneck
from .published import PublishedWeights, hub, release, timm_file, timm_release
from .registry import ModelEntry, PretrainedCfg, register

PAPER = "Squeeze-and-Excitation Networks (arXiv:1709.01507)"
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# Top-1 (%) from the paper's Table 2 (single 224 crop), for the original release's layout.
PAPER_TOP1 = {"seresnet50": 76.71, "seresnet101": 77.62, "seresnet152": 78.43,
              "seresnext50_32x4d": 79.01, "seresnext101_32x4d": 79.30, "senet154": 81.32}


TIMM_TOP1 = "timm results-imagenet.csv"
# The original SENet release's weights, as Cadene's pretrained-models converted them to PyTorch.
_CADENE = "http://data.lip6.fr/cadene/pretrainedmodels/{}.pth"


def _cfg(name: str | None = None, interpolation: str = "bilinear", first_conv: str = "conv1") -> PretrainedCfg:
    top1 = PAPER_TOP1.get(name) if name else None
    return PretrainedCfg(interpolation=interpolation, first_conv=first_conv, paper_top1=top1,
                         paper=PAPER if top1 is not None else None)


def _weights(tag: str, sources, top1: float, *, trained_by: str, **eval_settings) -> PublishedWeights:
    """timm's measurement of weights under timm's Apache-2.0 license."""
    return PublishedWeights(tag=tag, sources=tuple(sources), top1=top1, top1_by=TIMM_TOP1, license="apache-2.0",
                            trained_by=trained_by, **eval_settings)


def _legacy_weights(timm_path: str, top1: float, *, cadene: str | None = None, **eval_settings):
    """timm's copy of an original-SENet-layout file, and Cadene's original where there is one."""
    sources = timm_release(timm_path) + ((release(_CADENE.format(cadene), "timm"),) if cadene else ())
    trained_by = "SENet authors (converted by Cadene)" if cadene else "timm"
    return (_weights("in1k", sources, top1, trained_by=trained_by, **eval_settings),)


# SE-ResNets of timm's layout: timm's own training runs (RSB "a1", RandAugment "ra2" ...) and the
# GluonCV models it converted. The default tag is timm's default.
_RSB = dict(crop_pct=0.95, interpolation="bicubic")
_TIMM_SE_WEIGHTS = {
    "seresnet50": (
        _weights("a1_in1k", timm_file("v0.1-rsb-weights/seresnet50_a1_0-ffa00869.pth", "timm/seresnet50.a1_in1k"),
                 80.012, trained_by="timm (ResNet strikes back, A1)", **_RSB),
        _weights("ra2_in1k", timm_file("v0.1-weights/seresnet50_ra_224-8efdb4bb.pth", "timm/seresnet50.ra2_in1k"),
                 80.260, trained_by="timm (RandAugment)"),
    ),
    "seresnext26d_32x4d": (
        _weights("bt_in1k", timm_file("v0.1-weights/seresnext26d_32x4d-80fa48a3.pth",
                                      "timm/seresnext26d_32x4d.bt_in1k"), 77.592, trained_by="timm"),
    ),
    "seresnext50_32x4d": (
        _weights("racm_in1k", timm_file("v0.1-weights/seresnext50_32x4d_racm-a304a460.pth",
                                        "timm/seresnext50_32x4d.racm_in1k"), 81.268,
                 trained_by="timm (RandAugment, CutMix)"),
        _weights("gluon_in1k", (release("https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/"
                                        "download/v0.1/gluon_seresnext50_32x4d-90cf2d6e.pth", "timm"),
                                hub("timm/seresnext50_32x4d.gluon_in1k")), 79.916,
                 trained_by="GluonCV (converted by timm)"),
    ),
    "seresnext101_32x4d": (
        _weights("gluon_in1k", (release("https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/"
                                        "download/v0.1/gluon_seresnext101_32x4d-cf52900d.pth", "timm"),
                                hub("timm/seresnext101_32x4d.gluon_in1k")), 80.886,
                 trained_by="GluonCV (converted by timm)"),
    ),
}
_LEGACY_WEIGHTS = {
    "legacy_seresnet18": _legacy_weights("v0.1-weights/seresnet18-4bb0ce65.pth", 71.742, interpolation="bicubic"),
    "legacy_seresnet34": _legacy_weights("v0.1-weights/seresnet34-a4004e63.pth", 74.788),
    "legacy_seresnet50": _legacy_weights("v0.1-cadene/se_resnet50-ce0d4300.pth", 77.650,
                                         cadene="se_resnet50-ce0d4300"),
    "legacy_seresnet101": _legacy_weights("v0.1-cadene/se_resnet101-7e38fcc6.pth", 78.370,
                                          cadene="se_resnet101-7e38fcc6"),
    "legacy_seresnet152": _legacy_weights("v0.1-cadene/se_resnet152-d17c99b7.pth", 78.662,
                                          cadene="se_resnet152-d17c99b7"),
    "legacy_seresnext26_32x4d": _legacy_weights("v0.1-weights/seresnext26_32x4d-65ebdb501.pth", 77.100,
                                                interpolation="bicubic"),
    "legacy_seresnext50_32x4d": _legacy_weights("v0.1-weights/legacy_se_resnext50_32x4d-f3651bad.pth", 79.080,
                                                cadene="se_resnext50_32x4d-a260b3a4"),
    "legacy_seresnext101_32x4d": _legacy_weights("v0.1-weights/legacy_se_resnext101_32x4d-37725eac.pth", 80.274,
                                                 cadene="se_resnext101_32x4d-3b2fe3d8"),
    "legacy_senet154": _legacy_weights("v0.1-weights/legacy_senet154-e9eb9fe6.pth", 81.320, cadene="senet154-c7b49a05"),
}


def _se(layers, block=Bottleneck, **kwargs) -> dict:
    return dict(block=block, layers=layers, attn=SqueezeExcitation(), **kwargs)


def _legacy(layers, block=Bottleneck, **kwargs) -> dict:
    """The original release: SE width floored, SE-ResNet-18/34 gate after the ReLU, stride in the 1x1."""
    block_args = {"stride_in_1x1": True} if block is Bottleneck and "cardinality" not in kwargs else {}
    attn = SqueezeExcitation(divisor=None, act_before=block is BasicBlock)
    return dict(block=block, layers=layers, attn=attn, stem_pool="ceil", block_args=block_args, **kwargs)


LEGACY_KEYS = {"timm": "senet_legacy"}  # timm keeps the original release's parameter names


for depth, layers in DEPTHS.items():
    block = BasicBlock if depth < 50 else Bottleneck
    register(ModelEntry(name=f"seresnet{depth}", family="senet", reference="timm", architecture=_se(layers, block),
                        base_cfg=_cfg(interpolation="bicubic"), weights=_TIMM_SE_WEIGHTS.get(f"seresnet{depth}", ()),
                        timm_name=f"seresnet{depth}"))
    register(ModelEntry(name=f"legacy_seresnet{depth}", family="senet", reference="timm",
                        architecture=_legacy(layers, block), base_cfg=_cfg(f"seresnet{depth}"),
                        weights=_LEGACY_WEIGHTS[f"legacy_seresnet{depth}"], key_layouts=LEGACY_KEYS,
                        timm_name=f"legacy_seresnet{depth}"))

_RESNEXT = dict(cardinality=32, base_width=4)
register(ModelEntry(name="seresnext26d_32x4d", family="senet", reference="timm",
                    architecture=_se((2, 2, 2, 2), stem_width=32, deep_stem=True, avg_down=True, **_RESNEXT),
                    base_cfg=_cfg(interpolation="bicubic", first_conv="conv1.0"),
                    weights=_TIMM_SE_WEIGHTS["seresnext26d_32x4d"], timm_name="seresnext26d_32x4d"))
register(ModelEntry(name="seresnext50_32x4d", family="senet", reference="timm",
                    architecture=_se((3, 4, 6, 3), **_RESNEXT), base_cfg=_cfg(interpolation="bicubic"),
                    weights=_TIMM_SE_WEIGHTS["seresnext50_32x4d"], timm_name="seresnext50_32x4d"))
register(ModelEntry(name="seresnext101_32x4d", family="senet", reference="timm",
                    architecture=_se((3, 4, 23, 3), **_RESNEXT), base_cfg=_cfg(interpolation="bicubic"),
                    weights=_TIMM_SE_WEIGHTS["seresnext101_32x4d"], timm_name="seresnext101_32x4d"))
for depth, layers in ((26, (2, 2, 2, 2)), (50, (3, 4, 6, 3)), (101, (3, 4, 23, 3))):
    register(ModelEntry(name=f"legacy_seresnext{depth}_32x4d", family="senet", reference="timm",
                        architecture=_legacy(layers, **_RESNEXT), base_cfg=_cfg(f"seresnext{depth}_32x4d"),
                        weights=_LEGACY_WEIGHTS[f"legacy_seresnext{depth}_32x4d"], key_layouts=LEGACY_KEYS,
                        timm_name=f"legacy_seresnext{depth}_32x4d"))

register(ModelEntry(
    name="legacy_senet154", family="senet", reference="timm",
    architecture=_legacy((3, 8, 36, 3), cardinality=64, base_width=2, stem_width=64, deep_stem=True,
                         down_kernel_size=3) | {"block_args": {"mid_expansion": 2}},
    base_cfg=_cfg("senet154", first_conv="conv1.0"), weights=_LEGACY_WEIGHTS["legacy_senet154"],
    key_layouts=LEGACY_KEYS, timm_name="legacy_senet154",
))
