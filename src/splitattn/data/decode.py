"""One image file to an RGB image, or a named reason why not: the same for training, eval and predict.

Every reader of images (class folders, loose files, shard members, Hugging Face rows) decodes with
:func:`load_rgb` and names an image it cannot use with :func:`decode_problem`, so that a broken file
is reported in the same words by ``splitattn train`` (its log and ``skipped.txt``), ``eval`` and
``predict``. :func:`read_or_skip` is that for a file on disk, zero-byte files included.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, ImageFile

from .skips import SkippedSample

# What PIL raises for a file that is not a readable image: unknown format, truncated, corrupt.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
ZERO_BYTES = "zero-byte file"  # the reason given for an empty file, wherever it is met


def decode_problem(error: BaseException) -> str:
    """One line for a skipped image: the error's type and the decoder's first line of message
    (``UnidentifiedImageError: cannot identify image file ...``), the type alone when it has none."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def load_rgb(path: str | os.PathLike | BinaryIO) -> Image.Image:
    """Decode any image PIL reads as 8-bit RGB: grayscale, palette, CMYK; transparency onto white.

    Args:
        path: an image file, or an open binary stream (``io.BytesIO`` of a shard member's bytes).
    """
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey half-image
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")


def read_or_skip(path: str | os.PathLike, transform: Callable | None = None,
                 key: str | None = None) -> Any | SkippedSample:
    """The image at ``path`` (transformed), or a :class:`SkippedSample` naming it and why it cannot be read.

    Args:
        path: an image file.
        transform: applied to the decoded RGB image (None: the PIL image itself).
        key: how the skipped record names the file (default: ``path`` as given).
    """
    name = key if key is not None else os.fspath(path)
    try:
        if Path(path).stat().st_size == 0:
            return SkippedSample(name, ZERO_BYTES)
        image = load_rgb(path)
    except DECODE_ERRORS as error:
        return SkippedSample(name, decode_problem(error))
    return transform(image) if transform is not None else image
