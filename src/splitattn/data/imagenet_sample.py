"""A few images laid out as ImageNet's validation sets are, to try ``splitattn eval`` without ImageNet.

Each evaluation set labels its images its own way (synset folders, index folders, a flat folder
with a CSV of boxes, ReaL's JSON of label sets); getting one of them wrong is how published top-1s
fail to reproduce. This writes the same images in each of those layouts, so every eval option can
be run, and checked to agree, on a CPU in seconds::

    python -m splitattn.data.imagenet_sample runs/imagenet-sample

The images are noise: the point is the layouts, not the pictures.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..models.imagenet import class_subset, imagenet_classes
from .errors import DataError

# The files the original archive's validation images are named by, 1-based (what ReaL's JSON indexes).
VAL_NAME = "ILSVRC2012_val_{:08d}.JPEG"


def sample_synsets(count: int) -> list[int]:
    """``count`` ImageNet-1k classes held by both ImageNet-A and ImageNet-R, spread over the 1,000."""
    shared = sorted(set(class_subset("imagenet-a")) & set(class_subset("imagenet-r")))
    if not 1 <= count <= len(shared):
        raise DataError(f"count must be between 1 and {len(shared)} (the classes ImageNet-A and -R share), "
                        f"got {count}")
    return [shared[round(i * (len(shared) - 1) / max(count - 1, 1))] for i in range(count)]


def write_imagenet_sample(root: str | Path, classes: int = 4, per_class: int = 3, size: int = 80,
                          seed: int = 0) -> Path:
    """Write ``classes`` x ``per_class`` images under ``root`` in every layout ``splitattn eval`` reads.

    Args:
        root: directory to write into (created if missing). It gets ``val/<synset>/`` (ImageNet's
            val set as the usual preparation script lays it out; ImageNet-Sketch, -A and -R use the
            same), ``v2/<index>/`` (ImageNet-V2), ``flat/`` with ``LOC_val_solution.csv`` (the
            archive's flat folder and its labels) and ``real.json`` (ImageNet-ReaL's label sets for
            the flat names, one image with none, as ReaL has).
        classes: how many classes (all held by ImageNet-A and -R, so ``--class-subset`` applies).
        per_class: images per class.
        size: side of the square images in pixels.
        seed: seed of the noise.
    """
    if per_class < 1 or size < 8:
        raise DataError(f"need per_class >= 1 and size >= 8, got per_class={per_class}, size={size}")
    root = Path(root)
    imagenet = imagenet_classes()
    rng = np.random.default_rng(seed)
    labels, real = [["ImageId", "PredictionString"]], []
    for number, index in enumerate(i for i in sample_synsets(classes) for _ in range(per_class)):
        synset, name = imagenet.synsets[index], VAL_NAME.format(number + 1)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for folder in (root / "val" / synset, root / "v2" / str(index), root / "flat"):
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / name, format="JPEG", quality=90)
        labels.append([Path(name).stem, f"{synset} 0 0 {size - 1} {size - 1}"])  # synset, then its box
        real.append([] if number == 1 else [index] if number % 3 else [index, (index + 1) % len(imagenet)])
    with open(root / "flat" / "LOC_val_solution.csv", "w", newline="") as file:
        csv.writer(file).writerows(labels)
    (root / "real.json").write_text(json.dumps(real))
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m splitattn.data.imagenet_sample", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write a few noise images in the layouts of ImageNet's validation sets (synset folders, "
                    "ImageNet-V2's index folders, the flat folder with LOC_val_solution.csv, ReaL's real.json), "
                    "to try splitattn eval on.")
    parser.add_argument("root", help="directory to write into (created if missing)")
    parser.add_argument("--classes", type=int, default=4, help="how many classes (all in ImageNet-A and -R)")
    parser.add_argument("--per-class", type=int, default=3, help="images per class")
    parser.add_argument("--size", type=int, default=80, help="side of the square images in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    args = parser.parse_args(argv)
    try:
        root = write_imagenet_sample(args.root, args.classes, args.per_class, args.size, args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.classes * args.per_class} images to {root}/val, {root}/v2 and {root}/flat "
          f"(labels {root}/flat/LOC_val_solution.csv), ReaL labels {root}/real.json")


if __name__ == "__main__":
    main()
