"""WebDataset tar shards as a training or evaluation stream, split evenly over a torchrun job.

A sample is the members of a shard sharing one key: an image (``.jpg``, ``.jpeg``, ``.png`` or
``.webp``) and its class (``.cls``: the index or name as text, or ``.json`` with ``label``).
Shards are opened through ``webdataset`` (local paths, URLs, ``pipe:`` commands), which is
imported only here, when shards are read. Which samples each process and loader worker reads is
planned by :mod:`.partition` from the sample counts in the shards' info file; the stream then
yields exactly that many items, a :class:`SkippedSample` in place of an undecodable image, a
sample without a label or one a short shard lacks, so that no broken sample changes a rank's
step count.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from .decode import DECODE_ERRORS, decode_problem, load_rgb
from .label_layouts import labels_by_name
from .optional import require
from .partition import EpochSplit, Piece, epoch_order, split_epoch
from .shard_info import ShardList
from .skips import SkippedSample

IMAGE_MEMBERS = ("jpg", "jpeg", "png", "webp")
LABEL_KEYS = ("label", "cls", "class")  # what a sample's .json may call its class


def sample_label(sample: Mapping[str, Any], class_index: Mapping[str, int]) -> int | str:
    """The class index of a shard sample, or a sentence saying why it has none.

    Args:
        sample: the sample's members (``cls``, ``json``: bytes).
        class_index: class name -> index, for classes given by name (and for the range check).
    """
    value: Any = None
    if "cls" in sample:
        value = sample["cls"].decode("utf-8", "replace").strip()
    elif "json" in sample:
        try:
            meta = json.loads(sample["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return f"unreadable .json ({error})"
        value = next((meta[k] for k in LABEL_KEYS if isinstance(meta, dict) and k in meta), None)
    if value is None or value == "":
        return f"no label (expected a .cls member or a .json with one of {list(LABEL_KEYS)})"
    if isinstance(value, str) and value in class_index:
        return class_index[value]
    try:
        index = int(value)
    except (TypeError, ValueError):
        return f"label {value!r} is not one of the {len(class_index)} classes"
    if not 0 <= index < len(class_index):
        return f"label {index} is outside the {len(class_index)} classes"
    return index


class ShardStream(IterableDataset):
    """The samples of a :class:`ShardList`, as (image tensor, label) or :class:`SkippedSample`.

    Call :meth:`configure` with the job's layout before building the loader and
    :meth:`set_epoch` before each epoch; every rank and worker derives its share and its order
    from (seed, epoch) alone.

    Args:
        shards: the shards and their sample counts.
        transform: applied to each decoded RGB image.
        class_names: the labels' order (the training set's, for validation shards).
        source_class_names: the names the shards' numeric labels refer to (their info file's).
        training: shuffle the shard order each epoch, mix samples in a buffer and pad the ranks
            even (:func:`.partition.split_epoch`); else read each sample once, in order.
        shuffle_buffer: samples mixed at a time.
        seed: the run's seed.
        keyed: add each sample's key (``shard:key``) as a third item.
    """

    def __init__(self, shards: ShardList, transform: Callable | None, class_names: Sequence[str],
                 source_class_names: Sequence[str], training: bool, shuffle_buffer: int, seed: int,
                 keyed: bool = False) -> None:
        self.shards, self.keyed = shards, keyed
        self.transform = transform
        self.class_names = list(class_names)
        self.remap = labels_by_name(source_class_names, class_names, f"shards {shards.where!r}")  # shard -> ours
        self.class_index = {name: i for i, name in enumerate(source_class_names)}
        self.shuffle = self.pad = training
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self.epoch = 0
        self.world, self.rank, self.workers = 1, 0, 1
        require("webdataset", f"reading shards {shards.where!r}", "webdataset")  # before the first step

    def configure(self, world: int, rank: int, workers: int) -> None:
        """Set the job's layout: ``world`` processes, this one ``rank``, ``workers`` loader processes
        (0: loading in the main process)."""
        self.world, self.rank, self.workers = world, rank, max(workers, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def split(self) -> EpochSplit:
        """This epoch's share-out (training pads ranks even; evaluation reads each sample once)."""
        order = epoch_order(len(self.shards.urls), self.seed, self.epoch, self.shuffle)
        return split_epoch(self.shards.lengths, order, self.world, self.workers, pad=self.pad)

    def steps(self, batch_size: int) -> int:
        return self.split().steps(self.rank, batch_size)

    def plan(self, batch_size: int) -> str:
        """How an epoch is shared out, for the log: what each process reads, what is padded or dropped."""
        split = self.split()
        per_rank = sum(split.count(self.rank, k) for k in range(self.workers))
        steps = split.steps(self.rank, batch_size)
        padding = (f", {split.padded} of them read twice so that every process takes the same steps"
                   if split.padded else "")
        unused = per_rank - steps * batch_size
        return (f"{split.total} samples in {len(self.shards.urls)} shards over {self.world} process(es) x "
                f"{self.workers} loader worker(s): {per_rank} a process{padding}; {steps} steps of {batch_size}"
                + (f"; {unused} samples of each process's share unused each epoch (each loader worker's partial "
                   f"last batch, as for folders)" if unused else ""))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if (info.num_workers if info is not None else 1) != self.workers:
            raise RuntimeError(f"shard stream configured for {self.workers} loader worker(s), run with "
                               f"{info.num_workers if info is not None else 0}: call configure() with the loader's")
        pieces = self.split().pieces[self.rank][worker]
        rng = random.Random(((self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank) * 1_009 + worker)
        if self.shuffle:
            pieces = tuple(rng.sample(pieces, len(pieces)))
        raw = (item for piece in pieces for item in self._read(piece))
        if self.shuffle and self.shuffle_buffer > 1:
            raw = _mixed(raw, self.shuffle_buffer, rng)
        for item in raw:
            yield item if isinstance(item, SkippedSample) else self._decode(*item)

    def _read(self, piece: Piece) -> Iterator[tuple[str, dict] | SkippedSample]:
        """Samples ``piece.start``..``piece.stop`` of one shard, as (key, members); positions the
        shard cannot give (it ends early, or breaks) as skipped, so the count stays as planned."""
        from webdataset.tariterators import tarfile_samples

        url = self.shards.urls[piece.part]
        errors: list[Exception] = []

        def stop_on_error(error: Exception) -> bool:
            errors.append(error)
            return False

        index = 0
        samples = tarfile_samples([{"url": url}], handler=stop_on_error)
        try:
            for sample in samples:
                if index >= piece.stop:
                    break
                if index >= piece.start:
                    yield f"{url}:{sample['__key__']}", sample
                index += 1
        finally:
            samples.close()
        if index < piece.stop:
            reason = (f"cannot read the shard: {errors[0]}" if errors else
                      f"the shard ends after {index} samples; its info file lists "
                      f"{self.shards.lengths[piece.part]}")
            for position in range(max(index, piece.start), piece.stop):
                yield SkippedSample(f"{url}#{position}", reason)

    def _decode(self, key: str, sample: dict) -> tuple[Any, int] | SkippedSample:
        member = next((m for m in IMAGE_MEMBERS if m in sample), None)
        if member is None:
            return SkippedSample(key, f"no image (expected a member ending in {', '.join(IMAGE_MEMBERS)})")
        label = sample_label(sample, self.class_index)
        if isinstance(label, str):
            return SkippedSample(key, label)
        try:
            image = load_rgb(io.BytesIO(sample[member]))
        except DECODE_ERRORS as error:
            return SkippedSample(f"{key}.{member}", decode_problem(error))
        image = self.transform(image) if self.transform is not None else image
        return (image, self.remap[label], key) if self.keyed else (image, self.remap[label])


def _mixed(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """A shuffle buffer: keep ``size`` items, yield a random one as each new one arrives."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        pick = rng.randrange(size)
        yield buffer[pick]
        buffer[pick] = item
    rng.shuffle(buffer)
    yield from buffer
