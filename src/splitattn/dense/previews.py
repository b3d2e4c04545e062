"""What a detector or segmenter says about a few validation images, drawn for TensorBoard.

torchvision draws the boxes and masks (``torchvision.utils``); this file only picks the images
and lays them side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks, make_grid

from ..training.tensorboard import unnormalize

PREVIEW_IMAGES = 4
SCORE_THRESHOLD = 0.5


def _picks(dataset: Dataset) -> list[int]:
    return list(range(min(PREVIEW_IMAGES, len(dataset))))


@torch.no_grad()
def detection_preview(model: nn.Module, dataset: Dataset, class_names: Sequence[str],
                      device: torch.device) -> torch.Tensor:
    """The first validation images with the detections scoring over 0.5, as one (3, H, W) uint8 grid."""
    model.eval()
    drawn = []
    for index in _picks(dataset):
        image, _ = dataset[index]
        output = model([image.to(device)])[0]
        keep = output["scores"] > SCORE_THRESHOLD
        pixels = (image * 255).to(torch.uint8)
        if not keep.any():  # nothing detected: the image as it is
            drawn.append(pixels)
            continue
        labels = [class_names[int(label)] for label in output["labels"][keep]]
        drawn.append(draw_bounding_boxes(pixels, output["boxes"][keep].cpu(), labels, colors="red"))
    return _grid(drawn)


@torch.no_grad()
def segmentation_preview(model: nn.Module, dataset: Dataset, num_classes: int, mean: Sequence[float],
                         std: Sequence[float], device: torch.device) -> torch.Tensor:
    """The first validation images with the predicted classes painted over them, as one (3, H, W) uint8 grid."""
    model.eval()
    drawn = []
    for index in _picks(dataset):
        image, _ = dataset[index]
        predicted = model(image.unsqueeze(0).to(device))["out"][0].argmax(0).cpu()
        pixels = (unnormalize(image.unsqueeze(0), mean, std)[0] * 255).to(torch.uint8)
        masks = torch.stack([predicted == c for c in range(1, num_classes)]) if num_classes > 1 else None
        drawn.append(draw_segmentation_masks(pixels, masks, alpha=0.5) if masks is not None else pixels)
    return _grid(drawn)


def _grid(images: list[torch.Tensor]) -> torch.Tensor:
    height = max(i.shape[1] for i in images)
    width = max(i.shape[2] for i in images)
    padded = [torch.nn.functional.pad(i, (0, width - i.shape[2], 0, height - i.shape[1])) for i in images]
    return make_grid(padded, nrow=len(padded), padding=4)
