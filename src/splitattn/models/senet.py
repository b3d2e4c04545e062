"""Squeeze-and-Excitation networks (Hu et al., 2017).

``seresnet*`` / ``seresnext*`` are timm's layout (stride in the 3 x 3 conv, SE width rounded to a
multiple of 8). ``legacy_*`` reproduce the original SENet release: stride in the first 1 x 1
conv of SE-ResNets, a ceil-mode stem pool, SE width ``channels // 16``, and SENet-154 with its deep
stem, doubled grouped conv and 3 x 3 shortcut convs.
"""

from __future__ import annotations

from .blocks import BasicBlock, Bottleneck
from .registry import ModelEntry, PretrainedCfg, register

PAPER = "Squeeze-and-Excitation Networks (arXiv:1709.01507)"
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# Top-1 (%) from the paper's Table 2 (single 224 crop), for the original release's layout.
PAPER_TOP1 = {"seresnet50": 76.71, "seresnet101": 77.62, "seresnet152": 78.43,
              "seresnext50_32x4d": 79.01, "seresnext101_32x4d": 79.30, "senet154": 81.32}


def _cfg(name: str | None = None, interpolation: str = "bilinear", first_conv: str = "conv1") -> PretrainedCfg:
    top1 = PAPER_TOP1.get(name) if name else None
    return PretrainedCfg(interpolation=interpolation, first_conv=first_conv, top1=top1,
                         paper=PAPER if top1 is not None else None)


def _se(layers, block=Bottleneck, **kwargs) -> dict:
    return dict(block=block, layers=layers, attn="se", **kwargs)


def _legacy(layers, block=Bottleneck, **kwargs) -> dict:
    block_args = {"stride_in_1x1": True} if block is Bottleneck and "cardinality" not in kwargs else {}
    if block is BasicBlock:
        block_args = {"se_after_act": True}
    return dict(block=block, layers=layers, attn="se", attn_args={"se_divisor": None}, stem_pool="ceil",
                block_args=block_args, **kwargs)


for depth, layers in DEPTHS.items():
    block = BasicBlock if depth < 50 else Bottleneck
    register(ModelEntry(f"seresnet{depth}", "senet", "timm", _se(layers, block), _cfg(interpolation="bicubic")))
    register(ModelEntry(f"legacy_seresnet{depth}", "senet", "timm", _legacy(layers, block),
                        _cfg(f"seresnet{depth}")))

_RESNEXT = dict(cardinality=32, base_width=4)
register(ModelEntry("seresnext26d_32x4d", "senet", "timm",
                    _se((2, 2, 2, 2), stem_width=32, deep_stem=True, avg_down=True, **_RESNEXT),
                    _cfg(interpolation="bicubic", first_conv="conv1.0")))
register(ModelEntry("seresnext50_32x4d", "senet", "timm", _se((3, 4, 6, 3), **_RESNEXT),
                    _cfg(interpolation="bicubic")))
register(ModelEntry("seresnext101_32x4d", "senet", "timm", _se((3, 4, 23, 3), **_RESNEXT),
                    _cfg(interpolation="bicubic")))
for depth, layers in ((26, (2, 2, 2, 2)), (50, (3, 4, 6, 3)), (101, (3, 4, 23, 3))):
    register(ModelEntry(f"legacy_seresnext{depth}_32x4d", "senet", "timm", _legacy(layers, **_RESNEXT),
                        _cfg(f"seresnext{depth}_32x4d")))

register(ModelEntry(
    "legacy_senet154", "senet", "timm",
    _legacy((3, 8, 36, 3), cardinality=64, base_width=2, stem_width=64, deep_stem=True, down_kernel_size=3)
    | {"block_args": {"mid_expansion": 2}},
    _cfg("senet154", first_conv="conv1.0"),
))
