"""Segmentation data as users have it: an image folder with a label-mask folder, or COCO JSON.

Masks are single-channel PNG label images (mode L or P): pixel value = class index, 0 the
background, 255 "ignore" (the Pascal VOC convention). An image and its mask share a file stem
(``images/0001.jpg`` <-> ``masks/0001.png``); a mask with no image, or an image with no mask, is
an error naming the files, found before training starts. From COCO files the instance polygons
are painted into one label map (category -> contiguous label 1..K; crowd regions -> ignore).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..data import IMAGE_EXTENSIONS, DataError, load_rgb
from ..dense.coco import LabelMap, annotation_mask, read_coco_file

IGNORE_INDEX = 255
MASK_MODES = ("L", "P", "I;16", "I")


def segmentation_transform(size: int, mean: Sequence[float], std: Sequence[float], train: bool) -> v2.Transform:
    """Resize to ``size`` x ``size`` (masks by nearest neighbour), flip when training, normalise."""
    steps: list[v2.Transform] = [v2.Resize((size, size), antialias=True)]
    if train:
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps += [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def _files_by_stem(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{what} directory {str(folder)!r} does not exist")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    if not files:
        raise DataError(f"{what} directory {str(folder)!r} holds no image files "
                        f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def read_label_mask(path: Path) -> np.ndarray:
    """A label image as an (H, W) uint8 array; RGB masks are refused (colour-coded masks need a palette map)."""
    with Image.open(path) as mask:
        if mask.mode not in MASK_MODES:
            raise DataError(f"mask {path} has mode {mask.mode}; expected a single-channel label image "
                            f"(mode L or P, pixel value = class index, {IGNORE_INDEX} = ignore)")
        array = np.asarray(mask)
    if array.max(initial=0) > IGNORE_INDEX:
        raise DataError(f"mask {path} holds values up to {array.max()}; class indices must be 0..254 "
                        f"({IGNORE_INDEX} = ignore)")
    return array.astype(np.uint8)


class _LabelledImages(Dataset):
    """``(image, mask)``: a normalised float image and an int64 (H, W) label map."""

    transform: Callable | None

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.load(index)
        if labels.shape != (image.height, image.width):
            raise DataError(f"sample {index}: mask size {labels.shape[::-1]} differs from image size {image.size}")
        pair = (F.to_image(image), tv_tensors.Mask(torch.from_numpy(labels)))
        if self.transform is not None:
            pair = self.transform(*pair)
        else:
            pair = (F.to_dtype(pair[0], torch.float32, scale=True), pair[1])
        return pair[0].as_subclass(torch.Tensor), pair[1].as_subclass(torch.Tensor).long()


class MaskFolderDataset(_LabelledImages):
    """``images/<stem>.<ext>`` with ``masks/<stem>.png``; ``num_classes`` is counted from the masks if not given."""

    def __init__(self, images: str | os.PathLike, masks: str | os.PathLike, transform: Callable | None = None,
                 num_classes: int | None = None) -> None:
        image_files = _files_by_stem(Path(images), "image")
        mask_files = _files_by_stem(Path(masks), "mask")
        orphans = sorted(set(mask_files) - set(image_files))
        unlabelled = sorted(set(image_files) - set(mask_files))
        if orphans or unlabelled:
            raise DataError(
                f"images in {str(images)!r} and masks in {str(masks)!r} must pair up by file name: "
                + (f"{len(orphans)} mask(s) without an image, e.g. {orphans[:3]}; " if orphans else "")
                + (f"{len(unlabelled)} image(s) without a mask, e.g. {unlabelled[:3]}" if unlabelled else ""))
        self.samples = [(image_files[stem], mask_files[stem]) for stem in sorted(image_files)]
        self.transform = transform
        if num_classes is None:
            largest = max(int(v) for _, m in self.samples for v in np.unique(read_label_mask(m)) if v != IGNORE_INDEX)
            num_classes = largest + 1
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        image_path, mask_path = self.samples[index]
        labels = read_label_mask(mask_path)
        if labels[labels != IGNORE_INDEX].max(initial=0) >= self.num_classes:
            raise DataError(f"mask {mask_path} holds class {labels[labels != IGNORE_INDEX].max()} but the data set "
                            f"has {self.num_classes} classes (0..{self.num_classes - 1}, {IGNORE_INDEX} = ignore)")
        return load_rgb(image_path), labels


class CocoSegmentationDataset(_LabelledImages):
    """Label maps painted from a COCO file's instance annotations, in file order (later on top)."""

    def __init__(self, annotations: str | os.PathLike, images: str | os.PathLike,
                 transform: Callable | None = None) -> None:
        self.coco = read_coco_file(annotations)
        self.label_map = LabelMap.from_coco(self.coco)
        self.num_classes = self.label_map.num_classes
        self.image_dir = Path(images)
        self.image_ids = sorted(self.coco.imgs)
        self.transform = transform
        missing = [self.coco.imgs[i]["file_name"] for i in self.image_ids
                   if not (self.image_dir / self.coco.imgs[i]["file_name"]).is_file()]
        if missing:
            raise DataError(f"{len(missing)} of the {len(self.image_ids)} images listed in {annotations} are not in "
                            f"{str(self.image_dir)!r}, e.g. {missing[:3]}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        info = self.coco.imgs[self.image_ids[index]]
        image = load_rgb(self.image_dir / info["file_name"])
        labels = np.zeros((image.height, image.width), np.uint8)
        for ann in self.coco.imgToAnns.get(info["id"], []):
            region = annotation_mask(self.coco, ann, image.height, image.width).astype(bool)
            labels[region] = IGNORE_INDEX if ann.get("iscrowd") else self.label_map.label(ann["category_id"])
        return image, labels
