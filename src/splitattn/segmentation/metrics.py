"""Pixel accuracy and mean IoU from a confusion matrix, the standard segmentation numbers."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from .datasets import IGNORE_INDEX


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts, rows = truth, columns = prediction; ignore pixels left out."""
    keep = target != IGNORE_INDEX
    index = target[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).cpu()


def scores(matrix: torch.Tensor) -> dict[str, float | list[float]]:
    """IoU per class (NaN for classes absent from both truth and prediction), their mean, pixel accuracy."""
    matrix = matrix.double()
    true_positive = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    iou = true_positive / union  # 0 / 0 = NaN: the class never occurs, so it does not count
    present = ~iou.isnan()
    return {
        "mIoU": float(iou[present].mean()) if present.any() else 0.0,
        "pixel_accuracy": float(true_positive.sum() / matrix.sum().clamp(min=1)),
        "iou": [float(v) for v in iou],
    }


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, dataset, device: torch.device, num_classes: int,
                          batch_size: int = 4) -> dict[str, float | list[float]]:
    """mIoU and pixel accuracy of ``model`` (its ``"out"`` logits) over ``dataset``."""
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for images, targets in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logits = model(images.to(device))["out"]
        matrix += confusion_matrix(logits.argmax(1), targets.to(device), num_classes)
    return scores(matrix)
