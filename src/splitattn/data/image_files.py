"""Loose image files to run a model on: files and folders as a user names them, unreadable ones reported.

A prediction run over thousands of photos should not stop at the first broken file, nor drop it
silently: each image comes out of the loader with its path, and an image that cannot be decoded
comes out as its path and the reason, so the caller can list it in its output. The reason travels
with the sample (not in the dataset's state), so this also holds with loader worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from .folder import IMAGE_EXTENSIONS, DataError, load_rgb


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths``, in the order given; each folder walked recursively, sorted.

    A file named explicitly is kept whatever its suffix (the user asked for it; if it is no image,
    it is reported as unreadable); inside folders only files with an image suffix count.

    Args:
        paths: image files and folders of images.

    Raises:
        DataError: a path that does not exist, a folder without images, or no paths at all.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*")
                            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not images:
                raise DataError(f"folder {str(path)!r} holds no image files "
                                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, in sub-folders too)")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {str(path)!r}")
    if not found:
        raise DataError("no images given; name image files or folders of images")
    return found


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class ImageFiles(Dataset):
    """``files`` as ``(path, tensor, None)``, or ``(path, None, reason)`` for one that cannot be read."""

    def __init__(self, files: Iterable[str | os.PathLike], transform: Callable) -> None:
        self.files = [Path(f) for f in files]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor | None, str | None]:
        path = self.files[index]
        try:
            if path.stat().st_size == 0:
                return str(path), None, "empty file (0 bytes)"
            image = load_rgb(path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            return str(path), None, _reason(error)
        return str(path), self.transform(image), None


@dataclass
class ImageBatch:
    """A batch of :class:`ImageFiles` samples: every path in order, the readable images stacked."""

    paths: list[str]
    errors: list[str | None]  # None where the image was read; its row is then the next one of ``images``
    images: torch.Tensor  # (number readable, C, H, W); empty when none was


def collate_images(samples: list[tuple[str, torch.Tensor | None, str | None]]) -> ImageBatch:
    """Stack the readable images of ``samples`` and keep every path with its error, in order.

    Args:
        samples: what :class:`ImageFiles` returns, one per image (the DataLoader's ``collate_fn``).
    """
    tensors = [tensor for _, tensor, _ in samples if tensor is not None]
    return ImageBatch(paths=[path for path, _, _ in samples], errors=[error for _, _, error in samples],
                      images=torch.stack(tensors) if tensors else torch.empty(0))
