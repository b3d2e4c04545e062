"""Hugging Face datasets (``--data hf:NAME``): from the Hub or its cache, streamed, or saved on disk.

``hf:NAME`` is what ``datasets.load_dataset(NAME, **hf_options)`` opens: a Hub dataset, a local
dataset folder, or a packaged builder such as ``imagefolder`` with ``hf_options.data_dir=DIR``;
``hf:PATH`` of a folder written by ``save_to_disk`` is read with ``load_from_disk``. ``datasets``
is imported only here, on use.

Downloaded and saved datasets are Arrow tables with a length and random access, so they train
like a folder: ``DistributedSampler`` shares them out, an epoch's order comes from (seed, epoch)
and a resumed run continues exactly. A streamed dataset (``hf_streaming=true``) is read as a
stream instead (:class:`HFStream`). Images are decoded here rather than by ``datasets``, so that
an undecodable one is skipped and named instead of raising in a loader worker.
"""

from __future__ import annotations

import difflib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..interface import option
from .decode import DECODE_ERRORS, decode_problem, load_rgb
from .errors import DataError
from .label_layouts import labels_by_name
from .optional import require
from .skips import SkippedSample
from .source_options import SourceOptions, choose_split

SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes
IMAGE_COLUMNS = ("image", "img")  # tried when the features name no Image column
LABEL_COLUMNS = ("label", "labels", "cls")


@dataclass
class HFSplit:
    """One split of a Hugging Face dataset, its columns and classes."""

    data: Any  # datasets.Dataset or datasets.IterableDataset, images not decoded
    where: str  # hf:NAME[split], for messages and skipped-sample keys
    image_column: str
    label_column: str
    class_names: list[str]
    num_samples: int | None
    streaming: bool


def open_hf(name: str, role: str, options: SourceOptions) -> HFSplit:
    """The ``role`` split of the dataset ``name``, checked (split, columns, classes) before any step.

    Args:
        name: a Hub name, a ``load_dataset`` builder or folder, or a ``save_to_disk`` folder.
        role: ``train`` or ``val``: which split is read when ``options.split`` is None.
        options: split, columns, streaming and ``load_dataset`` arguments.
    """
    datasets = require("datasets", f"hf:{name}", "hf")
    path = Path(name)
    try:
        if path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS):
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(name, streaming=options.streaming, **dict(options.hf_options))
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as error:
        raise DataError(f"cannot open the Hugging Face dataset hf:{name}: {str(error).splitlines()[0]}") from None
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        split = choose_split(list(loaded), options.split, role, f"hf:{name}")
        data = loaded[split]
    else:
        data, split = loaded, str(loaded.split or options.split or role)
    where = f"hf:{name}[{split}]"
    features = data.features
    if features is None:
        raise DataError(f"{where} does not declare its features (columns), so its image and label columns cannot "
                        f"be checked before reading; give hf_options.features or a dataset that declares them")
    image_column = _column(features, options.image_column, datasets.Image, IMAGE_COLUMNS, "image_column", where)
    label_column = _column(features, options.label_column, datasets.ClassLabel, LABEL_COLUMNS, "label_column",
                           where)
    label_feature = features[label_column]
    if isinstance(label_feature, datasets.ClassLabel):
        class_names = list(label_feature.names)
    elif options.num_classes is not None:
        class_names = [str(i) for i in range(options.num_classes)]
    else:
        raise DataError(f"{where}: the label column {label_column!r} is not a ClassLabel, so the number of classes "
                        f"is unknown; give {option('num_classes', 'N')}")
    data = data.cast_column(image_column, datasets.Image(decode=False))
    streaming = isinstance(data, datasets.IterableDataset)
    num_samples = len(data) if not streaming else (_stream_length(data, split) or options.num_samples)
    return HFSplit(data, where, image_column, label_column, class_names, num_samples, streaming)


def _stream_length(data: Any, split: str) -> int | None:
    splits = getattr(data.info, "splits", None) or {}
    entry = splits.get(split) if hasattr(splits, "get") else None
    return int(entry.num_examples) if entry is not None and entry.num_examples else None


def _column(features: Any, wanted: str | None, kind: type, usual: Sequence[str], name: str, where: str) -> str:
    """The column to read: the one asked for, else the only ``kind`` feature, else a usual name."""
    columns = list(features)
    if wanted is not None:
        if wanted in columns:
            return wanted
        close = difflib.get_close_matches(wanted, columns, n=1)
        raise DataError(f"{where} has no column {wanted!r} ({name}); its columns are {columns}"
                        + (f"; did you mean {close[0]!r}?" if close else ""))
    typed = [c for c in columns if isinstance(features[c], kind)]
    if len(typed) == 1:
        return typed[0]
    found = next((c for c in (*typed, *usual) if c in columns), None)
    if found is None:
        raise DataError(f"{where}: cannot tell which column is the {name.split('_')[0]}: its columns are {columns}; "
                        f"give {option(name, 'NAME')}")
    return found


