"""Scores of an evaluation from its predictions: top-1/top-5, ImageNet-ReaL's, and per class.

The predictions (each scored image's top-5 output indices) are computed once; every score here is
a plain function of them and the labels, so the protocols agree on which images count:

- top-k: the label is among the first k predictions;
- ImageNet-ReaL (Beyer et al. 2020, timm's ``RealLabelsImagenet``): any of the first k predictions
  is in the image's label set; images whose set is empty are left out;
- per class: images, top-1 accuracy, and the class its images are most often taken for.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import SplitattnError
from ..models.classes import ClassList


def topk_accuracy(top: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": %, "top5": %}`` of predictions against one label per image.

    Args:
        top: each image's predicted classes, best first (``[n, k]``).
        labels: each image's class (``[n]``).
        ks: the ranks to score.
    """
    hits = top.eq(labels.unsqueeze(1))
    return {f"top{k}": 100.0 * float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def real_accuracy(top: torch.Tensor, label_sets: Sequence[frozenset[int]],
                  ks: Sequence[int] = (1, 5)) -> dict[str, float | int]:
    """ReaL top-k (%) over the images with a non-empty label set, their count, and how many had none.

    Args:
        top: each image's predicted classes, best first (``[n, k]``).
        label_sets: each image's ReaL classes (empty: no class fits; the image is left out).
        ks: the ranks to score.
    """
    scored = [(row, labels) for row, labels in zip(top.tolist(), label_sets, strict=True) if labels]
    if not scored:
        raise SplitattnError("no image to score: every ImageNet-ReaL label set of these images is empty")
    result: dict[str, float | int] = {
        f"top{k}": 100.0 * sum(any(p in labels for p in row[:k]) for row, labels in scored) / len(scored) for k in ks}
    return result | {"images": len(scored), "no_real_label": len(label_sets) - len(scored)}


def per_class(top1: torch.Tensor, labels: torch.Tensor, classes: ClassList) -> list[dict[str, object]]:
    """One row per class present: name, synset, images, top-1 (%) and the most confused class and its count.

    The most confused class is the wrong top-1 prediction made most often for the class's images
    (ties: the lower index); empty where every image is right.

    Args:
        top1: each image's predicted class (``[n]``).
        labels: each image's class (``[n]``).
        classes: the model's classes, for names and synsets.
    """
    rows = []
    for label in sorted(set(labels.tolist())):
        predicted = top1[labels == label].tolist()
        wrong = Counter(p for p in predicted if p != label)
        confused, times = min(wrong.items(), key=lambda item: (-item[1], item[0])) if wrong else (None, 0)
        rows.append({
            "index": label, "class": classes.names[label],
            "synset": classes.synsets[label] if classes.synsets else "",
            "images": len(predicted), "top1": 100.0 * predicted.count(label) / len(predicted),
            "most_confused_with": classes.names[confused] if confused is not None else "",
            "confused_times": times,
        })
    return rows


def write_per_class(rows: list[dict[str, object]], path: str | os.PathLike) -> Path:
    """The rows of :func:`per_class` as a CSV with a header (top-1 to two decimals).

    Args:
        rows: what :func:`per_class` returns.
        path: the CSV to write (its folder is created).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["index", "class"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row | {"top1": f"{row['top1']:.2f}"})
    return path
