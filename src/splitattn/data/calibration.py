"""Calibration images for ``splitattn export --precision int8``, read as the model is evaluated.

Post-training quantization picks each activation's int8 range from what the calibration batches
produce, so they must look like real inputs after the model's own eval preprocessing (resize,
centre crop, mean/std): ranges measured on noise or on differently normalised images clip real
activations. This lives in ``splitattn.data``, not in ``splitattn.export`` or ``splitattn.quantize``:
reading images is this layer's, which sits above the exporters and the quantizer; they take
already-made tensors. ``splitattn export --calibration`` and ``splitattn quantize`` read them here.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import MissingFileError
from .decode import load_rgb
from .errors import DataError
from .image_files import IMAGE_EXTENSIONS
from .transforms import eval_transform

DEFAULT_COUNT = 64
DEFAULT_BATCH_SIZE = 8


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    # Zero-byte files are what an interrupted copy leaves; skipping them is what training does too.
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and p.stat().st_size > 0)


def calibration_files(folder: str | os.PathLike, count: int = DEFAULT_COUNT) -> list[Path]:
    """Up to ``count`` image files of ``folder``, taken round-robin over its class sub-folders.

    Round-robin rather than the first ``count`` in sorted order: that would be all of one or two
    classes, and a quantizer calibrated on those alone sets ranges that clip the others. Images
    directly in ``folder`` (a flat folder, or loose files beside class folders) count as one more
    group. The choice is deterministic (sorted), so two exports of one model quantize alike.
    """
    if count < 1:
        raise DataError(f"calibration count must be >= 1, got {count}")
    root = Path(folder)
    if not root.is_dir():
        raise MissingFileError(f"calibration folder {str(root)!r} does not exist or is not a directory")
    groups = [_images_in(root, recursive=False)]
    groups += [_images_in(sub, recursive=True) for sub in sorted(p for p in root.iterdir() if p.is_dir())]
    groups = [g for g in groups if g]
    if not groups:
        raise DataError(f"calibration folder {str(root)!r} holds no images: expected {root}/<class>/<image> "
                        f"or {root}/<image> with one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    interleaved = (path for row in itertools.zip_longest(*groups) for path in row if path is not None)
    return list(itertools.islice(interleaved, count))


def calibration_batches(
    folder: str | os.PathLike,
    model: nn.Module,
    count: int = DEFAULT_COUNT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    img_size: int | None = None,
) -> list[torch.Tensor]:
    """Up to ``count`` images of ``folder`` (see :func:`calibration_files`) as float batches (N, C, H, W).

    Preprocessing is the model's ``pretrained_cfg`` (crop_pct, interpolation, mean, std) at its
    input size, or at ``img_size`` when the export is traced at another resolution: the batches
    must match the size the file is checked at.
    """
    if batch_size < 1:
        raise DataError(f"calibration batch size must be >= 1, got {batch_size}")
    cfg = model.pretrained_cfg
    channels, height, width = cfg["input_size"]
    if img_size is None and height != width:
        raise DataError(f"calibration needs a square input; {cfg['input_size']} is not: pass --img-size")
    if channels != 3:
        raise DataError(f"calibration images are read as RGB (3 channels); the model takes {channels}")
    size = img_size or height
    transform = eval_transform(size, cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"])
    images = []
    for path in calibration_files(folder, count):
        try:
            images.append(transform(load_rgb(path)))
        except (OSError, ValueError, SyntaxError) as error:
            raise DataError(f"cannot read calibration image {str(path)!r}: {error}") from None
    stacked = torch.stack(images)
    return list(stacked.split(batch_size))
