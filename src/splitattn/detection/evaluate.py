"""COCO mAP of a detector on a ``CocoDetectionDataset``, with pycocotools' own COCOeval.

Predictions are mapped back to the file's category ids and compared with the file's annotations
(crowd regions included, as COCOeval expects), so the numbers are those of the COCO protocol.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import torch
from pycocotools.cocoeval import COCOeval
from torch import nn
from torch.utils.data import DataLoader

from ..dense.coco import encode_mask
from .dataset import CocoDetectionDataset, collate_detection

MASK_THRESHOLD = 0.5
STAT_NAMES = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large")


@torch.no_grad()
def predict_coco(model: nn.Module, dataset: CocoDetectionDataset, device: torch.device,
                 batch_size: int = 4) -> list[dict]:
    """The model's detections on every image, as COCO result entries."""
    model.eval()
    results: list[dict] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_detection)
    for images, targets in loader:
        outputs = model([image.to(device) for image in images])
        for output, target in zip(outputs, targets, strict=True):
            image_id = int(target["image_id"])
            boxes = output["boxes"].cpu()
            boxes[:, 2:] -= boxes[:, :2]
            masks = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy() if "masks" in output else None
            for i, (box, label, score) in enumerate(zip(boxes.tolist(), output["labels"].tolist(),
                                                        output["scores"].tolist(), strict=True)):
                entry = {"image_id": image_id, "category_id": dataset.label_map.category(label),
                         "bbox": [round(v, 2) for v in box], "score": round(score, 4)}
                if masks is not None:
                    entry["segmentation"] = encode_mask(masks[i])
                results.append(entry)
    return results


def coco_stats(dataset: CocoDetectionDataset, results: list[dict], iou_type: str = "bbox") -> dict[str, float]:
    """COCOeval summary numbers (AP at IoU .50:.95, .50, .75, by size); all zero without detections."""
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        detections = dataset.coco.loadRes(copy.deepcopy(results))  # loadRes adds keys to its input
        evaluator = COCOeval(dataset.coco, detections, iou_type)
        evaluator.params.imgIds = dataset.image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # COCOeval reports -1 where a size range has no ground truth.
    return {name: float(max(value, 0.0)) for name, value in zip(STAT_NAMES, np.asarray(evaluator.stats), strict=False)}


def evaluate_coco(model: nn.Module, dataset: CocoDetectionDataset, device: torch.device,
                  batch_size: int = 4) -> dict[str, dict[str, float]]:
    """``{"bbox": stats}``, plus ``"segm"`` for models that predict masks."""
    results = predict_coco(model, dataset, device, batch_size)
    has_masks = bool(results) and "segmentation" in results[0]
    metrics = {"bbox": coco_stats(dataset, results, "bbox")}
    if has_masks:
        metrics["segm"] = coco_stats(dataset, results, "segm")
    return metrics
