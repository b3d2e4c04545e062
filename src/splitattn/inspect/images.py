"""Reading an image the way a model's ``pretrained_cfg`` says it was evaluated.

Resize the shorter side to ``size / crop_pct``, centre-crop ``size``, normalise with the
configured mean and std: the standard ImageNet evaluation transform, so that explanations show
what the network sees in evaluation, and so that the heat map lines up with the crop it is drawn on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

_INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                  "nearest": InterpolationMode.NEAREST}


@dataclass
class PreparedImage:
    """The network input ``(1, C, H, W)`` and the crop it was made from, as ``(H, W, 3)`` uint8 RGB."""

    tensor: torch.Tensor
    display: np.ndarray


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file, with an error that names the file and says what was expected."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {os.fspath(path)!r} does not exist (expected a PNG, JPEG or other image file)")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read {os.fspath(path)!r} as an image (expected a PNG, JPEG or other format "
                         f"Pillow reads): {error}") from None


def prepare_image(image: Image.Image, cfg: dict, in_chans: int = 3) -> PreparedImage:
    """Apply the evaluation transform of ``cfg`` (a model's ``pretrained_cfg``) to a PIL image."""
    _, height, width = cfg["input_size"]
    interpolation = _INTERPOLATION.get(cfg.get("interpolation", "bilinear"), InterpolationMode.BILINEAR)
    scale = math.floor(min(height, width) / cfg.get("crop_pct", 1.0))
    rgb = image.convert("RGB")
    cropped = TF.center_crop(TF.resize(rgb, scale, interpolation=interpolation), [height, width])
    mean, std = list(cfg["mean"]), list(cfg["std"])
    if in_chans == 1:
        tensor = TF.to_tensor(cropped.convert("L"))
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    elif in_chans == 3:
        tensor = TF.to_tensor(cropped)
    else:
        raise ValueError(f"images can be prepared for 1- or 3-channel models, this one takes {in_chans} channels")
    tensor = TF.normalize(tensor, mean, std).unsqueeze(0)
    return PreparedImage(tensor, np.asarray(cropped, dtype=np.uint8).copy())
