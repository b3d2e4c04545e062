"""Loading a trained model for evaluation or prediction, with the preprocessing it was trained for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..factory import create_model
from ..models import get_model_entry
from ..weights import classifier_outputs, load_checkpoint_file, load_state, unwrap_state_dict


@dataclass
class TrainedModel:
    """A model in eval mode plus what its inputs and outputs mean."""

    model: nn.Module
    class_names: list[str]
    image_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_trained(model_name: str, checkpoint: str | Path, image_size: int | None = None,
                 crop_pct: float | None = None, interpolation: str | None = None) -> TrainedModel:
    """Build ``model_name`` with the checkpoint's classes and weights (loaded without unpickling code).

    Preprocessing defaults to what the run used (our training checkpoints record it), else the
    model's pretrained config; explicit arguments win.
    """
    raw = load_checkpoint_file(checkpoint)
    state = unwrap_state_dict(raw)
    num_classes = classifier_outputs(state)
    class_names = [str(c) for c in raw.get("class_names", [])] or [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{checkpoint}: {len(class_names)} class names for a {num_classes}-class classifier")
    model = load_state(create_model(model_name, num_classes=num_classes), model_name, state, str(checkpoint)).eval()
    cfg = get_model_entry(model_name).pretrained_cfg
    trained = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    return TrainedModel(
        model=model,
        class_names=class_names,
        image_size=image_size or trained.get("image_size") or cfg.input_size[-1],
        crop_pct=crop_pct or trained.get("crop_pct") or cfg.crop_pct,
        interpolation=interpolation or trained.get("interpolation") or cfg.interpolation,
        mean=cfg.mean,
        std=cfg.std,
    )
