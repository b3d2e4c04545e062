"""A tiny detection / segmentation data set in the real file formats: coloured shapes on noise.

Each image holds a few non-overlapping squares, circles and triangles of random colour and size on
a noisy background. It is written exactly as users' data arrive: ``images/*.png``, a COCO JSON file
(boxes, polygon segmentations, categories) and ``masks/*.png`` label images (0 = background, the
category id elsewhere). The tests train on it; users can make one to try the commands:

    python -m splitattn.dense.shapes runs/shapes --num-images 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import SplitattnError

CATEGORIES = ({"id": 1, "name": "square"}, {"id": 2, "name": "circle"}, {"id": 3, "name": "triangle"})
CIRCLE_VERTICES = 32
PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class ShapesDataset:
    """Where a generated set lies on disk."""

    root: Path
    images: Path
    masks: Path
    annotations: Path
    num_images: int


def shape_polygon(kind: str, cx: float, cy: float, size: float) -> list[tuple[float, float]]:
    """Vertices of a shape of ``size`` pixels across centred on (cx, cy)."""
    half = size / 2
    if kind == "square":
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if kind == "circle":
        return [(cx + half * math.cos(2 * math.pi * i / CIRCLE_VERTICES),
                 cy + half * math.sin(2 * math.pi * i / CIRCLE_VERTICES)) for i in range(CIRCLE_VERTICES)]
    if kind == "triangle":
        return [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    raise SplitattnError(f"unknown shape {kind!r}; expected one of {[c['name'] for c in CATEGORIES]}")


def _overlaps(box: tuple[float, float, float, float], boxes: list[tuple[float, float, float, float]]) -> bool:
    margin = 2
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and box[1] < b[3] + margin and b[1] < box[3] + margin
               for b in boxes)


def draw_image(rng: np.random.Generator, image_size: int, max_shapes: int, min_size: int,
               max_size: int) -> tuple[Image.Image, Image.Image, list[dict]]:
    """One image, its label mask and its shapes (category id, polygon, box)."""
    noise = rng.normal(110, 45, size=(image_size, image_size, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(noise, "RGB")
    mask = Image.new("L", (image_size, image_size), 0)
    draw_image_, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    shapes: list[dict] = []
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        for _ in range(PLACEMENT_TRIES):
            size = float(rng.uniform(min_size, max_size))
            cx, cy = (float(v) for v in rng.uniform(size / 2 + 1, image_size - size / 2 - 1, size=2))
            box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
            if not _overlaps(box, boxes):
                break
        else:
            continue
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        polygon = shape_polygon(category["name"], cx, cy, size)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if max(colour) < 160:  # keep shapes brighter than the background on at least one channel
            colour = tuple(min(255, c + 120) for c in colour)
        draw_image_.polygon(polygon, fill=colour)
        draw_mask.polygon(polygon, fill=category["id"])
        boxes.append(box)
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        shapes.append({"category_id": category["id"], "polygon": polygon,
                       "box": (min(xs), min(ys), max(xs), max(ys))})
    return image, mask, shapes


def make_shapes_dataset(
    root: str | os.PathLike,
    num_images: int = 64,
    image_size: int = 96,
    max_shapes: int = 3,
    min_size: int = 16,
    max_size: int = 40,
    seed: int = 0,
) -> ShapesDataset:
    """Write ``num_images`` images with COCO annotations and label masks under ``root``."""
    if num_images < 1 or image_size < 2 * max_size or not 4 <= min_size <= max_size:
        raise SplitattnError(f"need num_images >= 1, 4 <= min_size <= max_size and image_size >= 2 * max_size; got "
                         f"num_images={num_images}, min_size={min_size}, max_size={max_size}, image_size={image_size}")
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coco: dict = {"images": [], "annotations": [], "categories": [dict(c) for c in CATEGORIES]}
    for index in range(num_images):
        image, mask, shapes = draw_image(rng, image_size, max_shapes, min_size, max_size)
        file_name = f"{index:05d}.png"
        image.save(images_dir / file_name)
        mask.save(masks_dir / file_name)
        coco["images"].append({"id": index + 1, "file_name": file_name, "width": image_size, "height": image_size})
        for shape in shapes:
            x0, y0, x1, y1 = shape["box"]
            xs, ys = (np.array(v) for v in zip(*shape["polygon"], strict=True))
            area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": index + 1, "category_id": shape["category_id"],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round(area, 2), "iscrowd": 0,
                "segmentation": [[round(v, 2) for point in shape["polygon"] for v in point]],
            })
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps(coco))
    return ShapesDataset(root, images_dir, masks_dir, annotations, num_images)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m splitattn.dense.shapes", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write a sample set of coloured shapes: ROOT/images/*.png, ROOT/masks/*.png (label images) and "
                    "ROOT/annotations.json (COCO boxes and polygons), to try train-det and train-seg on.")
    parser.add_argument("root", help="directory to write the set into (created if missing)")
    parser.add_argument("--num-images", type=int, default=64, help="how many images")
    parser.add_argument("--image-size", type=int, default=96, help="side of the square images in pixels (at least 80)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shapes, colours and noise")
    args = parser.parse_args(argv)
    try:
        made = make_shapes_dataset(args.root, args.num_images, args.image_size, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {made.num_images} images to {made.images}, masks to {made.masks}, annotations {made.annotations}")


if __name__ == "__main__":
    main()
