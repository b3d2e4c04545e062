"""``create_model``: a zoo name, a ``name.tag`` or a model repository to a ready model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .models import ResNet, ResNetFeatures
from .models.imagenet import imagenet_classes
from .models.registry import resolve_name
from .weights import Repo, is_repo_spec, load_checkpoint_file, load_pretrained, load_state, unwrap_state_dict
from .weights.repo_config import RepoConfig


def create_model(
    name: str,
    pretrained: bool | str | os.PathLike | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    drop_block_rate: float = 0.0,
    output_stride: int = 32,
    features_only: bool = False,
    out_indices: Sequence[int] = (1, 2, 3, 4),
    **kwargs: Any,
) -> ResNet | ResNetFeatures:
    """Build a zoo model by name.

    Args:
        name: a name from :func:`splitattn.list_models`, e.g. ``"resnest50"``; ``name.tag`` for
            particular published weights (``"seresnet50.ra2_in1k"``; ``list_models(pretrained=True)``
            lists them); or a model repository: ``"hf-hub:org/repo"`` (``@revision`` optional) or
            ``"local-dir:PATH"``, holding ours or timm's ``config.json`` and weights.
        pretrained: True or "published" for the published ImageNet weights of the tag (the name's
            default tag without one), fetched once into the cache from the first of their sources
            that serves them and checked against their hash; or a path / URL (``file://`` too) of a
            ``.pth``, ``.pt`` or ``.safetensors`` file in our, the official or timm's layout, or a
            repository as above. The first conv is adapted to ``in_chans``; a classifier of
            another size is dropped with a warning. Default: True for a repository name, else False.
        num_classes: classifier outputs (0 for none); default 1000, or the repository's classes.
        in_chans: input channels (1 for grayscale, 4 for RGB-D ...); default 3, or the repository's.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth at the last block (linear in depth).
        drop_block_rate: DropBlock rate in the last two stages.
        output_stride: 32 for classification; 16 or 8 dilate the last stages for dense prediction.
        features_only: return the backbone (:class:`~splitattn.models.ResNetFeatures`) instead,
            whose forward gives the list of feature maps at ``out_indices`` (0 = stem, 1..4 =
            stages); see its ``feature_channels`` and ``feature_strides``.
        kwargs: any other :class:`splitattn.models.ResNet` argument, overriding the zoo entry:
            ``attn=SplitAttention(radix=4)`` replaces the entry's attention, ``attn={"radix": 4}``
            changes some of its fields and keeps the others; ``norm_layer``, ``act_layer`` ...
    """
    common = dict(drop_rate=drop_rate, drop_path_rate=drop_path_rate, drop_block_rate=drop_block_rate,
                  output_stride=output_stride, **kwargs)
    if is_repo_spec(name):
        model = _from_repo(name, pretrained is None or pretrained, num_classes, in_chans, common)
    else:
        entry, weights = resolve_name(name)
        tag = weights.tag if weights is not None else None
        model = entry.build(tag, num_classes=1000 if num_classes is None else num_classes,
                            in_chans=3 if in_chans is None else in_chans, **common)
        if pretrained:
            load_pretrained(model, entry.name, pretrained, tag)
    return ResNetFeatures(model, out_indices) if features_only else model


def _from_repo(spec: str, pretrained: bool | str | os.PathLike, num_classes: int | None, in_chans: int | None,
               common: dict[str, Any]) -> ResNet:
    """The model a repository's config.json describes, with the repository's weights unless told otherwise."""
    repo = Repo(spec)
    config = RepoConfig.parse(repo.config(), spec)
    entry, _ = resolve_name(config.architecture)
    classes = config.num_classes if num_classes is None else num_classes
    model = entry.build(config.tag, num_classes=classes, in_chans=config.in_chans if in_chans is None else in_chans,
                        **{**config.model_args, **common})
    model.pretrained_cfg.update(config.input_cfg)
    if config.tag is None:  # weights of the repository's own: none of the published numbers apply
        model.pretrained_cfg.update(tag=None, top1=None, top1_by=None, license=None, sources=())
    imagenet = imagenet_classes()
    if config.label_names is not None and classes == config.num_classes:
        if config.label_names == list(imagenet.synsets):  # timm's configs name ImageNet's classes by synset
            model.pretrained_cfg.update(label_names=list(imagenet.names), label_synsets=list(imagenet.synsets))
        else:
            if config.label_names != model.pretrained_cfg.get("label_names"):  # its own classes, not ImageNet's
                model.pretrained_cfg.pop("label_synsets", None)
            model.pretrained_cfg["label_names"] = config.label_names
    if pretrained is True:
        state = unwrap_state_dict(load_checkpoint_file(repo.weights_file()))
        load_state(model, entry.name, state, spec, config.layout)
        model.pretrained_cfg["loaded_from"] = spec
    elif pretrained:
        load_pretrained(model, entry.name, pretrained, config.tag)
    return model
