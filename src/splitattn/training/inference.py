"""Loading a trained model for evaluation or prediction, with the preprocessing it was trained for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..data import eval_transform
from ..factory import create_model
from ..interface import option
from ..models.registry import input_cfg, split_name
from ..quantize import is_quantized_archive, load_quantized
from ..weights import classifier_outputs, is_repo_spec, load_checkpoint_file, load_state, unwrap_state_dict


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

    @property
    def transform(self):
        """The preprocessing of evaluation for this model: resize, centre crop, normalise."""
        return eval_transform(self.image_size, self.mean, self.std, self.crop_pct, self.interpolation)


def load_trained(checkpoint: str | Path, model_name: str | None = None, image_size: int | None = None,
                 crop_pct: float | None = None, interpolation: str | None = None) -> TrainedModel:
    """A trained model from a checkpoint of ``splitattn train``, a weights file or a model repository.

    Everything the run knew comes from the checkpoint: the architecture (``model_name`` is needed
    only for bare weight files), the classes and their names, and the preprocessing the run used
    (else the model's pretrained config); explicit arguments win. Nothing is unpickled. For a
    repository (``hf-hub:org/repo``, ``local-dir:PATH``) the same comes from its ``config.json``,
    for an int8 model of ``splitattn quantize`` (``.pt2``) from the metadata inside it.
    The returned model's ``pretrained_cfg`` is updated to match, so ``save_pretrained`` keeps it.
    """
    if is_quantized_archive(checkpoint):  # an int8 model of `splitattn quantize`: its metadata says it all
        quantized = load_quantized(checkpoint)
        cfg = quantized.pretrained_cfg
        if not cfg:
            raise ValueError(f"{checkpoint} does not record its input settings; quantize it with splitattn quantize")
        names = cfg.get("label_names") or [str(i) for i in range(quantized.num_classes)]
        return _finish(quantized, cfg.get("architecture") or "int8", names, {}, image_size or cfg["input_size"][-1],
                       crop_pct or cfg["crop_pct"], interpolation or cfg["interpolation"])
    if is_repo_spec(str(checkpoint)):
        model = create_model(str(checkpoint)).eval()
        cfg = model.pretrained_cfg
        names = cfg.get("label_names") or [str(i) for i in range(model.num_classes)]
        return _finish(model, cfg["architecture"], names, {}, image_size or cfg["input_size"][-1],
                       crop_pct or cfg["crop_pct"], interpolation or cfg["interpolation"])
    raw = load_checkpoint_file(checkpoint)
    recorded = raw.get("model_name")
    if model_name is None and not isinstance(recorded, str):
        raise ValueError(f"{checkpoint} does not say which architecture it holds (it is not a checkpoint of "
                         f"splitattn train); name it with {option('model_name', 'NAME')}")
    if model_name is not None and isinstance(recorded, str) and split_name(recorded)[0] != split_name(model_name)[0]:
        raise ValueError(f"{checkpoint} was trained as {recorded!r}, not {model_name!r}")
    model_name = model_name or recorded
    state = unwrap_state_dict(raw)
    num_classes = classifier_outputs(state)
    class_names = [str(c) for c in raw.get("class_names", [])] or [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{checkpoint}: {len(class_names)} class names for a {num_classes}-class classifier")
    cfg = input_cfg(model_name)
    trained = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    attn = trained.get("attn") or None  # the attention fields the run changed (attn.radix=4), if any
    model = load_state(create_model(model_name, num_classes=num_classes, attn=attn), split_name(model_name)[0],
                       state, str(checkpoint)).eval()
    return _finish(model, model_name, class_names, trained,
                   image_size or trained.get("image_size") or cfg.input_size[-1],
                   crop_pct or trained.get("crop_pct") or cfg.crop_pct,
                   interpolation or trained.get("interpolation") or cfg.interpolation)


def _finish(model: nn.Module, model_name: str, class_names: list[str], config: dict, image_size: int,
            crop_pct: float, interpolation: str) -> TrainedModel:
    cfg = model.pretrained_cfg
    cfg.update(input_size=(cfg["input_size"][0], image_size, image_size), crop_pct=crop_pct,
               interpolation=interpolation, label_names=class_names)
    if config:  # weights of a training run: the published weights' numbers do not describe them
        cfg.update(tag=None, top1=None, top1_by=None, license=None, sources=())
    return TrainedModel(model=model, model_name=model_name, class_names=class_names, image_size=image_size,
                        crop_pct=crop_pct, interpolation=interpolation, mean=tuple(cfg["mean"]),
                        std=tuple(cfg["std"]), config=config)
