"""Fine-tune DeepLabV3 on image/mask folders or COCO files: the function behind ``splitattn train-seg``.

One process, a fixed number of steps with SGD or AdamW (``dense.loop``, ``training.optim``),
cross-entropy that skips ignore pixels (plus 0.5 x the auxiliary head's, as torchvision's recipe),
mIoU on the validation data at the end, and the weights saved atomically with the config that
rebuilds the model: every ``checkpoint_every`` steps, at the end and when SIGTERM / Ctrl-C stops
the run; ``resume=True`` continues a stopped run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..dense.previews import segmentation_preview
from ..dense.recipe import DenseRecipe, DenseRun, check_recipe, recipe_loader, run_recipe
from ..errors import SplitattnError
from ..models.registry import input_cfg
from ..training.runtime import seed_everything, select_device
from ..training.trackers import RunTrackers
from .datasets import IGNORE_INDEX, CocoSegmentationDataset, MaskFolderDataset, segmentation_transform
from .metrics import evaluate_segmentation
from .models import deeplabv3

AUX_WEIGHT = 0.5


@dataclass
class SegmentationConfig(DenseRecipe):
    """Everything a run depends on; saved in the checkpoint so the model can be rebuilt, and as the
    run's ``config.yaml``. ``training.config.build_config(config_class=SegmentationConfig, ...)``
    builds one from a YAML file and ``key=value`` overrides, as ``splitattn train-seg`` does.

    Data: ``images`` with either ``masks`` (a label-mask folder) or ``annotations`` (COCO JSON);
    the same for validation (``val_*``).
    """

    images: str
    masks: str | None = None
    annotations: str | None = None
    val_images: str | None = None
    val_masks: str | None = None
    val_annotations: str | None = None
    num_classes: int | None = None  # counted from the masks / categories when not given
    output_stride: int = 8
    aux_loss: bool = False
    image_size: int = 512
    batch_size: int = field(default=8, kw_only=True)
    lr: float = field(default=0.01, kw_only=True)

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *DenseRecipe.RESUME_MAY_CHANGE, "images", "masks", "annotations", "val_images", "val_masks", "val_annotations")


SegmentationRun = DenseRun  # the model, its losses, the mIoU and last.pth


def make_dataset(images: str, masks: str | None, annotations: str | None, transform,
                 num_classes: int | None) -> Dataset:
    """A mask-folder or COCO data set, whichever the arguments name (exactly one of them)."""
    if (masks is None) == (annotations is None):
        raise SplitattnError(f"give either a mask folder or a COCO annotation file for the images in {images!r}, "
                             f"not {'both' if masks else 'neither'}")
    if masks is not None:
        return MaskFolderDataset(images, masks, transform, num_classes)
    dataset = CocoSegmentationDataset(annotations, images, transform)
    if num_classes is not None and num_classes != dataset.num_classes:
        raise SplitattnError(f"num_classes={num_classes} but {annotations} has {dataset.num_classes - 1} categories "
                             f"plus the background")
    return dataset


def segmentation_loss(model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
    images, targets = batch
    device = next(model.parameters()).device
    images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
    outputs = model(images)
    parts = {"loss_out": F.cross_entropy(outputs["out"].float(), targets, ignore_index=IGNORE_INDEX)}
    if "aux" in outputs:
        parts["loss_aux"] = AUX_WEIGHT * F.cross_entropy(outputs["aux"].float(), targets, ignore_index=IGNORE_INDEX)
    return sum(parts.values()), {k: v.item() for k, v in parts.items()}


def train_segmenter(config: SegmentationConfig, log=print) -> SegmentationRun:
    """Train (or continue), evaluate (when validation data are given) and save; returns the model and numbers.

    Returns early, without evaluating, when a signal stopped the run (``run.stopped``) or when
    ``resume`` finds the run finished already. A non-finite loss raises ``TrainingDiverged``.
    """
    check_recipe(config)
    seed_everything(config.seed, config.deterministic)
    device = select_device(config.device)
    cfg = input_cfg(config.backbone)
    train_set = make_dataset(config.images, config.masks, config.annotations,
                             segmentation_transform(config.image_size, cfg.mean, cfg.std, train=True),
                             config.num_classes)
    num_classes = train_set.num_classes
    val_set = None
    if config.val_images:
        val_set = make_dataset(config.val_images, config.val_masks, config.val_annotations,
                               segmentation_transform(config.image_size, cfg.mean, cfg.std, train=False), num_classes)
    if config.batch_size < 2 or len(train_set) < 2:
        raise SplitattnError("DeepLabV3's image-pooling branch uses BatchNorm over the batch: "
                             f"need batch_size >= 2 and at least 2 training images "
                             f"(got {config.batch_size}, {len(train_set)})")
    model = deeplabv3(config.backbone, num_classes, config.output_stride, config.pretrained_backbone,
                      config.aux_loss).to(device)
    loader = recipe_loader(config, train_set, drop_last=True)
    log(f"training deeplabv3 over {config.backbone} (output stride {config.output_stride}) on {len(train_set)} images, "
        f"{num_classes} classes, {config.steps} steps on {device}")

    def evaluate(board: RunTrackers | None) -> dict:
        metrics = evaluate_segmentation(model, val_set, device, num_classes, config.batch_size) if val_set else {}
        if metrics:
            log(f"mIoU {metrics['mIoU']:.3f}  pixel accuracy {metrics['pixel_accuracy']:.3f}")
        if board is not None:
            board.metrics({f"val/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, config.steps)
            if val_set is not None:
                board.image("predictions",
                            segmentation_preview(model, val_set, num_classes, cfg.mean, cfg.std, device), config.steps)
        return metrics

    return run_recipe(model, loader, segmentation_loss, config, device, log, {"num_classes": num_classes}, evaluate)
