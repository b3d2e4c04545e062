"""Top-1/top-5 evaluation, shared by training (each epoch) and ``splitattn eval``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

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
        raise ValueError("no readable images to evaluate")
    return {"loss": loss_sum / seen, "top1": 100.0 * correct1 / seen, "top5": 100.0 * correct5 / seen,
            "images": int(seen), "skipped": int(skipped)}
