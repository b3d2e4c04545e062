"""An evaluation set: the images of a folder, each known by its path, with the labels its layout gives.

Training's :class:`~splitattn.data.ImageFolderDataset` needs the folder to hold exactly the
training classes. Evaluation must also take a val folder of a subset of them, ImageNet's synset
folders for a model whose outputs are named "tench", V2's numbered folders, a flat folder labelled
by a CSV, and ReaL's label sets, which are looked up by file name. So each image here is known by its path
under the root, and its labels live beside it in :class:`EvalSet`, where
any label source can fill them in. An :class:`EvalSet` is a data source like the others
(:class:`~splitattn.data.sources.DataSource`), read through :class:`~splitattn.data.ImageFiles`
and evaluated through :class:`~splitattn.data.EvalSource` as shards and datasets are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..models.classes import ClassList
from .decode import ZERO_BYTES
from .errors import DataError
from .image_files import IMAGE_EXTENSIONS, NO_LABEL, ImageFiles, image_files_under
from .label_layouts import folder_labels, labels_from_csv, real_label_sets
from .skips import SkippedSample


@dataclass
class EvalSet:
    """The images to score, their paths under ``root`` (``files``, also their keys) and what they are.

    ``labels`` holds one output index of the model per image (None: the layout gives none, as a
    flat folder with only ReaL labels); ``label_sets`` ImageNet-ReaL's set per image key where given.
    ``layout`` says where the labels came from; ``not_on_disk`` lists labelled files that are
    missing; ``skipped_files`` names the zero-byte files left out. ``class_names`` are the model's.
    """

    root: Path
    files: list[str]
    labels: list[int] | None
    layout: str
    class_names: list[str]
    label_sets: Mapping[str, frozenset[int]] | None = None
    not_on_disk: list[str] = field(default_factory=list)
    skipped_files: list[SkippedSample] = field(default_factory=list)
    indexed = True

    @property
    def where(self) -> str:
        return os.fspath(self.root)

    @property
    def num_samples(self) -> int:
        return len(self.files)

    def dataset(self, transform: Callable | None, class_names: Sequence[str] | None = None, training: bool = False,
                seed: int = 0, keyed: bool = True) -> ImageFiles:
        """The images as ``(image, label, key)`` (a :class:`~splitattn.data.DataSource`'s signature;
        labels are already the model's, so ``class_names``, ``training`` and ``seed`` change nothing)."""
        labels = self.labels if self.labels is not None else [NO_LABEL] * len(self.files)
        return ImageFiles([self.root / f for f in self.files], transform, labels, self.files)

    def describe(self) -> str:
        return f"{len(self.files)} images under {self.root} ({self.layout})"


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
    found, empty = image_files_under(root)
    files = [p.relative_to(root).as_posix() for p in found]
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
    label_sets = (dict(zip(files, real_label_sets(real_labels, files, classes), strict=True))
                  if real_labels is not None else None)
    return EvalSet(root=root, files=files, labels=labels, layout=used, class_names=list(classes.names),
                   label_sets=label_sets, not_on_disk=missing,
                   skipped_files=[SkippedSample(str(p), ZERO_BYTES) for p in empty])
