"""COCO-format annotation files: checked on load, read through pycocotools.

A malformed file (not JSON, missing ``images`` / ``annotations`` / ``categories``, an annotation
pointing at an image or category that does not exist, a box that is not four numbers) fails on
load with a message naming the file, the entry and what was expected, rather than as a KeyError in
the middle of training. Category ids (COCO's run 1..90 with gaps) are mapped to contiguous labels
1..K for torchvision's models, 0 being the background, and mapped back for evaluation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ..data.errors import DataError


class CocoFormatError(DataError):
    """An annotation file that is not valid COCO; the message names the file and the entry."""


def _fail(path: Path, message: str) -> CocoFormatError:
    return CocoFormatError(f"{path}: {message}")


def _check_entries(path: Path, data: dict) -> None:
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _fail(path, f"expected a top-level {key!r} list (COCO format: images, annotations, categories)")
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise _fail(path, f"images[{i}] must be an object with 'id' and 'file_name', got {image!r:.120}")
    for i, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not isinstance(category.get("id"), int) or "name" not in category:
            raise _fail(path, f"categories[{i}] must be an object with an integer 'id' and a 'name', "
                              f"got {category!r:.120}")
    image_ids = {image["id"] for image in data["images"]}
    category_ids = {category["id"] for category in data["categories"]}
    if len(image_ids) != len(data["images"]):
        raise _fail(path, "image ids must be unique")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise _fail(path, f"annotations[{i}] must be an object, got {ann!r:.120}")
        if ann.get("image_id") not in image_ids:
            raise _fail(path, f"annotations[{i}] refers to image_id {ann.get('image_id')!r}, which is not in 'images'")
        if ann.get("category_id") not in category_ids:
            raise _fail(path, f"annotations[{i}] has category_id {ann.get('category_id')!r}; "
                              f"the categories are {sorted(category_ids)}")
        box = ann.get("bbox")
        if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box)
                or box[2] < 0 or box[3] < 0):
            raise _fail(path, f"annotations[{i}] 'bbox' must be [x, y, width, height] with width, height >= 0, "
                              f"got {box!r}")
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(box[2] * box[3]))
        ann.setdefault("id", i + 1)


def read_coco_file(path: str | os.PathLike) -> COCO:
    """Load and check an annotation file; return the pycocotools index over it."""
    path = Path(path)
    if not path.is_file():
        raise CocoFormatError(f"annotation file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _fail(path, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _fail(path, f"expected a JSON object with images, annotations and categories, got {type(data).__name__}")
    _check_entries(path, data)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


@dataclass(frozen=True)
class LabelMap:
    """COCO category ids <-> contiguous labels 1..K (0 = background)."""

    category_ids: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_coco(cls, coco: COCO) -> LabelMap:
        categories = sorted(coco.dataset["categories"], key=lambda c: c["id"])
        return cls(tuple(c["id"] for c in categories), tuple(str(c["name"]) for c in categories))

    @property
    def num_classes(self) -> int:
        """Including the background, as torchvision's detection and segmentation models count."""
        return len(self.category_ids) + 1

    def label(self, category_id: int) -> int:
        return self.category_ids.index(category_id) + 1

    def category(self, label: int) -> int:
        return self.category_ids[label - 1]


def annotation_mask(coco: COCO, ann: dict, height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 mask of one annotation: its polygon / RLE, or its box when it has none."""
    if ann.get("segmentation"):
        info = coco.imgs[ann["image_id"]]  # polygons are rasterised at the size the file gives, if any
        info.setdefault("height", height)
        info.setdefault("width", width)
        with warnings.catch_warnings():  # pycocotools' Cython decoder predates numpy 2's __array__(copy=)
            warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
            return coco.annToMask(ann).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    x, y, w, h = (round(v) for v in ann["bbox"])
    mask[max(y, 0):y + h, max(x, 0):x + w] = 1
    return mask


def encode_mask(mask: np.ndarray) -> dict:
    """A binary mask as COCO's compressed RLE, JSON-ready."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle
