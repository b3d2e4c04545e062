"""Top-1/top-5 evaluation: training's each epoch (:func:`evaluate`), and the predictions that
``splitattn eval`` scores (:func:`predict_topk`: per image, so that ReaL's label sets, per-class
tables and ImageNet-A/-R's class restriction are all computed from the same ranking)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data import KeyedBatch, SkippedSample
from ..errors import SplitattnError
from .metrics import topk_correct
from .runtime import Runtime, all_reduce_sum, autocast


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, runtime: Runtime, amp: bool = False,
             channels_last: bool = False) -> dict[str, float]:
    """Loss, top-1 and top-5 (%) over the loader, summed across processes; unreadable images skipped."""
    model.eval()
    loss_sum = correct1 = correct5 = seen = skipped = 0.0
    for images, labels, n_skipped in loader:
        skipped += n_skipped
        if len(labels) == 0:
            continue
        images = images.to(runtime.device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(runtime.device, non_blocking=True)
        with autocast(runtime.device, amp):
            logits = model(images)
        loss_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
        top1, top5 = topk_correct(logits, labels)
        correct1 += top1
        correct5 += top5
        seen += len(labels)
    loss_sum, correct1, correct5, seen, skipped = all_reduce_sum([loss_sum, correct1, correct5, seen, skipped],
                                                                 runtime)
    if seen == 0:
        raise SplitattnError("no readable images to evaluate")
    return {"loss": loss_sum / seen, "top1": 100.0 * correct1 / seen, "top5": 100.0 * correct5 / seen,
            "images": int(seen), "skipped": int(skipped)}


@dataclass
class Ranked:
    """What :func:`predict_topk` found: per readable sample its key, label and top-k outputs; the rest named."""

    keys: list[str]
    labels: torch.Tensor  # (n,) the model's output index, NO_LABEL where nothing labels the sample
    top: torch.Tensor  # (n, k)
    skipped: list[SkippedSample]


@torch.no_grad()
def predict_topk(model: nn.Module, loader: Iterable[KeyedBatch], runtime: Runtime, k: int = 5,
                 subset: torch.Tensor | None = None, amp: bool = False,
                 progress: Callable[[int], None] | None = None) -> Ranked:
    """The top-``k`` output indices of every readable sample of a loader of :class:`~splitattn.data.KeyedBatch` es.

    Args:
        model: the classifier, in eval mode on ``runtime.device``.
        loader: batches of ``collate_keyed`` (e.g. :attr:`~splitattn.data.EvalSource.collate`).
        runtime: where to run.
        k: predictions kept per sample (fewer when the model, or ``subset``, has fewer classes).
        subset: output indices to choose among (ImageNet-A/-R's 200): the other logits are dropped
            before the ranking, and the indices returned are still the model's.
        amp: mixed precision.
        progress: called with the number of samples of each batch done.

    Raises:
        ValueError: no readable sample at all.
    """
    model.eval()
    keys: list[str] = []
    labels, tops, skipped = [], [], []
    for batch in loader:
        skipped.extend(batch.skipped.samples)
        if batch.keys:
            with autocast(runtime.device, amp):
                logits = model(batch.images.to(runtime.device, non_blocking=True)).float()
            if subset is not None:
                logits = logits[:, subset.to(logits.device)]
            top = logits.topk(min(k, logits.shape[1]), dim=1).indices.cpu()
            tops.append(subset[top] if subset is not None else top)
            keys.extend(batch.keys)
            labels.append(batch.labels)
        if progress is not None:
            progress(len(batch.read))
    if not keys:
        raise SplitattnError("no readable images to evaluate" + (f" ({len(skipped)} unreadable)" if skipped else ""))
    return Ranked(keys, torch.cat(labels), torch.cat(tops), skipped)
