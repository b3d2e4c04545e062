"""Loading a trained model for evaluation or prediction, with the preprocessing it was trained for."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..data import eval_transform
from ..errors import SplitattnError
from ..factory import create_model
from ..interface import option
from ..models.classes import ClassList
from ..models.imagenet import imagenet_classes
from ..models.registry import input_cfg, resolve_name, split_name
from ..quantize import is_quantized_archive, load_quantized
from ..weights import PUBLISHED, classifier_outputs, is_repo_spec, load_checkpoint_file, load_state, unwrap_state_dict
from ..weights.download import is_url
from ..weights.load import resolve_weights


@dataclass
class TrainedModel:
    """A model in eval mode plus what its inputs and outputs mean."""

    model: nn.Module
    model_name: str
    class_names: list[str]
    image_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    config: dict  # the training run's settings, when the checkpoint records them
    class_synsets: list[str] | None = None  # the WordNet ids of the classes, where they are ImageNet's

    @property
    def classes(self) -> ClassList:
        """The classes as one lookup by name, synset or index (what evaluation's label files resolve against),
        with ImageNet's lemmas where the classes are ImageNet's (a dataset may name them so)."""
        synsets = tuple(self.class_synsets) if self.class_synsets is not None else None
        imagenet = imagenet_classes()
        lemma_of = dict(zip(imagenet.synsets, imagenet.lemmas or imagenet.names, strict=True))
        lemmas = tuple(lemma_of[s] for s in synsets) if synsets and all(s in lemma_of for s in synsets) else None
        return ClassList(tuple(self.class_names), synsets, lemmas)

    @property
    def transform(self):
        """The preprocessing of evaluation for this model: resize, centre crop, normalise."""
        return eval_transform(self.image_size, self.mean, self.std, self.crop_pct, self.interpolation)


def load_trained(checkpoint: str | Path, model_name: str | None = None, image_size: int | None = None,
                 crop_pct: float | None = None, interpolation: str | None = None, *,
                 compile: bool = True) -> TrainedModel:
    """A trained model from a checkpoint of ``splitattn train``, a weights file or a model repository.

    Everything the run knew comes from the checkpoint: the architecture (``model_name`` is needed
    only for bare weight files), the classes and their names, and the preprocessing the run used
    (else the model's pretrained config); explicit arguments win. A weights file that names no
    classes has ImageNet-1k's when its classifier has 1000 outputs (every published file is one),
    else its indices as names. Nothing is unpickled. For a
    repository (``hf-hub:org/repo``, ``local-dir:PATH``) the same comes from its ``config.json``,
    for an int8 model of ``splitattn quantize`` (``.pt2``, or ``.xml`` from its OpenVINO engine), a
    compiled package or a saved engine model (``save_openvino``'s ``.xml``, ``save_onnxruntime``'s
    ``.onnx``) from the metadata inside it.
    The returned model's ``pretrained_cfg`` is updated to match, so ``save_pretrained`` keeps it.

    Args:
        checkpoint: the file, folder or repository spec to load.
        model_name: the architecture, for weight files that do not record it.
        image_size, crop_pct, interpolation: override the preprocessing the checkpoint records.
        compile: for an int8 archive, compile its graph on the first call (``load_quantized``'s);
            False runs it as stored, with no compile wait and no C++ compiler. Other models ignore it.
    """
    if is_quantized_archive(checkpoint):  # an int8 model of `splitattn quantize`: its metadata says it all
        quantized = load_quantized(checkpoint, compile=compile)
        cfg = quantized.pretrained_cfg
        if not cfg:
            raise SplitattnError(f"{checkpoint} does not record its input settings; quantize it with splitattn "
                                 "quantize")
        names = _class_names(cfg.get("label_names"), cfg.get("label_synsets"), quantized.num_classes)
        return _finish(quantized, cfg.get("architecture") or "int8", names, {}, image_size or cfg["input_size"][-1],
                       crop_pct or cfg["crop_pct"], interpolation or cfg["interpolation"])
    if is_repo_spec(str(checkpoint)):
        model = create_model(str(checkpoint)).eval()
        cfg = model.pretrained_cfg
        names = _class_names(cfg.get("label_names"), cfg.get("label_synsets"), model.num_classes)
        return _finish(model, cfg["architecture"], names, {}, image_size or cfg["input_size"][-1],
                       crop_pct or cfg["crop_pct"], interpolation or cfg["interpolation"])
    raw = load_checkpoint_file(checkpoint)
    recorded = raw.get("model_name")
    if model_name is None and not isinstance(recorded, str):
        raise SplitattnError(f"{checkpoint} does not say which architecture it holds (it is not a checkpoint of "
                             f"splitattn train); name it with {option('model_name', 'NAME')}")
    if model_name is not None and isinstance(recorded, str) and split_name(recorded)[0] != split_name(model_name)[0]:
        raise SplitattnError(f"{checkpoint} was trained as {recorded!r}, not {model_name!r}")
    model_name = model_name or recorded
    state = unwrap_state_dict(raw)
    num_classes = classifier_outputs(state)
    recorded_names = [str(c) for c in raw.get("class_names", [])]
    if recorded_names and len(recorded_names) != num_classes:
        raise SplitattnError(f"{checkpoint}: {len(recorded_names)} class names for a {num_classes}-class classifier")
    classes = _class_names(recorded_names or None, None, num_classes)
    cfg = input_cfg(model_name)
    trained = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    attn = trained.get("attn") or None  # the attention fields the run changed (attn.radix=4), if any
    model = load_state(create_model(model_name, num_classes=num_classes, attn=attn), split_name(model_name)[0],
                       state, str(checkpoint)).eval()
    return _finish(model, model_name, classes, trained,
                   image_size or trained.get("image_size") or cfg.input_size[-1],
                   crop_pct or trained.get("crop_pct") or cfg.crop_pct,
                   interpolation or trained.get("interpolation") or cfg.interpolation)


WEIGHT_SUFFIXES = frozenset({".pth", ".pt", ".bin", ".safetensors", ".pt2", ".xml", ".onnx", ".ckpt"})


def load_published(model_name: str | None, pretrained: str | os.PathLike = PUBLISHED, image_size: int | None = None,
                   crop_pct: float | None = None, interpolation: str | None = None) -> TrainedModel:
    """A zoo model with published or given weights, fed as its weights tag says (no training run needed).

    Args:
        model_name: a zoo name, or ``name.tag`` for particular published weights; the tag's input
            size, crop and interpolation are the preprocessing unless given here.
        pretrained: ``"published"`` (the tag's weights, fetched once into the cache), a file, a URL,
            or a repository (``hf-hub:org/repo``, ``local-dir:PATH``; its ``config.json`` then
            names the architecture, which must be ``model_name``'s where that is given). A
            1000-class file that records no class names has the ImageNet-1k classes; a training
            checkpoint keeps its own.
        image_size, crop_pct, interpolation: override the preprocessing.
    """
    if is_repo_spec(os.fspath(pretrained)):
        trained = load_trained(pretrained, None, image_size, crop_pct, interpolation)
        if model_name is not None and split_name(trained.model_name)[0] != split_name(model_name)[0]:
            raise SplitattnError(f"{os.fspath(pretrained)} holds a {trained.model_name!r}, not a {model_name!r}")
        return trained
    if model_name is None:
        raise SplitattnError(f"{option('pretrained', os.fspath(pretrained))} needs the architecture: add "
                             f"{option('model_name', 'NAME')} (a zoo name, e.g. resnest50)")
    base, tag = split_name(model_name)
    path, _, origin = resolve_weights(base, pretrained, tag)
    trained = load_trained(path, model_name, image_size, crop_pct, interpolation)
    trained.model.pretrained_cfg["loaded_from"] = origin
    return trained


def weights_spec(model: str | None, pretrained: str) -> tuple[str | None, str]:
    """``(model_name, pretrained)`` for :func:`load_published` from the two flags a user gives.

    ``pretrained`` is ``published``, a ``name.tag`` of the zoo (then ``model`` may be left out), a
    file, a URL or a repository (whose ``config.json`` names the model); ``model`` is a zoo name,
    ``name.tag`` too.

    Args:
        model: the ``--model`` given, or None.
        pretrained: the ``--pretrained`` given.

    Raises:
        ValueError: an unknown ``name.tag`` (with close names), or a model and a ``name.tag`` that
            name two different architectures.
    """
    location = os.fspath(pretrained)
    looks_like_a_file = "/" in location or os.sep in location or Path(location).suffix in WEIGHT_SUFFIXES
    named = (location != PUBLISHED and not Path(location).exists() and not is_url(location)
             and not is_repo_spec(location) and not looks_like_a_file and split_name(location)[1] is not None)
    if named:
        resolve_name(location)  # an unknown name or tag: a ValueError with the close ones
        if model is not None and split_name(model)[0] != split_name(location)[0]:
            raise SplitattnError(f"{option('model_name', model)} and {option('pretrained', location)} name two "
                                 f"different models; give one of them")
        return location, PUBLISHED
    return model, location


def _class_names(names: list[str] | None, synsets: list[str] | None, num_classes: int) -> tuple[list[str],
                                                                                               list[str] | None]:
    """Names and synsets of a model's outputs: those recorded; else ImageNet's for 1000 classes; else indices."""
    imagenet = imagenet_classes()
    if names is None and num_classes == len(imagenet):  # a bare ImageNet-1k weights file: every one is in this order
        return list(imagenet.names), list(imagenet.synsets)
    if names is None:
        return [str(i) for i in range(num_classes)], None
    if synsets is None and names == list(imagenet.names):
        synsets = list(imagenet.synsets)
    return list(names), (list(synsets) if synsets is not None and len(synsets) == len(names) else None)


def _finish(model: nn.Module, model_name: str, classes: tuple[list[str], list[str] | None], config: dict,
            image_size: int, crop_pct: float, interpolation: str) -> TrainedModel:
    class_names, class_synsets = classes
    cfg = model.pretrained_cfg
    cfg.update(input_size=(cfg["input_size"][0], image_size, image_size), crop_pct=crop_pct,
               interpolation=interpolation, label_names=class_names)
    if class_synsets is not None:
        cfg["label_synsets"] = class_synsets
    else:
        cfg.pop("label_synsets", None)
    if config:  # weights of a training run: the published weights' numbers do not describe them
        cfg.update(tag=None, top1=None, top1_by=None, license=None, sources=())
    return TrainedModel(model=model, model_name=model_name, class_names=class_names, image_size=image_size,
                        crop_pct=crop_pct, interpolation=interpolation, mean=tuple(cfg["mean"]),
                        std=tuple(cfg["std"]), config=config, class_synsets=class_synsets)
