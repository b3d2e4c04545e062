"""Where the published ImageNet weights of each zoo model live, and how to check them.

Only files with a known sha256 prefix are listed: an unverifiable download is not offered. The
official ResNeSt files serve both the official names and timm's (``resnest50d`` ...), whose layout
is identical. Models missing here (``skresnet*``, ``resnest14d``/``26d``, ``seresnet18/34/101/152``
...) have weights only on a model hub this library does not contact; pass those files by path.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.resnest import TIMM_TO_OFFICIAL
from .download import hash_from_filename

_OFFICIAL = "https://s3.us-west-1.wasabisys.com/resnest/torch/{}.pth"
_TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/{}.pth"


@dataclass(frozen=True)
class WeightSource:
    """One published weight file: its URL, sha256 prefix, and the layout its names follow."""

    url: str
    sha256: str
    layout: str  # "official" or "timm": the ``source`` to give convert_state_dict


def _official(stem: str) -> WeightSource:
    url = _OFFICIAL.format(stem)
    return WeightSource(url, hash_from_filename(url), "official")


def _timm(path: str) -> WeightSource:
    url = _TIMM.format(path)
    return WeightSource(url, hash_from_filename(url), "timm")


_RESNEST = {
    "resnest50": "resnest50-528c19ca",
    "resnest101": "resnest101-22405ba7",
    "resnest200": "resnest200-75117900",
    "resnest269": "resnest269-0cc87c48",
    "resnest50_fast_1s1x64d": "resnest50_fast_1s1x64d-d8fbf808",
    "resnest50_fast_2s1x64d": "resnest50_fast_2s1x64d-44938639",
    "resnest50_fast_4s1x64d": "resnest50_fast_4s1x64d-f74f3fc3",
    "resnest50_fast_1s2x40d": "resnest50_fast_1s2x40d-32830b84",
    "resnest50_fast_2s2x40d": "resnest50_fast_2s2x40d-9d126481",
    "resnest50_fast_4s2x40d": "resnest50_fast_4s2x40d-41d14ed0",
    "resnest50_fast_1s4x24d": "resnest50_fast_1s4x24d-d4a4f76f",
}

PUBLISHED_WEIGHTS: dict[str, WeightSource] = {
    **{name: _official(stem) for name, stem in _RESNEST.items()},
    **{alias: _official(_RESNEST[name]) for alias, name in TIMM_TO_OFFICIAL.items()},
    "legacy_senet154": _timm("v0.1-weights/legacy_senet154-e9eb9fe6"),
    "legacy_seresnet18": _timm("v0.1-weights/seresnet18-4bb0ce65"),
    "legacy_seresnet34": _timm("v0.1-weights/seresnet34-a4004e63"),
    "legacy_seresnet50": _timm("v0.1-cadene/se_resnet50-ce0d4300"),
    "legacy_seresnet101": _timm("v0.1-cadene/se_resnet101-7e38fcc6"),
    "legacy_seresnet152": _timm("v0.1-cadene/se_resnet152-d17c99b7"),
    "legacy_seresnext26_32x4d": _timm("v0.1-weights/seresnext26_32x4d-65ebdb501"),
    "legacy_seresnext50_32x4d": _timm("v0.1-weights/legacy_se_resnext50_32x4d-f3651bad"),
    "legacy_seresnext101_32x4d": _timm("v0.1-weights/legacy_se_resnext101_32x4d-37725eac"),
    "seresnet50": _timm("v0.1-weights/seresnet50_ra_224-8efdb4bb"),
    "seresnext26d_32x4d": _timm("v0.1-weights/seresnext26d_32x4d-80fa48a3"),
    "seresnext50_32x4d": _timm("v0.1-weights/seresnext50_32x4d_racm-a304a460"),
    "resnet50d": _timm("v0.1-weights/resnet50d_ra2-464e36ba"),
}


def published_weights(name: str) -> WeightSource | None:
    return PUBLISHED_WEIGHTS.get(name)
