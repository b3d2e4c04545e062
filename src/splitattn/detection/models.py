"""Faster R-CNN and Mask R-CNN (torchvision's) over splitattn backbones with an FPN.

These mirror ``torchvision.models.detection.fasterrcnn_resnet50_fpn`` / ``maskrcnn_resnet50_fpn``;
only the backbone differs. Every other torchvision argument (``min_size``, ``max_size``,
``rpn_pre_nms_top_n_train``, ``box_detections_per_img`` ...) passes through ``kwargs``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

from ..errors import SplitattnError
from ..models.registry import input_cfg
from .backbone import fpn_backbone

# torchvision's defaults: one anchor size per pyramid level (4 stages + the pooled level), 3 ratios.
DEFAULT_ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))
ASPECT_RATIOS = (0.5, 1.0, 2.0)
BOX_ROI_SIZE = 7
MASK_HEAD_CHANNELS = 256  # torchvision's MaskRCNNHeads width
# The detector around the backbone, by size. "standard" is torchvision's (800 px COCO images);
# "small" suits images of about 100 px and CPUs: a narrow pyramid and box head, anchors for small
# objects and a tenth of the proposals, about 15x faster a step on 96 px images.
DETECTOR_SIZES: dict[str, dict] = {
    "standard": {},
    "small": dict(fpn_channels=64, representation_size=128, anchor_sizes=((8,), (16,), (32,), (64,), (128,)),
                  rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100,
                  rpn_post_nms_top_n_test=50, rpn_batch_size_per_image=64, box_batch_size_per_image=32,
                  box_detections_per_img=20),
}


def _detector_parts(backbone: str, num_classes: int, trainable_layers: int | None,
                    pretrained_backbone: bool | str | os.PathLike | None, frozen_bn: bool | None,
                    fpn_channels: int, anchor_sizes: Sequence[Sequence[int]] | None, representation_size: int,
                    kwargs: dict) -> dict:
    """The backbone, anchors, box head and normalisation shared by both detectors."""
    if num_classes < 2:
        raise SplitattnError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    body = fpn_backbone(backbone, pretrained_backbone, trainable_layers, frozen_bn, out_channels=fpn_channels)
    sizes = tuple(tuple(s) for s in (anchor_sizes or DEFAULT_ANCHOR_SIZES))
    levels = len(body.body.feature_channels) + 1
    if len(sizes) != levels:
        raise SplitattnError(f"anchor_sizes needs one tuple per pyramid level ({levels}), got {len(sizes)}")
    cfg = input_cfg(backbone)
    parts = dict(
        backbone=body,
        rpn_anchor_generator=AnchorGenerator(sizes, (ASPECT_RATIOS,) * levels),
        box_head=TwoMLPHead(fpn_channels * BOX_ROI_SIZE**2, representation_size),
        box_predictor=FastRCNNPredictor(representation_size, num_classes),
        image_mean=list(cfg.mean),
        image_std=list(cfg.std),
    )
    parts.update(kwargs)
    return parts


def fasterrcnn(
    backbone: str = "resnest50",
    num_classes: int = 91,
    trainable_layers: int | None = None,
    pretrained_backbone: bool | str | os.PathLike | None = None,
    frozen_bn: bool | None = None,
    fpn_channels: int = 256,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    representation_size: int = 1024,
    **kwargs,
) -> FasterRCNN:
    """torchvision's Faster R-CNN with an FPN over the splitattn network ``backbone``.

    Args:
        backbone: zoo name (``resnest50``, ``seresnet50``, ``skresnet18`` ...).
        num_classes: object classes plus the background (COCO: 91).
        trainable_layers: backbone stages that train, from layer4 down to the stem (0..5;
            default 3 with a pretrained backbone, else 5), as torchvision counts them.
        pretrained_backbone: True for the published ImageNet weights, or a path / URL of a
            classification checkpoint (ours, official or timm layout).
        frozen_bn: BatchNorm frozen to its loaded statistics (default: with a pretrained backbone).
        fpn_channels: channels of the pyramid levels (torchvision: 256).
        anchor_sizes: one tuple of sizes per level (5 levels); smaller for small images.
        representation_size: width of the two-layer box head (torchvision: 1024).
        **kwargs: any other ``torchvision.models.detection.FasterRCNN`` argument.

    In train mode ``model(images, targets)`` returns the losses ``loss_classifier``,
    ``loss_box_reg``, ``loss_objectness`` and ``loss_rpn_box_reg``; in eval mode ``model(images)``
    returns one dict of ``boxes`` (x1, y1, x2, y2 in input pixels), ``labels`` and ``scores`` per image.
    """
    return FasterRCNN(**_detector_parts(backbone, num_classes, trainable_layers, pretrained_backbone, frozen_bn,
                                        fpn_channels, anchor_sizes, representation_size, kwargs))


def maskrcnn(
    backbone: str = "resnest50",
    num_classes: int = 91,
    trainable_layers: int | None = None,
    pretrained_backbone: bool | str | os.PathLike | None = None,
    frozen_bn: bool | None = None,
    fpn_channels: int = 256,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    representation_size: int = 1024,
    **kwargs,
) -> MaskRCNN:
    """torchvision's Mask R-CNN with an FPN over the splitattn network ``backbone``.

    Same arguments as :func:`fasterrcnn`; targets also carry ``masks`` (N, H, W), train mode adds
    ``loss_mask`` and eval mode returns ``masks`` (N, 1, H, W) of probabilities per image.
    """
    parts = _detector_parts(backbone, num_classes, trainable_layers, pretrained_backbone, frozen_bn,
                            fpn_channels, anchor_sizes, representation_size, kwargs)
    # torchvision builds the mask predictor from num_classes only when it builds the box predictor too.
    parts.setdefault("mask_predictor", MaskRCNNPredictor(MASK_HEAD_CHANNELS, MASK_HEAD_CHANNELS, num_classes))
    return MaskRCNN(**parts)