def _sample(split: HFSplit, row: dict, key: str, transform: Callable | None, remap: list[int]):
    """(image, label) of one row, or a :class:`SkippedSample` saying what was wrong with it."""
    label, picture = row.get(split.label_column), row.get(split.image_column)
    if isinstance(picture, dict) and picture.get("path"):
        key = str(picture["path"])
    if label is None or not 0 <= int(label) < len(remap):
        return SkippedSample(key, f"no label in column {split.label_column!r} (got {label!r})")
    if not isinstance(picture, dict) or not (picture.get("bytes") or picture.get("path")):
        return SkippedSample(key, f"no image in column {split.image_column!r}")
    try:
        image = load_rgb(io.BytesIO(picture["bytes"]) if picture.get("bytes") else picture["path"])
    except DECODE_ERRORS as error:
        return SkippedSample(key, decode_problem(error))
    return (transform(image) if transform is not None else image), remap[int(label)]


class HFImages(Dataset):
    """A downloaded or saved split as a map-style dataset: (image tensor, label) or a SkippedSample.

    Args:
        split: the opened split (not streamed).
        transform: applied to each decoded RGB image.
        class_names: the labels' order (the training set's, for the validation split).
        keyed: add each sample's key (its file path or ``hf:NAME[split][index]``) as a third item.
    """

    def __init__(self, split: HFSplit, transform: Callable | None, class_names: Sequence[str],
                 keyed: bool = False) -> None:
        self.split, self.transform, self.keyed = split, transform, keyed
        self.remap = labels_by_name(split.class_names, class_names, split.where)

    def __len__(self) -> int:
        return len(self.split.data)

    def __getitem__(self, index: int):
        key = f"{self.split.where}[{index}]"
        item = _sample(self.split, self.split.data[index], key, self.transform, self.remap)
        return item if not self.keyed or isinstance(item, SkippedSample) else (*item, key)


class HFStream(IterableDataset):
    """A streamed split, shared out by ``datasets``: by rank (``split_dataset_by_node``), then by its
    shards over the loader workers.

    The shares are only as even as the dataset's shards, which the stream cannot see in advance.
    So for training every rank takes ``floor(N / world / batch)`` steps, ``N`` being the split's
    declared length, and a worker whose share runs out starts it again: samples are read about
    once an epoch, a few twice or not at all, and no rank ever waits for another. Evaluation reads
    each sample once. Needs the split's length, to plan the epoch.
    """

    def __init__(self, split: HFSplit, transform: Callable | None, class_names: Sequence[str], training: bool,
                 shuffle_buffer: int, seed: int, keyed: bool = False) -> None:
        if split.num_samples is None and training:
            raise DataError(f"{split.where}: the stream does not declare its length, so an epoch cannot be planned; "
                            f"give {option('train_num_samples', 'N')}, or use the downloaded dataset "
                            f"({option('hf_streaming', 'false')})")
        self.split, self.transform, self.training, self.keyed = split, transform, training, keyed
        self.remap = labels_by_name(split.class_names, class_names, split.where)
        self.shuffle_buffer, self.seed, self.epoch = shuffle_buffer, seed, 0
        self.world, self.rank, self.workers = 1, 0, 1

    def configure(self, world: int, rank: int, workers: int) -> None:
        self.world, self.rank, self.workers = world, rank, max(workers, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def steps(self, batch_size: int) -> int:
        return math.floor(self.split.num_samples // self.world / batch_size)

    def plan(self, batch_size: int) -> str:
        """How an epoch is shared out, for the log."""
        return (f"a stream of {self.split.num_samples} samples shared by datasets over {self.world} process(es): "
                f"{self.steps(batch_size)} steps of {batch_size} each; a worker whose share runs out starts it "
                f"again, so samples are read about once an epoch (exactly once: the downloaded dataset)")

    def __iter__(self) -> Iterator[Any]:
        from datasets.distributed import split_dataset_by_node

        data = self.split.data
        if self.training:
            data = data.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
            data.set_epoch(self.epoch)
        if self.world > 1:
            data = split_dataset_by_node(data, rank=self.rank, world_size=self.world)
        info = get_worker_info()
        prefix = f"{self.split.where} rank {self.rank} worker {info.id if info is not None else 0} item "
        while True:
            count = 0
            for row in data:
                key = prefix + str(count)
                item = _sample(self.split, row, key, self.transform, self.remap)
                yield item if not self.keyed or isinstance(item, SkippedSample) else (*item, key)
                count += 1
            if not self.training or count == 0:
                return
