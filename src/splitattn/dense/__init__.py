"""Pieces shared by detection and segmentation: backbones, COCO files, the sample set, the loop."""

from .backbone import build_backbone, check_backbone_name, set_trainable_layers
from .recipe import DenseRecipe

__all__ = ["DenseRecipe", "build_backbone", "check_backbone_name", "set_trainable_layers"]
