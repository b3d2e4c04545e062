"""Data source kinds: where training and evaluation images come from, read from one table.

``--data`` names a source; the first kind in :data:`SOURCE_KINDS` that claims the spec opens it:

- ``hf:NAME``: a Hugging Face dataset (:mod:`.hf`);
- shards: ``DIR`` holding ``_info.json``, ``shards/train-{000000..000127}.tar``, or ``pipe:`` commands
  (:mod:`.shards`);
- an image folder: ``DIR`` with ``train/<class>/`` and ``val/<class>/`` (or a class folder itself),
  and the built-in ``digits`` (:mod:`.folder`).

Each opened source says whether it is *indexed* (a length and random access: folders, downloaded
or saved Hugging Face datasets), which the trainer shares out with ``DistributedSampler`` and
resumes exactly, or a stream (shards, streamed datasets), which shares itself out over ranks and
workers (``configure``, ``set_epoch``, ``steps``). A source that cannot be opened (missing shard,
unknown dataset or split, missing package) raises here, before the first step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torch.utils.data import Dataset

from ..interface import option
from .digits import prepare_digits
from .errors import DataError
from .folder import ImageFolderDataset
from .hf import HFImages, HFStream, open_hf
from .shard_info import INFO_FILE, ShardList, shard_class_names, shard_list
from .shards import ShardStream
from .skips import SkippedSample
from .source_options import DEFAULT_SPLITS, SourceOptions


class DataSource(Protocol):
    """An opened source of one split. ``dataset`` builds what a DataLoader reads: items are
    (image, label) or :class:`SkippedSample`, with the sample's key as a third item when ``keyed``."""

    where: str
    class_names: list[str]
    num_samples: int | None
    indexed: bool
    skipped_files: Sequence[SkippedSample]  # left out before reading (a folder's zero-byte files)

    def dataset(self, transform: Callable | None, class_names: Sequence[str], training: bool, seed: int,
                keyed: bool = False) -> Any: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SourceKind:
    """One kind of ``--data``: which specs it claims and how it opens them."""

    name: str
    claims: Callable[[str], bool]
    open: Callable[[str, str, SourceOptions], DataSource]
    example: str


# ----------------------------------------------------------------------------------- folders
class _Keyed(Dataset):
    """A folder's items with their file path as a third item."""

    def __init__(self, folder: ImageFolderDataset) -> None:
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int):
        item = self.folder[index]
        return item if isinstance(item, SkippedSample) else (*item, str(self.folder.samples[index][0]))


class FolderSource:
    """A scanned class folder; scanned once (an ImageNet folder takes a while), rescanned only to
    label it in another class order."""

    indexed = True

    def __init__(self, folder: ImageFolderDataset) -> None:
        self.folder = folder
        self.root, self.where = folder.root, str(folder.root)
        self.class_names, self.num_samples = folder.class_names, len(folder)
        self.skipped_files = folder.skipped_files

    def dataset(self, transform: Callable | None, class_names: Sequence[str], training: bool, seed: int,
                keyed: bool = False) -> Dataset:
        if list(class_names) == self.class_names:
            folder = copy.copy(self.folder)
            folder.transform = transform
        else:
            folder = ImageFolderDataset(self.root, transform, class_names)
        return _Keyed(folder) if keyed else folder

    def describe(self) -> str:
        return f"{self.num_samples} images in {len(self.class_names)} class folders at {self.root}"


VAL_FOLDERS = ("val", "validation")  # a folder's validation split, beside train/


def open_folder(spec: str, role: str, options: SourceOptions) -> FolderSource:
    """``spec/<split>`` when it exists (``train``, ``val`` or the split named), else ``spec`` itself."""
    root = prepare_digits() if spec == "digits" else Path(spec)
    names = (options.split,) if options.split else {"train": ("train",), "val": VAL_FOLDERS}[role]
    split_dir = next((root / n for n in names if (root / n).is_dir()), None)
    if split_dir is None and (root / "train").is_dir():
        raise DataError(f"data directory {str(root)!r} has train/ but no {'/ or '.join(names)}/ for {role}: "
                        f"expected {root}/{names[0]}/<class>/<image>, or give another source with "
                        f"{option('val_data', 'SOURCE')}")
    return FolderSource(ImageFolderDataset(split_dir or root))


