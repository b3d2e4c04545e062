"""Image folders as users have them: ``root/<class>/<image>``, with the mess real folders contain.

Problems that would stop a run are found before training starts (missing or empty directory, a
class folder with no images). Problems that only spoil a few files (zero-byte, truncated or
undecodable images) are skipped, counted and named (:mod:`.skips`), never a crash in the middle
of an epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import torch
from PIL import Image, ImageFile
from torch.utils.data import Dataset

from .skips import SkippedSample, Skips

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class DataError(ValueError):
    """A data set that cannot be trained on; the message names the folder and what was expected."""


# What PIL raises for a file that is not a readable image: unknown format, truncated, corrupt.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_problem(error: BaseException) -> str:
    """One line for a skipped image: the decoder's message, or the error's type when it has none."""
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


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


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` files with integer labels in sorted class order.

    ``class_names`` fixes the label order (pass the training set's to the validation set);
    ``skipped_files`` names the zero-byte files dropped while scanning. ``__getitem__`` returns
    a :class:`SkippedSample` (path and reason) for an unreadable image; :func:`collate_skipping`
    drops those and passes their records on.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        if not self.root.exists():
            raise DataError(f"data directory {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise DataError(f"data directory {str(self.root)!r} is not a directory")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise DataError(
                f"data directory {str(self.root)!r} has no class folders; expected {self.root}/<class>/<image>"
            )
        if class_names is not None and set(found) != set(class_names):
            raise DataError(
                f"class folders in {str(self.root)!r} differ from the training classes: "
                f"missing {sorted(set(class_names) - set(found))}, extra {sorted(set(found) - set(class_names))}"
            )
        self.class_names = list(class_names) if class_names is not None else found
        self.samples: list[tuple[Path, int]] = []
        self.skipped_files: list[SkippedSample] = []
        empty_classes = []
        for label, name in enumerate(self.class_names):
            files = sorted(
                p for p in (self.root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
            )
            nonempty = [p for p in files if p.stat().st_size > 0]
            self.skipped_files += [SkippedSample(str(p), "zero-byte file") for p in files if p.stat().st_size == 0]
            if not nonempty:
                empty_classes.append(name)
            self.samples.extend((p, label) for p in nonempty)
        if empty_classes:
            raise DataError(
                f"class folder(s) {empty_classes} in {str(self.root)!r} contain no images "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )

    @property
    def skipped_empty(self) -> int:
        """How many zero-byte files the scan dropped."""
        return len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except DECODE_ERRORS as error:
            return SkippedSample(str(path), decode_problem(error))
        return (self.transform(image) if self.transform is not None else image), label


def collate_skipping(batch: list) -> tuple[torch.Tensor, torch.Tensor, Skips]:
    """Stack the readable samples; also return the unreadable ones (each a :class:`SkippedSample`)
    as :class:`Skips`: their count, which also names them."""
    kept = [item for item in batch if not isinstance(item, SkippedSample)]
    skipped = Skips(item for item in batch if isinstance(item, SkippedSample))
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([image for image, _ in kept])
    labels = torch.tensor([label for _, label in kept], dtype=torch.long)
    return images, labels, skipped
