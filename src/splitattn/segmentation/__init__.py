"""Segmentation: torchvision's DeepLabV3 over dilated ResNeSt, SE and SK backbones."""

from .datasets import IGNORE_INDEX, CocoSegmentationDataset, MaskFolderDataset, segmentation_transform
from .metrics import evaluate_segmentation
from .models import DilatedBackbone, deeplabv3

__all__ = [
    "IGNORE_INDEX",
    "CocoSegmentationDataset",
    "DilatedBackbone",
    "MaskFolderDataset",
    "deeplabv3",
    "evaluate_segmentation",
    "segmentation_transform",
]