# ------------------------------------------------------------------------------------ shards
@dataclass
class ShardSource:
    shards: ShardList
    where: str
    class_names: list[str]
    num_samples: int
    shuffle_buffer: int
    indexed: bool = False
    skipped_files: tuple = ()

    def dataset(self, transform: Callable | None, class_names: Sequence[str], training: bool, seed: int,
                keyed: bool = False) -> ShardStream:
        return ShardStream(self.shards, transform, class_names, self.class_names, training, self.shuffle_buffer,
                           seed, keyed)

    def describe(self) -> str:
        urls = self.shards.urls
        shards = f"{len(urls)} shard{'s' if len(urls) > 1 else ''}"
        return f"{self.num_samples} samples in {shards} ({urls[0]}{' ...' if len(urls) > 1 else ''})"


def _claims_shards(spec: str) -> bool:
    return spec.startswith("pipe:") or ".tar" in spec or (Path(spec).is_dir() and (Path(spec) / INFO_FILE).is_file())


def open_shards(spec: str, role: str, options: SourceOptions) -> ShardSource:
    shards = shard_list(spec, role, options.split, options.shard_info)
    return ShardSource(shards, spec, shard_class_names(shards, options.num_classes), shards.num_samples,
                       options.shuffle_buffer)


# ------------------------------------------------------------------------- Hugging Face
@dataclass
class HFSource:
    split: Any  # hf.HFSplit
    where: str
    class_names: list[str]
    num_samples: int | None
    shuffle_buffer: int
    indexed: bool
    skipped_files: tuple = ()

    def dataset(self, transform: Callable | None, class_names: Sequence[str], training: bool, seed: int,
                keyed: bool = False) -> HFImages | HFStream:
        if self.indexed:
            return HFImages(self.split, transform, class_names, keyed)
        return HFStream(self.split, transform, class_names, training, self.shuffle_buffer, seed, keyed)

    def describe(self) -> str:
        count = f"{self.num_samples} samples" if self.num_samples is not None else "a stream of samples"
        return f"{count} of {self.where}{' (streamed)' if not self.indexed else ''}"


def open_hf_source(spec: str, role: str, options: SourceOptions) -> HFSource:
    split = open_hf(spec.removeprefix("hf:"), role, options)
    return HFSource(split, split.where, split.class_names, split.num_samples, options.shuffle_buffer,
                    indexed=not split.streaming)


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("hf", lambda spec: spec.startswith("hf:"), open_hf_source, "hf:NAME"),
    SourceKind("shards", _claims_shards, open_shards, "'shards/train-{000000..000127}.tar'"),
    SourceKind("folder", lambda spec: True, open_folder, "DIR (DIR/train/<class>/<image>) or digits"),
)


def source_kind(spec: str) -> SourceKind:
    return next(kind for kind in SOURCE_KINDS if kind.claims(spec))


def open_source(spec: str, role: str = "train", options: SourceOptions | None = None) -> DataSource:
    """Open the ``role`` split of the source ``spec``; every check that can fail before training runs here.

    Args:
        spec: ``digits``, an image folder, shards (a directory with ``_info.json``, a brace pattern,
            ``pipe:`` commands) or ``hf:NAME``.
        role: ``train`` or ``val``; for a spec naming the training data (an image folder root, a
            shard set, a dataset), ``val`` opens its validation split.
        options: split, columns, streaming and the other per-kind options.
    """
    if role not in DEFAULT_SPLITS:
        raise DataError(f"role must be one of {list(DEFAULT_SPLITS)}, got {role!r}")
    return source_kind(spec).open(spec, role, options or SourceOptions())
