"""An evaluation set: the images of a folder, each known by its path, with the labels its layout gives.

Training's :class:`~splitattn.data.ImageFolderDataset` needs the folder to hold exactly the
training classes. Evaluation must also take a val folder of a subset of them, ImageNet's synset
folders for a model whose outputs are named "tench", V2's numbered folders, a flat folder labelled
by a CSV, and ReaL's label sets, which are looked up by file name. So each sample here is yielded
with its position (:class:`KeyedImages`), and its labels live beside it in :class:`EvalSet`, where
any label source can fill them in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..models.classes import ClassList
from .folder import IMAGE_EXTENSIONS, DataError, load_rgb
from .label_layouts import folder_labels, labels_from_csv, real_label_sets


@dataclass
class EvalSet:
    """The images to score, their paths under ``root`` (``files``) and what they are.

    ``labels`` holds one class index per image (None: the layout gives none, as a flat folder with
    only ReaL labels); ``label_sets`` ImageNet-ReaL's set per image where given. ``layout`` says
    where the labels came from; ``not_on_disk`` lists labelled files that are missing;
    ``empty_files`` counts zero-byte files left out.
    """

    root: Path
    files: list[str]
    labels: list[int] | None
    layout: str
    label_sets: list[frozenset[int]] | None = None
    not_on_disk: list[str] = field(default_factory=list)
    empty_files: int = 0


def _images_under(root: Path) -> tuple[list[str], int]:
    """Image files under ``root`` (relative posix paths, sorted) and how many zero-byte ones were left out."""
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    kept = [p for p in found if p.stat().st_size > 0]
    return [p.relative_to(root).as_posix() for p in kept], len(found) - len(kept)


def scan_eval_set(root: str | os.PathLike, classes: ClassList, layout: str = "auto",
                  labels_csv: str | os.PathLike | None = None,
                  real_labels: str | os.PathLike | None = None) -> EvalSet:
    """The images of ``root`` and their labels.

    Args:
        root: the data directory: class folders (``root/<class>/<image>``, any depth below), or
            images anywhere below it when ``labels_csv`` or ``real_labels`` labels them.
        classes: the model's classes (names, and synsets where they are ImageNet's).
        layout: how class folders are named, a key of
            :data:`~splitattn.data.label_layouts.FOLDER_LAYOUTS` or ``"auto"``.
        labels_csv: a CSV of ``file,class`` labelling the images instead of their folders.
        real_labels: ImageNet-ReaL's JSON; adds a label set to each image.

    Raises:
        DataError: a missing or empty directory, folders the model does not know, images no label
            source labels.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data directory {os.fspath(root)!r} " + ("is not a directory" if root.exists()
                                                                  else "does not exist"))
    files, empty = _images_under(root)
    if not files:
        raise DataError(f"no images under {os.fspath(root)!r} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    labels: list[int] | None = None
    missing: list[str] = []
    if labels_csv is not None:
        used = "csv"
        labels, missing = labels_from_csv(labels_csv, files, classes)
    else:
        folders = sorted({f.split("/", 1)[0] for f in files if "/" in f})
        loose = [f for f in files if "/" not in f]
        if folders and loose:
            raise DataError(f"{os.fspath(root)!r} holds both class folders and {len(loose)} image(s) outside them "
                            f"({', '.join(loose[:3])}); move them, or label every image with a labels CSV")
        if folders:
            used, by_folder = folder_labels(folders, classes, layout, root)
            labels = [by_folder[f.split("/", 1)[0]] for f in files]
        elif real_labels is None:
            raise DataError(f"{os.fspath(root)!r} has images but no class folders; label them with a CSV of "
                            f"file,class or ImageNet-ReaL's JSON, or put them in {root}/<class>/<image>")
        else:
            used = "real"
    label_sets = real_label_sets(real_labels, files, classes) if real_labels is not None else None
    return EvalSet(root=root, files=files, labels=labels, layout=used, label_sets=label_sets,
                   not_on_disk=missing, empty_files=empty)


class KeyedImages(Dataset):
    """``files`` under ``root`` as (image, position); None for an image that cannot be read."""

    def __init__(self, root: str | os.PathLike, files: Sequence[str], transform: Callable | None = None) -> None:
        self.root = Path(root)
        self.files = list(files)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            image = load_rgb(self.root / self.files[index])
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
        return (self.transform(image) if self.transform is not None else image), index


def collate_keyed(batch: list) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the readable samples with their positions; also return how many were unreadable."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), len(batch)
    return (torch.stack([image for image, _ in kept]), torch.tensor([i for _, i in kept], dtype=torch.long),
            len(batch) - len(kept))
