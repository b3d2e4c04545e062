"""Fine-tune a detector on COCO-format data: the function behind ``splitattn train-det``.

Kept deliberately small: one process, a fixed number of steps (see ``dense.loop``), COCO mAP on the
validation file at the end, and the weights written atomically with everything needed to rebuild
the model (``training.checkpoint.save_checkpoint``), every ``checkpoint_every`` steps, at the end and
when SIGTERM / Ctrl-C stops the run; ``resume=True`` continues a stopped run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..dense.previews import detection_preview
from ..dense.recipe import DenseRecipe, DenseRun, check_recipe, recipe_loader, run_recipe
from ..errors import SplitattnError
from ..training.runtime import seed_everything, select_device
from ..training.trackers import RunTrackers
from .dataset import CocoDetectionDataset, collate_detection, train_transform
from .evaluate import evaluate_coco
from .models import DETECTOR_SIZES, fasterrcnn, maskrcnn

ARCHITECTURES = {"fasterrcnn": fasterrcnn, "maskrcnn": maskrcnn}


@dataclass
class DetectionConfig(DenseRecipe):
    """Everything a run depends on; saved in the checkpoint so the model can be rebuilt, and as the
    run's ``config.yaml``. ``training.config.build_config(config_class=DetectionConfig, ...)`` builds
    one from a YAML file and ``key=value`` overrides, as ``splitattn train-det`` does."""

    annotations: str
    images: str
    val_annotations: str | None = None
    val_images: str | None = None
    architecture: str = "fasterrcnn"
    trainable_layers: int | None = None
    min_size: int = 800
    max_size: int = 1333
    detector_size: str = "standard"  # "small": narrow heads and few proposals, for ~100 px images (DETECTOR_SIZES)
    model_args: dict[str, Any] = field(default_factory=dict)  # any other fasterrcnn / maskrcnn argument (wins)

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *DenseRecipe.RESUME_MAY_CHANGE, "annotations", "images", "val_annotations", "val_images")


DetectionRun = DenseRun  # the model, its losses, the mAPs and last.pth


def build_detector(config: DetectionConfig, num_classes: int) -> nn.Module:
    """The configured architecture; ``pretrained_backbone="published"`` means the published weights."""
    if config.architecture not in ARCHITECTURES:
        raise SplitattnError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {config.architecture!r}")
    if config.detector_size not in DETECTOR_SIZES:
        raise SplitattnError(f"detector_size must be one of {sorted(DETECTOR_SIZES)}, got {config.detector_size!r}")
    return ARCHITECTURES[config.architecture](
        config.backbone, num_classes=num_classes, trainable_layers=config.trainable_layers,
        pretrained_backbone=config.pretrained_backbone, min_size=config.min_size, max_size=config.max_size,
        **{**DETECTOR_SIZES[config.detector_size], **config.model_args})


def detection_loss(model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
    """torchvision's detectors return their losses in train mode; the loss is their sum."""
    images, targets = batch
    device = next(model.parameters()).device
    images = [image.to(device, non_blocking=True) for image in images]
    targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
    losses = model(images, targets)
    return sum(losses.values()), {k: v.item() for k, v in losses.items()}


def train_detector(config: DetectionConfig, log=print) -> DetectionRun:
    """Train (or continue), evaluate (when validation data are given) and save; returns the model and numbers.

    Returns early, without evaluating, when a signal stopped the run (``run.stopped``) or when
    ``resume`` finds the run finished already. A non-finite loss raises ``TrainingDiverged``.
    """
    check_recipe(config)
    seed_everything(config.seed, config.deterministic)
    device = select_device(config.device)
    masks = config.architecture == "maskrcnn"
    train_set = CocoDetectionDataset(config.annotations, config.images, masks=masks, transform=train_transform())
    val_set = None
    if config.val_annotations:
        val_set = CocoDetectionDataset(config.val_annotations, config.val_images or config.images, masks=masks)
        if val_set.label_map != train_set.label_map:
            raise SplitattnError(f"the categories of {config.val_annotations} differ from those of "
                                 f"{config.annotations}: "
                                 f"{val_set.label_map.names} vs {train_set.label_map.names}")
    model = build_detector(config, train_set.label_map.num_classes).to(device)
    loader = recipe_loader(config, train_set, drop_last=len(train_set) > config.batch_size,
                           collate_fn=collate_detection)
    log(f"training {config.architecture} over {config.backbone} on {len(train_set)} images, "
        f"{train_set.label_map.num_classes - 1} classes, {config.steps} steps on {device}")
    extra = {"classes": list(train_set.label_map.names), "category_ids": list(train_set.label_map.category_ids)}

    def evaluate(board: RunTrackers | None) -> dict:
        metrics = evaluate_coco(model, val_set, device, config.batch_size) if val_set is not None else {}
        for kind, stats in metrics.items():
            log(f"{kind}: mAP {stats['mAP']:.3f}  mAP50 {stats['mAP50']:.3f}  mAP75 {stats['mAP75']:.3f}")
        if board is not None:
            board.metrics({f"val/{kind}/{k}": v for kind, stats in metrics.items() for k, v in stats.items()},
                          config.steps)
            if val_set is not None:
                names = ["background", *train_set.label_map.names]
                board.image("predictions", detection_preview(model, val_set, names, device), config.steps)
        return metrics

    return run_recipe(model, loader, detection_loss, config, device, log, extra, evaluate)
