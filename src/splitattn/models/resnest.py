"""ResNeSt: Split-Attention Networks (Zhang et al., 2020).

Two naming schemes, both kept so switching needs no renaming: the official release
(``resnest50`` ... ``resnest269``, ``resnest50_fast_*`` from its ablation table) and timm
(``resnest50d``, ``resnest101e`` ...). They share weights layout, but differ in how dilated stages
pool, so each entry records which release it reproduces.
"""

from __future__ import annotations

from ..layers import SplitAttention
from .blocks import Bottleneck
from .published import PublishedWeights, WeightSource, hub, release, timm_file, timm_release
from .registry import ModelEntry, PretrainedCfg, register

PAPER = "ResNeSt: Split-Attention Networks (arXiv:2004.08955)"
AUTHORS = "ResNeSt authors (zhanghang1989/ResNeSt)"
OFFICIAL_TOP1 = "official README (PyTorch column)"
TIMM_TOP1 = "timm results-imagenet.csv"
_RELEASE = "https://github.com/zhanghang1989/ResNeSt/releases/download/weights_step1/{}.pth"
# Where the release first lived. It answered HTTP 403 when these sources were collected and is
# tried last, for the networks (and mirrors of it) where it still serves.
_ORIGINAL_HOST = "https://s3.us-west-1.wasabisys.com/resnest/torch/{}.pth"


def _resnest(
    layers: tuple[int, ...],
    stem_width: int,
    *,
    radix: int = 2,
    cardinality: int = 1,
    base_width: int = 64,
    avd_first: bool = False,
    dilation_style: str = "timm",
) -> dict:
    return dict(
        block=Bottleneck,
        layers=layers,
        attn=SplitAttention(radix=radix),
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
        paper_top1=top1,
        paper=PAPER if top1 is not None else None,
    )


def _official_file(stem: str, timm_name: str | None) -> tuple[WeightSource, ...]:
    """Every copy of an official release file: the release, timm's mirror, timm's Hub repo, the first host."""
    sources = (release(_RELEASE.format(stem), "official"),)
    if timm_name is not None:
        sources += (*timm_release(f"v0.1-resnest/{stem}.pth", "official"), hub(f"timm/{timm_name}.in1k"))
    return (*sources, release(_ORIGINAL_HOST.format(stem), "official"))


def _official_weights(stem: str, timm_name: str | None, *, official_top1: float, timm_top1: float | None):
    """The official file under the official name, and (same file) under timm's name with timm's top-1."""
    sources = _official_file(stem, timm_name)
    official = (PublishedWeights(tag="in1k", sources=sources, top1=official_top1, top1_by=OFFICIAL_TOP1,
                                 license="apache-2.0", trained_by=AUTHORS),)
    if timm_top1 is None:
        return official, ()
    return official, (PublishedWeights(tag="in1k", sources=sources, top1=timm_top1, top1_by=TIMM_TOP1,
                                       license="apache-2.0", trained_by=AUTHORS),)


# name, layers, stem width, input size, crop_pct, interpolation, paper top-1
_DEPTHS = {
    50: ((3, 4, 6, 3), 32, 224, 0.875, "bilinear", 81.13),
    101: ((3, 4, 23, 3), 64, 256, 0.875, "bilinear", 82.83),
    200: ((3, 24, 36, 3), 64, 320, 0.909, "bicubic", 83.84),
    269: ((3, 30, 48, 8), 64, 416, 0.928, "bicubic", 84.54),
}
_TIMM_SUFFIX = {50: "d", 101: "e", 200: "e", 269: "e"}
# The official release and timm name every ResNeSt parameter as we do.
BOTH_LAYOUTS = {"official": "same", "timm": "same"}
# The released file of each depth, its top-1 in the official README and in timm's results.
_RELEASED = {
    50: ("resnest50-528c19ca", 81.03, 80.958),
    101: ("resnest101-22405ba7", 82.83, 82.916),
    200: ("resnest200-75117900", 83.84, 83.880),
    269: ("resnest269-0cc87c48", 84.54, 84.542),
}

