"""The model zoo as data: every name, its architecture arguments and its pretrained config."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import SplitattnError
from ..layers import NO_ATTENTION, AttentionSpec, resolve_attention
from .imagenet import imagenet_classes
from .published import PublishedWeights
from .resnet import ResNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REFERENCES = ("official", "timm")


@dataclass(frozen=True)
class PretrainedCfg:
    """How the model expects to be fed, and what the paper that introduced it reports.

    ``paper_top1`` is the ImageNet top-1 accuracy (%) reported in ``paper``, not a number measured
    here; None where the paper reports none. What published weights reach is their own ``top1``
    (:class:`~splitattn.models.published.PublishedWeights`); a tag may also feed other input settings.
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_classes: int = 1000
    first_conv: str = "conv1"
    classifier: str = "fc"
    paper_top1: float | None = None
    paper: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One zoo model, built with keywords only (``name``, ``family`` and ``reference`` are all strings).

    ``reference`` names the implementation whose layout and weights this entry reproduces:
    ``official`` (the ResNeSt authors' package) or ``timm``. ``weights`` are the published weight
    sets (tags), the default first. ``key_layouts`` says, for each reference implementation that has
    this network, how its parameter names differ from ours (a scheme of ``splitattn.weights.convert``):
    ``same``, ``senet_legacy`` (the original SENet release) or ``timm_sk`` (timm's SK blocks).
    ``timm_name`` is timm's name for the same network (same layers, a layout ``key_layouts["timm"]``
    converts), which shared repositories name so timm and transformers load them; None where timm
    has no such network (then a shared repository is splitattn's alone).
    """

    name: str
    family: str
    reference: str
    architecture: dict[str, Any]
    base_cfg: PretrainedCfg = field(default_factory=PretrainedCfg)
    weights: tuple[PublishedWeights, ...] = ()
    key_layouts: dict[str, str] = field(default_factory=lambda: {"timm": "same"})
    timm_name: str | None = None

    def __post_init__(self) -> None:
        tags = [w.tag for w in self.weights]
        if len(set(tags)) != len(tags):
            raise SplitattnError(f"{self.name}: a weights tag is listed twice: {tags}")
        if self.timm_name is not None and "timm" not in self.key_layouts:
            raise SplitattnError(f"{self.name}: timm_name {self.timm_name!r} needs a 'timm' entry in key_layouts "
                                 "saying how timm names its parameters")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(w.tag for w in self.weights)

    @property
    def pretrained_cfg(self) -> PretrainedCfg:
        """Input settings of the default weights (those a plain ``create_model(name)`` describes)."""
        return self.cfg_for(None)

    def cfg_for(self, tag: str | None) -> PretrainedCfg:
        """Input settings for the weights ``tag`` names: the model's, with the tag's own on top."""
        weights = self.weights_for(tag)
        return replace(self.base_cfg, **weights.eval_settings) if weights is not None else self.base_cfg

    def weights_for(self, tag: str | None = None) -> PublishedWeights | None:
        """The weights ``tag`` names (None: the default tag, or None when nothing is published)."""
        if tag is None:
            return self.weights[0] if self.weights else None
        for weights in self.weights:
            if weights.tag == tag:
                return weights
        if not self.weights:
            raise SplitattnError(f"{self.name!r} has no published weights, so no tag {tag!r}; "
                                 f"`splitattn zoo --weights` lists the models that have some")
        close = difflib.get_close_matches(tag, self.tags, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(f'{self.name}.{t}' for t in close)}?" if close else ""
        raise SplitattnError(f"unknown weights tag {tag!r} for {self.name!r}.{hint} Its tags: {', '.join(self.tags)} "
                             f"(default {self.tags[0]})")

    def cfg_dict(self, tag: str | None = None) -> dict[str, Any]:
        """``pretrained_cfg`` as the model carries it: input settings, and the weights' own numbers.

        Published weights are all ImageNet-1k's, so they also name their outputs: ``label_names``
        ("tub") and ``label_synsets`` (``n04493381``), in output order, as timm's configs do.
        """
        weights = self.weights_for(tag)
        cfg = asdict(self.cfg_for(tag)) | {"architecture": self.name, "tag": None, "top1": None,
                                           "top1_by": None, "license": None, "sources": ()}
        if weights is not None:
            classes = imagenet_classes()
            cfg |= {"tag": weights.tag, "top1": weights.top1, "top1_by": weights.top1_by,
                    "license": weights.license, "sources": tuple(s.url for s in weights.sources),
                    "label_names": list(classes.names), "label_synsets": list(classes.synsets)}
        return cfg

    @property
    def attention(self) -> AttentionSpec:
        """The attention spec of the entry's blocks (``NoAttention()`` for a plain ResNet)."""
        return self.architecture.get("attn", NO_ATTENTION)

    def build(self, tag: str | None = None, **overrides: Any) -> ResNet:
        """The network with ``overrides`` of the zoo arguments; ``tag`` picks the pretrained config.

        ``attn`` may be a whole spec, which replaces the entry's, or a dict of some of its fields,
        which keeps the others (``attn={"radix": 4}``); ``attn_args`` is the same dict under its
        older name. A field the entry's kind does not have is a TypeError naming the valid ones.
        """
        overrides = dict(overrides)
        base = self.attention
        attn = resolve_attention(overrides.pop("attn", None), base)
        attn = resolve_attention(overrides.pop("attn_args", None), attn)
        model = ResNet(**{**self.architecture, **overrides, "attn": attn})
        model.pretrained_cfg = self.cfg_dict(tag)
        if len(model.pretrained_cfg.get("label_names", ())) != model.num_classes:  # another head: other classes
            model.pretrained_cfg.pop("label_names", None)
            model.pretrained_cfg.pop("label_synsets", None)
        model.default_cfg = model.pretrained_cfg
        if attn != base:  # what rebuilds it (save_pretrained writes these): changed fields only, when it can
            changed = {f.name: getattr(attn, f.name) for f in dataclasses.fields(attn)
                       if type(attn) is type(base) and getattr(attn, f.name) != getattr(base, f.name)}
            overrides["attn"] = changed if type(attn) is type(base) else attn
        model.model_args = overrides
        return model


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY:
        raise SplitattnError(f"model {entry.name!r} is registered twice")
    if entry.reference not in REFERENCES:
        raise SplitattnError(f"{entry.name}: reference must be one of {REFERENCES}, got {entry.reference!r}")
    _REGISTRY[entry.name] = entry
    return entry


def list_models(pattern: str = "*", family: str | None = None, pretrained: bool = False) -> list[str]:
    """Zoo names matching a shell-style ``pattern`` (e.g. ``"resnest50*"``), sorted.

    With ``pretrained=True``, one ``name.tag`` per published weight set instead (timm's spelling).
    """
    names = []
    for name, entry in _REGISTRY.items():
        if family is not None and entry.family != family:
            continue
        candidates = [f"{name}.{tag}" for tag in entry.tags] if pretrained else [name]
        names += [c for c in candidates if fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(name, pattern)]
    return sorted(names)


def split_name(name: str) -> tuple[str, str | None]:
    """``"seresnet50.a1_in1k"`` -> ``("seresnet50", "a1_in1k")``; a plain name has no tag."""
    base, _, tag = name.partition(".")
    return base, tag or None


def resolve_name(name: str) -> tuple[ModelEntry, PublishedWeights | None]:
    """The entry and weights a ``name`` or ``name.tag`` means (the default tag for a plain name)."""
    base, tag = split_name(name)
    entry = get_model_entry(base)
    return entry, entry.weights_for(tag)


def input_cfg(name: str) -> PretrainedCfg:
    """The input settings a ``name`` or ``name.tag`` means (a tag may differ from its model's defaults)."""
    entry, weights = resolve_name(name)
    return entry.cfg_for(weights.tag if weights is not None else None)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name raises ValueError suggesting close names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SplitattnError(
            f"unknown model {name!r}.{hint} splitattn.list_models() lists all {len(_REGISTRY)} models."
        ) from None
