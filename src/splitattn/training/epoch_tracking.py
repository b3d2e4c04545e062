"""What a classification run shows its trackers after each epoch: the metrics, the curves, and a few
validation images with what the model said about them (the one picture that tells a wrong label
set or a broken preprocessing at a glance). Kept apart from the trainer, which only calls it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

from ..data.skips import SkippedSample
from .tensorboard import prediction_grid, unnormalize
from .trackers import Tracker

PREVIEW_IMAGES = 8  # validation images shown with the model's predictions


def preview_samples(dataset: Dataset) -> list[tuple[torch.Tensor, int]]:
    """A few readable validation samples, spread over an indexed set (folders are sorted by class),
    or the first ones of a stream.

    Args:
        dataset: the validation set (indexed, or a stream).
    """
    if isinstance(dataset, IterableDataset):
        return list(itertools.islice((s for s in dataset if not isinstance(s, SkippedSample)), PREVIEW_IMAGES))
    picks = sorted({round(i * (len(dataset) - 1) / max(PREVIEW_IMAGES - 1, 1)) for i in range(PREVIEW_IMAGES)})
    return [s for s in (dataset[i] for i in picks if i < len(dataset)) if not isinstance(s, SkippedSample)]


def prediction_preview(model: nn.Module, dataset: Dataset, mean: Sequence[float], std: Sequence[float],
                       class_names: Sequence[str], device: torch.device) -> np.ndarray | None:
    """The grid of :func:`preview_samples` titled with the model's answers; None when none is readable.

    Args:
        model: the model being trained (put in eval mode; the loop puts it back in train mode).
        dataset: the validation set.
        mean, std: the normalisation the images went through, undone for the picture.
        class_names: the names of the model's outputs.
        device: where the model is.
    """
    samples = preview_samples(dataset)
    if not samples:
        return None
    images = torch.stack([image for image, _ in samples])
    model.eval()
    with torch.no_grad():
        logits = model(images.to(device))
    return prediction_grid(unnormalize(images, mean, std), [label for _, label in samples], logits.cpu(), class_names)


def log_epoch(trackers: Tracker, record: dict[str, Any], step: int, curves: Path, preview: np.ndarray | None) -> None:
    """An epoch's record as ``epoch/NAME`` metrics, the curves and the preview, then a flush.

    Args:
        trackers: the run's trackers.
        record: the epoch's line of metrics.jsonl (``epoch`` is its number, from 1).
        step: the optimiser step the epoch ended at.
        curves: curves.png, just redrawn.
        preview: from :func:`prediction_preview`.
    """
    epoch = record["epoch"]
    trackers.metrics({f"epoch/{k}": v for k, v in record.items() if k != "epoch"}, step, epoch)
    trackers.artefact(curves, "curves", step, epoch)
    if preview is not None:
        trackers.image("predictions", preview, step, epoch)
    trackers.flush()
