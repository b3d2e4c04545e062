"""COCO-format detection data: images from a folder, boxes / labels / masks from the JSON.

Images are decoded with ``data.load_rgb`` (grayscale, palette, CMYK, transparency all become RGB)
and left at their size: torchvision's detectors resize and normalise inside the model, and their
predictions come back in the input's pixels, which is what COCO evaluation compares against.
Crowd regions and boxes narrower than a pixel are left out of the training targets, as in
torchvision's reference scripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..data import DataError, load_rgb
from ..dense.coco import LabelMap, annotation_mask, read_coco_file

MIN_BOX_SIDE = 1.0


def train_transform() -> v2.Transform:
    """Horizontal flips, applied to the image, its boxes and its masks together."""
    return v2.RandomHorizontalFlip(0.5)


class CocoDetectionDataset(Dataset):
    """``(image, target)`` pairs: a float (3, H, W) image in [0, 1] and torchvision's target dict.

    The target holds ``boxes`` (x1, y1, x2, y2), ``labels`` (contiguous, 1..K), ``image_id`` and,
    with ``masks=True``, ``masks`` (N, H, W) from the polygons or RLEs. ``label_map`` converts
    labels back to the file's category ids.
    """

    def __init__(self, annotations: str | os.PathLike, images: str | os.PathLike, masks: bool = False,
                 transform: Callable | None = None) -> None:
        self.coco = read_coco_file(annotations)
        self.image_dir = Path(images)
        self.masks = masks
        self.transform = transform
        self.label_map = LabelMap.from_coco(self.coco)
        if not self.image_dir.is_dir():
            raise DataError(f"image directory {str(self.image_dir)!r} does not exist")
        self.image_ids = sorted(self.coco.imgs)
        missing = [self.coco.imgs[i]["file_name"] for i in self.image_ids
                   if not (self.image_dir / self.coco.imgs[i]["file_name"]).is_file()]
        if missing:
            raise DataError(f"{len(missing)} of the {len(self.image_ids)} images listed in {annotations} are not in "
                            f"{str(self.image_dir)!r}, e.g. {missing[:3]}; expected --images to be their folder")
        if not self.image_ids:
            raise DataError(f"{annotations} lists no images")

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        image = F.to_image(load_rgb(self.image_dir / info["file_name"]))
        height, width = image.shape[-2:]
        anns = [a for a in self.coco.imgToAnns.get(image_id, [])
                if not a.get("iscrowd") and a["bbox"][2] >= MIN_BOX_SIDE and a["bbox"][3] >= MIN_BOX_SIDE]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        target: dict[str, torch.Tensor] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([self.label_map.label(a["category_id"]) for a in anns], dtype=torch.int64),
            "image_id": torch.tensor(image_id),
        }
        if self.masks:
            stacked = np.stack([annotation_mask(self.coco, a, height, width) for a in anns]) if anns else \
                np.zeros((0, height, width), np.uint8)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(stacked))
        image = F.to_dtype(image, torch.float32, scale=True)
        if self.transform is not None:
            image, target = self.transform(image, target)
        target["boxes"] = target["boxes"].clamp(min=0).as_subclass(torch.Tensor)
        if "masks" in target:
            target["masks"] = target["masks"].as_subclass(torch.Tensor)
        return image.as_subclass(torch.Tensor), target


def collate_detection(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Detectors take lists of images of any size, not a stacked tensor."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
