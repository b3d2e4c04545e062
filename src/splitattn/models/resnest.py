"""ResNeSt: Split-Attention Networks (Zhang et al., 2020).

Two naming schemes, both kept so switching needs no renaming: the official release
(``resnest50`` ... ``resnest269``, ``resnest50_fast_*`` from its ablation table) and timm
(``resnest50d``, ``resnest101e`` ...). They share weights layout, but differ in how dilated stages
pool, so each entry records which release it reproduces.
"""

from __future__ import annotations

from .blocks import Bottleneck
from .registry import ModelEntry, PretrainedCfg, register

PAPER = "ResNeSt: Split-Attention Networks (arXiv:2004.08955)"


def _resnest(
    layers: tuple[int, ...],
    stem_width: int,
    radix: int = 2,
    cardinality: int = 1,
    base_width: int = 64,
    avd_first: bool = False,
    dilation_style: str = "timm",
) -> dict:
    return dict(
        block=Bottleneck,
        layers=layers,
        attn="splat",
        attn_args={"radix": radix},
        cardinality=cardinality,
        base_width=base_width,
        stem_width=stem_width,
        deep_stem=True,
        avg_down=True,
        avd=True,
        avd_first=avd_first,
        dilation_style=dilation_style,
    )


def _cfg(size: int = 224, crop_pct: float = 0.875, interpolation: str = "bilinear", top1: float | None = None):
    return PretrainedCfg(
        input_size=(3, size, size),
        crop_pct=crop_pct,
        interpolation=interpolation,
        first_conv="conv1.0",
        top1=top1,
        paper=PAPER if top1 is not None else None,
    )


# name, layers, stem width, input size, crop_pct, interpolation, paper top-1
_DEPTHS = {
    50: ((3, 4, 6, 3), 32, 224, 0.875, "bilinear", 81.13),
    101: ((3, 4, 23, 3), 64, 256, 0.875, "bilinear", 82.83),
    200: ((3, 24, 36, 3), 64, 320, 0.909, "bicubic", 83.84),
    269: ((3, 30, 48, 8), 64, 416, 0.928, "bicubic", 84.54),
}
_TIMM_SUFFIX = {50: "d", 101: "e", 200: "e", 269: "e"}

# timm's names for networks of the official release: same layers, same parameter names, same
# published weights (timm loads the official files); only dilated stages pool differently.
TIMM_TO_OFFICIAL = {
    **{f"resnest{depth}{suffix}": f"resnest{depth}" for depth, suffix in _TIMM_SUFFIX.items()},
    "resnest50d_4s2x40d": "resnest50_fast_4s2x40d",
    "resnest50d_1s4x24d": "resnest50_fast_1s4x24d",
}

for depth, (layers, stem, size, crop, interp, top1) in _DEPTHS.items():
    cfg = _cfg(size, crop, interp, top1)
    register(ModelEntry(f"resnest{depth}", "resnest", "official",
                        _resnest(layers, stem, dilation_style="official"), cfg))
    register(ModelEntry(f"resnest{depth}{_TIMM_SUFFIX[depth]}", "resnest", "timm", _resnest(layers, stem), cfg))

register(ModelEntry("resnest14d", "resnest", "timm", _resnest((1, 1, 1, 1), 32), _cfg()))
register(ModelEntry("resnest26d", "resnest", "timm", _resnest((2, 2, 2, 2), 32), _cfg()))

# The ablation models of the paper (Table 3): radix s, cardinality x, width d, avd before the conv.
for radix, cardinality, width in ((1, 1, 64), (2, 1, 64), (4, 1, 64), (1, 2, 40), (2, 2, 40), (4, 2, 40), (1, 4, 24)):
    register(ModelEntry(
        f"resnest50_fast_{radix}s{cardinality}x{width}d", "resnest", "official",
        _resnest((3, 4, 6, 3), 32, radix, cardinality, width, avd_first=True, dilation_style="official"),
        _cfg(),
    ))

# timm ports two of the ablation models under its own names.
register(ModelEntry("resnest50d_4s2x40d", "resnest", "timm",
                    _resnest((3, 4, 6, 3), 32, 4, 2, 40, avd_first=True), _cfg(interpolation="bicubic")))
register(ModelEntry("resnest50d_1s4x24d", "resnest", "timm",
                    _resnest((3, 4, 6, 3), 32, 1, 4, 24, avd_first=True), _cfg(interpolation="bicubic")))
