"""Image folders as users have them: ``root/<class>/<image>``, with the mess real folders contain.

Problems that would stop a run are found before training starts (missing or empty directory, a
class folder with no images). Problems that only spoil a few files (zero-byte, truncated or
undecodable images) are skipped and counted, never a crash in the middle of an epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageFile
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class DataError(ValueError):
    """A data set that cannot be trained on; the message names the folder and what was expected."""


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode any image PIL reads as 8-bit RGB: grayscale, palette, CMYK; transparency onto white."""
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
    ``skipped_empty`` counts zero-byte files dropped while scanning. ``__getitem__`` returns
    None for an unreadable image; :func:`collate_skipping` drops and counts those.
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
        self.skipped_empty = 0
        empty_classes = []
        for label, name in enumerate(self.class_names):
            files = sorted(
                p for p in (self.root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
            )
            nonempty = [p for p in files if p.stat().st_size > 0]
            self.skipped_empty += len(files) - len(nonempty)
            if not nonempty:
                empty_classes.append(name)
            self.samples.extend((p, label) for p in nonempty)
        if empty_classes:
            raise DataError(
                f"class folder(s) {empty_classes} in {str(self.root)!r} contain no images "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
        return (self.transform(image) if self.transform is not None else image), label


def collate_skipping(batch: list) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the readable samples; also return how many were unreadable (None)."""
    kept = [item for item in batch if item is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([image for image, _ in kept])
    labels = torch.tensor([label for _, label in kept], dtype=torch.long)
    return images, labels, skipped
