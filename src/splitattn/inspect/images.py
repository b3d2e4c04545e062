"""Reading an image the way a model's ``pretrained_cfg`` says it was evaluated.

The same decoding (``data.load_rgb``) and evaluation crop (``data.eval_crop``) as ``splitattn eval``
and ``predict``, so that explanations show what the network sees in evaluation, and so that the
heat map lines up with the crop it is drawn on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2 as T

from ..data import eval_crop, load_rgb
from ..errors import MissingFileError, SplitattnError


@dataclass
class PreparedImage:
    """The network input ``(1, C, H, W)`` and the crop it was made from, as ``(H, W, 3)`` uint8 RGB."""

    tensor: torch.Tensor
    display: np.ndarray


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as RGB, with an error that names the file and says what was expected."""
    if not os.path.isfile(path):
        raise MissingFileError(f"image {os.fspath(path)!r} does not exist (expected a PNG, JPEG or other image file)")
    try:
        return load_rgb(path)
    except (UnidentifiedImageError, OSError) as error:
        raise SplitattnError(f"cannot read {os.fspath(path)!r} as an image (expected a PNG, JPEG or other format "
                             f"Pillow reads): {error}") from None


def prepare_image(image: Image.Image, cfg: dict, in_chans: int = 3) -> PreparedImage:
    """Apply the evaluation transform of ``cfg`` (a model's ``pretrained_cfg``) to a PIL image."""
    if in_chans not in (1, 3):
        raise SplitattnError(f"images can be prepared for 1- or 3-channel models, this one takes {in_chans} channels")
    _, height, width = cfg["input_size"]
    crop = eval_crop(min(height, width), cfg.get("crop_pct", 1.0), cfg.get("interpolation", "bilinear"))
    pixels = crop(T.functional.to_image(image.convert("RGB")))  # (3, H, W) uint8
    mean, std = list(cfg["mean"]), list(cfg["std"])
    channels = pixels
    if in_chans == 1:
        channels = T.functional.rgb_to_grayscale(pixels)
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    tensor = T.functional.normalize(T.functional.to_dtype(channels, torch.float32, scale=True), mean, std)
    return PreparedImage(tensor.unsqueeze(0), pixels.permute(1, 2, 0).numpy().copy())
