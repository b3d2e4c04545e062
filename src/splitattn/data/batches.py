"""Batching samples that may be :class:`~splitattn.data.SkippedSample` records.

Every dataset of the package yields ``(image, label)`` (training) or ``(image, label, key)``
(evaluation and prediction: which file, shard member or row each image is) for a usable sample,
and a :class:`SkippedSample` in its place for one that is not. Two collate functions, one per
shape, stack the usable ones and pass the skipped records on as :class:`~splitattn.data.skips.Skips`,
so that whoever reads the loader can count and name them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .skips import SkippedSample, Skips


def _split(batch: list) -> tuple[list, Skips]:
    kept = [item for item in batch if not isinstance(item, SkippedSample)]
    return kept, Skips(item for item in batch if isinstance(item, SkippedSample))


def collate_skipping(batch: list) -> tuple[torch.Tensor, torch.Tensor, Skips]:
    """Stack the usable ``(image, label)`` samples; also return the skipped ones as :class:`Skips`
    (their count, which also names them).

    Args:
        batch: a DataLoader's list of samples.
    """
    kept, skipped = _split(batch)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    return torch.stack([item[0] for item in kept]), torch.tensor([item[1] for item in kept]), skipped


@dataclass
class KeyedBatch:
    """A batch of ``(image, label, key)`` samples: the usable ones stacked, the skipped ones named.

    ``read`` says, for each sample of the batch in order, whether it was usable: the n-th True is
    row n of ``images``, the n-th False is ``skipped.samples[n]`` (predict lists every image in order).
    """

    images: torch.Tensor  # (number usable, C, H, W); empty when none was
    labels: torch.Tensor  # (number usable,) class indices, NO_LABEL where nothing labels the image
    keys: list[str]
    skipped: Skips
    read: list[bool]


def collate_keyed(batch: list, label_map: Sequence[int] | None = None) -> KeyedBatch:
    """Stack the usable ``(image, label, key)`` samples of ``batch`` and keep the skipped ones, in order.

    Args:
        batch: a DataLoader's list of samples.
        label_map: the source's label -> the model's output index (an evaluation source whose
            classes are named by synset or index); None: labels as they are.
    """
    kept, skipped = _split(batch)
    labels = [item[1] for item in kept]
    if label_map is not None:
        labels = [label_map[label] for label in labels]
    return KeyedBatch(images=torch.stack([item[0] for item in kept]) if kept else torch.empty(0),
                      labels=torch.tensor(labels, dtype=torch.long), keys=[item[2] for item in kept],
                      skipped=skipped, read=[not isinstance(item, SkippedSample) for item in batch])