# timm's names for networks of the official release: same layers, same parameter names, same
# published weights (timm loads the official files); only dilated stages pool differently, so a
# network of the official release shares as timm's (``ModelEntry.timm_name``) at output stride 32.
# timm has no port of the other five ablation models (resnest50_fast_1s1x64d ...).
TIMM_TO_OFFICIAL = {
    **{f"resnest{depth}{suffix}": f"resnest{depth}" for depth, suffix in _TIMM_SUFFIX.items()},
    "resnest50d_4s2x40d": "resnest50_fast_4s2x40d",
    "resnest50d_1s4x24d": "resnest50_fast_1s4x24d",
}

for depth, (layers, stem, size, crop, interp, top1) in _DEPTHS.items():
    cfg = _cfg(size, crop, interp, top1)
    timm_name = f"resnest{depth}{_TIMM_SUFFIX[depth]}"
    stem_file, official_top1, timm_top1 = _RELEASED[depth]
    official, timm = _official_weights(stem_file, timm_name, official_top1=official_top1, timm_top1=timm_top1)
    register(ModelEntry(name=f"resnest{depth}", family="resnest", reference="official",
                        architecture=_resnest(layers, stem, dilation_style="official"), base_cfg=cfg,
                        weights=official, key_layouts=BOTH_LAYOUTS, timm_name=timm_name))
    register(ModelEntry(name=timm_name, family="resnest", reference="timm", architecture=_resnest(layers, stem),
                        base_cfg=cfg, weights=timm, key_layouts=BOTH_LAYOUTS, timm_name=timm_name))


def _gluon(name: str, path: str, top1: float) -> tuple[PublishedWeights, ...]:
    """ResNeSt-14/26, trained by the authors in GluonCV and converted by timm."""
    sources = timm_file(f"v0.1-weights/{path}.pth", f"timm/{name}.gluon_in1k")
    return (PublishedWeights(tag="gluon_in1k", sources=sources, top1=top1, top1_by=TIMM_TOP1, license="apache-2.0",
                             trained_by=f"{AUTHORS}, GluonCV"),)


register(ModelEntry(name="resnest14d", family="resnest", reference="timm", architecture=_resnest((1, 1, 1, 1), 32),
                    base_cfg=_cfg(), weights=_gluon("resnest14d", "gluon_resnest14-9c8fe254", 75.516),
                    key_layouts=BOTH_LAYOUTS, timm_name="resnest14d"))
register(ModelEntry(name="resnest26d", family="resnest", reference="timm", architecture=_resnest((2, 2, 2, 2), 32),
                    base_cfg=_cfg(), weights=_gluon("resnest26d", "gluon_resnest26-50eb607c", 78.476),
                    key_layouts=BOTH_LAYOUTS, timm_name="resnest26d"))

# The ablation models of the paper (Table 3): radix s, cardinality x, width d, avd before the conv.
# Top-1 from the official ablation.md; timm ports two of them under its own names.
_ABLATION = {(1, 1, 64): ("d8fbf808", 80.33, None), (2, 1, 64): ("44938639", 80.53, None),
             (4, 1, 64): ("f74f3fc3", 80.76, None), (1, 2, 40): ("32830b84", 80.59, None),
             (2, 2, 40): ("9d126481", 80.61, None), (4, 2, 40): ("41d14ed0", 81.14, 81.146),
             (1, 4, 24): ("d4a4f76f", 80.99, 81.024)}
for (radix, cardinality, width), (digest, official_top1, timm_top1) in _ABLATION.items():
    setting = f"{radix}s{cardinality}x{width}d"
    split = dict(radix=radix, cardinality=cardinality, base_width=width, avd_first=True)
    timm_name = f"resnest50d_{setting}" if timm_top1 is not None else None
    official, timm = _official_weights(f"resnest50_fast_{setting}-{digest}", timm_name, official_top1=official_top1,
                                       timm_top1=timm_top1)
    register(ModelEntry(
        name=f"resnest50_fast_{setting}", family="resnest", reference="official",
        architecture=_resnest((3, 4, 6, 3), 32, **split, dilation_style="official"),
        base_cfg=_cfg(), weights=official, key_layouts=BOTH_LAYOUTS, timm_name=timm_name,
    ))
    if timm_name is not None:
        register(ModelEntry(name=timm_name, family="resnest", reference="timm",
                            architecture=_resnest((3, 4, 6, 3), 32, **split),
                            base_cfg=_cfg(interpolation="bicubic"), weights=timm, key_layouts=BOTH_LAYOUTS,
                            timm_name=timm_name))
