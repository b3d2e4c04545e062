"""The model zoo as data: every name, its architecture arguments and its pretrained config."""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

from .resnet import ResNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REFERENCES = ("official", "timm")


@dataclass(frozen=True)
class PretrainedCfg:
    """How the published weights expect to be fed, and what they were reported to reach.

    ``top1`` is the ImageNet top-1 accuracy (%) reported in the paper that introduced the model
    (``paper``), not a number measured here; None where the paper reports none.
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_classes: int = 1000
    first_conv: str = "conv1"
    classifier: str = "fc"
    top1: float | None = None
    paper: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One zoo model.

    ``reference`` names the implementation whose layout and weights this entry reproduces:
    ``official`` (the ResNeSt authors' package) or ``timm``.
    """

    name: str
    family: str
    reference: str
    architecture: dict[str, Any]
    pretrained_cfg: PretrainedCfg = field(default_factory=PretrainedCfg)

    def build(self, **overrides: Any) -> ResNet:
        model = ResNet(**{**self.architecture, **overrides})
        model.pretrained_cfg = asdict(self.pretrained_cfg) | {"architecture": self.name}
        model.default_cfg = model.pretrained_cfg
        return model


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    if entry.reference not in REFERENCES:
        raise ValueError(f"{entry.name}: reference must be one of {REFERENCES}, got {entry.reference!r}")
    _REGISTRY[entry.name] = entry
    return entry


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Zoo names matching a shell-style ``pattern`` (e.g. ``"resnest50*"``), sorted."""
    return sorted(
        name
        for name, entry in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (family is None or entry.family == family)
    )


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name raises ValueError suggesting close names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} splitattn.list_models() lists all {len(_REGISTRY)} models."
        ) from None
