"""Image files on disk: finding them under a folder, and reading a list of them keyed by name.

Training's class folders, ``splitattn eval``'s validation folders and ``splitattn predict``'s files
and folders are all walked by :func:`image_files_under` (recursively, sorted, hidden files and
folders left out, zero-byte files set apart), and a list of files is read by :class:`ImageFiles`,
which yields each image with its label and its key, or a :class:`~splitattn.data.SkippedSample`
naming an unreadable one (:func:`~splitattn.data.decode.read_or_skip`). The reason travels with
the sample, not in the dataset's state, so this also holds with loader worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from torch.utils.data import Dataset

from .decode import read_or_skip
from .errors import DataError
from .skips import SkippedSample

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
NO_LABEL = -1  # the label of an image nothing labels (predict's files, a folder labelled by ReaL only)


def image_files_under(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The image files below ``root`` (any depth, sorted) and, apart, the zero-byte ones among them.

    Files and folders whose name starts with a dot (``.DS_Store``, ``.ipynb_checkpoints/``) are not
    the user's images and are left out; so is any file without an image suffix.

    Args:
        root: a folder.

    Returns:
        ``(files, empty_files)``: the non-empty image files, and the zero-byte ones.
    """
    root = Path(root)
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    empty = {p for p in found if p.stat().st_size == 0}
    return [p for p in found if p not in empty], [p for p in found if p in empty]


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths``, in the order given; each folder walked recursively, sorted.

    A file named explicitly is kept whatever its suffix (the user asked for it; if it is no image,
    it is reported as unreadable); inside folders only files with an image suffix count, zero-byte
    ones too (reported as unreadable, so that every image asked for has a row).

    Args:
        paths: image files and folders of images.

    Raises:
        DataError: a path that does not exist, a folder without images, or no paths at all.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files, empty = image_files_under(path)
            if not files and not empty:
                raise DataError(f"folder {str(path)!r} holds no image files "
                                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, in sub-folders too)")
            found.extend(sorted(files + empty))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {str(path)!r}")
    if not found:
        raise DataError("no images given; name image files or folders of images")
    return found


class ImageFiles(Dataset):
    """``files`` as ``(image, label, key)``, or a :class:`~splitattn.data.SkippedSample` for one
    that cannot be read; batched by :func:`~splitattn.data.collate_keyed`.

    Args:
        files: the image files.
        transform: applied to each decoded RGB image.
        labels: each file's class index (None: :data:`NO_LABEL` for all).
        keys: how each file is named in results and skip reports (None: its path).
    """

    def __init__(self, files: Iterable[str | os.PathLike], transform: Callable | None,
                 labels: Sequence[int] | None = None, keys: Sequence[str] | None = None) -> None:
        self.files = [Path(f) for f in files]
        self.transform = transform
        self.labels = list(labels) if labels is not None else [NO_LABEL] * len(self.files)
        self.keys = list(keys) if keys is not None else [str(f) for f in self.files]
        if not len(self.labels) == len(self.keys) == len(self.files):
            raise DataError(f"{len(self.files)} files need as many labels and keys, "
                            f"got {len(self.labels)} and {len(self.keys)}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        image = read_or_skip(self.files[index], self.transform, self.keys[index])
        return image if isinstance(image, SkippedSample) else (image, self.labels[index], self.keys[index])
